// RUN: peft-opt %s --split-input-file --peft-cpu-lower-panel-gemms="micro-rows=4 vector-width=8 k-block=16 m-block=32" | FileCheck %s
//
// peft-cpu-lower-panel-gemms: the op that starts a panel GEMM's output (a
// bias broadcast along the columns, or a zero fill) becomes the kernel's
// first K block starting its registers there.

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 16, d2, d1 mod 16)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>
#column = affine_map<(d0, d1) -> (d1)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>

// A linear layer's bias: the broadcast is gone, the bias is the kernel's.
// CHECK-LABEL: func.func @bias
// CHECK-SAME: (%{{[^:]*}}: memref<?x24xf32>, %{{[^:]*}}: memref<3x24x16xf32>, %{{[^:]*}}: memref<36xf32>, %[[OUT:[^:]*]]: memref<?x36xf32>)
// CHECK-NOT: linalg.generic
// CHECK: constant @peft_panel_gemm_24x36_16_from_bias_task
func.func @bias(%x: memref<?x24xf32>, %w: memref<3x24x16xf32>, %bias: memref<36xf32>, %out: memref<?x36xf32>) {
  linalg.generic {indexing_maps = [#column, #id2], iterator_types = ["parallel", "parallel"]} ins(%bias : memref<36xf32>) outs(%out : memref<?x36xf32>) {
  ^bb0(%in: f32, %o: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  return
}

// The kernel: in the first K block a tile's rows start as the bias's vectors
// of its columns (the last panel's masked), later blocks from out.
// CHECK-LABEL: func.func private @peft_panel_gemm_24x36_16_from_bias(
// CHECK-SAME: %{{[^:]*}}: memref<?x24xf32, strided<[?, 1], offset: ?>>, %{{[^:]*}}: memref<3x24x16xf32>, %[[C:[^:]*]]: memref<?x36xf32, strided<[?, 1], offset: ?>>, %[[B:[^:]*]]: memref<36xf32, strided<[1], offset: ?>>, %{{[^:]*}}: index, %{{[^:]*}}: index)
// CHECK: scf.for %[[K0:.*]] = %{{.*}} to %c24 step %c16
// CHECK:   %[[FIRST:.*]] = arith.cmpi eq, %[[K0]], %c0
// CHECK:   scf.if %[[FIRST]] -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK-COUNT-2: vector.load %[[B]]
// CHECK:   } else {
// CHECK-COUNT-8: vector.load %[[C]]
// CHECK: vector.maskedload %[[B]]

// -----

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 16, d2, d1 mod 16)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>

// Zeros: the fill is gone; the first block starts from zero vectors.
// CHECK-LABEL: func.func @zeros
// CHECK-NOT: linalg.fill
// CHECK: constant @peft_panel_gemm_24x36_16_from_zero_task
// CHECK-LABEL: func.func private @peft_panel_gemm_24x36_16_from_zero(
// CHECK: scf.if
// CHECK: arith.constant dense<0.000000e+00> : vector<8xf32>
func.func @zeros(%x: memref<?x24xf32>, %w: memref<3x24x16xf32>, %out: memref<?x36xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%out : memref<?x36xf32>)
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  return
}

// -----

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 16, d2, d1 mod 16)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>
#column = affine_map<(d0, d1) -> (d1)>
#row = affine_map<(d0, d1) -> (d0)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>

// What the kernel cannot start stays, and the kernel loads out: a broadcast
// along the rows, a fill of ones, and a bias broadcast that something reads
// before the GEMM.
// CHECK-LABEL: func.func @kept
// CHECK: linalg.generic
// CHECK: constant @peft_panel_gemm_24x36_16_task
// CHECK: linalg.fill
// CHECK: constant @peft_panel_gemm_24x36_16_task
// CHECK: linalg.generic
// CHECK: memref.copy
// CHECK: constant @peft_panel_gemm_24x36_16_task
// CHECK-NOT: from_
func.func @kept(%x: memref<?x24xf32>, %w: memref<3x24x16xf32>, %rows: memref<?xf32>, %bias: memref<36xf32>, %out: memref<?x36xf32>, %seen: memref<?x36xf32>) {
  linalg.generic {indexing_maps = [#row, #id2], iterator_types = ["parallel", "parallel"]} ins(%rows : memref<?xf32>) outs(%out : memref<?x36xf32>) {
  ^bb0(%in: f32, %o: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%one : f32) outs(%out : memref<?x36xf32>)
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#column, #id2], iterator_types = ["parallel", "parallel"]} ins(%bias : memref<36xf32>) outs(%out : memref<?x36xf32>) {
  ^bb0(%in: f32, %o: f32):
    linalg.yield %in : f32
  }
  memref.copy %out, %seen : memref<?x36xf32> to memref<?x36xf32>
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  return
}
