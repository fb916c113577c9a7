// RUN: peft-opt %s --peft-fuse-elementwise | FileCheck %s

#id = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>

// A bias add and an activation after a GEMM fuse into one loop nest; the
// GEMM and the reshape that restores the batch stay as they are.
// CHECK-LABEL: func.func @gemm_bias_relu
// CHECK: %[[Y:.*]] = linalg.matmul
// CHECK: %[[F:.*]] = linalg.generic {{.*}} ins(%[[Y]], %{{.*}} : tensor<?x8xf32>, tensor<8xf32>)
// CHECK:   arith.addf
// CHECK:   arith.maximumf
// CHECK-NOT: linalg.generic
// CHECK: tensor.expand_shape %[[F]]
func.func @gemm_bias_relu(%x: tensor<?x4xf32>, %w: tensor<4x8xf32>, %b: tensor<8xf32>, %n: index) -> tensor<?x2x8xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %rows = tensor.dim %x, %c0 : tensor<?x4xf32>
  %e = tensor.empty(%rows) : tensor<?x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x8xf32>) -> tensor<?x8xf32>
  %y = linalg.matmul ins(%x, %w : tensor<?x4xf32>, tensor<4x8xf32>) outs(%z : tensor<?x8xf32>) -> tensor<?x8xf32>
  %biased = linalg.generic {indexing_maps = [#id, #col, #id], iterator_types = ["parallel", "parallel"]}
      ins(%y, %b : tensor<?x8xf32>, tensor<8xf32>) outs(%e : tensor<?x8xf32>) {
  ^bb0(%in: f32, %bias: f32, %out: f32):
    %s = arith.addf %in, %bias : f32
    linalg.yield %s : f32
  } -> tensor<?x8xf32>
  %act = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%biased : tensor<?x8xf32>) outs(%e : tensor<?x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %r = arith.maximumf %in, %zero : f32
    linalg.yield %r : f32
  } -> tensor<?x8xf32>
  %out = tensor.expand_shape %act [[0, 1], [2]] output_shape [%n, 2, 8] : tensor<?x8xf32> into tensor<?x2x8xf32>
  return %out : tensor<?x2x8xf32>
}

// A producer that two ops read stays apart: fused, each reader would compute
// it again.
// CHECK-LABEL: func.func @shared_producer
// CHECK: %[[E:.*]] = linalg.generic
// CHECK:   math.exp
// CHECK: linalg.generic {{.*}} ins(%[[E]]
// CHECK-NOT: math.exp
// CHECK: linalg.generic {{.*}} ins(%[[E]]
// CHECK-NOT: math.exp
func.func @shared_producer(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %e = tensor.empty() : tensor<4x8xf32>
  %exp = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = math.exp %in : f32
    linalg.yield %v : f32
  } -> tensor<4x8xf32>
  %double = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%exp : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = arith.addf %in, %in : f32
    linalg.yield %v : f32
  } -> tensor<4x8xf32>
  %square = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%exp : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = arith.mulf %in, %in : f32
    linalg.yield %v : f32
  } -> tensor<4x8xf32>
  return %double, %square : tensor<4x8xf32>, tensor<4x8xf32>
}

#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#pool_in = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 * 2 + d4, d3 * 2 + d5)>
#pool_win = affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5)>
#pool_out = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3)>

// A ReLU read only by the pad of the next convolution writes into the
// padded tensor's interior, after a fill with the padding value (a map: a
// linalg.fill's slice would fold into a fill of its own); the pad is gone.
// CHECK-LABEL: func.func @relu_into_padding
// CHECK: %[[EMPTY:.*]] = tensor.empty(%{{.*}}) : tensor<?x4x10x10xf32>
// CHECK: %[[FILLED:.*]] = linalg.map outs(%[[EMPTY]] : tensor<?x4x10x10xf32>)
// CHECK: %[[SLOT:.*]] = tensor.extract_slice %[[FILLED]][0, 0, 1, 1] [%{{.*}}, 4, 8, 8] [1, 1, 1, 1]
// CHECK: %[[RELU:.*]] = linalg.generic {{.*}} outs(%[[SLOT]] : tensor<?x4x8x8xf32>)
// CHECK:   arith.maximumf
// CHECK: %[[PADDED:.*]] = tensor.insert_slice %[[RELU]] into %[[FILLED]][0, 0, 1, 1] [%{{.*}}, 4, 8, 8] [1, 1, 1, 1]
// CHECK-NOT: tensor.pad
// CHECK: return %[[PADDED]]
func.func @relu_into_padding(%x: tensor<?x4x8x8xf32>) -> tensor<?x4x10x10xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %x, %c0 : tensor<?x4x8x8xf32>
  %init = tensor.empty(%n) : tensor<?x4x8x8xf32>
  %relu = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<?x4x8x8xf32>) outs(%init : tensor<?x4x8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.maximumf %a, %zero : f32
    linalg.yield %m : f32
  } -> tensor<?x4x8x8xf32>
  %padded = tensor.pad %relu low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<?x4x8x8xf32> to tensor<?x4x10x10xf32>
  return %padded : tensor<?x4x10x10xf32>
}

// A max pool starting from -inf, read only by a pad: the same, the -inf
// fill moved onto the interior.
// CHECK-LABEL: func.func @pool_into_padding
// CHECK: %[[FILLED:.*]] = linalg.map outs(%{{.*}} : tensor<1x2x6x6xf32>)
// CHECK: %[[SLOT:.*]] = tensor.extract_slice %[[FILLED]][0, 0, 1, 1] [1, 2, 4, 4] [1, 1, 1, 1]
// CHECK: %[[START:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[SLOT]] : tensor<1x2x4x4xf32>)
// CHECK: %[[POOL:.*]] = linalg.generic {{.*}} outs(%[[START]] : tensor<1x2x4x4xf32>)
// CHECK: tensor.insert_slice %[[POOL]] into %[[FILLED]]
// CHECK-NOT: tensor.pad
func.func @pool_into_padding(%x: tensor<1x2x9x9xf32>) -> tensor<1x2x6x6xf32> {
  %zero = arith.constant 0.0 : f32
  %low = arith.constant 0xFF800000 : f32
  %window = tensor.empty() : tensor<3x3xf32>
  %empty = tensor.empty() : tensor<1x2x4x4xf32>
  %start = linalg.fill ins(%low : f32) outs(%empty : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %pool = linalg.generic {indexing_maps = [#pool_in, #pool_win, #pool_out], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%x, %window : tensor<1x2x9x9xf32>, tensor<3x3xf32>) outs(%start : tensor<1x2x4x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.maximumf %o, %a : f32
    linalg.yield %m : f32
  } -> tensor<1x2x4x4xf32>
  %padded = tensor.pad %pool low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<1x2x4x4xf32> to tensor<1x2x6x6xf32>
  return %padded : tensor<1x2x6x6xf32>
}

// A pad of a value something else reads too stays a pad.
// CHECK-LABEL: func.func @shared_source
// CHECK: tensor.pad
func.func @shared_source(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x6x6xf32>) {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<1x2x4x4xf32>
  %relu = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x2x4x4xf32>) outs(%init : tensor<1x2x4x4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.maximumf %a, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x2x4x4xf32>
  %padded = tensor.pad %relu low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<1x2x4x4xf32> to tensor<1x2x6x6xf32>
  return %relu, %padded : tensor<1x2x4x4xf32>, tensor<1x2x6x6xf32>
}
