// RUN: peft-opt %s | FileCheck %s
// Round trip: what peft-opt prints, it parses again to the same IR.
// RUN: peft-opt %s | peft-opt | FileCheck %s

// CHECK-LABEL: func.func @linear_layers
func.func @linear_layers(%x: tensor<?x8x4xf32>, %v: tensor<4xf32>) -> (tensor<?x8x3xf32>, tensor<3xf32>) {
  // CHECK: peft.weight "fc.weight" from "model.onnx" : tensor<3x4xf32>
  %w = peft.weight "fc.weight" from "model.onnx" : tensor<3x4xf32>
  // CHECK: peft.weight "fc.bias" = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>
  %b = peft.weight "fc.bias" = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  // CHECK: peft.linear "encoder.fc" %{{.*}}, %{{.*}}, %{{.*}} : (tensor<?x8x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x8x3xf32>
  %y = peft.linear "encoder.fc" %x, %w, %b : (tensor<?x8x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x8x3xf32>
  // A GPT-2 Conv1D weight, stored [in, out], without a bias, on a vector.
  %wt = peft.weight "c_fc.weight" from "model.onnx" : tensor<4x3xf32>
  // CHECK: peft.linear "h.0.mlp.c_fc" %{{.*}}, %{{.*}} {weight_in_out} : (tensor<4xf32>, tensor<4x3xf32>) -> tensor<3xf32>
  %z = peft.linear "h.0.mlp.c_fc" %v, %wt {weight_in_out} : (tensor<4xf32>, tensor<4x3xf32>) -> tensor<3xf32>
  return %y, %z : tensor<?x8x3xf32>, tensor<3xf32>
}

// CHECK-LABEL: func.func @lora
func.func @lora(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = peft.weight "lora_A" = dense<1.0> : tensor<2x4xf32>
  %b = peft.weight "lora_B" = dense<0.5> : tensor<3x2xf32>
  // CHECK: peft.lora "default" %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {scale = 2.000000e+00 : f32}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// LoRA on a convolution and an embedding; DoRA.
// CHECK-LABEL: func.func @lora_forms
func.func @lora_forms(%x: tensor<?x3x8x8xf32>, %base: tensor<?x6x4x4xf32>, %ids: tensor<?x?xi64>, %rows: tensor<?x?x6xf32>, %v: tensor<2x4xf32>, %y: tensor<2x3xf32>)
    -> (tensor<?x6x4x4xf32>, tensor<?x?x6xf32>, tensor<2x3xf32>) {
  %a = peft.weight "lora_A" = dense<1.0> : tensor<2x3x3x3xf32>
  %b = peft.weight "lora_B" = dense<0.5> : tensor<6x2x1x1xf32>
  // CHECK: peft.lora "default" %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {pads = array<i64: 1, 1, 1, 1>, scale = 2.000000e+00 : f32, strides = array<i64: 2, 2>}
  %c = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>}
    : (tensor<?x3x8x8xf32>, tensor<?x6x4x4xf32>, tensor<2x3x3x3xf32>, tensor<6x2x1x1xf32>) -> tensor<?x6x4x4xf32>
  %ea = peft.weight "lora_embedding_A" = dense<1.0> : tensor<2x100xf32>
  %eb = peft.weight "lora_embedding_B" = dense<1.0> : tensor<6x2xf32>
  // CHECK: peft.lora "default" {{.*}} : (tensor<?x?xi64>, tensor<?x?x6xf32>, tensor<2x100xf32>, tensor<6x2xf32>) -> tensor<?x?x6xf32>
  %e = peft.lora "default" %ids, %rows, %ea, %eb {scale = 1.0 : f32} : (tensor<?x?xi64>, tensor<?x?x6xf32>, tensor<2x100xf32>, tensor<6x2xf32>) -> tensor<?x?x6xf32>
  %w = peft.weight "fc.weight" = dense<1.0> : tensor<3x4xf32>
  %bias = peft.weight "fc.bias" = dense<1.0> : tensor<3xf32>
  %la = peft.weight "lora_A" = dense<1.0> : tensor<1x4xf32>
  %lb = peft.weight "lora_B" = dense<1.0> : tensor<3x1xf32>
  %m = peft.weight "lora_magnitude_vector" = dense<1.0> : tensor<3xf32>
  // CHECK: peft.dora "default" %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, bias %{{.*}} {scale = 2.000000e+00 : f32}
  %d = peft.dora "default" %v, %y, %w, %la, %lb, %m, bias %bias {scale = 2.0 : f32}
    : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<3x4xf32>, tensor<1x4xf32>, tensor<3x1xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %c, %e, %d : tensor<?x6x4x4xf32>, tensor<?x?x6xf32>, tensor<2x3xf32>
}

// LoHa's and LoKr's deltas, computed from weights, added through the layer.
// CHECK-LABEL: func.func @weight_deltas
func.func @weight_deltas(%x: tensor<2x8xf32>, %base: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %a = peft.weight "hada_w1_a" = dense<1.0> : tensor<4x2xf32>
  %b = peft.weight "hada_w1_b" = dense<1.0> : tensor<2x8xf32>
  // CHECK: %[[P:.*]] = peft.factor_product %{{.*}}, %{{.*}} : (tensor<4x2xf32>, tensor<2x8xf32>) -> tensor<4x8xf32>
  %p = peft.factor_product %a, %b : (tensor<4x2xf32>, tensor<2x8xf32>) -> tensor<4x8xf32>
  // CHECK: %[[LOHA:.*]] = peft.loha_delta %[[P]], %[[P]] {scale = 2.000000e+00 : f32}
  %loha = peft.loha_delta %p, %p {scale = 2.0 : f32} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %w1 = peft.weight "lokr_w1" = dense<1.0> : tensor<2x2xf32>
  %w2 = peft.weight "lokr_w2" = dense<1.0> : tensor<2x4xf32>
  // CHECK: peft.lokr_delta %{{.*}}, %{{.*}} {scale = 1.000000e+00 : f32} : (tensor<2x2xf32>, tensor<2x4xf32>) -> tensor<4x8xf32>
  %lokr = peft.lokr_delta %w1, %w2 {scale = 1.0 : f32} : (tensor<2x2xf32>, tensor<2x4xf32>) -> tensor<4x8xf32>
  // CHECK: peft.add_delta "default" %{{.*}}, %{{.*}}, %[[LOHA]] : (tensor<2x8xf32>, tensor<2x4xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  %y = peft.add_delta "default" %x, %base, %loha : (tensor<2x8xf32>, tensor<2x4xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  %z = peft.add_delta "other" %x, %y, %lokr : (tensor<2x8xf32>, tensor<2x4xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  return %z : tensor<2x4xf32>
}

// The CP form of a convolution's factors (use_effective_conv2d): a core
// [r, r, kh, kw] with factors [r, out] and [r, in] rebuilds the [out, in·k]
// matrix that LoHa's Hadamard product reads.
// CHECK-LABEL: func.func @cp_products
func.func @cp_products(%x: tensor<1x3x4x4xf32>, %base: tensor<1x8x2x2xf32>) -> tensor<1x8x2x2xf32> {
  %t = peft.weight "hada_t1" = dense<1.0> : tensor<2x2x3x3xf32>
  %a = peft.weight "hada_w1_a" = dense<1.0> : tensor<2x8xf32>
  %b = peft.weight "hada_w1_b" = dense<1.0> : tensor<2x3xf32>
  // CHECK: %[[P:.*]] = peft.cp_product %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x2x3x3xf32>, tensor<2x8xf32>, tensor<2x3xf32>) -> tensor<8x27xf32>
  %p = peft.cp_product %t, %a, %b : (tensor<2x2x3x3xf32>, tensor<2x8xf32>, tensor<2x3xf32>) -> tensor<8x27xf32>
  // CHECK: peft.loha_delta %[[P]], %[[P]] {scale = 1.000000e+00 : f32} : (tensor<8x27xf32>, tensor<8x27xf32>) -> tensor<8x3x3x3xf32>
  %d = peft.loha_delta %p, %p {scale = 1.0 : f32} : (tensor<8x27xf32>, tensor<8x27xf32>) -> tensor<8x3x3x3xf32>
  %y = peft.add_delta "default" %x, %base, %d {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64}
    : (tensor<1x3x4x4xf32>, tensor<1x8x2x2xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x2x2xf32>
  return %y : tensor<1x8x2x2xf32>
}

// CHECK-LABEL: func.func @conv_and_embedding
func.func @conv_and_embedding(%x: tensor<?x4x9x9xf32>, %ids: tensor<?x?xi64>) -> (tensor<?x6x5x5xf32>, tensor<?x?x8xf32>) {
  %w = peft.weight "stem.weight" from "model.onnx" : tensor<6x2x3x3xf32>
  %b = peft.weight "stem.bias" from "model.onnx" : tensor<6xf32>
  // CHECK: peft.conv "stem" %{{.*}}, %{{.*}}, %{{.*}} {dilations = array<i64: 1, 1>, groups = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<?x4x9x9xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<?x6x5x5xf32>
  %y = peft.conv "stem" %x, %w, %b {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 2 : i64} : (tensor<?x4x9x9xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<?x6x5x5xf32>
  %t = peft.weight "embed_tokens.weight" from "model.onnx" : tensor<100x8xf32>
  // CHECK: peft.embedding "embed_tokens" %{{.*}}, %{{.*}} : (tensor<?x?xi64>, tensor<100x8xf32>) -> tensor<?x?x8xf32>
  %e = peft.embedding "embed_tokens" %ids, %t : (tensor<?x?xi64>, tensor<100x8xf32>) -> tensor<?x?x8xf32>
  return %y, %e : tensor<?x6x5x5xf32>, tensor<?x?x8xf32>
}

// CHECK-LABEL: func.func @ia3
func.func @ia3(%x: tensor<?x8x32xf32>) -> tensor<?x8x32xf32> {
  %l = peft.weight "k_proj.ia3_l" = dense<2.0> : tensor<32x1xf32>
  // CHECK: peft.ia3 "default" %{{.*}}, %{{.*}} : (tensor<?x8x32xf32>, tensor<32x1xf32>) -> tensor<?x8x32xf32>
  %y = peft.ia3 "default" %x, %l : (tensor<?x8x32xf32>, tensor<32x1xf32>) -> tensor<?x8x32xf32>
  return %y : tensor<?x8x32xf32>
}

// CHECK-LABEL: func.func @layer_norm_ssf_bottleneck
func.func @layer_norm_ssf_bottleneck(%x: tensor<?x8x32xf32>, %g: tensor<32xf32>, %d: tensor<4x32xf32>, %u: tensor<32x2xf32>, %b: tensor<32xf32>) -> tensor<?x8x32xf32> {
  // CHECK: peft.layer_norm "ln" %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 9.99999974E-6 : f32} : (tensor<?x8x32xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
  %n = peft.layer_norm "ln" %x, %g {axis = 2 : i64, epsilon = 1.0e-5 : f32} : (tensor<?x8x32xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
  // CHECK: peft.ssf "default" %{{.*}}, %{{.*}}, %{{.*}} {channel_dim = 2 : i64} : (tensor<?x8x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
  %s = peft.ssf "default" %n, %g, %b {channel_dim = 2 : i64} : (tensor<?x8x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
  // CHECK: peft.bottleneck "default" %{{.*}}, %{{.*}}, %{{.*}} up_bias %{{.*}} {activation = "identity", groups = 2 : i64, scale = 1.000000e+00 : f32} : (tensor<?x8x32xf32>, tensor<4x32xf32>, tensor<32x2xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
  %y = peft.bottleneck "default" %s, %d, %u up_bias %b {activation = "identity", groups = 2 : i64, scale = 1.0 : f32} : (tensor<?x8x32xf32>, tensor<4x32xf32>, tensor<32x2xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
  return %y : tensor<?x8x32xf32>
}

// CHECK-LABEL: func.func @head_shift
func.func @head_shift(%k: tensor<?x17x32xf32>) -> tensor<?x17x32xf32> {
  // CHECK: peft.head_shift "default" %{{.*}} {fold = 1 : i64, frames = 4 : i64, heads = 4 : i64} : (tensor<?x17x32xf32>) -> tensor<?x17x32xf32>
  %y = peft.head_shift "default" %k {fold = 1 : i64, frames = 4 : i64, heads = 4 : i64} : (tensor<?x17x32xf32>) -> tensor<?x17x32xf32>
  return %y : tensor<?x17x32xf32>
}

// Adapters in slots, each row of the batch picking one (-1: none).
// CHECK-LABEL: func.func @multi_lora
// CHECK: peft.multi_lora ["a", ""] %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} bias %{{.*}} : (tensor<?x8x32xf32>, tensor<?x8x16xf32>, tensor<?xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>, tensor<2x16xf32>) -> tensor<?x8x16xf32>
func.func @multi_lora(%x: tensor<?x8x32xf32>, %base: tensor<?x8x16xf32>, %index: tensor<?xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>, %bias: tensor<2x16xf32>) -> tensor<?x8x16xf32> {
  %y = peft.multi_lora ["a", ""] %x, %base, %index, %a, %b, %s bias %bias : (tensor<?x8x32xf32>, tensor<?x8x16xf32>, tensor<?xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>, tensor<2x16xf32>) -> tensor<?x8x16xf32>
  return %y : tensor<?x8x16xf32>
}

// DoRA in slots: each slot's factors per output and the layer's bias, with
// no lora_bias.
// CHECK-LABEL: func.func @multi_lora_dora
// CHECK: peft.multi_lora ["a", ""] %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} dora %{{.*}} layer_bias %{{.*}} : (tensor<?x8x32xbf16>, tensor<?x8x16xbf16>, tensor<?xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>, tensor<2x16xf32>, tensor<16xbf16>) -> tensor<?x8x16xbf16>
func.func @multi_lora_dora(%x: tensor<?x8x32xbf16>, %base: tensor<?x8x16xbf16>, %index: tensor<?xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>, %n: tensor<2x16xf32>, %lb: tensor<16xbf16>) -> tensor<?x8x16xbf16> {
  %y = peft.multi_lora ["a", ""] %x, %base, %index, %a, %b, %s dora %n layer_bias %lb : (tensor<?x8x32xbf16>, tensor<?x8x16xbf16>, tensor<?xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>, tensor<2x16xf32>, tensor<16xbf16>) -> tensor<?x8x16xbf16>
  return %y : tensor<?x8x16xbf16>
}

// IA3 vectors in slots, each row of the batch picking one (-1: none).
// CHECK-LABEL: func.func @multi_ia3
// CHECK: peft.multi_ia3 ["a", ""] %{{.*}}, %{{.*}}, %{{.*}} : (tensor<?x8x16xf32>, tensor<?xi64>, tensor<2x16xf32>) -> tensor<?x8x16xf32>
func.func @multi_ia3(%x: tensor<?x8x16xf32>, %index: tensor<?xi64>, %l: tensor<2x16xf32>) -> tensor<?x8x16xf32> {
  %y = peft.multi_ia3 ["a", ""] %x, %index, %l : (tensor<?x8x16xf32>, tensor<?xi64>, tensor<2x16xf32>) -> tensor<?x8x16xf32>
  return %y : tensor<?x8x16xf32>
}
