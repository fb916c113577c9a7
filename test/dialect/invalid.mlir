// RUN: peft-opt %s -split-input-file -verify-diagnostics

func.func @weight_without_source() -> tensor<2xf32> {
  // expected-error @+1 {{weight 'w' needs exactly one of a file or a value}}
  %w = "peft.weight"() {name = "w"} : () -> tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

func.func @weight_with_both_sources() -> tensor<2xf32> {
  // expected-error @+1 {{weight 'w' needs exactly one of a file or a value}}
  %w = "peft.weight"() {name = "w", file = "m.onnx", value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

func.func @weight_value_of_other_type() -> tensor<2xf32> {
  // expected-error @+1 {{weight 'w' holds a value of type 'tensor<3xf32>' but produces 'tensor<2xf32>'}}
  %w = "peft.weight"() {name = "w", value = dense<1.0> : tensor<3xf32>} : () -> tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

func.func @dynamic_weight() -> tensor<?xf32> {
  // expected-error @+1 {{weight 'w' must have a static shape}}
  %w = peft.weight "w" from "m.onnx" : tensor<?xf32>
  return %w : tensor<?xf32>
}

// -----

func.func @linear_input_mismatch(%x: tensor<2x5xf32>, %w: tensor<3x4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'fc': input [2, 5] does not match the weight [out, in] [3, 4]}}
  %y = peft.linear "fc" %x, %w : (tensor<2x5xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @linear_in_out_layout(%x: tensor<2x4xf32>, %w: tensor<3x4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'fc': input [2, 4] does not match the weight [in, out] [3, 4]}}
  %y = peft.linear "fc" %x, %w {weight_in_out} : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @linear_result_mismatch(%x: tensor<2x4xf32>, %w: tensor<3x4xf32>) -> tensor<2x7xf32> {
  // expected-error @+1 {{'fc': result [2, 7] does not match the weight [out, in] [3, 4]}}
  %y = peft.linear "fc" %x, %w : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x7xf32>
  return %y : tensor<2x7xf32>
}

// -----

func.func @linear_bias_mismatch(%x: tensor<2x4xf32>, %w: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'fc': bias [4] does not match weight [out, in] [3, 4]}}
  %y = peft.linear "fc" %x, %w, %b : (tensor<2x4xf32>, tensor<3x4xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @linear_batch_mismatch(%x: tensor<2x4xf32>, %w: tensor<3x4xf32>) -> tensor<5x3xf32> {
  // expected-error @+1 {{'fc': input [2, 4] and result [5, 3] differ in batch dimension 0}}
  %y = peft.linear "fc" %x, %w : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<5x3xf32>
  return %y : tensor<5x3xf32>
}

// -----

func.func @linear_weight_not_matrix(%x: tensor<2x4xf32>, %w: tensor<4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'fc': weight must be [out, in], got [4]}}
  %y = peft.linear "fc" %x, %w : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

func.func @lora_rank_mismatch(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %a: tensor<2x4xf32>, %b: tensor<3x5xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{adapter 'default': lora_A [2, 4] and lora_B [3, 5] disagree on the rank}}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x5xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @lora_input_mismatch(%x: tensor<2x6xf32>, %base: tensor<2x3xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{adapter 'default': lora_A [2, 4] does not match the input [2, 6]}}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32} : (tensor<2x6xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @lora_output_mismatch(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %a: tensor<2x4xf32>, %b: tensor<7x2xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{adapter 'default': lora_B [7, 2] does not match the base output [2, 3]}}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<7x2xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @lora_not_matrices(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %a: tensor<8xf32>, %b: tensor<3x2xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{adapter 'default': lora_A [8] and lora_B [3, 2] must have a rank dimension}}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<8xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @conv_channels(%x: tensor<1x3x8x8xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32> {
  // expected-error @+1 {{'peft.conv' op 'c': input [1, 3, 8, 8] has 3 channels but weight [4, 2, 3, 3] with groups = 1 takes 2}}
  %y = peft.conv "c" %x, %w {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32>
  return %y : tensor<1x4x6x6xf32>
}

// -----

func.func @conv_groups(%x: tensor<1x4x8x8xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<1x3x6x6xf32> {
  // expected-error @+1 {{'peft.conv' op 'c': weight [3, 2, 3, 3] has 3 output channels, not a multiple of groups = 2}}
  %y = peft.conv "c" %x, %w {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 2 : i64} : (tensor<1x4x8x8xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x6x6xf32>
  return %y : tensor<1x3x6x6xf32>
}

// -----

func.func @conv_result_size(%x: tensor<1x2x8x8xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<1x4x8x8xf32> {
  // expected-error @+1 {{'peft.conv' op 'c': result [1, 4, 8, 8] should be [1, 4, 4, 4] for input [1, 2, 8, 8]}}
  %y = peft.conv "c" %x, %w {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 0, 0>, groups = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x8x8xf32>
  return %y : tensor<1x4x8x8xf32>
}

// -----

func.func @conv_attributes(%x: tensor<1x2x8x8xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32> {
  // expected-error @+1 {{'peft.conv' op 'c': strides and dilations need 2 values and pads 4}}
  %y = peft.conv "c" %x, %w {strides = array<i64: 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32>
  return %y : tensor<1x4x6x6xf32>
}

// -----

func.func @embedding_float_ids(%ids: tensor<4xf32>, %t: tensor<10x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{'peft.embedding' op 'e': indices must be integers, got 'f32'}}
  %e = peft.embedding "e" %ids, %t : (tensor<4xf32>, tensor<10x8xf32>) -> tensor<4x8xf32>
  return %e : tensor<4x8xf32>
}

// -----

func.func @embedding_result(%ids: tensor<4xi64>, %t: tensor<10x8xf32>) -> tensor<4x10xf32> {
  // expected-error @+1 {{'peft.embedding' op 'e': result [4, 10] should be [4, 8] of the weight's element type}}
  %e = peft.embedding "e" %ids, %t : (tensor<4xi64>, tensor<10x8xf32>) -> tensor<4x10xf32>
  return %e : tensor<4x10xf32>
}

// -----

func.func @ia3_scale_size(%x: tensor<2x32xf32>, %l: tensor<1x16xf32>) -> tensor<2x32xf32> {
  // expected-error @+1 {{'peft.ia3' op adapter 'default': scale [1, 16] must hold one value per channel (the last dimension; dimension 1 for a [1, C, 1...] scale) of input [2, 32]}}
  %y = peft.ia3 "default" %x, %l : (tensor<2x32xf32>, tensor<1x16xf32>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}

// -----

func.func @lora_bias_size(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>, %bias: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'peft.lora' op adapter 'default': lora_bias [4] does not match lora_B [3, 2]}}
  %y = peft.lora "default" %x, %base, %a, %b, %bias {scale = 1.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @conv_lora_b(%x: tensor<1x3x8x8xf32>, %base: tensor<1x6x8x8xf32>, %a: tensor<2x3x3x3xf32>, %b: tensor<6x2x3x3xf32>) -> tensor<1x6x8x8xf32> {
  // expected-error @+1 {{'peft.lora' op adapter 'default': lora_B [6, 2, 3, 3] must be [out, r, 1...] to follow lora_A [2, 3, 3, 3]}}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>}
    : (tensor<1x3x8x8xf32>, tensor<1x6x8x8xf32>, tensor<2x3x3x3xf32>, tensor<6x2x3x3xf32>) -> tensor<1x6x8x8xf32>
  return %y : tensor<1x6x8x8xf32>
}

// -----

func.func @conv_lora_strides(%x: tensor<1x3x8x8xf32>, %base: tensor<1x6x8x8xf32>, %a: tensor<2x3x3x3xf32>, %b: tensor<6x2x1x1xf32>) -> tensor<1x6x8x8xf32> {
  // expected-error @+1 {{'peft.lora' op adapter 'default': a convolution adapter needs 2 strides and 4 pads}}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32}
    : (tensor<1x3x8x8xf32>, tensor<1x6x8x8xf32>, tensor<2x3x3x3xf32>, tensor<6x2x1x1xf32>) -> tensor<1x6x8x8xf32>
  return %y : tensor<1x6x8x8xf32>
}

// -----

func.func @conv_lora_channels(%x: tensor<1x4x8x8xf32>, %base: tensor<1x6x8x8xf32>, %a: tensor<2x3x3x3xf32>, %b: tensor<6x2x1x1xf32>) -> tensor<1x6x8x8xf32> {
  // expected-error @+1 {{'peft.lora' op adapter 'default': lora_A [2, 3, 3, 3] does not match the input [1, 4, 8, 8]}}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>}
    : (tensor<1x4x8x8xf32>, tensor<1x6x8x8xf32>, tensor<2x3x3x3xf32>, tensor<6x2x1x1xf32>) -> tensor<1x6x8x8xf32>
  return %y : tensor<1x6x8x8xf32>
}

// -----

func.func @linear_lora_strides(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'peft.lora' op adapter 'default': strides and pads belong to convolution adapters}}
  %y = peft.lora "default" %x, %base, %a, %b {scale = 1.0 : f32, strides = array<i64: 1>, pads = array<i64: 0, 0>}
    : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @dora_weight(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %w: tensor<3x5xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>, %m: tensor<3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'peft.dora' op adapter 'default': weight [3, 5] does not match lora_A [2, 4] and lora_B [3, 2]}}
  %y = peft.dora "default" %x, %base, %w, %a, %b, %m {scale = 1.0 : f32}
    : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<3x5xf32>, tensor<2x4xf32>, tensor<3x2xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @dora_magnitude(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %w: tensor<3x4xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>, %m: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'peft.dora' op adapter 'default': magnitude [4] must hold one value per output of lora_B [3, 2]}}
  %y = peft.dora "default" %x, %base, %w, %a, %b, %m {scale = 1.0 : f32}
    : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<3x4xf32>, tensor<2x4xf32>, tensor<3x2xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

func.func @factor_product(%a: tensor<4x2xf32>, %b: tensor<3x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{'peft.factor_product' op factors [4, 2] and [3, 8] do not multiply to [4, 8]}}
  %p = peft.factor_product %a, %b : (tensor<4x2xf32>, tensor<3x8xf32>) -> tensor<4x8xf32>
  return %p : tensor<4x8xf32>
}

// -----

func.func @cp_product_ranks(%t: tensor<2x3x3x3xf32>, %a: tensor<2x8xf32>, %b: tensor<2x4xf32>) -> tensor<8x36xf32> {
  // expected-error @+1 {{'peft.cp_product' op core [2, 3, 3, 3] and factors [2, 8] and [2, 4] are not [r1, r2, kernel...], [r1, p] and [r2, q]}}
  %p = peft.cp_product %t, %a, %b : (tensor<2x3x3x3xf32>, tensor<2x8xf32>, tensor<2x4xf32>) -> tensor<8x36xf32>
  return %p : tensor<8x36xf32>
}

// -----

func.func @cp_product_no_kernel(%t: tensor<2x2xf32>, %a: tensor<2x8xf32>, %b: tensor<2x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'peft.cp_product' op core [2, 2] and factors [2, 8] and [2, 4] are not [r1, r2, kernel...], [r1, p] and [r2, q]}}
  %p = peft.cp_product %t, %a, %b : (tensor<2x2xf32>, tensor<2x8xf32>, tensor<2x4xf32>) -> tensor<8x4xf32>
  return %p : tensor<8x4xf32>
}

// -----

func.func @cp_product_result(%t: tensor<2x2x3x3xf32>, %a: tensor<2x8xf32>, %b: tensor<2x4xf32>) -> tensor<4x72xf32> {
  // expected-error @+1 {{'peft.cp_product' op core [2, 2, 3, 3] and factors [2, 8] and [2, 4] make [8, 36], not [4, 72]}}
  %p = peft.cp_product %t, %a, %b : (tensor<2x2x3x3xf32>, tensor<2x8xf32>, tensor<2x4xf32>) -> tensor<4x72xf32>
  return %p : tensor<4x72xf32>
}

// -----

func.func @loha_delta(%p1: tensor<4x8xf32>, %p2: tensor<4x6xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{'peft.loha_delta' op products [4, 8] and [4, 6] must be equal matrices [out, in] that fill the result [4, 8]}}
  %d = peft.loha_delta %p1, %p2 {scale = 1.0 : f32} : (tensor<4x8xf32>, tensor<4x6xf32>) -> tensor<4x8xf32>
  return %d : tensor<4x8xf32>
}

// -----

func.func @lokr_delta(%w1: tensor<2x2xf32>, %w2: tensor<2x4xf32>) -> tensor<8x4xf32> {
  // expected-error @+1 {{'peft.lokr_delta' op kron([2, 2], [2, 4]) does not fill the result [8, 4]}}
  %d = peft.lokr_delta %w1, %w2 {scale = 1.0 : f32} : (tensor<2x2xf32>, tensor<2x4xf32>) -> tensor<8x4xf32>
  return %d : tensor<8x4xf32>
}

// -----

func.func @add_delta(%x: tensor<2x8xf32>, %base: tensor<2x4xf32>, %d: tensor<4x6xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'peft.add_delta' op adapter 'default': delta [4, 6] does not map the input [2, 8] to the base [2, 4]}}
  %y = peft.add_delta "default" %x, %base, %d : (tensor<2x8xf32>, tensor<2x4xf32>, tensor<4x6xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

func.func @add_delta_conv(%x: tensor<1x4x6x6xf32>, %base: tensor<1x6x6x6xf32>, %d: tensor<6x4x3x3xf32>) -> tensor<1x6x6x6xf32> {
  // expected-error @+1 {{'peft.add_delta' op adapter 'default': a convolution delta needs 2 strides and dilations, 4 pads and groups}}
  %y = peft.add_delta "default" %x, %base, %d {strides = array<i64: 1, 1>} : (tensor<1x4x6x6xf32>, tensor<1x6x6x6xf32>, tensor<6x4x3x3xf32>) -> tensor<1x6x6x6xf32>
  return %y : tensor<1x6x6x6xf32>
}

// -----

func.func @ia3_conv_channels(%x: tensor<1x6x4x4xf32>, %l: tensor<1x4x1x1xf32>) -> tensor<1x6x4x4xf32> {
  // expected-error @+1 {{'peft.ia3' op adapter 'default': scale [1, 4, 1, 1] must hold one value per channel (the last dimension; dimension 1 for a [1, C, 1...] scale) of input [1, 6, 4, 4]}}
  %y = peft.ia3 "default" %x, %l : (tensor<1x6x4x4xf32>, tensor<1x4x1x1xf32>) -> tensor<1x6x4x4xf32>
  return %y : tensor<1x6x4x4xf32>
}

// -----

func.func @layer_norm_weight_shape(%x: tensor<2x8x4xf32>, %g: tensor<8x4xf32>) -> tensor<2x8x4xf32> {
  // expected-error @+1 {{'peft.layer_norm' op 'ln': weight [8, 4] must have the shape of the normalized dimensions 2.. of input [2, 8, 4]}}
  %y = peft.layer_norm "ln" %x, %g {axis = 2 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x8x4xf32>, tensor<8x4xf32>) -> tensor<2x8x4xf32>
  return %y : tensor<2x8x4xf32>
}

// -----

func.func @ssf_channels(%x: tensor<2x6x4x4xf32>, %g: tensor<4xf32>) -> tensor<2x6x4x4xf32> {
  // expected-error @+1 {{'peft.ssf' op adapter 'default': scale [4] must be [C] for the 6 channels (dimension 1) of input [2, 6, 4, 4]}}
  %y = peft.ssf "default" %x, %g, %g {channel_dim = 1 : i64} : (tensor<2x6x4x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x6x4x4xf32>
  return %y : tensor<2x6x4x4xf32>
}

// -----

func.func @bottleneck_groups(%x: tensor<2x32xf32>, %d: tensor<8x32xf32>, %u: tensor<32x8xf32>) -> tensor<2x32xf32> {
  // expected-error @+1 {{'peft.bottleneck' op adapter 'default': up [32, 8] must be [32, 8 / 2] for down [8, 32] and 2 groups}}
  %y = peft.bottleneck "default" %x, %d, %u {activation = "relu", groups = 2 : i64, scale = 1.0 : f32} : (tensor<2x32xf32>, tensor<8x32xf32>, tensor<32x8xf32>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}

// -----

func.func @bottleneck_activation(%x: tensor<2x32xf32>, %d: tensor<8x32xf32>, %u: tensor<32x8xf32>) -> tensor<2x32xf32> {
  // expected-error @+1 {{'peft.bottleneck' op adapter 'default': activation 'swish' is not one of identity, relu, gelu, silu, tanh}}
  %y = peft.bottleneck "default" %x, %d, %u {activation = "swish", groups = 1 : i64, scale = 1.0 : f32} : (tensor<2x32xf32>, tensor<8x32xf32>, tensor<32x8xf32>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}

// -----

func.func @head_shift_heads(%k: tensor<8x17x30xf32>) -> tensor<8x17x30xf32> {
  // expected-error @+1 {{'peft.head_shift' op adapter 'default': input [8, 17, 30] must be [frames·clips, ..., heads·d] with its channels static and divisible by the 4 heads}}
  %y = peft.head_shift "default" %k {fold = 1 : i64, frames = 4 : i64, heads = 4 : i64} : (tensor<8x17x30xf32>) -> tensor<8x17x30xf32>
  return %y : tensor<8x17x30xf32>
}

// -----

func.func @head_shift_partial_clip(%k: tensor<6x17x32xf32>) -> tensor<6x17x32xf32> {
  // expected-error @+1 {{'peft.head_shift' op adapter 'default': input [6, 17, 32] has 6 rows, not whole clips of 4 frames}}
  %y = peft.head_shift "default" %k {fold = 1 : i64, frames = 4 : i64, heads = 4 : i64} : (tensor<6x17x32xf32>) -> tensor<6x17x32xf32>
  return %y : tensor<6x17x32xf32>
}

// -----

func.func @head_shift_fold(%k: tensor<8x17x32xf32>) -> tensor<8x17x32xf32> {
  // expected-error @+1 {{'peft.head_shift' op adapter 'default': needs frames >= 1 and 1 <= fold <= heads / 2, got frames 4, heads 4, fold 3}}
  %y = peft.head_shift "default" %k {fold = 3 : i64, frames = 4 : i64, heads = 4 : i64} : (tensor<8x17x32xf32>) -> tensor<8x17x32xf32>
  return %y : tensor<8x17x32xf32>
}

// -----

func.func @multi_lora_factors(%x: tensor<4x32xf32>, %base: tensor<4x16xf32>, %index: tensor<4xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x8x16xf32>, %s: tensor<2xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'peft.multi_lora' op lora_A [2, 32, 4] and lora_B [2, 8, 16] must be [slots, in, rank] and [slots, rank, out]}}
  %y = peft.multi_lora ["a", "b"] %x, %base, %index, %a, %b, %s : (tensor<4x32xf32>, tensor<4x16xf32>, tensor<4xi64>, tensor<2x32x4xf32>, tensor<2x8x16xf32>, tensor<2xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

func.func @multi_lora_index(%x: tensor<4x32xf32>, %base: tensor<4x16xf32>, %index: tensor<3xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'peft.multi_lora' op index [3] must hold an integer per element of the batch of input [4, 32]}}
  %y = peft.multi_lora ["a", "b"] %x, %base, %index, %a, %b, %s : (tensor<4x32xf32>, tensor<4x16xf32>, tensor<3xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

func.func @multi_lora_names(%x: tensor<4x32xf32>, %base: tensor<4x16xf32>, %index: tensor<4xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'peft.multi_lora' op 1 adapter names for 2 slots}}
  %y = peft.multi_lora ["a"] %x, %base, %index, %a, %b, %s : (tensor<4x32xf32>, tensor<4x16xf32>, tensor<4xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

func.func @multi_lora_scales(%x: tensor<4x32xf32>, %base: tensor<4x16xf32>, %index: tensor<4xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<3xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'peft.multi_lora' op scales [3] must hold an f32 per slot (2)}}
  %y = peft.multi_lora ["a", "b"] %x, %base, %index, %a, %b, %s : (tensor<4x32xf32>, tensor<4x16xf32>, tensor<4xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<3xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

func.func @multi_ia3_features(%x: tensor<4x16xf32>, %index: tensor<4xi64>, %l: tensor<2x8xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'peft.multi_ia3' op scales [2, 8] must be f32 [slots, features] of input [4, 16]}}
  %y = peft.multi_ia3 ["a", "b"] %x, %index, %l : (tensor<4x16xf32>, tensor<4xi64>, tensor<2x8xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

func.func @multi_ia3_names(%x: tensor<4x16xf32>, %index: tensor<4xi64>, %l: tensor<2x16xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'peft.multi_ia3' op 3 adapter names for 2 slots}}
  %y = peft.multi_ia3 ["a", "b", "c"] %x, %index, %l : (tensor<4x16xf32>, tensor<4xi64>, tensor<2x16xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

func.func @multi_ia3_index(%x: tensor<4x16xf32>, %index: tensor<3xi64>, %l: tensor<2x16xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'peft.multi_ia3' op index [3] must hold an integer per element of the batch of input [4, 16]}}
  %y = peft.multi_ia3 ["a", "b"] %x, %index, %l : (tensor<4x16xf32>, tensor<3xi64>, tensor<2x16xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

func.func @multi_lora_ranks(%x: tensor<4x32xf32>, %base: tensor<4x16xf32>, %index: tensor<4xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>, %r: tensor<3xf32>) -> tensor<4x16xf32> {
  // expected-error @+1 {{'peft.multi_lora' op ranks [3] must hold an f32 per slot (2)}}
  %y = peft.multi_lora ["a", "b"] %x, %base, %index, %a, %b, %s ranks %r : (tensor<4x32xf32>, tensor<4x16xf32>, tensor<4xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>, tensor<3xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}
