// RUN: peft-opt %s --split-input-file --peft-batch-adapters="modules=fc,layer.proj slots=2 max-rank=3" \
// RUN:   --verify-diagnostics | FileCheck %s
// RUN: peft-opt %s --split-input-file --peft-batch-adapters="modules=fc,layer.proj slots=2 max-rank=3 methods=lora_bias,dora,ia3" \
// RUN:   --verify-diagnostics | FileCheck %s --check-prefix=METHODS
// RUN: not peft-opt %s --split-input-file --peft-batch-adapters="modules=fc slots=2 max-rank=3 methods=dora,loha" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: error: peft-batch-adapters: methods takes lora_bias, dora, ia3, not 'loha'
//
// peft-batch-adapters with `modules` and no adapters named (peftc --mode
// multi --slot-modules): the layers named (PEFT's target_modules rule: the
// path or its last dotted parts) get empty slots of the capacity given, for
// adapters loaded at run time; other layers stay as they are.

// CHECK-LABEL: func.func @empty_slots
// CHECK-SAME: %[[INDEX:[^:]*]]: tensor<?xi64> {peft.adapter_slots = 2 : i64, peft.dim_names = ["batch"], peft.name = "adapter_index"})
// CHECK: %[[Y:.*]] = peft.linear "encoder.fc"
// CHECK: %[[A:.*]] = peft.weight "slots.encoder.fc.lora_A" = dense<0.000000e+00> : tensor<2x2x3xf32>
// CHECK: %[[B:.*]] = peft.weight "slots.encoder.fc.lora_B" = dense<0.000000e+00> : tensor<2x3x4xf32>
// CHECK: %[[S:.*]] = peft.weight "slots.encoder.fc.scales" = dense<0.000000e+00> : tensor<2xf32>
// CHECK: %[[R:.*]] = peft.weight "slots.encoder.fc.ranks" = dense<0.000000e+00> : tensor<2xf32>
// CHECK: %[[Z:.*]] = peft.multi_lora ["", ""] %{{.*}}, %[[Y]], %[[INDEX]], %[[A]], %[[B]], %[[S]] ranks %[[R]] :
// CHECK: %[[P:.*]] = peft.linear "layer.proj" %[[Z]]
// CHECK: peft.multi_lora ["", ""] %[[Z]], %[[P]], %[[INDEX]]
// CHECK: %[[O:.*]] = peft.linear "other" %
// CHECK-NOT: peft.multi_lora
// CHECK: return %[[O]]
func.func @empty_slots(%x: tensor<3x2xf32> {peft.name = "x", peft.dim_names = ["batch"]}) -> tensor<3x4xf32> {
  %w = peft.weight "encoder.fc.weight" = dense<1.0> : tensor<4x2xf32>
  %y = peft.linear "encoder.fc" %x, %w : (tensor<3x2xf32>, tensor<4x2xf32>) -> tensor<3x4xf32>
  %w2 = peft.weight "layer.proj.weight" = dense<1.0> : tensor<4x4xf32>
  %p = peft.linear "layer.proj" %y, %w2 : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  %w3 = peft.weight "other.weight" = dense<1.0> : tensor<4x4xf32>
  %o = peft.linear "other" %p, %w3 : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  return %o : tensor<3x4xf32>
}

// -----

// A module named that is not a linear layer.
func.func @embedding(%ids: tensor<3xi64>) -> tensor<3x4xf32> {
  %table = peft.weight "fc.weight" = dense<1.0> : tensor<8x4xf32>
  // expected-error @+1 {{module 'fc' is named by --slot-modules, but only linear layers have slots}}
  %e = peft.embedding "fc" %ids, %table : (tensor<3xi64>, tensor<8x4xf32>) -> tensor<3x4xf32>
  return %e : tensor<3x4xf32>
}

// -----

// Names that match no layer ("proj" alone would: "layer.proj" must end the path).
// expected-error @+1 {{peft-batch-adapters: --slot-modules fc,layer.proj names no linear layer of the model}}
module {
  func.func @nothing(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
    %w = peft.weight "a.proj.weight" = dense<1.0> : tensor<4x4xf32>
    %y = peft.linear "a.proj" %x, %w : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
    return %y : tensor<3x4xf32>
  }
}

// -----

// `methods` (peftc --slot-methods): every slotted layer also holds
// lora_bias slots (zeros), DoRA's dora_scales (ones, with the layer's bias)
// and IA3 vectors (ones) on its input and its output, for adapters of those
// methods loaded at run time.
// METHODS-LABEL: func.func @methods
// METHODS-SAME: (%[[X:[^:]*]]: tensor<3x2xf32>
// METHODS-SAME: %[[INDEX:[^:]*]]: tensor<?xi64>
// METHODS: %[[BIAS:.*]] = peft.weight "mlp.fc.bias"
// METHODS: %[[IN:.*]] = peft.weight "slots.mlp.fc.ia3_in" = dense<1.000000e+00> : tensor<2x2xf32>
// METHODS: %[[SCALED:.*]] = peft.multi_ia3 ["", ""] %[[X]], %[[INDEX]], %[[IN]]
// METHODS: %[[Y:.*]] = peft.linear "mlp.fc" %[[SCALED]], %{{.*}}, %[[BIAS]]
// METHODS: %[[LB:.*]] = peft.weight "slots.mlp.fc.lora_bias" = dense<0.000000e+00> : tensor<2x4xf32>
// METHODS: %[[N:.*]] = peft.weight "slots.mlp.fc.dora_scales" = dense<1.000000e+00> : tensor<2x4xf32>
// METHODS: %[[Z:.*]] = peft.multi_lora ["", ""] %[[SCALED]], %[[Y]], %[[INDEX]], %{{.*}}, %{{.*}}, %{{.*}} bias %[[LB]] dora %[[N]] layer_bias %[[BIAS]]
// METHODS: %[[OUT:.*]] = peft.weight "slots.mlp.fc.ia3_out" = dense<1.000000e+00> : tensor<2x4xf32>
// METHODS: %[[R:.*]] = peft.multi_ia3 ["", ""] %[[Z]], %[[INDEX]], %[[OUT]]
// METHODS: return %[[R]]
func.func @methods(%x: tensor<3x2xf32> {peft.name = "x", peft.dim_names = ["batch"]}) -> tensor<3x4xf32> {
  %w = peft.weight "mlp.fc.weight" = dense<1.0> : tensor<4x2xf32>
  %b = peft.weight "mlp.fc.bias" = dense<0.5> : tensor<4xf32>
  %y = peft.linear "mlp.fc" %x, %w, %b : (tensor<3x2xf32>, tensor<4x2xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}
