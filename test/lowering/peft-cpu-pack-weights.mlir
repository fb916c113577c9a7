// RUN: peft-opt %s --peft-cpu-pack-weights="tile=16" --split-input-file | FileCheck %s
// RUN: peft-opt %s --peft-cpu-pack-weights="tile=16" --cse --split-input-file | FileCheck %s --check-prefix=CSE

// x·Wᵀ on a weight argument: W [40, 24] becomes 3 panels of 16 channels
// (the last one zero-padded), stored under W's own name, and the GEMM reads
// element (n, k) at panel n floordiv 16, row k, column n mod 16.
// CHECK-DAG: #[[PANEL:.*]] = affine_map<(d0, d1, d2) -> (d1 floordiv 16, d2, d1 mod 16)>
// CHECK-LABEL: func.func @linear
// CHECK-SAME: %[[X:[^:]*]]: tensor<?x24xf32>, %{{[^:]*}}: tensor<?x40xf32>,
// CHECK-SAME: %[[P:[^:]*]]: tensor<3x24x16xf32> {peft.file = "model.onnx", peft.key = "fc.weight", peft.panels = {of = "fc.weight", shape = array<i64: 40, 24>, tile = 16 : i64, transposed = true}, peft.weight = "fc.weight"}
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[PANEL]], #{{.*}}], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME: ins(%[[X]], %[[P]] : tensor<?x24xf32>, tensor<3x24x16xf32>)
// CHECK-SAME: peft.panel_gemm = 16
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK-NOT: linalg.matmul
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @linear(%x: tensor<?x24xf32>, %w: tensor<40x24xf32> {peft.weight = "fc.weight", peft.file = "model.onnx"}, %acc: tensor<?x40xf32>) -> tensor<?x40xf32> {
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %w : tensor<?x24xf32>, tensor<40x24xf32>) outs(%acc : tensor<?x40xf32>) -> tensor<?x40xf32>
  return %y : tensor<?x40xf32>
}

// -----

// A weight stored [K, N] (weight_in_out) that another op also reads stays,
// and its packed copy is named apart.
// CHECK-LABEL: func.func @tied
// CHECK-SAME: tensor<24x40xf32> {peft.value = {{.*}}, peft.weight = "emb"}
// CHECK-SAME: tensor<3x24x16xf32> {peft.key = "emb", peft.panels = {of = "emb", shape = array<i64: 24, 40>, tile = 16 : i64, transposed = false}, peft.value = {{.*}}, peft.weight = "emb@panels_kn"}
#mk = affine_map<(m, n, k) -> (m, k)>
#kn = affine_map<(m, n, k) -> (k, n)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @tied(%x: tensor<2x24xf32>, %w: tensor<24x40xf32> {peft.weight = "emb", peft.value = dense<1.0> : tensor<24x40xf32>}, %acc: tensor<2x40xf32>) -> (tensor<2x40xf32>, tensor<24x40xf32>) {
  %y = linalg.matmul indexing_maps = [#mk, #kn, #mn] ins(%x, %w : tensor<2x24xf32>, tensor<24x40xf32>) outs(%acc : tensor<2x40xf32>) -> tensor<2x40xf32>
  return %y, %w : tensor<2x40xf32>, tensor<24x40xf32>
}

// -----

// Left alone: activations times activations, and half-precision weights.
// CHECK-LABEL: func.func @others
// CHECK-COUNT-2: linalg.matmul
// CHECK-NOT: peft.panels
func.func @others(%x: tensor<2x24xf32>, %y: tensor<24x40xf32>, %h: tensor<2x24xf16>, %w: tensor<24x40xf16> {peft.weight = "half"}, %acc: tensor<2x40xf32>, %hacc: tensor<2x40xf16>) -> (tensor<2x40xf32>, tensor<2x40xf16>) {
  %a = linalg.matmul ins(%x, %y : tensor<2x24xf32>, tensor<24x40xf32>) outs(%acc : tensor<2x40xf32>) -> tensor<2x40xf32>
  %b = linalg.matmul ins(%h, %w : tensor<2x24xf16>, tensor<24x40xf16>) outs(%hacc : tensor<2x40xf16>) -> tensor<2x40xf16>
  return %a, %b : tensor<2x40xf32>, tensor<2x40xf16>
}

// -----

// A convolution's kernel [out, in, kh, kw], collapsed to [out, in·kh·kw] for
// its GEMM: packed from the 4-d weight as that matrix (the manifest keeps the
// stored shape), the collapse and the unpacked weight gone.
// CHECK-LABEL: func.func @conv_kernel
// CHECK-SAME: %[[COLS:[^:]*]]: tensor<?x27xf32>
// CHECK-SAME: %[[P:[^:]*]]: tensor<1x27x16xf32> {peft.file = "model.onnx", peft.key = "conv.weight", peft.panels = {of = "conv.weight", shape = array<i64: 8, 3, 3, 3>, tile = 16 : i64, transposed = true}, peft.weight = "conv.weight"}
// CHECK-NOT: tensor.collapse_shape
// CHECK: linalg.generic {{.*}} ins(%[[COLS]], %[[P]] : tensor<?x27xf32>, tensor<1x27x16xf32>)
// CHECK-SAME: peft.panel_gemm = 16
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @conv_kernel(%cols: tensor<?x27xf32>, %w: tensor<8x3x3x3xf32> {peft.weight = "conv.weight", peft.file = "model.onnx"}, %acc: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %k = tensor.collapse_shape %w [[0], [1, 2, 3]] : tensor<8x3x3x3xf32> into tensor<8x27xf32>
  %y = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%cols, %k : tensor<?x27xf32>, tensor<8x27xf32>) outs(%acc : tensor<?x8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Three GEMMs reading one zero fill (CSE merged theirs; a gate, an up and a
// third projection of one input): each gets a fill of its own, so that its
// kernel starts from zeros itself; the copies are marked apart, so that CSE
// leaves them.
// CHECK-LABEL: func.func @shared_start
// CHECK: %[[F:.*]] = linalg.fill ins
// CHECK: %[[F3:.*]] = linalg.fill {peft.own_start = 3 : i64}
// CHECK: linalg.generic {{.*}} outs(%[[F3]] : tensor<?x40xf32>){{.*}}peft.panel_gemm = 16
// CHECK: %[[F2:.*]] = linalg.fill {peft.own_start = 2 : i64}
// CHECK: linalg.generic {{.*}} outs(%[[F2]] : tensor<?x40xf32>){{.*}}peft.panel_gemm = 16
// CHECK: linalg.generic {{.*}} outs(%[[F]] : tensor<?x40xf32>){{.*}}peft.panel_gemm = 16
// CSE-LABEL: func.func @shared_start
// CSE-COUNT-3: linalg.fill
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @shared_start(%x: tensor<?x24xf32>, %g: tensor<40x24xf32> {peft.weight = "gate"}, %u: tensor<40x24xf32> {peft.weight = "up"}, %v: tensor<40x24xf32> {peft.weight = "v"}) -> (tensor<?x40xf32>, tensor<?x40xf32>, tensor<?x40xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %rows = tensor.dim %x, %c0 : tensor<?x24xf32>
  %empty = tensor.empty(%rows) : tensor<?x40xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<?x40xf32>) -> tensor<?x40xf32>
  %a = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %g : tensor<?x24xf32>, tensor<40x24xf32>) outs(%acc : tensor<?x40xf32>) -> tensor<?x40xf32>
  %b = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %u : tensor<?x24xf32>, tensor<40x24xf32>) outs(%acc : tensor<?x40xf32>) -> tensor<?x40xf32>
  %c = linalg.matmul indexing_maps = [#mk, #nk, #mn] ins(%x, %v : tensor<?x24xf32>, tensor<40x24xf32>) outs(%acc : tensor<?x40xf32>) -> tensor<?x40xf32>
  return %a, %b, %c : tensor<?x40xf32>, tensor<?x40xf32>, tensor<?x40xf32>
}
