// RUN: peft-opt %s --split-input-file --peft-cpu-distribute-loops | FileCheck %s

#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#col3 = affine_map<(d0, d1, d2) -> (d2)>
#row3 = affine_map<(d0, d1, d2) -> (d0, d1)>

// A bias add over [1, 128, 768]: one forall iteration per row (the two
// leading loops), each a generic over one row of 768.
// CHECK-LABEL: func.func @bias_add
// CHECK: scf.forall (%[[B:.*]], %[[R:.*]]) in (1, 128) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:   %[[X:.*]] = tensor.extract_slice %{{.*}}[%[[B]], %[[R]], 0] [1, 1, 768] [1, 1, 1]
// CHECK:   linalg.generic {{.*}} ins(%[[X]], %{{.*}} : tensor<1x1x768xf32>, tensor<768xf32>)
// CHECK:   scf.forall.in_parallel
// CHECK:     tensor.parallel_insert_slice {{.*}} into %[[OUT]][%[[B]], %[[R]], 0] [1, 1, 768]
func.func @bias_add(%x: tensor<1x128x768xf32>, %b: tensor<768xf32>) -> tensor<1x128x768xf32> {
  %init = tensor.empty() : tensor<1x128x768xf32>
  %y = linalg.generic {indexing_maps = [#id3, #col3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %b : tensor<1x128x768xf32>, tensor<768xf32>) outs(%init : tensor<1x128x768xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<1x128x768xf32>
  return %y : tensor<1x128x768xf32>
}

// -----

#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#row3 = affine_map<(d0, d1, d2) -> (d0, d1)>

// A row reduction (layer norm's sum): the rows, never the reduced loop.
// CHECK-LABEL: func.func @row_sum
// CHECK: scf.forall ({{.*}}) in (2, %{{.*}})
// CHECK:   linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]{{.*}} ins(%{{.*}} : tensor<1x1x?xf32>)
func.func @row_sum(%x: tensor<2x?x?xf32>, %init: tensor<2x?xf32>) -> tensor<2x?xf32> {
  %y = linalg.generic {indexing_maps = [#id3, #row3], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x : tensor<2x?x?xf32>) outs(%init : tensor<2x?xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %o : f32
    linalg.yield %s : f32
  } -> tensor<2x?xf32>
  return %y : tensor<2x?xf32>
}

// -----

#id = affine_map<(d0, d1) -> (d0, d1)>
#mm_a = affine_map<(d0, d1, d2) -> (d0, d2)>
#mm_b = affine_map<(d0, d1, d2) -> (d2, d1)>
#mm_c = affine_map<(d0, d1, d2) -> (d0, d1)>

// Serial: too little work (8 x 64 < min-elements), one row, and a GEMM
// (its kernel splits its own work).
// CHECK-LABEL: func.func @serial
// CHECK-NOT: scf.forall
// CHECK: return
func.func @serial(%x: tensor<8x64xf32>, %row: tensor<1x100000xf32>, %a: tensor<128x256xf32>, %b: tensor<256x256xf32>, %c: tensor<128x256xf32>) -> (tensor<8x64xf32>, tensor<1x100000xf32>, tensor<128x256xf32>) {
  %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<8x64xf32>) outs(%x : tensor<8x64xf32>) {
  ^bb0(%v: f32, %o: f32):
    %e = math.exp %v : f32
    linalg.yield %e : f32
  } -> tensor<8x64xf32>
  %z = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%row : tensor<1x100000xf32>) outs(%row : tensor<1x100000xf32>) {
  ^bb0(%v: f32, %o: f32):
    %e = math.exp %v : f32
    linalg.yield %e : f32
  } -> tensor<1x100000xf32>
  %g = linalg.generic {indexing_maps = [#mm_a, #mm_b, #mm_c], iterator_types = ["parallel", "parallel", "reduction"]} ins(%a, %b : tensor<128x256xf32>, tensor<256x256xf32>) outs(%c : tensor<128x256xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  } -> tensor<128x256xf32>
  return %y, %z, %g : tensor<8x64xf32>, tensor<1x100000xf32>, tensor<128x256xf32>
}

// -----

#in = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d3, d2 + d4 * 18 + d5)>
#w = affine_map<(d0, d1, d2, d3, d4, d5) -> (d1, d3, d4, d5)>
#out = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2)>
#bias = affine_map<(d0, d1, d2) -> (d1)>
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// A convolution read through a window has a kernel that splits its work,
// and starts its output itself from the bias broadcast that feeds it: both
// stay as they are.
// CHECK-LABEL: func.func @window_gemm
// CHECK-NOT: scf.forall
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<64xf32>)
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x64x342xf32>, tensor<64x64x3x3xf32>)
func.func @window_gemm(%x: tensor<1x64x342xf32>, %w: tensor<64x64x3x3xf32>, %b: tensor<64xf32>) -> tensor<1x64x288xf32> {
  %empty = tensor.empty() : tensor<1x64x288xf32>
  %start = linalg.generic {indexing_maps = [#bias, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%b : tensor<64xf32>) outs(%empty : tensor<1x64x288xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  } -> tensor<1x64x288xf32>
  %y = linalg.generic {indexing_maps = [#in, #w, #out], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%x, %w : tensor<1x64x342xf32>, tensor<64x64x3x3xf32>) outs(%start : tensor<1x64x288xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %p = arith.mulf %a, %c : f32
    %s = arith.addf %o, %p : f32
    linalg.yield %s : f32
  } -> tensor<1x64x288xf32>
  return %y : tensor<1x64x288xf32>
}

// -----

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 48, d2, d1 mod 48)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// The map that alone reads a panel GEMM's result (split into a batch of
// rows; its sizes may be asked) is the GEMM kernel's epilogue: left alone.
// CHECK-LABEL: func.func @epilogue
// CHECK-NOT: scf.forall
// CHECK: math.erf
func.func @epilogue(%x: tensor<128x768xf32>, %w: tensor<64x768x48xf32>, %init: tensor<128x3072xf32>) -> tensor<1x128x3072xf32> {
  %c1 = arith.constant 1 : index
  %y = linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %w : tensor<128x768xf32>, tensor<64x768x48xf32>) outs(%init : tensor<128x3072xf32>) attrs = {peft.panel_gemm = 48 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  } -> tensor<128x3072xf32>
  %rows = tensor.expand_shape %y [[0, 1], [2]] output_shape [1, 128, 3072] : tensor<128x3072xf32> into tensor<1x128x3072xf32>
  %n = tensor.dim %rows, %c1 : tensor<1x128x3072xf32>
  %empty = tensor.empty() : tensor<1x128x3072xf32>
  %g = linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%rows : tensor<1x128x3072xf32>) outs(%empty : tensor<1x128x3072xf32>) {
  ^bb0(%in: f32, %o: f32):
    %e = math.erf %in : f32
    linalg.yield %e : f32
  } -> tensor<1x128x3072xf32>
  return %g : tensor<1x128x3072xf32>
}

// -----

#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#p = affine_map<(d0, d1, d2) -> (d1 floordiv 48, d2, d1 mod 48)>
#o = affine_map<(d0, d1, d2) -> (d0, d1)>
#id2 = affine_map<(d0, d1) -> (d0, d1)>

// SwiGLU's silu(gate) · up reads two panel GEMMs' results: the epilogue of
// one of them (the other's read as rows), left alone too.
// CHECK-LABEL: func.func @swiglu
// CHECK-NOT: scf.forall
// CHECK: math.exp
func.func @swiglu(%x: tensor<128x768xf32>, %wg: tensor<64x768x48xf32>, %wu: tensor<64x768x48xf32>, %init: tensor<128x3072xf32>) -> tensor<128x3072xf32> {
  %one = arith.constant 1.0 : f32
  %gate = linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %wg : tensor<128x768xf32>, tensor<64x768x48xf32>) outs(%init : tensor<128x3072xf32>) attrs = {peft.panel_gemm = 48 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  } -> tensor<128x3072xf32>
  %up = linalg.generic {indexing_maps = [#a, #p, #o], iterator_types = ["parallel", "parallel", "reduction"]} ins(%x, %wu : tensor<128x768xf32>, tensor<64x768x48xf32>) outs(%init : tensor<128x3072xf32>) attrs = {peft.panel_gemm = 48 : i64} {
  ^bb0(%i: f32, %j: f32, %acc: f32):
    %m = arith.mulf %i, %j : f32
    %r = arith.addf %m, %acc : f32
    linalg.yield %r : f32
  } -> tensor<128x3072xf32>
  %empty = tensor.empty() : tensor<128x3072xf32>
  %y = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%gate, %up : tensor<128x3072xf32>, tensor<128x3072xf32>) outs(%empty : tensor<128x3072xf32>) {
  ^bb0(%g: f32, %u: f32, %o: f32):
    %n = arith.negf %g : f32
    %e = math.exp %n : f32
    %d = arith.addf %e, %one : f32
    %s = arith.divf %g, %d : f32
    %r = arith.mulf %s, %u : f32
    linalg.yield %r : f32
  } -> tensor<128x3072xf32>
  return %y : tensor<128x3072xf32>
}
