// RUN: peft-opt %s --peft-merge-adapters --split-input-file --verify-diagnostics | FileCheck %s
// RUN: peft-opt %s --peft-merge-adapters --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=BODY

// A CHECK-NOT only covers the text between its neighbouring matches. Where a
// leftover op would stand before the checked layer (an adapter on the layer's
// input, an old weight), the BODY prefix checks the whole function, from its
// BODY-LABEL to its return.

// W' = W + scale·B·A = [[1, 2], [3, 4]] + 2·[[1, 1], [2, 2]]
// CHECK-LABEL: func.func @merge_out_in
// CHECK: %[[W:.*]] = peft.weight "fc.weight" = dense<{{\[}}[3.000000e+00, 4.000000e+00], [7.000000e+00, 8.000000e+00]]> : tensor<2x2xf32>
// CHECK: %[[Y:.*]] = peft.linear "fc" %{{.*}}, %[[W]], %{{.*}} :
// CHECK-NOT: peft.lora
// CHECK: return %[[Y]]
func.func @merge_out_in(%x: tensor<?x3x2xf32>) -> tensor<?x3x2xf32> {
  %w = peft.weight "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %b = peft.weight "fc.bias" = dense<[0.5, -0.5]> : tensor<2xf32>
  %y = peft.linear "fc" %x, %w, %b : (tensor<?x3x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<?x3x2xf32>
  %a = peft.weight "a" = dense<[[1.0, 1.0]]> : tensor<1x2xf32>
  %bb = peft.weight "b" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %z = peft.lora "default" %x, %y, %a, %bb {scale = 2.0 : f32} : (tensor<?x3x2xf32>, tensor<?x3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<?x3x2xf32>
  return %z : tensor<?x3x2xf32>
}

// -----

// The same layer with its weight stored [in, out] (GPT-2's Conv1D): the delta
// is added transposed.
// CHECK-LABEL: func.func @merge_in_out
// CHECK: peft.weight "c_fc.weight" = dense<{{\[}}[3.000000e+00, 7.000000e+00], [4.000000e+00, 8.000000e+00]]> : tensor<2x2xf32>
func.func @merge_in_out(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "c_fc.weight" = dense<[[1.0, 3.0], [2.0, 4.0]]> : tensor<2x2xf32>
  %y = peft.linear "c_fc" %x, %w {weight_in_out} : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %a = peft.weight "a" = dense<[[1.0, 1.0]]> : tensor<1x2xf32>
  %bb = peft.weight "b" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %z = peft.lora "default" %x, %y, %a, %bb {scale = 2.0 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// Two adapters on one layer merge together; the F16 one is widened first.
// W' = 0 + 1·[[1],[1]]·[[1, 2]] + 0.5·[[2],[0]]·[[1, 1]]
// CHECK-LABEL: func.func @merge_chain
// CHECK: peft.weight "w" = dense<{{\[}}[2.000000e+00, 3.000000e+00], [1.000000e+00, 2.000000e+00]]> : tensor<2x2xf32>
// CHECK-NOT: peft.lora
func.func @merge_chain(%x: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %w = peft.weight "w" = dense<0.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<1x2xf32>, tensor<2x2xf32>) -> tensor<1x2xf32>
  %a1 = peft.weight "a1" = dense<[[1.0, 2.0]]> : tensor<1x2xf32>
  %b1 = peft.weight "b1" = dense<[[1.0], [1.0]]> : tensor<2x1xf32>
  %l1 = peft.lora "first" %x, %y, %a1, %b1 {scale = 1.0 : f32} : (tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<1x2xf32>
  %a2 = peft.weight "a2" = dense<[[1.0, 1.0]]> : tensor<1x2xf16>
  %b2 = peft.weight "b2" = dense<[[2.0], [0.0]]> : tensor<2x1xf16>
  %l2 = peft.lora "second" %x, %l1, %a2, %b2 {scale = 0.5 : f32} : (tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf16>, tensor<2x1xf16>) -> tensor<1x2xf32>
  return %l2 : tensor<1x2xf32>
}

// -----

// Large merged weights are held as a resource blob, not printed as numbers.
// CHECK-LABEL: func.func @merge_large
// CHECK: peft.weight "big.weight" = dense_resource<big.weight> : tensor<32x32xf32>
// CHECK: dialect_resources
// CHECK-NEXT: builtin
// CHECK-NEXT: big.weight: "0x04000000
func.func @merge_large(%x: tensor<1x32xf32>) -> tensor<1x32xf32> {
  %w = peft.weight "big.weight" = dense<1.0> : tensor<32x32xf32>
  %y = peft.linear "big" %x, %w : (tensor<1x32xf32>, tensor<32x32xf32>) -> tensor<1x32xf32>
  %a = peft.weight "a" = dense<1.0> : tensor<2x32xf32>
  %b = peft.weight "b" = dense<1.0> : tensor<32x2xf32>
  %z = peft.lora "default" %x, %y, %a, %b {scale = 1.0 : f32} : (tensor<1x32xf32>, tensor<1x32xf32>, tensor<2x32xf32>, tensor<32x2xf32>) -> tensor<1x32xf32>
  return %z : tensor<1x32xf32>
}

// -----

// An adapter whose base is not a layer stays, and the pass says why, in a
// remark and on the op for tools to report.
// CHECK-LABEL: func.func @not_mergeable
// CHECK: peft.lora {{.*}}peft.not_merged = "its base is not a layer on the same input"
func.func @not_mergeable(%x: tensor<1x2xf32>, %base: tensor<1x2xf32>) -> tensor<1x2xf32> {
  %a = peft.weight "a" = dense<1.0> : tensor<1x2xf32>
  %b = peft.weight "b" = dense<1.0> : tensor<2x1xf32>
  // expected-remark @+1 {{adapter 'default' not merged: its base is not a layer on the same input}}
  %z = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32} : (tensor<1x2xf32>, tensor<1x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<1x2xf32>
  return %z : tensor<1x2xf32>
}

// -----

// F32 adapters over f16 and bf16 base weights: merged in fp32, rounded once
// to the base type. W + B·A = [[1.1, 2.2], [3.2, 4.4]], whose nearest f16
// values are 1126, 1126, 1638 and 1126 steps of 2^-10, 2^-9, 2^-9, 2^-8, and
// nearest bf16 values 141 steps of 2^-7, 2^-6, 205 of 2^-6 and 141 of 2^-5.
// CHECK-LABEL: func.func @half_base
// CHECK: peft.weight "w" = dense<{{\[}}[1.099610e+00, 2.199220e+00], [3.199220e+00, 4.398440e+00]]> : tensor<2x2xf16>
// CHECK-NOT: peft.lora
func.func @half_base(%x: tensor<1x2xf16>) -> tensor<1x2xf16> {
  %w = peft.weight "w" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf16>
  %y = peft.linear "fc" %x, %w : (tensor<1x2xf16>, tensor<2x2xf16>) -> tensor<1x2xf16>
  %a = peft.weight "a" = dense<[[0.1, 0.2]]> : tensor<1x2xf32>
  %b = peft.weight "b" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %z = peft.lora "default" %x, %y, %a, %b {scale = 1.0 : f32} : (tensor<1x2xf16>, tensor<1x2xf16>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<1x2xf16>
  return %z : tensor<1x2xf16>
}

// -----

// CHECK-LABEL: func.func @bfloat_base
// CHECK: peft.weight "w" = dense<{{\[}}[1.101560e+00, 2.203130e+00], [3.203130e+00, 4.406250e+00]]> : tensor<2x2xbf16>
func.func @bfloat_base(%x: tensor<1x2xbf16>) -> tensor<1x2xbf16> {
  %w = peft.weight "w" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xbf16>
  %y = peft.linear "fc" %x, %w : (tensor<1x2xbf16>, tensor<2x2xbf16>) -> tensor<1x2xbf16>
  %a = peft.weight "a" = dense<[[0.1, 0.2]]> : tensor<1x2xf32>
  %b = peft.weight "b" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %z = peft.lora "default" %x, %y, %a, %b {scale = 1.0 : f32} : (tensor<1x2xbf16>, tensor<1x2xbf16>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<1x2xbf16>
  return %z : tensor<1x2xbf16>
}

// -----

// Other base types are left alone, with a remark.
// CHECK-LABEL: func.func @double_base
func.func @double_base(%x: tensor<1x2xf64>) -> tensor<1x2xf64> {
  %w = peft.weight "w" = dense<1.0> : tensor<2x2xf64>
  %y = peft.linear "fc" %x, %w : (tensor<1x2xf64>, tensor<2x2xf64>) -> tensor<1x2xf64>
  %a = peft.weight "a" = dense<1.0> : tensor<1x2xf32>
  %b = peft.weight "b" = dense<1.0> : tensor<2x1xf32>
  // expected-remark @+1 {{adapter 'default' not merged into 'fc': merging into a base weight of another type than f32, f16 or bf16}}
  %z = peft.lora "default" %x, %y, %a, %b {scale = 1.0 : f32} : (tensor<1x2xf64>, tensor<1x2xf64>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<1x2xf64>
  return %z : tensor<1x2xf64>
}

// -----

// IA3 on the output scales W's rows and the bias: W = [[1, 2], [3, 4]],
// l = [2, 3] → [[2, 4], [9, 12]], b = [1, 1] → [2, 3].
// CHECK-LABEL: func.func @ia3_output
// CHECK-DAG: %[[W:.*]] = peft.weight "fc.weight" = dense<{{\[}}[2.000000e+00, 4.000000e+00], [9.000000e+00, 1.200000e+01]]> : tensor<2x2xf32>
// CHECK-DAG: %[[B:.*]] = peft.weight "fc.bias" = dense<[2.000000e+00, 3.000000e+00]> : tensor<2xf32>
// CHECK: %[[Y:.*]] = peft.linear "fc" %arg0, %[[W]], %[[B]]
// CHECK-NOT: peft.ia3
// CHECK: return %[[Y]]
func.func @ia3_output(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %b = peft.weight "fc.bias" = dense<1.0> : tensor<2xf32>
  %y = peft.linear "fc" %x, %w, %b : (tensor<3x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %l = peft.weight "l" = dense<[[2.0], [3.0]]> : tensor<2x1xf32>
  %z = peft.ia3 "default" %y, %l : (tensor<3x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// IA3 on a feed-forward input scales W's columns, here of an [in, out]
// weight: W = [[1, 2], [3, 4]] stored [in, out], l = [2, 3] → [[2, 4], [9, 12]];
// the bias stays.
// CHECK-LABEL: func.func @ia3_input
// CHECK: %[[W:.*]] = peft.weight "fc.weight" = dense<{{\[}}[2.000000e+00, 4.000000e+00], [9.000000e+00, 1.200000e+01]]> : tensor<2x2xf32>
// CHECK: peft.linear "fc" %arg0, %[[W]], %{{.*}} {weight_in_out}
// BODY-LABEL: func.func @ia3_input
// BODY-NOT: peft.ia3
// BODY: return
func.func @ia3_input(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %l = peft.weight "l" = dense<[[2.0, 3.0]]> : tensor<1x2xf32>
  %s = peft.ia3 "default" %x, %l : (tensor<3x2xf32>, tensor<1x2xf32>) -> tensor<3x2xf32>
  %w = peft.weight "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %b = peft.weight "fc.bias" = dense<1.0> : tensor<2xf32>
  %y = peft.linear "fc" %s, %w, %b {weight_in_out} : (tensor<3x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %y : tensor<3x2xf32>
}

// -----

// An input scale that another op also reads stays, and says why.
// CHECK-LABEL: func.func @ia3_shared_input
func.func @ia3_shared_input(%x: tensor<3x2xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
  %l = peft.weight "l" = dense<2.0> : tensor<1x2xf32>
  // expected-remark @+1 {{adapter 'default' not merged: it maps neither the output nor the sole input of a layer}}
  %s = peft.ia3 "default" %x, %l : (tensor<3x2xf32>, tensor<1x2xf32>) -> tensor<3x2xf32>
  %w = peft.weight "fc.weight" = dense<1.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %s, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  return %y, %s : tensor<3x2xf32>, tensor<3x2xf32>
}

// -----

// lora_bias merges into the layer's bias, b' = b + s·bias_B; a layer without a
// bias gets one named after its module.
// CHECK-LABEL: func.func @lora_bias
// CHECK: %[[B1:.*]] = peft.weight "fc.bias" = dense<[3.000000e+00, 5.000000e+00]> : tensor<2xf32>
// CHECK: peft.linear "fc" %arg0, %{{.*}}, %[[B1]]
// CHECK: %[[B2:.*]] = peft.weight "proj.bias" = dense<[2.000000e+00, 4.000000e+00]> : tensor<2xf32>
// CHECK: peft.linear "proj" %arg0, %{{.*}}, %[[B2]]
// BODY-LABEL: func.func @lora_bias
// BODY-NOT: peft.lora
// BODY-NOT: "bias_B"
// BODY: return
func.func @lora_bias(%x: tensor<3x2xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
  %w = peft.weight "fc.weight" = dense<1.0> : tensor<2x2xf32>
  %b = peft.weight "fc.bias" = dense<1.0> : tensor<2xf32>
  %y = peft.linear "fc" %x, %w, %b : (tensor<3x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %a = peft.weight "a" = dense<0.0> : tensor<1x2xf32>
  %bb = peft.weight "b" = dense<0.0> : tensor<2x1xf32>
  %bias = peft.weight "bias_B" = dense<[1.0, 2.0]> : tensor<2xf32>
  %z = peft.lora "default" %x, %y, %a, %bb, %bias {scale = 2.0 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %w2 = peft.weight "proj.weight" = dense<1.0> : tensor<2x2xf32>
  %y2 = peft.linear "proj" %x, %w2 : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %z2 = peft.lora "default" %x, %y2, %a, %bb, %bias {scale = 2.0 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %z, %z2 : tensor<3x2xf32>, tensor<3x2xf32>
}

// -----

// A convolution's weight [O, C, kh, kw] takes Σ_r B[o, r]·A[r, c, kh, kw]:
// W' = [[1, 2]], [[3, 4]] + 2·([1], [2])·[1, 1]
// CHECK-LABEL: func.func @merge_conv
// CHECK: %[[W:.*]] = peft.weight "conv.weight" = dense<{{\[\[\[\[}}3.000000e+00, 4.000000e+00]]], {{\[\[\[}}7.000000e+00, 8.000000e+00]]]]> : tensor<2x1x1x2xf32>
// CHECK: %[[Y:.*]] = peft.conv "conv" %{{.*}}, %[[W]]
// CHECK-NOT: peft.lora
// CHECK: return %[[Y]]
func.func @merge_conv(%x: tensor<1x1x3x3xf32>) -> tensor<1x2x3x2xf32> {
  %w = peft.weight "conv.weight" = dense<[[[[1.0, 2.0]]], [[[3.0, 4.0]]]]> : tensor<2x1x1x2xf32>
  %y = peft.conv "conv" %x, %w {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64}
    : (tensor<1x1x3x3xf32>, tensor<2x1x1x2xf32>) -> tensor<1x2x3x2xf32>
  %a = peft.weight "a" = dense<[[[[1.0, 1.0]]]]> : tensor<1x1x1x2xf32>
  %b = peft.weight "b" = dense<[[[[1.0]]], [[[2.0]]]]> : tensor<2x1x1x1xf32>
  %z = peft.lora "default" %x, %y, %a, %b {scale = 2.0 : f32, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>}
    : (tensor<1x1x3x3xf32>, tensor<1x2x3x2xf32>, tensor<1x1x1x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x3x2xf32>
  return %z : tensor<1x2x3x2xf32>
}

// -----

// An embedding table [vocab, dim] takes (B·A)ᵀ: row v gets A[:, v]·Bᵀ.
// E' = [[1, 2], [3, 4], [5, 6]] + [[1, 3], [0, 0], [2, 6]]
// CHECK-LABEL: func.func @merge_embedding
// CHECK: %[[E:.*]] = peft.weight "embed.weight" = dense<{{\[}}[2.000000e+00, 5.000000e+00], [3.000000e+00, 4.000000e+00], [7.000000e+00, 1.200000e+01]]> : tensor<3x2xf32>
// CHECK: peft.embedding "embed" %{{.*}}, %[[E]]
// CHECK-NOT: peft.lora
func.func @merge_embedding(%ids: tensor<4xi64>) -> tensor<4x2xf32> {
  %table = peft.weight "embed.weight" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
  %e = peft.embedding "embed" %ids, %table : (tensor<4xi64>, tensor<3x2xf32>) -> tensor<4x2xf32>
  %a = peft.weight "a" = dense<[[1.0, 0.0, 2.0]]> : tensor<1x3xf32>
  %b = peft.weight "b" = dense<[[1.0], [3.0]]> : tensor<2x1xf32>
  %z = peft.lora "default" %ids, %e, %a, %b {scale = 1.0 : f32} : (tensor<4xi64>, tensor<4x2xf32>, tensor<1x3xf32>, tensor<2x1xf32>) -> tensor<4x2xf32>
  return %z : tensor<4x2xf32>
}

// -----

// DoRA: V = W + 4·B·A = [[3, 4], [0, 1]], row norms [5, 1], magnitudes
// [10, 3]: W' = [[6, 8], [0, 3]]; the bias stays. The layer's old weight
// goes with the adapter that read it.
// CHECK-LABEL: func.func @merge_dora
// CHECK: %[[B:.*]] = peft.weight "fc.bias" = dense<[5.000000e-01, -5.000000e-01]>
// CHECK: %[[W:.*]] = peft.weight "fc.weight" = dense<{{\[}}[6.000000e+00, 8.000000e+00], [0.000000e+00, 3.000000e+00]]> : tensor<2x2xf32>
// CHECK: %[[Y:.*]] = peft.linear "fc" %{{.*}}, %[[W]], %[[B]]
// CHECK-NOT: peft.dora
// CHECK: return %[[Y]]
// Two weights in all: the bias and the new weight.
// BODY-LABEL: func.func @merge_dora
// BODY-COUNT-2: peft.weight
// BODY-NOT: peft.weight
// BODY: return
func.func @merge_dora(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<[[3.0, 0.0], [0.0, 1.0]]> : tensor<2x2xf32>
  %bias = peft.weight "fc.bias" = dense<[0.5, -0.5]> : tensor<2xf32>
  %y = peft.linear "fc" %x, %w, %bias : (tensor<3x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %a = peft.weight "a" = dense<[[0.0, 1.0]]> : tensor<1x2xf32>
  %b = peft.weight "b" = dense<[[1.0], [0.0]]> : tensor<2x1xf32>
  %m = peft.weight "m" = dense<[10.0, 3.0]> : tensor<2xf32>
  %z = peft.dora "default" %x, %y, %w, %a, %b, %m, bias %bias {scale = 4.0 : f32}
    : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<2x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// The same DoRA with the weight stored [in, out]: the norms run down columns.
// CHECK-LABEL: func.func @merge_dora_in_out
// CHECK: peft.weight "fc.weight" = dense<{{\[}}[6.000000e+00, 0.000000e+00], [8.000000e+00, 3.000000e+00]]> : tensor<2x2xf32>
func.func @merge_dora_in_out(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<[[3.0, 0.0], [0.0, 1.0]]> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w {weight_in_out} : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %a = peft.weight "a" = dense<[[0.0, 1.0]]> : tensor<1x2xf32>
  %b = peft.weight "b" = dense<[[1.0], [0.0]]> : tensor<2x1xf32>
  %m = peft.weight "m" = dense<[10.0, 3.0]> : tensor<2xf32>
  %z = peft.dora "default" %x, %y, %w, %a, %b, %m {scale = 4.0 : f32, weight_in_out}
    : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<2x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// DoRA on a convolution: norms over [C, kh, kw], magnitudes [1, O, 1, 1].
// CHECK-LABEL: func.func @merge_dora_conv
// CHECK: peft.weight "conv.weight" = dense<{{\[\[\[\[}}6.000000e+00, 8.000000e+00]]], {{\[\[\[}}0.000000e+00, 3.000000e+00]]]]> : tensor<2x1x1x2xf32>
func.func @merge_dora_conv(%x: tensor<1x1x3x3xf32>) -> tensor<1x2x3x2xf32> {
  %w = peft.weight "conv.weight" = dense<[[[[3.0, 0.0]]], [[[0.0, 1.0]]]]> : tensor<2x1x1x2xf32>
  %y = peft.conv "conv" %x, %w {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64}
    : (tensor<1x1x3x3xf32>, tensor<2x1x1x2xf32>) -> tensor<1x2x3x2xf32>
  %a = peft.weight "a" = dense<[[[[0.0, 1.0]]]]> : tensor<1x1x1x2xf32>
  %b = peft.weight "b" = dense<[[[[1.0]]], [[[0.0]]]]> : tensor<2x1x1x1xf32>
  %m = peft.weight "m" = dense<[[[[10.0]], [[3.0]]]]> : tensor<1x2x1x1xf32>
  %z = peft.dora "default" %x, %y, %w, %a, %b, %m {scale = 4.0 : f32, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>}
    : (tensor<1x1x3x3xf32>, tensor<1x2x3x2xf32>, tensor<2x1x1x2xf32>, tensor<1x1x1x2xf32>, tensor<2x1x1x1xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x3x2xf32>
  return %z : tensor<1x2x3x2xf32>
}

// -----

// LoHa: ΔW = 0.5·([[1], [2]]·[[1, 3]]) ⊙ ([[1], [1]]·[[2, 1]]) = [[1, 1.5], [2, 3]];
// the delta's factors go with it.
// CHECK-LABEL: func.func @merge_loha
// CHECK: %[[W:.*]] = peft.weight "fc.weight" = dense<{{\[}}[1.000000e+00, 1.500000e+00], [2.000000e+00, 3.000000e+00]]> : tensor<2x2xf32>
// CHECK-NEXT: %[[Y:.*]] = peft.linear "fc" %{{.*}}, %[[W]]
// CHECK-NEXT: return %[[Y]]
func.func @merge_loha(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<0.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %w1a = peft.weight "w1a" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %w1b = peft.weight "w1b" = dense<[[1.0, 3.0]]> : tensor<1x2xf32>
  %w2a = peft.weight "w2a" = dense<[[1.0], [1.0]]> : tensor<2x1xf32>
  %w2b = peft.weight "w2b" = dense<[[2.0, 1.0]]> : tensor<1x2xf32>
  %p1 = peft.factor_product %w1a, %w1b : (tensor<2x1xf32>, tensor<1x2xf32>) -> tensor<2x2xf32>
  %p2 = peft.factor_product %w2a, %w2b : (tensor<2x1xf32>, tensor<1x2xf32>) -> tensor<2x2xf32>
  %d = peft.loha_delta %p1, %p2 {scale = 0.5 : f32} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %z = peft.add_delta "default" %x, %y, %d : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// LoKr: ΔW = kron([[1], [2]], [[1, 2], [3, 4]]) = [[1, 2], [3, 4], [2, 4], [6, 8]]
// ([out, in]), added transposed to a weight stored [in, out].
// CHECK-LABEL: func.func @merge_lokr_in_out
// CHECK: peft.weight "fc.weight" = dense<{{\[}}[1.000000e+00, 3.000000e+00, 2.000000e+00, 6.000000e+00], [2.000000e+00, 4.000000e+00, 4.000000e+00, 8.000000e+00]]> : tensor<2x4xf32>
func.func @merge_lokr_in_out(%x: tensor<3x2xf32>) -> tensor<3x4xf32> {
  %w = peft.weight "fc.weight" = dense<0.0> : tensor<2x4xf32>
  %y = peft.linear "fc" %x, %w {weight_in_out} : (tensor<3x2xf32>, tensor<2x4xf32>) -> tensor<3x4xf32>
  %w1 = peft.weight "w1" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %w2 = peft.weight "w2" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %d = peft.lokr_delta %w1, %w2 {scale = 1.0 : f32} : (tensor<2x1xf32>, tensor<2x2xf32>) -> tensor<4x2xf32>
  %z = peft.add_delta "default" %x, %y, %d : (tensor<3x2xf32>, tensor<3x4xf32>, tensor<4x2xf32>) -> tensor<3x4xf32>
  return %z : tensor<3x4xf32>
}

// -----

// LoKr with lokr_w2 in the CP form on a [2, 1, 1, 2] kernel: w2[p, 0, 0, k] =
// Σᵢ Σⱼ t2[i, j, 0, k]·w2a[i, p]·w2b[j, 0]. Σⱼ t2[i, j]·w2b[j] gives [1, 10]
// (i = 0) and [2, 30] (i = 1); then p = 0: 1·[1, 10] + 0·[2, 30] = [1, 10],
// p = 1: 2·[1, 10] + 1·[2, 30] = [4, 50]. ΔW = 0.5·kron([[2]], w2) = w2,
// added to ones; the core and its factors go with it.
// CHECK-LABEL: func.func @merge_lokr_cp
// CHECK: %[[W:.*]] = peft.weight "conv.weight" = dense<{{\[\[\[\[}}2.000000e+00, 1.100000e+01]]], {{\[\[\[}}5.000000e+00, 5.100000e+01]]]]> : tensor<2x1x1x2xf32>
// CHECK-NEXT: %[[Y:.*]] = peft.conv "conv" %{{.*}}, %[[W]]
// CHECK-NEXT: return %[[Y]]
func.func @merge_lokr_cp(%x: tensor<1x1x2x3xf32>) -> tensor<1x2x2x2xf32> {
  %w = peft.weight "conv.weight" = dense<1.0> : tensor<2x1x1x2xf32>
  %y = peft.conv "conv" %x, %w {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64}
    : (tensor<1x1x2x3xf32>, tensor<2x1x1x2xf32>) -> tensor<1x2x2x2xf32>
  %w1 = peft.weight "w1" = dense<[[2.0]]> : tensor<1x1xf32>
  %t2 = peft.weight "t2" = dense<[[[[1.0, 0.0]], [[0.0, 1.0]]], [[[2.0, 0.0]], [[0.0, 3.0]]]]> : tensor<2x2x1x2xf32>
  %w2a = peft.weight "w2a" = dense<[[1.0, 2.0], [0.0, 1.0]]> : tensor<2x2xf32>
  %w2b = peft.weight "w2b" = dense<[[1.0], [10.0]]> : tensor<2x1xf32>
  %w2 = peft.cp_product %t2, %w2a, %w2b : (tensor<2x2x1x2xf32>, tensor<2x2xf32>, tensor<2x1xf32>) -> tensor<2x2xf32>
  %d = peft.lokr_delta %w1, %w2 {scale = 0.5 : f32} : (tensor<1x1xf32>, tensor<2x2xf32>) -> tensor<2x1x1x2xf32>
  %z = peft.add_delta "default" %x, %y, %d {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64}
    : (tensor<1x1x2x3xf32>, tensor<1x2x2x2xf32>, tensor<2x1x1x2xf32>) -> tensor<1x2x2x2xf32>
  return %z : tensor<1x2x2x2xf32>
}

// -----

// IA3 on a convolution's input channels: each channel's scale covers its
// kernel window, W[:, c, ...] *= l[c].
// CHECK-LABEL: func.func @merge_ia3_conv_input
// CHECK: peft.weight "conv.weight" = dense<{{\[\[\[\[}}2.000000e+00, 2.000000e+00]], {{\[\[}}3.000000e+00, 3.000000e+00]]]]> : tensor<1x2x1x2xf32>
// BODY-LABEL: func.func @merge_ia3_conv_input
// BODY-NOT: peft.ia3
// BODY: return
func.func @merge_ia3_conv_input(%x: tensor<1x2x3x3xf32>) -> tensor<1x1x3x2xf32> {
  %l = peft.weight "l" = dense<[[[[2.0]], [[3.0]]]]> : tensor<1x2x1x1xf32>
  %s = peft.ia3 "default" %x, %l : (tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x3x3xf32>
  %w = peft.weight "conv.weight" = dense<1.0> : tensor<1x2x1x2xf32>
  %y = peft.conv "conv" %s, %w {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64}
    : (tensor<1x2x3x3xf32>, tensor<1x2x1x2xf32>) -> tensor<1x1x3x2xf32>
  return %y : tensor<1x1x3x2xf32>
}

// -----

// SSF after a layer without a bias: W' = diag(γ)·W, and the layer gets the
// bias β, named as PyTorch would name it.
// CHECK-LABEL: func.func @ssf_after_linear
// CHECK-DAG: %[[W:.*]] = peft.weight "fc.weight" = dense<{{\[}}[2.000000e+00, 4.000000e+00], [9.000000e+00, 1.200000e+01]]> : tensor<2x2xf32>
// CHECK-DAG: %[[B:.*]] = peft.weight "fc.bias" = dense<[5.000000e-01, -1.000000e+00]> : tensor<2xf32>
// CHECK: %[[Y:.*]] = peft.linear "fc" %arg0, %[[W]], %[[B]]
// CHECK-NOT: peft.ssf
// CHECK: return %[[Y]]
func.func @ssf_after_linear(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %g = peft.weight "fc.ssf_scale" = dense<[2.0, 3.0]> : tensor<2xf32>
  %b = peft.weight "fc.ssf_shift" = dense<[0.5, -1.0]> : tensor<2xf32>
  %z = peft.ssf "default" %y, %g, %b {channel_dim = 1 : i64} : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// SSF after a layer norm folds into its affine: γ' = γ⊙γ_ln, β' = γ⊙β_ln + β.
// CHECK-LABEL: func.func @ssf_after_layer_norm
// CHECK-DAG: %[[G:.*]] = peft.weight "ln.weight" = dense<[2.000000e+00, 6.000000e+00]> : tensor<2xf32>
// CHECK-DAG: %[[B:.*]] = peft.weight "ln.bias" = dense<[1.000000e+00, 4.000000e+00]> : tensor<2xf32>
// CHECK: %[[Y:.*]] = peft.layer_norm "ln" %arg0, %[[G]], %[[B]]
// CHECK-NOT: peft.ssf
// CHECK: return %[[Y]]
func.func @ssf_after_layer_norm(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %lg = peft.weight "ln.weight" = dense<[1.0, 2.0]> : tensor<2xf32>
  %lb = peft.weight "ln.bias" = dense<[0.0, 1.0]> : tensor<2xf32>
  %y = peft.layer_norm "ln" %x, %lg, %lb {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %g = peft.weight "ln.ssf_scale" = dense<[2.0, 3.0]> : tensor<2xf32>
  %b = peft.weight "ln.ssf_shift" = dense<[1.0, 1.0]> : tensor<2xf32>
  %z = peft.ssf "default" %y, %g, %b {channel_dim = 1 : i64} : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %z : tensor<3x2xf32>
}

// -----

// A linear adapter before a layer: with A = I + s·up·down = [[1.5, 0], [1, 1]]
// and c = s·(up·b1 + b2) = [1, 2.5], W' = W·A and b' = W·c + b.
// CHECK-LABEL: func.func @linear_adapter_before
// CHECK-DAG: %[[W:.*]] = peft.weight "fc.weight" = dense<{{\[}}[3.500000e+00, 2.000000e+00], [8.500000e+00, 4.000000e+00]]> : tensor<2x2xf32>
// CHECK-DAG: %[[B:.*]] = peft.weight "fc.bias" = dense<[7.000000e+00, 1.400000e+01]> : tensor<2xf32>
// CHECK: %[[Y:.*]] = peft.linear "fc" %arg0, %[[W]], %[[B]]
// CHECK: return %[[Y]]
// BODY-LABEL: func.func @linear_adapter_before
// BODY-NOT: peft.bottleneck
// BODY: return
func.func @linear_adapter_before(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %down = peft.weight "down" = dense<[[1.0, 0.0]]> : tensor<1x2xf32>
  %up = peft.weight "up" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %b1 = peft.weight "b1" = dense<[2.0]> : tensor<1xf32>
  %b2 = peft.weight "b2" = dense<[0.0, 1.0]> : tensor<2xf32>
  %a = peft.bottleneck "default" %x, %down, %up down_bias %b1 up_bias %b2 {activation = "identity", before_layer, groups = 1 : i64, scale = 0.5 : f32} : (tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>, tensor<1xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %w = peft.weight "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %b = peft.weight "fc.bias" = dense<[1.0, 1.0]> : tensor<2xf32>
  %y = peft.linear "fc" %a, %w, %b : (tensor<3x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %y : tensor<3x2xf32>
}

// -----

// The same adapter after the layer: W' = A·W, b' = A·b + c.
// CHECK-LABEL: func.func @linear_adapter_after
// CHECK-DAG: %[[W:.*]] = peft.weight "fc.weight" = dense<{{\[}}[1.500000e+00, 3.000000e+00], [4.000000e+00, 6.000000e+00]]> : tensor<2x2xf32>
// CHECK-DAG: %[[B:.*]] = peft.weight "fc.bias" = dense<[2.500000e+00, 4.500000e+00]> : tensor<2xf32>
// CHECK: %[[Y:.*]] = peft.linear "fc" %arg0, %[[W]], %[[B]]
// CHECK-NOT: peft.bottleneck
// CHECK: return %[[Y]]
func.func @linear_adapter_after(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %b = peft.weight "fc.bias" = dense<[1.0, 1.0]> : tensor<2xf32>
  %y = peft.linear "fc" %x, %w, %b : (tensor<3x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %down = peft.weight "down" = dense<[[1.0, 0.0]]> : tensor<1x2xf32>
  %up = peft.weight "up" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %b1 = peft.weight "b1" = dense<[2.0]> : tensor<1xf32>
  %b2 = peft.weight "b2" = dense<[0.0, 1.0]> : tensor<2xf32>
  %a = peft.bottleneck "default" %y, %down, %up down_bias %b1 up_bias %b2 {activation = "identity", groups = 1 : i64, scale = 0.5 : f32} : (tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>, tensor<1xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %a : tensor<3x2xf32>
}

// -----

// RepAdapter's grouped up-projection [d, h / groups] expands block-diagonally:
// with h = 2, groups = 2 and up = [[1], [2]], hidden unit 0 feeds output 0
// and unit 1 output 1, so A = I + diag(1, 2)·down = [[2, 0], [0, 3]] for
// down = I.
// CHECK-LABEL: func.func @grouped_linear_adapter
// CHECK: peft.weight "fc.weight" = dense<{{\[}}[2.000000e+00, 6.000000e+00], [6.000000e+00, 1.200000e+01]]> : tensor<2x2xf32>
func.func @grouped_linear_adapter(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %down = peft.weight "down" = dense<[[[1.0], [0.0]], [[0.0], [1.0]]]> : tensor<2x2x1xf32>
  %up = peft.weight "up" = dense<[[[1.0]], [[2.0]]]> : tensor<2x1x1xf32>
  %a = peft.bottleneck "default" %x, %down, %up {activation = "identity", before_layer, groups = 2 : i64, scale = 1.0 : f32} : (tensor<3x2xf32>, tensor<2x2x1xf32>, tensor<2x1x1xf32>) -> tensor<3x2xf32>
  %w = peft.weight "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %y = peft.linear "fc" %a, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  return %y : tensor<3x2xf32>
}

// -----

// A bottleneck with an activation cannot merge.
// CHECK-LABEL: func.func @bottleneck_stays
// CHECK: peft.bottleneck "default" {{.*}} {activation = "relu", {{.*}} peft.not_merged = "its activation (relu) is not linear, so it runs unmerged"
func.func @bottleneck_stays(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %down = peft.weight "down" = dense<[[1.0, 0.0]]> : tensor<1x2xf32>
  %up = peft.weight "up" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  // expected-remark @+1 {{adapter 'default' not merged: its activation (relu) is not linear, so it runs unmerged}}
  %a = peft.bottleneck "default" %y, %down, %up {activation = "relu", groups = 1 : i64, scale = 1.0 : f32} : (tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  return %a : tensor<3x2xf32>
}

// -----

// A head shift has no weights: it stays, and says why.
// CHECK-LABEL: func.func @head_shift_stays
// CHECK: peft.head_shift "default" {{.*}} peft.not_merged = "a head shift moves values across frames; it has no weights to merge into"
func.func @head_shift_stays(%x: tensor<8x4xf32>) -> tensor<8x4xf32> {
  %w = peft.weight "key.weight" = dense<1.0> : tensor<4x4xf32>
  %y = peft.linear "key" %x, %w : (tensor<8x4xf32>, tensor<4x4xf32>) -> tensor<8x4xf32>
  // expected-remark @+1 {{adapter 'default' not merged: a head shift moves values across frames; it has no weights to merge into}}
  %s = peft.head_shift "default" %y {fold = 1 : i64, frames = 4 : i64, heads = 2 : i64} : (tensor<8x4xf32>) -> tensor<8x4xf32>
  return %s : tensor<8x4xf32>
}
