// RUN: peft-opt %s --split-input-file --peft-cpu-lower-panel-gemms="micro-rows=4 vector-width=8 k-block=16 m-block=32" | FileCheck %s
//
// peft-cpu-lower-panel-gemms: the map that alone reads a panel GEMM's result
// runs as the kernel's epilogue.

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 16, d2, d1 mod 16)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// GELU-like (x·0.5·(1 + erf(x/√2))) on the result split into a batch of
// rows, then nothing else reads the result: one call, at the map, of a kernel
// named after the epilogue; the map is gone.
// CHECK-LABEL: func.func @gelu
// CHECK-SAME: (%[[X:[^:]*]]: memref<?x24xf32>, %{{[^:]*}}: memref<3x24x16xf32>, %[[OUT:[^:]*]]: memref<?x36xf32>, %{{[^:]*}}: index, %{{[^:]*}}: index)
// CHECK: %[[Y:.*]] = memref.alloc
// CHECK: %[[TARGET:.*]] = memref.collapse_shape %[[Y]] {{\[\[}}0, 1], [2]]
// CHECK: memref.cast %[[TARGET]] : memref<?x36xf32> to memref<?x36xf32, strided<[?, 1], offset: ?>>
// CHECK: constant @peft_panel_gemm_24x36_16_epilogue_[[KEY:[0-9a-f]+]]_task
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]]
func.func @gelu(%x: memref<?x24xf32>, %w: memref<3x24x16xf32>, %out: memref<?x36xf32>, %n: index, %s: index) -> memref<?x?x36xf32> {
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  %rows = memref.expand_shape %out [[0, 1], [2]] output_shape [%n, %s, 36] : memref<?x36xf32> into memref<?x?x36xf32>
  %y = memref.alloc(%n, %s) : memref<?x?x36xf32>
  %root2 = arith.constant 1.41421354 : f32
  %one = arith.constant 1.0 : f32
  %half = arith.constant 0.5 : f32
  linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%rows : memref<?x?x36xf32>) outs(%y : memref<?x?x36xf32>) {
  ^bb0(%in: f32, %o: f32):
    %d = arith.divf %in, %root2 : f32
    %e = math.erf %d : f32
    %p1 = arith.addf %e, %one : f32
    %t = arith.mulf %in, %p1 : f32
    %g = arith.mulf %t, %half : f32
    linalg.yield %g : f32
  }
  return %y : memref<?x?x36xf32>
}

// The kernel: the last K block's sums (24 = 16 + 8: the second block) go
// through the epilogue on vectors, the constants splatted, into the target;
// other blocks' sums to out.
// CHECK-LABEL: func.func private @peft_panel_gemm_24x36_16_epilogue_
// CHECK-SAME: [[KEY]](
// CHECK-SAME: %{{[^:]*}}: memref<?x24xf32, strided<[?, 1], offset: ?>>, %{{[^:]*}}: memref<3x24x16xf32>, %[[C:[^:]*]]: memref<?x36xf32, strided<[?, 1], offset: ?>>, %[[T:[^:]*]]: memref<?x36xf32, strided<[?, 1], offset: ?>>, %{{[^:]*}}: index, %{{[^:]*}}: index)
// CHECK: %[[LAST:.*]] = arith.cmpi eq, %{{.*}}, %c24
// CHECK: scf.if %[[LAST]] {
// CHECK:   arith.constant dense<1.41421354> : vector<8xf32>
// CHECK:   arith.divf {{.*}} : vector<8xf32>
// CHECK:   math.erf {{.*}} : vector<8xf32>
// CHECK:   vector.store %{{.*}}, %[[T]]
// CHECK: } else {
// CHECK:   vector.store %{{.*}}, %[[C]]

// -----

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 16, d2, d1 mod 16)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>

// DoRA's rescale n·(t − bias) + bias after an unmerged LoRA's two GEMMs: one
// kernel does the layer, s·Bᵀ and the rescale (rows of nothing, columns of
// n and bias). A residual add (rows) after a plain GEMM reads the residual.
// CHECK-LABEL: func.func @dora
// CHECK: constant @peft_panel_gemm_24x32_16_lowrank4_epilogue_{{[0-9a-f]+}}_task
// CHECK-NOT: linalg.generic
func.func @dora(%x: memref<8x24xf32>, %w: memref<2x24x16xf32>, %s: memref<8x4xf32>, %b: memref<2x4x16xf32>, %out: memref<8x32xf32>, %n: memref<32xf32>, %bias: memref<32xf32>, %y: memref<8x32xf32>) {
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<8x24xf32>, memref<2x24x16xf32>) outs(%out : memref<8x32xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%s, %b : memref<8x4xf32>, memref<2x4x16xf32>) outs(%out : memref<8x32xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id2, #col, #col, #id2], iterator_types = ["parallel", "parallel"]} ins(%out, %n, %bias : memref<8x32xf32>, memref<32xf32>, memref<32xf32>) outs(%y : memref<8x32xf32>) {
  ^bb0(%t: f32, %f: f32, %c: f32, %o: f32):
    %d = arith.subf %t, %c : f32
    %m = arith.mulf %f, %d : f32
    %r = arith.addf %m, %c : f32
    linalg.yield %r : f32
  }
  return
}

// CHECK-LABEL: func.func @residual
// CHECK-SAME: %[[RES:[^:]*]]: memref<8x32xf32>, %{{[^:]*}}: memref<8x32xf32>)
// CHECK: %[[R:.*]] = memref.cast %[[RES]] : memref<8x32xf32> to memref<?x32xf32, strided<[?, 1], offset: ?>>
// CHECK: llvm.store
// CHECK: constant @peft_panel_gemm_24x32_16_epilogue_{{[0-9a-f]+}}_task
func.func @residual(%x: memref<8x24xf32>, %w: memref<2x24x16xf32>, %out: memref<8x32xf32>, %residual: memref<8x32xf32>, %y: memref<8x32xf32>) {
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<8x24xf32>, memref<2x24x16xf32>) outs(%out : memref<8x32xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%out, %residual : memref<8x32xf32>, memref<8x32xf32>) outs(%y : memref<8x32xf32>) {
  ^bb0(%t: f32, %r: f32, %o: f32):
    %s = arith.addf %t, %r : f32
    linalg.yield %s : f32
  }
  return
}

// Not epilogues: a result something else reads too, and a map whose ops
// are not elementwise arithmetic.
// CHECK-LABEL: func.func @shared
// CHECK: constant @peft_panel_gemm_24x32_16_task
// CHECK: linalg.generic
// CHECK: memref.copy
func.func @shared(%x: memref<8x24xf32>, %w: memref<2x24x16xf32>, %out: memref<8x32xf32>, %y: memref<8x32xf32>, %z: memref<8x32xf32>) {
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<8x24xf32>, memref<2x24x16xf32>) outs(%out : memref<8x32xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%out : memref<8x32xf32>) outs(%y : memref<8x32xf32>) {
  ^bb0(%t: f32, %o: f32):
    %s = arith.addf %t, %t : f32
    linalg.yield %s : f32
  }
  memref.copy %out, %z : memref<8x32xf32> to memref<8x32xf32>
  return
}

// -----

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 16, d2, d1 mod 16)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// The epilogue's output sized by memref.dim of the result's view (a residual
// add moved before a multi-LoRA update sizes it so): sizes read nothing, the
// add is still the epilogue.
// CHECK-LABEL: func.func @sized_by_result
// CHECK: constant @peft_panel_gemm_24x36_16_epilogue_{{[0-9a-f]+}}_task
// CHECK-NOT: linalg.generic
func.func @sized_by_result(%x: memref<?x24xf32>, %w: memref<3x24x16xf32>, %out: memref<?x36xf32>, %res: memref<?x?x36xf32>, %n: index, %s: index) -> memref<?x?x36xf32> {
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  %rows = memref.expand_shape %out [[0, 1], [2]] output_shape [%n, %s, 36] : memref<?x36xf32> into memref<?x?x36xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %b = memref.dim %rows, %c0 : memref<?x?x36xf32>
  %t = memref.dim %rows, %c1 : memref<?x?x36xf32>
  %y = memref.alloc(%b, %t) : memref<?x?x36xf32>
  linalg.generic {indexing_maps = [#id3, #id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%rows, %res : memref<?x?x36xf32>, memref<?x?x36xf32>) outs(%y : memref<?x?x36xf32>) {
  ^bb0(%in: f32, %r: f32, %o: f32):
    %sum = arith.addf %in, %r : f32
    linalg.yield %sum : f32
  }
  return %y : memref<?x?x36xf32>
}

// -----

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 16, d2, d1 mod 16)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>

// SwiGLU's silu(gate) · up reads two panel GEMMs' results: the gate's kernel
// runs at the map with it as its epilogue, the up projection's result (the
// GEMM before it, as it was) read as rows; the map is gone.
// CHECK-LABEL: func.func @swiglu
// CHECK-SAME: (%[[X:[^:]*]]: memref<?x24xf32>, %{{[^:]*}}: memref<3x24x16xf32>, %{{[^:]*}}: memref<3x24x16xf32>, %[[GATE:[^:]*]]: memref<?x36xf32>, %[[UP:[^:]*]]: memref<?x36xf32>, %[[Y:[^:]*]]: memref<?x36xf32>)
// CHECK: memref.cast %[[UP]]
// CHECK: constant @peft_panel_gemm_24x36_16_task
// CHECK: memref.cast %[[Y]]
// CHECK: memref.cast %[[UP]]
// CHECK: memref.cast %[[GATE]]
// CHECK: constant @peft_panel_gemm_24x36_16_epilogue_[[SWIGLU:[0-9a-f]+]]_task
// CHECK-NOT: linalg.generic
// CHECK-LABEL: func.func private @peft_panel_gemm_24x36_16_epilogue_
// CHECK-SAME: [[SWIGLU]](
// CHECK-SAME: %[[C:[^:]*]]: memref<?x36xf32, strided<[?, 1], offset: ?>>, %[[T:[^:]*]]: memref<?x36xf32, strided<[?, 1], offset: ?>>, %[[ROWS:[^:]*]]: memref<?x36xf32, strided<[?, 1], offset: ?>>, %{{[^:]*}}: index, %{{[^:]*}}: index)
// CHECK: scf.if
// CHECK:   %[[UPROW:.*]] = vector.load %[[ROWS]]
// CHECK:   math.exp {{.*}} : vector<8xf32>
// CHECK:   arith.mulf %{{.*}}, %[[UPROW]] : vector<8xf32>
// CHECK:   vector.store %{{.*}}, %[[T]]
func.func @swiglu(%x: memref<?x24xf32>, %wg: memref<3x24x16xf32>, %wu: memref<3x24x16xf32>, %gate: memref<?x36xf32>, %up: memref<?x36xf32>, %y: memref<?x36xf32>) {
  %one = arith.constant 1.0 : f32
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %wg : memref<?x24xf32>, memref<3x24x16xf32>) outs(%gate : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %wu : memref<?x24xf32>, memref<3x24x16xf32>) outs(%up : memref<?x36xf32>) attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%gate, %up : memref<?x36xf32>, memref<?x36xf32>) outs(%y : memref<?x36xf32>) {
  ^bb0(%g: f32, %u: f32, %o: f32):
    %n = arith.negf %g : f32
    %e = math.exp %n : f32
    %d = arith.addf %e, %one : f32
    %s = arith.divf %g, %d : f32
    %r = arith.mulf %s, %u : f32
    linalg.yield %r : f32
  }
  return
}
