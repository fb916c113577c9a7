// RUN: peft-opt %s --split-input-file --peft-batch-adapters="adapters=first,second slots=3" \
// RUN:   --verify-diagnostics | FileCheck %s --implicit-check-not='peft.lora'
//
// peft-batch-adapters (--mode multi): the entry takes adapter_index, each
// row's slot; each linear layer's LoRAs become one peft.multi_lora over the
// slots' stacked factors, zero-padded to the largest rank, a slot whose
// adapter is not on the layer all zeros.

// fc has "first" (rank 1, scale 2) and "second" (rank 2, scale 0.5, a
// bias); the capacity is 2, slot 2 empty.
// CHECK-LABEL: func.func @two_loras
// CHECK-SAME: (%[[X:[^:]*]]: tensor<3x2xf32> {peft.dim_names = ["batch"], peft.name = "x"},
// CHECK-SAME: %[[INDEX:[^:]*]]: tensor<?xi64> {peft.adapter_slots = 3 : i64, peft.dim_names = ["batch"], peft.name = "adapter_index"})
// CHECK: %[[Y:.*]] = peft.linear "fc"
// CHECK: %[[A:.*]] = peft.weight "slots.fc.lora_A" = dense<{{\[}}{{\[}}[1.000000e+00, 0.000000e+00], [0.000000e+00, 0.000000e+00]], {{\[}}[0.000000e+00, 1.000000e+00], [1.000000e+00, 1.000000e+00]], {{\[}}[0.000000e+00, 0.000000e+00], [0.000000e+00, 0.000000e+00]]]> : tensor<3x2x2xf32>
// CHECK: %[[B:.*]] = peft.weight "slots.fc.lora_B" = dense<{{\[}}{{\[}}[1.000000e+00, 2.000000e+00], [0.000000e+00, 0.000000e+00]], {{\[}}[3.000000e+00, 5.000000e+00], [4.000000e+00, 6.000000e+00]], {{\[}}[0.000000e+00, 0.000000e+00], [0.000000e+00, 0.000000e+00]]]> : tensor<3x2x2xf32>
// CHECK: %[[S:.*]] = peft.weight "slots.fc.scales" = dense<[2.000000e+00, 5.000000e-01, 0.000000e+00]> : tensor<3xf32>
// Each slot's rank on the layer (0: empty), for back ends to skip the padding.
// CHECK: %[[R:.*]] = peft.weight "slots.fc.ranks" = dense<[1.000000e+00, 2.000000e+00, 0.000000e+00]> : tensor<3xf32>
// CHECK: %[[BIAS:.*]] = peft.weight "slots.fc.lora_bias" = dense<{{\[}}[0.000000e+00, 0.000000e+00], [7.000000e+00, 8.000000e+00], [0.000000e+00, 0.000000e+00]]> : tensor<3x2xf32>
// CHECK: %[[Z:.*]] = peft.multi_lora ["first", "second", ""] %[[X]], %[[Y]], %[[INDEX]], %[[A]], %[[B]], %[[S]] bias %[[BIAS]] ranks %[[R]]
// CHECK: return %[[Z]]
func.func @two_loras(%x: tensor<3x2xf32> {peft.name = "x", peft.dim_names = ["batch"]}) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<0.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %a1 = peft.weight "a1" = dense<[[1.0, 0.0]]> : tensor<1x2xf32>
  %b1 = peft.weight "b1" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %l1 = peft.lora "first" %x, %y, %a1, %b1 {scale = 2.0 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  %a2 = peft.weight "a2" = dense<[[0.0, 1.0], [1.0, 1.0]]> : tensor<2x2xf32>
  %b2 = peft.weight "b2" = dense<[[3.0, 4.0], [5.0, 6.0]]> : tensor<2x2xf32>
  %c2 = peft.weight "c2" = dense<[7.0, 8.0]> : tensor<2xf32>
  %l2 = peft.lora "second" %x, %l1, %a2, %b2, %c2 {scale = 0.5 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %l2 : tensor<3x2xf32>
}

// -----

// IA3 shares the batch: "second"'s vectors on fc's input (a feed-forward
// module) and output become the slot rows of peft.multi_ia3, ones in the
// other slots; the LoRA reads the scaled input (ones for its rows).
// CHECK-LABEL: func.func @ia3
// CHECK-SAME: (%[[X:[^:]*]]: tensor<3x2xf32> {{.*}}, %[[INDEX:[^:]*]]: tensor<?xi64>
// CHECK: %[[IN:.*]] = peft.weight "slots.fc.ia3_in" = dense<{{\[}}[1.000000e+00, 1.000000e+00], [4.000000e+00, 5.000000e+00], [1.000000e+00, 1.000000e+00]]> : tensor<3x2xf32>
// CHECK: %[[XI:.*]] = peft.multi_ia3 ["first", "second", ""] %[[X]], %[[INDEX]], %[[IN]]
// CHECK: %[[Y:.*]] = peft.linear "fc" %[[XI]]
// CHECK: %[[S:.*]] = peft.weight "slots.fc.scales" = dense<[2.000000e+00, 0.000000e+00, 0.000000e+00]>
// CHECK: %[[L:.*]] = peft.multi_lora ["first", "second", ""] %[[XI]], %[[Y]], %[[INDEX]], %{{.*}}, %{{.*}}, %[[S]] ranks %{{.*}} :
// CHECK: %[[OUT:.*]] = peft.weight "slots.fc.ia3_out" = dense<{{\[}}[1.000000e+00, 1.000000e+00], [2.000000e+00, 3.000000e+00], [1.000000e+00, 1.000000e+00]]> : tensor<3x2xf32>
// CHECK: %[[Z:.*]] = peft.multi_ia3 ["first", "second", ""] %[[L]], %[[INDEX]], %[[OUT]]
// CHECK: return %[[Z]]
func.func @ia3(%x: tensor<3x2xf32> {peft.name = "x", peft.dim_names = ["batch"]}) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<0.0> : tensor<2x2xf32>
  %l0 = peft.weight "l0" = dense<[4.0, 5.0]> : tensor<2xf32>
  %xi = peft.ia3 "second" %x, %l0 : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %y = peft.linear "fc" %xi, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %a1 = peft.weight "a1" = dense<[[1.0, 0.0]]> : tensor<1x2xf32>
  %b1 = peft.weight "b1" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %l1 = peft.lora "first" %x, %y, %a1, %b1 {scale = 2.0 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  %l = peft.weight "l" = dense<[[2.0], [3.0]]> : tensor<2x1xf32>
  %z = peft.ia3 "second" %l1, %l : (tensor<3x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// DoRA shares the batch: its factors fill its slot like a LoRA's, and
// dora_scales holds m / ‖W + s·B·A‖ per output in its slot (1 elsewhere):
// here ‖[2, 2]‖ = 2√2 for both rows, m = 1. The layer's bias, which DoRA
// leaves unscaled, comes along.
// CHECK-LABEL: func.func @dora
// CHECK: %[[BIAS:.*]] = peft.weight "fc.bias"
// CHECK: %[[Y:.*]] = peft.linear "fc" %{{.*}}, %{{.*}}, %[[BIAS]]
// CHECK: %[[N:.*]] = peft.weight "slots.fc.dora_scales" = dense<{{\[}}[1.000000e+00, 1.000000e+00], [0.353553{{[0-9]*}}, 0.353553{{[0-9]*}}], [1.000000e+00, 1.000000e+00]]> : tensor<3x2xf32>
// CHECK: peft.multi_lora ["first", "second", ""] %{{.*}}, %[[Y]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} dora %[[N]] layer_bias %[[BIAS]] ranks %{{.*}} :
func.func @dora(%x: tensor<3x2xf32> {peft.name = "x", peft.dim_names = ["batch"]}) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<1.0> : tensor<2x2xf32>
  %bias = peft.weight "fc.bias" = dense<0.5> : tensor<2xf32>
  %y = peft.linear "fc" %x, %w, %bias : (tensor<3x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %a = peft.weight "a" = dense<1.0> : tensor<1x2xf32>
  %b = peft.weight "b" = dense<1.0> : tensor<2x1xf32>
  %m = peft.weight "m" = dense<1.0> : tensor<2xf32>
  %z = peft.dora "second" %x, %y, %w, %a, %b, %m, bias %bias {scale = 1.0 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<2x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// Another method than LoRA, DoRA and IA3 cannot share the batch.
func.func @ssf_on_linear(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<1.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %g = peft.weight "g" = dense<1.0> : tensor<2xf32>
  // expected-error @+1 {{adapter 'first' on module 'fc': SSF cannot share a batch with other adapters; --mode multi takes LoRA, DoRA and IA3 adapters}}
  %z = peft.ssf "first" %y, %g, %g {channel_dim = 1 : i64} : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// An adapter on something other than a layer (here a layer norm's SSF)
// would apply to every row.
func.func @ssf(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %g = peft.weight "g" = dense<1.0> : tensor<2xf32>
  %n = peft.layer_norm "norm" %x, %g {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  // expected-error @+1 {{adapter 'first' on module 'norm': SSF cannot share a batch with other adapters; --mode multi takes LoRA, DoRA and IA3 adapters on linear layers}}
  %z = peft.ssf "first" %n, %g, %g {channel_dim = 1 : i64} : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// An adapter the slots were not given.
func.func @unnamed(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<0.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %a = peft.weight "a" = dense<1.0> : tensor<1x2xf32>
  %b = peft.weight "b" = dense<1.0> : tensor<2x1xf32>
  // expected-error @+1 {{adapter 'third' on module 'fc': not among the adapters filling the slots}}
  %z = peft.lora "third" %x, %y, %a, %b {scale = 1.0 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}
