// RUN: peft-opt %s --convert-peft-to-linalg --split-input-file --verify-diagnostics | FileCheck %s
// RUN: peft-opt %s --convert-peft-to-linalg --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=BODY

// A CHECK-NOT only covers the text between its neighbouring matches, so what
// a whole function must not contain is checked under the BODY prefix, with
// nothing between the function's BODY-LABEL, the BODY-NOTs and its return.

// CHECK-DAG: #[[LHS:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[RHS_T:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG: #[[COL:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.*]]: tensor<?x8x4xf32>)
// CHECK-DAG: %[[W:.*]] = arith.constant dense<1.000000e+00> : tensor<3x4xf32>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<5.000000e-01> : tensor<3xf32>
// Batch dimensions flatten into the GEMM's rows.
// CHECK: %[[ROWS:.*]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<?x8x4xf32> into tensor<?x4xf32>
// The GEMM starts from the bias on every row: it needs no pass of its own.
// CHECK: %[[BIAS_ROWS:.*]] = linalg.generic {indexing_maps = [#[[COL]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%[[B]] : tensor<3xf32>)
// An [out, in] weight is read transposed, without copying it.
// CHECK: %[[YB:.*]] = linalg.matmul indexing_maps = [#[[LHS]], #[[RHS_T]], #[[OUT]]] ins(%[[ROWS]], %[[W]] : tensor<?x4xf32>, tensor<3x4xf32>) outs(%[[BIAS_ROWS]] : tensor<?x3xf32>)
// CHECK: %[[BATCH:.*]] = tensor.dim %[[X]], %c0
// CHECK: tensor.expand_shape %[[YB]] {{\[}}[0, 1], [2]] output_shape [%[[BATCH]], 8, 3] : tensor<?x3xf32> into tensor<?x8x3xf32>
func.func @linear(%x: tensor<?x8x4xf32>) -> tensor<?x8x3xf32> {
  %w = peft.weight "w" = dense<1.0> : tensor<3x4xf32>
  %b = peft.weight "b" = dense<0.5> : tensor<3xf32>
  %y = peft.linear "fc" %x, %w, %b : (tensor<?x8x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<?x8x3xf32>
  return %y : tensor<?x8x3xf32>
}

// -----

// An [in, out] weight is a plain matmul (its maps are the default ones).
// CHECK-LABEL: func.func @linear_in_out_without_bias
// CHECK: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[ACC:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%{{.*}} : tensor<2x3xf32>)
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<2x4xf32>, tensor<4x3xf32>) outs(%[[ACC]] : tensor<2x3xf32>)
// BODY-LABEL: func.func @linear_in_out_without_bias
// BODY-NOT: tensor.expand_shape
// BODY: return
func.func @linear_in_out_without_bias(%x: tensor<2x4xf32>, %w: tensor<4x3xf32>) -> tensor<2x3xf32> {
  %y = peft.linear "c_fc" %x, %w {weight_in_out} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

// base + s·(x·Aᵀ)·Bᵀ: the scale applies to the thin [rows, r] product, and
// the second GEMM accumulates into the base output.
// CHECK-LABEL: func.func @lora
// CHECK-SAME: (%[[X:.*]]: tensor<5x4xf32>, %[[BASE:.*]]: tensor<5x3xf32>, %[[A:.*]]: tensor<2x4xf32>, %[[B:.*]]: tensor<3x2xf32>)
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 2.000000e+00 : f32
// CHECK: %[[DOWN:.*]] = linalg.matmul {{.*}} ins(%[[X]], %[[A]] : tensor<5x4xf32>, tensor<2x4xf32>) outs(%{{.*}} : tensor<5x2xf32>)
// CHECK: %[[SCALED:.*]] = linalg.generic {{.*}} ins(%[[DOWN]] : tensor<5x2xf32>) outs(%{{.*}} : tensor<5x2xf32>)
// CHECK:   arith.mulf %{{.*}}, %[[SCALE]] : f32
// CHECK: %[[UP:.*]] = linalg.matmul {{.*}} ins(%[[SCALED]], %[[B]] : tensor<5x2xf32>, tensor<3x2xf32>) outs(%[[BASE]] : tensor<5x3xf32>)
// CHECK: return %[[UP]]
func.func @lora(%x: tensor<5x4xf32>, %base: tensor<5x3xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>) -> tensor<5x3xf32> {
  %y = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32} : (tensor<5x4xf32>, tensor<5x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<5x3xf32>
  return %y : tensor<5x3xf32>
}

// -----

func.func @file_weight() -> tensor<2xf32> {
  // expected-error @+1 {{weight 'w' still names a file; run peft-externalize-weights first}}
  %w = peft.weight "w" from "m.safetensors" : tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

// A grouped, strided, padded convolution: pad, split the channels into
// [groups, channels / groups], one generic whose input map walks the window,
// then merge the groups back and add the bias per channel.
// CHECK-DAG: #[[IN:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d5, d3 * 2 + d6, d4 * 2 + d7)>
// CHECK-DAG: #[[WMAP:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d1, d2, d5, d6, d7)>
// CHECK-DAG: #[[OUT:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4)>
// CHECK-LABEL: func.func @conv
// CHECK: %[[PADDED:.*]] = tensor.pad %{{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: %[[X:.*]] = tensor.expand_shape %[[PADDED]] {{\[}}[0], [1, 2], [3], [4]] output_shape [%{{.*}}, 2, 2, 11, 11] : tensor<?x4x11x11xf32> into tensor<?x2x2x11x11xf32>
// CHECK: %[[W:.*]] = tensor.expand_shape %{{.*}} {{\[}}[0, 1], [2], [3], [4]] output_shape [2, 3, 2, 3, 3] : tensor<6x2x3x3xf32> into tensor<2x3x2x3x3xf32>
// CHECK: %[[GROUPED:.*]] = linalg.generic {indexing_maps = [#[[IN]], #[[WMAP]], #[[OUT]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%[[X]], %[[W]] : tensor<?x2x2x11x11xf32>, tensor<2x3x2x3x3xf32>) outs(%{{.*}} : tensor<?x2x3x5x5xf32>)
// CHECK: %[[MERGED:.*]] = tensor.collapse_shape %[[GROUPED]] {{\[}}[0], [1, 2], [3], [4]] : tensor<?x2x3x5x5xf32> into tensor<?x6x5x5xf32>
// CHECK: linalg.generic {{.*}} ins(%[[MERGED]], %{{.*}} : tensor<?x6x5x5xf32>, tensor<6xf32>)
func.func @conv(%x: tensor<?x4x9x9xf32>, %w: tensor<6x2x3x3xf32>, %b: tensor<6xf32>) -> tensor<?x6x5x5xf32> {
  %y = peft.conv "stem" %x, %w, %b {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 2 : i64} : (tensor<?x4x9x9xf32>, tensor<6x2x3x3xf32>, tensor<6xf32>) -> tensor<?x6x5x5xf32>
  return %y : tensor<?x6x5x5xf32>
}

// -----

// An embedding extracts table rows, a negative id counting from the end.
// CHECK-LABEL: func.func @embedding
// CHECK-SAME: (%[[IDS:.*]]: tensor<?x?xi64>, %[[TABLE:.*]]: tensor<100x8xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[IDS]] : tensor<?x?xi64>) outs(%{{.*}} : tensor<?x?x8xf32>)
// CHECK:   arith.cmpi slt
// CHECK:   arith.select
// CHECK:   %[[COLUMN:.*]] = linalg.index 2 : index
// CHECK:   tensor.extract %[[TABLE]][%{{.*}}, %[[COLUMN]]] : tensor<100x8xf32>
func.func @embedding(%ids: tensor<?x?xi64>, %t: tensor<100x8xf32>) -> tensor<?x?x8xf32> {
  %e = peft.embedding "embed_tokens" %ids, %t : (tensor<?x?xi64>, tensor<100x8xf32>) -> tensor<?x?x8xf32>
  return %e : tensor<?x?x8xf32>
}

// -----

// IA3 multiplies each channel by its scale, flattened from PEFT's [n, 1].
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[CHANNEL:.*]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-LABEL: func.func @ia3
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0, 1]] : tensor<32x1xf32> into tensor<32xf32>
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[CHANNEL]], #[[ID]]], {{.*}} ins(%{{.*}}, %[[FLAT]] : tensor<?x8x32xf32>, tensor<32xf32>)
// CHECK:   arith.mulf
func.func @ia3(%x: tensor<?x8x32xf32>, %l: tensor<32x1xf32>) -> tensor<?x8x32xf32> {
  %y = peft.ia3 "default" %x, %l : (tensor<?x8x32xf32>, tensor<32x1xf32>) -> tensor<?x8x32xf32>
  return %y : tensor<?x8x32xf32>
}

// -----

// lora_bias adds s·bias after the up projection.
// CHECK-LABEL: func.func @lora_bias
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 2.000000e+00 : f32
// CHECK: %[[UP:.*]] = linalg.matmul {{.*}} outs(%arg1 : tensor<5x3xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[UP]], %arg4 : tensor<5x3xf32>, tensor<3xf32>)
// CHECK:   arith.mulf %{{.*}}, %[[SCALE]]
// CHECK:   arith.addf
func.func @lora_bias(%x: tensor<5x4xf32>, %base: tensor<5x3xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>, %bias: tensor<3xf32>) -> tensor<5x3xf32> {
  %y = peft.lora "default" %x, %base, %a, %b, %bias {scale = 2.0 : f32} : (tensor<5x4xf32>, tensor<5x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>, tensor<3xf32>) -> tensor<5x3xf32>
  return %y : tensor<5x3xf32>
}

// -----

// LoRA on an embedding: A's columns gathered by the indices (a lookup into
// Aᵀ), scaled, then one GEMM with B accumulated into the base rows.
// CHECK-LABEL: func.func @embedding_lora
// CHECK-SAME: (%[[IDS:.*]]: tensor<?x?xi64>, %[[BASE:.*]]: tensor<?x?x6xf32>, %[[A:.*]]: tensor<2x100xf32>, %[[B:.*]]: tensor<6x2xf32>)
// CHECK: %[[AT:.*]] = linalg.transpose ins(%[[A]] : tensor<2x100xf32>) outs(%{{.*}} : tensor<100x2xf32>) permutation = [1, 0]
// CHECK: %[[DOWN:.*]] = linalg.generic {{.*}} ins(%[[IDS]] : tensor<?x?xi64>) outs(%{{.*}} : tensor<?x?x2xf32>)
// CHECK:   tensor.extract %[[AT]]
// CHECK: %[[BASE_ROWS:.*]] = tensor.collapse_shape %[[BASE]] {{\[\[}}0, 1], [2]]
// CHECK: linalg.matmul {{.*}} ins(%{{.*}}, %[[B]] : tensor<?x2xf32>, tensor<6x2xf32>) outs(%[[BASE_ROWS]] : tensor<?x6xf32>)
func.func @embedding_lora(%ids: tensor<?x?xi64>, %base: tensor<?x?x6xf32>, %a: tensor<2x100xf32>, %b: tensor<6x2xf32>) -> tensor<?x?x6xf32> {
  %y = peft.lora "default" %ids, %base, %a, %b {scale = 2.0 : f32} : (tensor<?x?xi64>, tensor<?x?x6xf32>, tensor<2x100xf32>, tensor<6x2xf32>) -> tensor<?x?x6xf32>
  return %y : tensor<?x?x6xf32>
}

// -----

// LoRA on a convolution: A as a strided, padded convolution to r channels,
// B as a 1×1 convolution, base + s·that. Both are f32 convolutions of one
// group, so GEMMs whose right-hand side is a window into the input, each
// channel flattened (no im2col). A's stride 2 makes it the sum over its four
// phases: the padded input's elements (2j + a) against the kernel's taps
// (2k + a), each phase laid out on one 5×5 grid (a row of zeros below for
// the last row's taps), accumulating into one [n, r, 4·5] output; the
// column past each row is dropped. B reads A's output as it is.
// CHECK-DAG: #[[WINDOW:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d3, d2 + d4 * 5 + d5)>
// CHECK-DAG: #[[KERNEL:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d1, d3, d4, d5)>
// CHECK-DAG: #[[POINT:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d3, d2 + d4 * 4 + d5)>
// CHECK-LABEL: func.func @conv_lora
// CHECK-SAME: %[[X:[^:]*]]: tensor<?x3x8x8xf32>, %{{[^:]*}}: tensor<?x6x4x4xf32>, %[[A:[^:]*]]: tensor<2x3x3x3xf32>, %[[B:[^:]*]]: tensor<6x2x1x1xf32>
// CHECK: %[[PADDED:.*]] = tensor.pad %[[X]] low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: %[[ZEROS:.*]] = linalg.fill {{.*}} -> tensor<?x2x20xf32>
// CHECK: %[[P00:.*]] = tensor.extract_slice %[[PADDED]][0, 0, 0, 0] [%{{.*}}, 3, 5, 5] [1, 1, 2, 2]
// CHECK: %[[G00:.*]] = tensor.pad %[[P00]] low[0, 0, 0, 0] high[0, 0, 1, 0]
// CHECK: %[[K00:.*]] = tensor.extract_slice %[[A]][0, 0, 0, 0] [2, 3, 2, 2] [1, 1, 2, 2]
// CHECK: %[[F00:.*]] = tensor.collapse_shape %[[G00]] {{\[\[}}0], [1], [2, 3]] : tensor<?x3x6x5xf32> into tensor<?x3x30xf32>
// CHECK: %[[S00:.*]] = linalg.generic {indexing_maps = [#[[WINDOW]], #[[KERNEL]], #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%[[F00]], %[[K00]] : tensor<?x3x30xf32>, tensor<2x3x2x2xf32>) outs(%[[ZEROS]] : tensor<?x2x20xf32>)
// CHECK:   arith.mulf
// CHECK:   arith.addf
// CHECK: tensor.extract_slice %[[PADDED]][0, 0, 0, 1] [%{{.*}}, 3, 5, 5] [1, 1, 2, 2]
// CHECK: tensor.extract_slice %[[A]][0, 0, 0, 1] [2, 3, 2, 1] [1, 1, 2, 2]
// CHECK: %[[S01:.*]] = linalg.generic {{.*}} outs(%[[S00]] : tensor<?x2x20xf32>)
// CHECK: tensor.extract_slice %[[A]][0, 0, 1, 0] [2, 3, 1, 2] [1, 1, 2, 2]
// CHECK: %[[S10:.*]] = linalg.generic {{.*}} outs(%[[S01]] : tensor<?x2x20xf32>)
// CHECK: tensor.extract_slice %[[A]][0, 0, 1, 1] [2, 3, 1, 1] [1, 1, 2, 2]
// CHECK: %[[S11:.*]] = linalg.generic {{.*}} outs(%[[S10]] : tensor<?x2x20xf32>)
// CHECK: %[[GRID:.*]] = tensor.expand_shape %[[S11]] {{\[\[}}0], [1], [2, 3]] output_shape [%{{.*}}, 2, 4, 5]
// CHECK: %[[DOWN:.*]] = tensor.extract_slice %[[GRID]][0, 0, 0, 0] [%{{.*}}, 2, 4, 4] [1, 1, 1, 1]
// CHECK: %[[DOWNF:.*]] = tensor.collapse_shape %[[DOWN]] {{\[\[}}0], [1], [2, 3]] : tensor<?x2x4x4xf32> into tensor<?x2x16xf32>
// CHECK: %[[UPF:.*]] = linalg.generic {indexing_maps = [#[[POINT]], #[[KERNEL]], #{{.*}}], {{.*}} ins(%[[DOWNF]], %[[B]] : tensor<?x2x16xf32>, tensor<6x2x1x1xf32>)
// CHECK: %[[UP:.*]] = tensor.expand_shape %[[UPF]] {{\[\[}}0], [1], [2, 3]] output_shape [%{{.*}}, 6, 4, 4]
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[UP]] : tensor<?x6x4x4xf32>, tensor<?x6x4x4xf32>)
// CHECK:   arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK:   arith.addf
func.func @conv_lora(%x: tensor<?x3x8x8xf32>, %base: tensor<?x6x4x4xf32>, %a: tensor<2x3x3x3xf32>, %b: tensor<6x2x1x1xf32>) -> tensor<?x6x4x4xf32> {
  %c = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>}
    : (tensor<?x3x8x8xf32>, tensor<?x6x4x4xf32>, tensor<2x3x3x3xf32>, tensor<6x2x1x1xf32>) -> tensor<?x6x4x4xf32>
  return %c : tensor<?x6x4x4xf32>
}

// -----

// DoRA unmerged: the LoRA branch into the base, then, from the weights at run
// time, n = m / sqrt(Σ_i (W + s·B·A)²) (W read [in, out] here), and
// n·(t − bias) + bias per output channel.
// CHECK-LABEL: func.func @dora
// CHECK-SAME: (%[[X:.*]]: tensor<5x4xf32>, %[[BASE:.*]]: tensor<5x3xf32>, %[[W:.*]]: tensor<4x3xf32>, %[[A:.*]]: tensor<2x4xf32>, %[[B:.*]]: tensor<3x2xf32>, %[[M:.*]]: tensor<3xf32>, %[[BIAS:.*]]: tensor<3xf32>)
// CHECK: %[[T:.*]] = linalg.matmul {{.*}} outs(%[[BASE]] : tensor<5x3xf32>)
// CHECK: %[[DELTA:.*]] = linalg.matmul ins(%[[B]], %[[A]] : tensor<3x2xf32>, tensor<2x4xf32>)
// CHECK: %[[SUMS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[W]], %[[DELTA]] : tensor<4x3xf32>, tensor<3x4xf32>)
// CHECK: %[[N:.*]] = linalg.generic {{.*}} ins(%[[M]], %[[SUMS]] : tensor<3xf32>, tensor<3xf32>)
// CHECK:   math.sqrt
// CHECK:   arith.divf
// CHECK: linalg.generic {{.*}} ins(%[[T]], %[[N]], %[[BIAS]] : tensor<5x3xf32>, tensor<3xf32>, tensor<3xf32>)
// CHECK:   arith.subf
// CHECK:   arith.mulf
// CHECK:   arith.addf
func.func @dora(%x: tensor<5x4xf32>, %base: tensor<5x3xf32>, %w: tensor<4x3xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>, %m: tensor<3xf32>, %bias: tensor<3xf32>) -> tensor<5x3xf32> {
  %y = peft.dora "default" %x, %base, %w, %a, %b, %m, bias %bias {scale = 2.0 : f32, weight_in_out}
    : (tensor<5x4xf32>, tensor<5x3xf32>, tensor<4x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<5x3xf32>
  return %y : tensor<5x3xf32>
}

// -----

// LoKr on a convolution: kron(w1, w2) as one generic over [a, c, b, e]
// (w2 read as [c, d·kh·kw]), collapsed to [a·c, b·e], read as the kernel;
// then the layer's convolution with it (a window GEMM with that kernel),
// added to the base.
// CHECK-DAG: #[[W1:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2)>
// CHECK-DAG: #[[W2:.*]] = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
// CHECK-LABEL: func.func @lokr_conv
// CHECK-SAME: (%{{.*}}: tensor<?x4x6x6xf32>, %{{.*}}: tensor<?x6x6x6xf32>, %[[W1ARG:.*]]: tensor<2x2xf32>, %[[W2ARG:.*]]: tensor<3x2x3x3xf32>)
// CHECK: %[[W2M:.*]] = tensor.collapse_shape %[[W2ARG]] {{\[\[}}0], [1, 2, 3]] : tensor<3x2x3x3xf32> into tensor<3x18xf32>
// CHECK: %[[BLOCKS:.*]] = linalg.generic {indexing_maps = [#[[W1]], #[[W2]], #{{.*}}], {{.*}} ins(%[[W1ARG]], %[[W2M]] : tensor<2x2xf32>, tensor<3x18xf32>) outs(%{{.*}} : tensor<2x3x2x18xf32>)
// CHECK: %[[MATRIX:.*]] = tensor.collapse_shape %[[BLOCKS]] {{\[\[}}0, 1], [2, 3]] : tensor<2x3x2x18xf32> into tensor<6x36xf32>
// CHECK: %[[KERNEL:.*]] = tensor.expand_shape %[[MATRIX]] {{\[\[}}0], [1, 2, 3]] output_shape [6, 4, 3, 3]
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[KERNEL]] : tensor<?x4x72xf32>, tensor<6x4x3x3xf32>)
func.func @lokr_conv(%x: tensor<?x4x6x6xf32>, %base: tensor<?x6x6x6xf32>, %w1: tensor<2x2xf32>, %w2: tensor<3x2x3x3xf32>) -> tensor<?x6x6x6xf32> {
  %d = peft.lokr_delta %w1, %w2 {scale = 0.5 : f32} : (tensor<2x2xf32>, tensor<3x2x3x3xf32>) -> tensor<6x4x3x3xf32>
  %y = peft.add_delta "default" %x, %base, %d {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64}
    : (tensor<?x4x6x6xf32>, tensor<?x6x6x6xf32>, tensor<6x4x3x3xf32>) -> tensor<?x6x6x6xf32>
  return %y : tensor<?x6x6x6xf32>
}

// -----

// LoHa in the CP form on a convolution: each side's core contracted with
// its factors in one generic over (p, q, kh, kw, i, j), reducing i and j,
// read as the [out, in·k] matrix; then the Hadamard product as usual. No
// factor product, no cast of f32 factors.
// CHECK-DAG: #[[CORE:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5, d2, d3)>
// CHECK-DAG: #[[CP_A:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d0)>
// CHECK-DAG: #[[CP_B:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d5, d1)>
// CHECK-DAG: #[[CP_OUT:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @loha_cp_conv
// CHECK-SAME: %[[T1:[^:]*]]: tensor<2x2x3x3xf32>, %[[A1:[^:]*]]: tensor<2x6xf32>, %[[B1:[^:]*]]: tensor<2x4xf32>,
// CHECK: %[[ZEROS:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<6x4x3x3xf32>)
// CHECK: %[[K1:.*]] = linalg.generic {indexing_maps = [#[[CORE]], #[[CP_A]], #[[CP_B]], #[[CP_OUT]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%[[T1]], %[[A1]], %[[B1]] : tensor<2x2x3x3xf32>, tensor<2x6xf32>, tensor<2x4xf32>) outs(%[[ZEROS]] : tensor<6x4x3x3xf32>)
// CHECK-NEXT: ^bb0(%[[CORE_E:[^:]*]]: f32, %[[A_E:[^:]*]]: f32, %[[B_E:[^:]*]]: f32, %[[ACC:[^:]*]]: f32):
// CHECK-NEXT: %[[CA:.*]] = arith.mulf %[[CORE_E]], %[[A_E]] : f32
// CHECK-NEXT: %[[TERM:.*]] = arith.mulf %[[CA]], %[[B_E]] : f32
// CHECK-NEXT: %[[SUM:.*]] = arith.addf %[[ACC]], %[[TERM]] : f32
// CHECK-NEXT: linalg.yield %[[SUM]] : f32
// CHECK: %[[P1:.*]] = tensor.collapse_shape %[[K1]] {{\[\[}}0], [1, 2, 3]] : tensor<6x4x3x3xf32> into tensor<6x36xf32>
// CHECK: %[[K2:.*]] = linalg.generic {indexing_maps = [#[[CORE]], #[[CP_A]], #[[CP_B]], #[[CP_OUT]]]
// CHECK: %[[P2:.*]] = tensor.collapse_shape %[[K2]]
// CHECK: %[[DELTA:.*]] = linalg.generic {{.*}} ins(%[[P1]], %[[P2]] : tensor<6x36xf32>, tensor<6x36xf32>)
// CHECK: tensor.expand_shape %[[DELTA]] {{\[\[}}0], [1, 2, 3]] output_shape [6, 4, 3, 3]
// BODY-LABEL: func.func @loha_cp_conv
// (The convolution's own GEMM has a dynamic row count; a factor product would not.)
// BODY-NOT: linalg.matmul {{.*}} -> tensor<{{[0-9]}}
// BODY-NOT: arith.extf
// BODY: return
func.func @loha_cp_conv(%x: tensor<?x4x6x6xf32>, %base: tensor<?x6x6x6xf32>, %t1: tensor<2x2x3x3xf32>, %a1: tensor<2x6xf32>, %b1: tensor<2x4xf32>,
                        %t2: tensor<2x2x3x3xf32>, %a2: tensor<2x6xf32>, %b2: tensor<2x4xf32>) -> tensor<?x6x6x6xf32> {
  %p1 = peft.cp_product %t1, %a1, %b1 : (tensor<2x2x3x3xf32>, tensor<2x6xf32>, tensor<2x4xf32>) -> tensor<6x36xf32>
  %p2 = peft.cp_product %t2, %a2, %b2 : (tensor<2x2x3x3xf32>, tensor<2x6xf32>, tensor<2x4xf32>) -> tensor<6x36xf32>
  %d = peft.loha_delta %p1, %p2 {scale = 0.5 : f32} : (tensor<6x36xf32>, tensor<6x36xf32>) -> tensor<6x4x3x3xf32>
  %y = peft.add_delta "default" %x, %base, %d {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64}
    : (tensor<?x4x6x6xf32>, tensor<?x6x6x6xf32>, tensor<6x4x3x3xf32>) -> tensor<?x6x6x6xf32>
  return %y : tensor<?x6x6x6xf32>
}

// -----

// LoHa on a linear layer: the two factor products, their scaled Hadamard
// product, then x·Δᵀ accumulated into the base.
// CHECK-LABEL: func.func @loha_linear
// CHECK-SAME: (%[[X:.*]]: tensor<5x4xf32>, %[[BASE:.*]]: tensor<5x3xf32>, %[[A1:.*]]: tensor<3x2xf32>, %[[B1:.*]]: tensor<2x4xf32>, %[[A2:.*]]: tensor<3x2xf32>, %[[B2:.*]]: tensor<2x4xf32>)
// CHECK: %[[P1:.*]] = linalg.matmul {{.*}}ins(%[[A1]], %[[B1]] : tensor<3x2xf32>, tensor<2x4xf32>)
// CHECK: %[[P2:.*]] = linalg.matmul {{.*}}ins(%[[A2]], %[[B2]] : tensor<3x2xf32>, tensor<2x4xf32>)
// CHECK: %[[DELTA:.*]] = linalg.generic {{.*}} ins(%[[P1]], %[[P2]] : tensor<3x4xf32>, tensor<3x4xf32>)
// CHECK: linalg.matmul {{.*}} ins(%[[X]], %[[DELTA]] : tensor<5x4xf32>, tensor<3x4xf32>) outs(%[[BASE]] : tensor<5x3xf32>)
func.func @loha_linear(%x: tensor<5x4xf32>, %base: tensor<5x3xf32>, %a1: tensor<3x2xf32>, %b1: tensor<2x4xf32>, %a2: tensor<3x2xf32>, %b2: tensor<2x4xf32>) -> tensor<5x3xf32> {
  %p1 = peft.factor_product %a1, %b1 : (tensor<3x2xf32>, tensor<2x4xf32>) -> tensor<3x4xf32>
  %p2 = peft.factor_product %a2, %b2 : (tensor<3x2xf32>, tensor<2x4xf32>) -> tensor<3x4xf32>
  %d = peft.loha_delta %p1, %p2 {scale = 2.0 : f32} : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %y = peft.add_delta "default" %x, %base, %d : (tensor<5x4xf32>, tensor<5x3xf32>, tensor<3x4xf32>) -> tensor<5x3xf32>
  return %y : tensor<5x3xf32>
}

// -----

// IA3 on a convolution's values scales along the channels, dimension 1.
// CHECK-DAG: #[[CHANNEL:.*]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @ia3_channels
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %{{.*}} {{\[\[}}0, 1, 2, 3]] : tensor<1x6x1x1xf32> into tensor<6xf32>
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[CHANNEL]], #{{.*}}]{{.*}} ins(%{{.*}}, %[[FLAT]] : tensor<?x6x4x4xf32>, tensor<6xf32>)
func.func @ia3_channels(%x: tensor<?x6x4x4xf32>, %l: tensor<1x6x1x1xf32>) -> tensor<?x6x4x4xf32> {
  %y = peft.ia3 "default" %x, %l : (tensor<?x6x4x4xf32>, tensor<1x6x1x1xf32>) -> tensor<?x6x4x4xf32>
  return %y : tensor<?x6x4x4xf32>
}

// -----

// A layer norm: the row sums, the sums of squared deviations from the mean,
// then (x − mean) / sqrt(var + ε) · γ + β with γ and β along the normalized
// dimension.
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[ROW:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[LAST:.*]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-LABEL: func.func @layer_norm
// CHECK-DAG: %[[EPS:.*]] = arith.constant 1.000000e-03 : f32
// CHECK-DAG: %[[COUNT:.*]] = arith.constant 4.000000e+00 : f32
// CHECK: %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK:   arith.addf
// CHECK: %[[SQUARES:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ROW]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%arg0, %[[SUM]]
// CHECK:   %[[MEAN:.*]] = arith.divf %{{.*}}, %[[COUNT]]
// CHECK:   %[[DEV:.*]] = arith.subf %{{.*}}, %[[MEAN]]
// CHECK:   arith.mulf %[[DEV]], %[[DEV]]
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ROW]], #[[LAST]], #[[LAST]], #[[ID]]], {{.*}} ins(%arg0, %[[SUM]], %[[SQUARES]], %arg1, %arg2
// CHECK:   arith.addf %{{.*}}, %[[EPS]]
// CHECK:   math.sqrt
// CHECK:   arith.divf
// CHECK:   arith.mulf
// CHECK:   arith.addf
func.func @layer_norm(%x: tensor<?x8x4xf32>, %g: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<?x8x4xf32> {
  %y = peft.layer_norm "ln" %x, %g, %b {axis = 2 : i64, epsilon = 1.0e-3 : f32}
         : (tensor<?x8x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<?x8x4xf32>
  return %y : tensor<?x8x4xf32>
}

// -----

// SSF scales and shifts each channel of a convolution's output (dimension 1).
// CHECK-DAG: #[[ID:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[CHANNEL:.*]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @ssf
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[CHANNEL]], #[[CHANNEL]], #[[ID]]], {{.*}} ins(%arg0, %arg1, %arg2
// CHECK:   %[[SCALED:.*]] = arith.mulf
// CHECK:   arith.addf %[[SCALED]]
func.func @ssf(%x: tensor<?x6x4x4xf32>, %g: tensor<6xf32>, %b: tensor<6xf32>) -> tensor<?x6x4x4xf32> {
  %y = peft.ssf "default" %x, %g, %b {channel_dim = 1 : i64}
         : (tensor<?x6x4x4xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<?x6x4x4xf32>
  return %y : tensor<?x6x4x4xf32>
}

// -----

// A bottleneck: the down GEMM and its bias, the activation (gelu through
// erf), the grouped up-projection expanded block-diagonally, its GEMM, then
// the input plus the scaled branch.
// CHECK-LABEL: func.func @bottleneck
// CHECK-DAG: %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// CHECK: %[[ROWS:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2]] : tensor<?x8x32xf32> into tensor<?x32xf32>
// CHECK: %[[DOWN:.*]] = linalg.matmul {{.*}} ins(%[[ROWS]], %arg1 : tensor<?x32xf32>, tensor<8x32xf32>)
// CHECK: %[[BIASED:.*]] = linalg.generic {{.*}} ins(%[[DOWN]], %arg3 : tensor<?x8xf32>, tensor<8xf32>)
// CHECK: %[[ACT:.*]] = linalg.generic {{.*}} ins(%[[BIASED]] : tensor<?x8xf32>)
// CHECK:   math.erf
// CHECK: %[[DENSE:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<32x8xf32>)
// CHECK:   tensor.extract %arg2
// CHECK:   arith.select
// CHECK: %[[UP:.*]] = linalg.matmul {{.*}} ins(%[[ACT]], %[[DENSE]] : tensor<?x8xf32>, tensor<32x8xf32>)
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} ins(%[[ROWS]], %[[UP]] : tensor<?x32xf32>, tensor<?x32xf32>)
// CHECK:   arith.mulf %{{.*}}, %[[HALF]]
// CHECK: tensor.expand_shape %[[SUM]]
func.func @bottleneck(%x: tensor<?x8x32xf32>, %d: tensor<8x32xf32>, %u: tensor<32x4xf32>, %b1: tensor<8xf32>) -> tensor<?x8x32xf32> {
  %y = peft.bottleneck "default" %x, %d, %u down_bias %b1 {activation = "gelu", groups = 2 : i64, scale = 0.5 : f32}
         : (tensor<?x8x32xf32>, tensor<8x32xf32>, tensor<32x4xf32>, tensor<8xf32>) -> tensor<?x8x32xf32>
  return %y : tensor<?x8x32xf32>
}

// -----

// STDHA is a gather: each element reads the same position of the previous
// frame (heads [0, fold)), the next one (heads [fold, 2·fold)) or its own.
// CHECK-LABEL: func.func @head_shift
// CHECK-DAG: %[[FRAMES:.*]] = arith.constant 4 : index
// CHECK-DAG: %[[HEAD_SIZE:.*]] = arith.constant 8 : index
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<?x17x32xf32>)
// CHECK:   %[[ROW:.*]] = linalg.index 0 : index
// CHECK:   %[[HEAD:.*]] = arith.divui %{{.*}}, %[[HEAD_SIZE]]
// CHECK:   %[[FRAME:.*]] = arith.remui %[[ROW]], %[[FRAMES]]
// CHECK-DAG:   %[[NEXT:.*]] = arith.addi %[[ROW]]
// CHECK-DAG:   %[[PREVIOUS:.*]] = arith.subi %[[ROW]]
// CHECK:   %[[SOURCE:.*]] = arith.select %{{.*}}, %[[PREVIOUS]], %{{.*}}
// CHECK:   tensor.extract %arg0[%[[SOURCE]], %{{.*}}, %{{.*}}] : tensor<?x17x32xf32>
func.func @head_shift(%k: tensor<?x17x32xf32>) -> tensor<?x17x32xf32> {
  %y = peft.head_shift "default" %k {fold = 1 : i64, frames = 4 : i64, heads = 4 : i64} : (tensor<?x17x32xf32>) -> tensor<?x17x32xf32>
  return %y : tensor<?x17x32xf32>
}

// -----

// A head shift that alone reads a linear layer (STDHA on a key projection)
// takes the place of the layer's bias pass: the GEMM, then one generic that
// reads the GEMM's rows shifted and adds the bias. Nothing is copied.
// CHECK-LABEL: func.func @linear_head_shift
// CHECK-SAME: (%[[X:.*]]: tensor<?x17x32xf32>, %[[W:.*]]: tensor<32x32xf32>, %[[BIAS:.*]]: tensor<32xf32>)
// CHECK: %[[PRODUCT:.*]] = linalg.matmul
// CHECK: %[[ROWS:.*]] = tensor.expand_shape %[[PRODUCT]]
// CHECK: %[[SHIFTED:.*]] = linalg.generic {{.*}} ins(%[[BIAS]] : tensor<32xf32>) outs(%{{.*}} : tensor<?x17x32xf32>)
// CHECK:   %[[ELEMENT:.*]] = tensor.extract %[[ROWS]][%{{.*}}, %{{.*}}, %{{.*}}] : tensor<?x17x32xf32>
// CHECK:   arith.addf %[[ELEMENT]], %{{.*}} : f32
// CHECK: return %[[SHIFTED]]
func.func @linear_head_shift(%x: tensor<?x17x32xf32>, %w: tensor<32x32xf32>, %b: tensor<32xf32>) -> tensor<?x17x32xf32> {
  %k = peft.linear "key" %x, %w, %b : (tensor<?x17x32xf32>, tensor<32x32xf32>, tensor<32xf32>) -> tensor<?x17x32xf32>
  %y = peft.head_shift "default" %k {fold = 1 : i64, frames = 4 : i64, heads = 4 : i64} : (tensor<?x17x32xf32>) -> tensor<?x17x32xf32>
  return %y : tensor<?x17x32xf32>
}

// -----

// Unmerged adapters compute in f32 whatever their tensors' types: F16
// factors over an f32 layer are widened, and the sum needs no rounding.
// CHECK-LABEL: func.func @lora_half_factors
// CHECK-SAME: (%[[X:.*]]: tensor<5x4xf32>, %[[BASE:.*]]: tensor<5x3xf32>, %[[A:.*]]: tensor<2x4xf16>, %[[B:.*]]: tensor<3x2xf16>)
// CHECK: %[[WIDE_A:.*]] = linalg.generic {{.*}} ins(%[[A]] : tensor<2x4xf16>) outs(%{{.*}} : tensor<2x4xf32>)
// CHECK:   arith.extf %{{.*}} : f16 to f32
// CHECK: %[[WIDE_B:.*]] = linalg.generic {{.*}} ins(%[[B]] : tensor<3x2xf16>) outs(%{{.*}} : tensor<3x2xf32>)
// CHECK: linalg.matmul {{.*}} ins(%[[X]], %[[WIDE_A]] : tensor<5x4xf32>, tensor<2x4xf32>)
// CHECK: %[[UP:.*]] = linalg.matmul {{.*}} ins(%{{.*}}, %[[WIDE_B]] : tensor<5x2xf32>, tensor<3x2xf32>) outs(%[[BASE]] : tensor<5x3xf32>)
// CHECK: return %[[UP]]
// BODY-LABEL: func.func @lora_half_factors
// BODY-NOT: arith.truncf
// BODY: return
func.func @lora_half_factors(%x: tensor<5x4xf32>, %base: tensor<5x3xf32>, %a: tensor<2x4xf16>, %b: tensor<3x2xf16>) -> tensor<5x3xf32> {
  %y = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32} : (tensor<5x4xf32>, tensor<5x3xf32>, tensor<2x4xf16>, tensor<3x2xf16>) -> tensor<5x3xf32>
  return %y : tensor<5x3xf32>
}

// -----

// An f16 layer with F32 factors and a BF16 lora_bias: its input and base
// result are widened, the bias added in f32, and the sum rounded once to f16.
// CHECK-LABEL: func.func @lora_half_layer
// CHECK-SAME: (%[[X:.*]]: tensor<5x4xf16>, %[[BASE:.*]]: tensor<5x3xf16>, %[[A:.*]]: tensor<2x4xf32>, %[[B:.*]]: tensor<3x2xf32>, %[[BIAS:.*]]: tensor<3xbf16>)
// CHECK: %[[WIDE_X:.*]] = linalg.generic {{.*}} ins(%[[X]] : tensor<5x4xf16>) outs(%{{.*}} : tensor<5x4xf32>)
// CHECK: %[[WIDE_BASE:.*]] = linalg.generic {{.*}} ins(%[[BASE]] : tensor<5x3xf16>) outs(%{{.*}} : tensor<5x3xf32>)
// CHECK: linalg.matmul {{.*}} ins(%[[WIDE_X]], %[[A]] : tensor<5x4xf32>, tensor<2x4xf32>)
// CHECK: %[[UP:.*]] = linalg.matmul {{.*}} outs(%[[WIDE_BASE]] : tensor<5x3xf32>)
// CHECK: %[[WIDE_BIAS:.*]] = linalg.generic {{.*}} ins(%[[BIAS]] : tensor<3xbf16>) outs(%{{.*}} : tensor<3xf32>)
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} ins(%[[UP]], %[[WIDE_BIAS]] : tensor<5x3xf32>, tensor<3xf32>)
// CHECK: %[[NARROW:.*]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<5x3xf32>) outs(%{{.*}} : tensor<5x3xf16>)
// CHECK:   arith.truncf %{{.*}} : f32 to f16
// CHECK: return %[[NARROW]]
func.func @lora_half_layer(%x: tensor<5x4xf16>, %base: tensor<5x3xf16>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>, %bias: tensor<3xbf16>) -> tensor<5x3xf16> {
  %y = peft.lora "default" %x, %base, %a, %b, %bias {scale = 2.0 : f32} : (tensor<5x4xf16>, tensor<5x3xf16>, tensor<2x4xf32>, tensor<3x2xf32>, tensor<3xbf16>) -> tensor<5x3xf16>
  return %y : tensor<5x3xf16>
}

// -----

// DoRA on a bf16 layer: the weight and the magnitude are widened too, the
// norms run in f32; as PEFT's Linear does, base − bias is rounded to bf16
// before it is rescaled, base + (n − 1)·round(base − bias) + n·update, and
// the sum is rounded to bf16.
// CHECK-LABEL: func.func @dora_bfloat_layer
// CHECK-SAME: (%{{.*}}: tensor<5x4xbf16>, %{{.*}}: tensor<5x3xbf16>, %[[W:.*]]: tensor<3x4xbf16>, %{{.*}}: tensor<2x4xbf16>, %{{.*}}: tensor<3x2xbf16>, %[[M:.*]]: tensor<3xbf16>, %{{.*}}: tensor<3xbf16>)
// CHECK: %[[WIDE_BASE:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<5x3xbf16>) outs(%{{.*}} : tensor<5x3xf32>)
// CHECK: %[[WIDE_BIAS:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<3xbf16>) outs(%{{.*}} : tensor<3xf32>)
// CHECK: %[[ZEROS:.*]] = linalg.fill {{.*}} -> tensor<5x3xf32>
// CHECK: %[[UPDATE:.*]] = linalg.matmul {{.*}} outs(%[[ZEROS]] : tensor<5x3xf32>)
// CHECK: %[[WIDE_W:.*]] = linalg.generic {{.*}} ins(%[[W]] : tensor<3x4xbf16>) outs(%{{.*}} : tensor<3x4xf32>)
// CHECK: %[[SUMS:.*]] = linalg.generic {{.*}} ins(%[[WIDE_W]], %{{.*}} : tensor<3x4xf32>, tensor<3x4xf32>)
// CHECK: %[[WIDE_M:.*]] = linalg.generic {{.*}} ins(%[[M]] : tensor<3xbf16>) outs(%{{.*}} : tensor<3xf32>)
// CHECK: %[[N:.*]] = linalg.generic {{.*}} ins(%[[WIDE_M]], %[[SUMS]] : tensor<3xf32>, tensor<3xf32>)
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} ins(%[[WIDE_BASE]], %[[UPDATE]], %[[N]], %[[WIDE_BIAS]] : tensor<5x3xf32>, tensor<5x3xf32>, tensor<3xf32>, tensor<3xf32>)
// CHECK:   %[[CENTERED:.*]] = arith.subf
// CHECK:   %[[ROUNDED:.*]] = arith.truncf %[[CENTERED]] : f32 to bf16
// CHECK:   arith.extf %[[ROUNDED]] : bf16 to f32
// CHECK: %[[NARROW:.*]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<5x3xf32>) outs(%{{.*}} : tensor<5x3xbf16>)
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
// CHECK: return %[[NARROW]]
func.func @dora_bfloat_layer(%x: tensor<5x4xbf16>, %base: tensor<5x3xbf16>, %w: tensor<3x4xbf16>, %a: tensor<2x4xbf16>, %b: tensor<3x2xbf16>, %m: tensor<3xbf16>, %bias: tensor<3xbf16>) -> tensor<5x3xbf16> {
  %y = peft.dora "default" %x, %base, %w, %a, %b, %m, bias %bias {scale = 2.0 : f32}
    : (tensor<5x4xbf16>, tensor<5x3xbf16>, tensor<3x4xbf16>, tensor<2x4xbf16>, tensor<3x2xbf16>, tensor<3xbf16>, tensor<3xbf16>) -> tensor<5x3xbf16>
  return %y : tensor<5x3xbf16>
}

// -----

// LoHa with F16 factors on an f16 layer: the products and the delta are f32
// (as peft-attach-adapters types them), x·Δᵀ accumulates into the widened
// base, and the sum is rounded once.
// CHECK-LABEL: func.func @loha_half
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<3x2xf32>, tensor<2x4xf32>)
// CHECK: %[[DELTA:.*]] = linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<3x4xf32>, tensor<3x4xf32>) outs(%{{.*}} : tensor<3x4xf32>)
// CHECK: %[[SUM:.*]] = linalg.matmul {{.*}} ins(%{{.*}}, %[[DELTA]] : tensor<5x4xf32>, tensor<3x4xf32>) outs(%{{.*}} : tensor<5x3xf32>)
// CHECK: linalg.generic {{.*}} ins(%[[SUM]] : tensor<5x3xf32>) outs(%{{.*}} : tensor<5x3xf16>)
// CHECK:   arith.truncf
func.func @loha_half(%x: tensor<5x4xf16>, %base: tensor<5x3xf16>, %a1: tensor<3x2xf16>, %b1: tensor<2x4xf16>, %a2: tensor<3x2xf16>, %b2: tensor<2x4xf16>) -> tensor<5x3xf16> {
  %p1 = peft.factor_product %a1, %b1 : (tensor<3x2xf16>, tensor<2x4xf16>) -> tensor<3x4xf32>
  %p2 = peft.factor_product %a2, %b2 : (tensor<3x2xf16>, tensor<2x4xf16>) -> tensor<3x4xf32>
  %d = peft.loha_delta %p1, %p2 {scale = 2.0 : f32} : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %y = peft.add_delta "default" %x, %base, %d : (tensor<5x4xf16>, tensor<5x3xf16>, tensor<3x4xf32>) -> tensor<5x3xf16>
  return %y : tensor<5x3xf16>
}

// -----

// The CP form with F16 tensors: core and factors widened to the f32 the
// product is typed in, the sum of products in f32, never rounded back.
// CHECK-LABEL: func.func @cp_product_half
// CHECK: %[[T:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<2x3x2x2xf16>) outs(%{{.*}} : tensor<2x3x2x2xf32>)
// CHECK: %[[A:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<2x4xf16>) outs(%{{.*}} : tensor<2x4xf32>)
// CHECK: %[[B:.*]] = linalg.generic {{.*}} ins(%arg2 : tensor<3x5xf16>) outs(%{{.*}} : tensor<3x5xf32>)
// CHECK: %[[K:.*]] = linalg.generic {{.*}} ins(%[[T]], %[[A]], %[[B]] : tensor<2x3x2x2xf32>, tensor<2x4xf32>, tensor<3x5xf32>) outs(%{{.*}} : tensor<4x5x2x2xf32>)
// CHECK: %[[P:.*]] = tensor.collapse_shape %[[K]] {{\[\[}}0], [1, 2, 3]] : tensor<4x5x2x2xf32> into tensor<4x20xf32>
// CHECK-NEXT: return %[[P]]
// BODY-LABEL: func.func @cp_product_half
// BODY-NOT: arith.truncf
// BODY: return
func.func @cp_product_half(%t: tensor<2x3x2x2xf16>, %a: tensor<2x4xf16>, %b: tensor<3x5xf16>) -> tensor<4x20xf32> {
  %p = peft.cp_product %t, %a, %b : (tensor<2x3x2x2xf16>, tensor<2x4xf16>, tensor<3x5xf16>) -> tensor<4x20xf32>
  return %p : tensor<4x20xf32>
}

// -----

// A BF16 bottleneck on f32 activations: its weights and biases are widened.
// CHECK-LABEL: func.func @bottleneck_bfloat_weights
// CHECK: %[[DOWN:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<8x32xbf16>) outs(%{{.*}} : tensor<8x32xf32>)
// CHECK: linalg.matmul {{.*}} ins(%{{.*}}, %[[DOWN]] : tensor<?x32xf32>, tensor<8x32xf32>)
// CHECK: %[[UP:.*]] = linalg.generic {{.*}} ins(%arg2 : tensor<32x8xbf16>) outs(%{{.*}} : tensor<32x8xf32>)
// CHECK: linalg.matmul {{.*}} ins(%{{.*}}, %[[UP]] : tensor<?x8xf32>, tensor<32x8xf32>)
// BODY-LABEL: func.func @bottleneck_bfloat_weights
// BODY-NOT: arith.truncf
// BODY: return
func.func @bottleneck_bfloat_weights(%x: tensor<?x8x32xf32>, %d: tensor<8x32xbf16>, %u: tensor<32x8xbf16>) -> tensor<?x8x32xf32> {
  %y = peft.bottleneck "default" %x, %d, %u {activation = "relu", groups = 1 : i64, scale = 1.0 : f32}
         : (tensor<?x8x32xf32>, tensor<8x32xbf16>, tensor<32x8xbf16>) -> tensor<?x8x32xf32>
  return %y : tensor<?x8x32xf32>
}

// -----

// IA3's F16 vector on bf16 activations: both widened to f32 (f16 and bf16
// have one width, so neither converts to the other directly), the product
// rounded to bf16.
// CHECK-LABEL: func.func @ia3_mixed_halves
// CHECK: linalg.generic
// CHECK:   %[[X:.*]] = arith.extf %{{.*}} : bf16 to f32
// CHECK:   %[[L:.*]] = arith.extf %{{.*}} : f16 to f32
// CHECK:   %[[PRODUCT:.*]] = arith.mulf %[[X]], %[[L]] : f32
// CHECK:   arith.truncf %[[PRODUCT]] : f32 to bf16
func.func @ia3_mixed_halves(%x: tensor<?x6xbf16>, %l: tensor<6x1xf16>) -> tensor<?x6xbf16> {
  %y = peft.ia3 "default" %x, %l : (tensor<?x6xbf16>, tensor<6x1xf16>) -> tensor<?x6xbf16>
  return %y : tensor<?x6xbf16>
}

// -----

// A bf16 linear layer accumulates in f32: the GEMM reads bf16 operands into
// an f32 accumulator that starts from the bias, and the sum is rounded once.
// CHECK-LABEL: func.func @bfloat_linear
// CHECK-SAME: (%[[X:.*]]: tensor<5x4xbf16>, %[[W:.*]]: tensor<3x4xbf16>, %[[BIAS:.*]]: tensor<3xbf16>)
// CHECK: %[[BIAS_ROWS:.*]] = linalg.generic {{.*}} ins(%[[BIAS]] : tensor<3xbf16>) outs(%{{.*}} : tensor<5x3xf32>)
// CHECK:   arith.extf %{{.*}} : bf16 to f32
// CHECK: %[[SUM:.*]] = linalg.matmul {{.*}} ins(%[[X]], %[[W]] : tensor<5x4xbf16>, tensor<3x4xbf16>) outs(%[[BIAS_ROWS]] : tensor<5x3xf32>)
// CHECK: %[[ROUNDED:.*]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<5x3xf32>) outs(%{{.*}} : tensor<5x3xbf16>)
// CHECK:   arith.truncf %{{.*}} : f32 to bf16
// CHECK: return %[[ROUNDED]]
func.func @bfloat_linear(%x: tensor<5x4xbf16>, %w: tensor<3x4xbf16>, %b: tensor<3xbf16>) -> tensor<5x3xbf16> {
  %y = peft.linear "fc" %x, %w, %b : (tensor<5x4xbf16>, tensor<3x4xbf16>, tensor<3xbf16>) -> tensor<5x3xbf16>
  return %y : tensor<5x3xbf16>
}

// -----

// An f16 convolution: the products are widened and summed in f32.
// CHECK-LABEL: func.func @half_conv
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<?x1x6x4x4xf32>)
// CHECK:   %[[IN:.*]] = arith.extf %{{.*}} : f16 to f32
// CHECK:   %[[WEIGHT:.*]] = arith.extf %{{.*}} : f16 to f32
// CHECK:   %[[PRODUCT:.*]] = arith.mulf %[[IN]], %[[WEIGHT]] : f32
// CHECK:   arith.addf %{{.*}}, %[[PRODUCT]] : f32
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<?x6x4x4xf16>)
// CHECK:   arith.truncf
func.func @half_conv(%x: tensor<?x3x4x4xf16>, %w: tensor<6x3x1x1xf16>) -> tensor<?x6x4x4xf16> {
  %y = peft.conv "conv" %x, %w {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64}
         : (tensor<?x3x4x4xf16>, tensor<6x3x1x1xf16>) -> tensor<?x6x4x4xf16>
  return %y : tensor<?x6x4x4xf16>
}

// -----

// An f64 layer keeps f64: its F32 factors are widened to it, nothing is
// rounded to f32.
// CHECK-LABEL: func.func @lora_double_layer
// CHECK: %[[WIDE_A:.*]] = linalg.generic {{.*}} ins(%arg2 : tensor<2x4xf32>) outs(%{{.*}} : tensor<2x4xf64>)
// CHECK: linalg.matmul {{.*}} ins(%arg0, %[[WIDE_A]] : tensor<5x4xf64>, tensor<2x4xf64>)
// CHECK: linalg.matmul {{.*}} outs(%arg1 : tensor<5x3xf64>)
// BODY-LABEL: func.func @lora_double_layer
// BODY-NOT: arith.truncf
// BODY: return
func.func @lora_double_layer(%x: tensor<5x4xf64>, %base: tensor<5x3xf64>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>) -> tensor<5x3xf64> {
  %y = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32} : (tensor<5x4xf64>, tensor<5x3xf64>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<5x3xf64>
  return %y : tensor<5x3xf64>
}

// -----

// peft.multi_lora: each row's scale (0 for index -1), each row's slot
// factors gathered k-major (Aᵀ, Bᵀ: the right operands of batched GEMMs), the shrink x·A[s]ᵀ and its scaling per row, the
// expansion into the base, the slot's bias scaled per row.
// CHECK-LABEL: func.func @multi_lora
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x8x32xf32>, %[[BASE:[^:]*]]: tensor<?x8x16xf32>, %[[INDEX:[^:]*]]: tensor<?xi64>, %[[A:[^:]*]]: tensor<2x32x4xf32>, %[[B:[^:]*]]: tensor<2x4x16xf32>, %[[S:[^:]*]]: tensor<2xf32>, %[[BIAS:[^:]*]]: tensor<2x16xf32>)
// CHECK: %[[ROW_SCALE:.*]] = linalg.generic {{.*}} ins(%[[INDEX]] : tensor<?xi64>)
// CHECK:   %[[SLOT:.*]] = arith.maxsi
// CHECK:   %[[SCALE:.*]] = tensor.extract %[[S]][%[[SLOT]]]
// CHECK:   %[[NONE:.*]] = arith.cmpi slt
// CHECK:   arith.select %[[NONE]], %{{.*}}, %[[SCALE]]
// CHECK: %[[ROW_A:.*]] = linalg.generic {{.*}} ins(%[[INDEX]] : tensor<?xi64>) outs(%{{.*}} : tensor<?x32x4xf32>)
// CHECK:   tensor.extract %[[A]]
// CHECK: %[[ROW_B:.*]] = linalg.generic {{.*}} ins(%[[INDEX]] : tensor<?xi64>) outs(%{{.*}} : tensor<?x4x16xf32>)
// CHECK:   tensor.extract %[[B]]
// CHECK: %[[DOWN:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[X]], %[[ROW_A]] : tensor<?x8x32xf32>, tensor<?x32x4xf32>)
// CHECK: %[[SCALED:.*]] = linalg.generic {{.*}} ins(%[[DOWN]], %[[ROW_SCALE]] : tensor<?x8x4xf32>, tensor<?xf32>)
// CHECK: %[[UP:.*]] = linalg.generic {{.*}} ins(%[[SCALED]], %[[ROW_B]] : tensor<?x8x4xf32>, tensor<?x4x16xf32>) outs(%[[BASE]] : tensor<?x8x16xf32>)
// CHECK: %[[OUT:.*]] = linalg.generic {{.*}} ins(%[[INDEX]], %[[ROW_SCALE]] : tensor<?xi64>, tensor<?xf32>) outs(%[[UP]] : tensor<?x8x16xf32>)
// CHECK:   tensor.extract %[[BIAS]]
// CHECK: return %[[OUT]]
func.func @multi_lora(%x: tensor<?x8x32xf32>, %base: tensor<?x8x16xf32>, %index: tensor<?xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>, %bias: tensor<2x16xf32>) -> tensor<?x8x16xf32> {
  %y = peft.multi_lora ["a", ""] %x, %base, %index, %a, %b, %s bias %bias : (tensor<?x8x32xf32>, tensor<?x8x16xf32>, tensor<?xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>, tensor<2x16xf32>) -> tensor<?x8x16xf32>
  return %y : tensor<?x8x16xf32>
}

// -----

// A residual add that alone reads peft.multi_lora's result comes first: base
// + residual, then the update accumulates into the sum (the layer's GEMM then
// takes the add into its epilogue, as without adapters). The add after it
// goes.
// CHECK-LABEL: func.func @multi_lora_residual
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x8x32xf32>, %[[BASE:[^:]*]]: tensor<?x8x16xf32>, %[[RES:[^:]*]]: tensor<?x8x16xf32>
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} ins(%[[BASE]], %[[RES]] : tensor<?x8x16xf32>, tensor<?x8x16xf32>)
// CHECK:   arith.addf
// CHECK: %[[UP:.*]] = linalg.generic {{.*}} outs(%[[SUM]] : tensor<?x8x16xf32>)
// CHECK-NOT: linalg.generic
// CHECK: return %[[UP]]
func.func @multi_lora_residual(%x: tensor<?x8x32xf32>, %base: tensor<?x8x16xf32>, %res: tensor<?x8x16xf32>, %index: tensor<?xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>) -> tensor<?x8x16xf32> {
  %y = peft.multi_lora ["a", ""] %x, %base, %index, %a, %b, %s : (tensor<?x8x32xf32>, tensor<?x8x16xf32>, tensor<?xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>) -> tensor<?x8x16xf32>
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x8x32xf32>
  %init = tensor.empty(%n) : tensor<?x8x16xf32>
  %sum = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%res, %y : tensor<?x8x16xf32>, tensor<?x8x16xf32>) outs(%init : tensor<?x8x16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.addf %p, %q : f32
    linalg.yield %t : f32
  } -> tensor<?x8x16xf32>
  return %sum : tensor<?x8x16xf32>
}

// -----

// peft.multi_lora with the slots' ranks: the selections zero what lies past
// the slot's rank (zeros in the table too) and say along which dimension, so
// that a back end may compute over each slot's own rank.
// CHECK-LABEL: func.func @multi_lora_ranks
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<?xi64>) outs(%{{.*}} : tensor<?x32x4xf32>) attrs = {peft.slot_gather = 2 : i64}
// CHECK:   %[[RANK:.*]] = arith.fptosi
// CHECK:   %[[INSIDE:.*]] = arith.cmpi slt, %{{.*}}, %[[RANK]]
// CHECK:   arith.select %[[INSIDE]]
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<?xi64>) outs(%{{.*}} : tensor<?x4x16xf32>) attrs = {peft.slot_gather = 1 : i64}
func.func @multi_lora_ranks(%x: tensor<?x8x32xf32>, %base: tensor<?x8x16xf32>, %index: tensor<?xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>, %r: tensor<2xf32>) -> tensor<?x8x16xf32> {
  %y = peft.multi_lora ["a", ""] %x, %base, %index, %a, %b, %s ranks %r : (tensor<?x8x32xf32>, tensor<?x8x16xf32>, tensor<?xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<?x8x16xf32>
  return %y : tensor<?x8x16xf32>
}

// -----

// peft.multi_lora with DoRA slots on a bf16 layer: base + (n − 1)·round(base
// − layer bias) + n·update, n the row's slot factors (1 for -1), round(·) to
// bf16 as PEFT's Linear does, the sum rounded to bf16.
// CHECK-LABEL: func.func @multi_lora_dora_bfloat_layer
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x8x16xf32>, tensor<?x8x16xf32>, tensor<?xi64>)
// CHECK:   %[[N:.*]] = arith.select
// CHECK:   %[[CENTERED:.*]] = arith.subf
// CHECK:   %[[ROUNDED:.*]] = arith.truncf %[[CENTERED]] : f32 to bf16
// CHECK:   %[[WIDE:.*]] = arith.extf %[[ROUNDED]] : bf16 to f32
// CHECK:   %[[N_LESS_ONE:.*]] = arith.subf %[[N]]
// CHECK:   arith.mulf %[[N_LESS_ONE]], %[[WIDE]]
// CHECK: arith.truncf %{{.*}} : f32 to bf16
func.func @multi_lora_dora_bfloat_layer(%x: tensor<?x8x32xbf16>, %base: tensor<?x8x16xbf16>, %index: tensor<?xi64>, %a: tensor<2x32x4xf32>, %b: tensor<2x4x16xf32>, %s: tensor<2xf32>, %n: tensor<2x16xf32>, %lb: tensor<16xbf16>) -> tensor<?x8x16xbf16> {
  %y = peft.multi_lora ["a", ""] %x, %base, %index, %a, %b, %s dora %n layer_bias %lb : (tensor<?x8x32xbf16>, tensor<?x8x16xbf16>, tensor<?xi64>, tensor<2x32x4xf32>, tensor<2x4x16xf32>, tensor<2xf32>, tensor<2x16xf32>, tensor<16xbf16>) -> tensor<?x8x16xbf16>
  return %y : tensor<?x8x16xbf16>
}

// -----

// peft.multi_ia3 on a flattened [batch·rows, features] value: each element
// times its row's slot vector, 1 for index -1, then flattened back.
// CHECK-LABEL: func.func @multi_ia3
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x16xf32>, %[[INDEX:[^:]*]]: tensor<?xi64>, %[[L:[^:]*]]: tensor<2x16xf32>)
// CHECK: %[[ROWS:.*]] = tensor.expand_shape %[[X]] {{\[}}[0, 1], [2]]
// CHECK: %[[SCALED:.*]] = linalg.generic {{.*}} ins(%[[ROWS]], %[[INDEX]] : tensor<?x?x16xf32>, tensor<?xi64>)
// CHECK:   %[[SLOT:.*]] = arith.maxsi
// CHECK:   %[[SCALE:.*]] = tensor.extract %[[L]][%[[SLOT]], %{{.*}}]
// CHECK:   %[[NONE:.*]] = arith.cmpi slt
// CHECK:   %[[PICKED:.*]] = arith.select %[[NONE]], %{{.*}}, %[[SCALE]]
// CHECK:   arith.mulf %{{.*}}, %[[PICKED]]
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[SCALED]] {{\[}}[0, 1], [2]]
// CHECK: return %[[FLAT]]
func.func @multi_ia3(%x: tensor<?x16xf32>, %index: tensor<?xi64>, %l: tensor<2x16xf32>) -> tensor<?x16xf32> {
  %y = peft.multi_ia3 ["a", ""] %x, %index, %l : (tensor<?x16xf32>, tensor<?xi64>, tensor<2x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
