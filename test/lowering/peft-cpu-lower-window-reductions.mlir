// RUN: peft-opt %s --split-input-file --peft-cpu-lower-window-reductions="vector-width=4" | FileCheck %s

#in = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 * 2 + d4, d3 * 2 + d5)>
#win = affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5)>
#out = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3)>

// MaxPool 3x3, stride 2, on a padded 21x21 input: a call over the output's
// rows (n·3·10 of them) on the threads.
// CHECK-LABEL: func.func @max_pool
// CHECK-NOT: linalg.generic
// CHECK: %[[ROWS:.*]] = arith.muli %{{.*}}, %c30
// CHECK: constant @peft_max_pool_3_21x21_to_10x10_k3x3_s2x2_d1x1_task
// CHECK: %[[COUNT:.*]] = arith.index_cast %[[ROWS]]
// CHECK: call @peft_parallel_for(%{{.*}}, %{{.*}}, %[[COUNT]])
func.func @max_pool(%x: memref<?x3x21x21xf32>, %w: memref<3x3xf32>, %y: memref<?x3x10x10xf32>) {
  linalg.generic {indexing_maps = [#in, #win, #out], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%x, %w : memref<?x3x21x21xf32>, memref<3x3xf32>) outs(%y : memref<?x3x10x10xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.maximumf %o, %a : f32
    linalg.yield %m : f32
  }
  return
}

// The kernel: per row (image, channel, y), vectors of 4 outputs while their
// reads stay in the input row (x = 0 and 4: the last reads inputs 10..17),
// each tap 8 consecutive inputs of which every second is kept; the last
// two outputs one at a time.
// CHECK-LABEL: func.func private @peft_max_pool_3_21x21_to_10x10_k3x3_s2x2_d1x1(
// CHECK-SAME: %[[IN:[^:]*]]: memref<?x3x21x21xf32, strided<[?, ?, ?, 1], offset: ?>>, %[[OUT:[^:]*]]: memref<?x3x10x10xf32, strided<[?, ?, ?, 1], offset: ?>>, %[[BEGIN:[^:]*]]: index, %[[END:[^:]*]]: index)
// CHECK: scf.for %[[ROW:.*]] = %[[BEGIN]] to %[[END]]
// CHECK:   %[[Y:.*]] = arith.remui %[[ROW]], %c10
// CHECK:   scf.for %[[X:.*]] = %c0 to %c8 step %c4
// CHECK:     %[[ACC:.*]] = vector.load %[[OUT]][%{{.*}}, %{{.*}}, %[[Y]], %[[X]]] {{.*}} vector<4xf32>
// CHECK:     %[[WIDE:.*]] = vector.load %[[IN]]{{.*}} vector<8xf32>
// CHECK:     %[[TAP:.*]] = vector.shuffle %[[WIDE]], %[[WIDE]] [0, 2, 4, 6]
// CHECK:     arith.maximumf %[[ACC]], %[[TAP]] : vector<4xf32>
// CHECK-COUNT-8: arith.maximumf {{.*}} : vector<4xf32>
// CHECK:     vector.store
// CHECK:   scf.for %{{.*}} = %c8{{.*}} to %c10{{.*}} step %c1
// CHECK-COUNT-9: arith.maximumf {{.*}} : f32
// CHECK:     memref.store

// -----

#win = affine_map<(d0, d1, d2, d3) -> (d3)>
#in1 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 + d3 * 2)>
#out = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>

// AveragePool's sum, 1-d, stride 1, dilation 2: plain vector loads at each
// tap's offset, added in the taps' order; every read stays in the row, so
// no output is left to do one at a time.
// CHECK-LABEL: func.func private @peft_sum_pool_2_40_to_36_k3_s1_d2(
// CHECK: scf.for %[[X:.*]] = %c0 to %c36 step %c4
// CHECK:   vector.load {{.*}} vector<4xf32>
// CHECK:   %[[T0:.*]] = vector.load {{.*}} vector<4xf32>
// CHECK:   %[[S0:.*]] = arith.addf %{{.*}}, %[[T0]] : vector<4xf32>
// CHECK:   %[[T1:.*]] = vector.load {{.*}} vector<4xf32>
// CHECK:   arith.addf %[[S0]], %[[T1]] : vector<4xf32>
func.func @sum_pool(%x: memref<4x2x40xf32>, %w: memref<3xf32>, %y: memref<4x2x36xf32>) {
  linalg.generic {indexing_maps = [#in1, #win, #out], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x, %w : memref<4x2x40xf32>, memref<3xf32>) outs(%y : memref<4x2x36xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %o, %a : f32
    linalg.yield %s : f32
  }
  return
}

// -----

#in = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 + d4, d3 + d5)>
#win = affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5)>
#out = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3)>

// A window of more than 64 taps (a global pool) stays a generic, as does a
// max that also records where the maximum was.
// CHECK-LABEL: func.func @too_many_taps
// CHECK: linalg.generic
func.func @too_many_taps(%x: memref<1x8x9x9xf32>, %w: memref<9x9xf32>, %y: memref<1x8x1x1xf32>) {
  linalg.generic {indexing_maps = [#in, #win, #out], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%x, %w : memref<1x8x9x9xf32>, memref<9x9xf32>) outs(%y : memref<1x8x1x1xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %o, %a : f32
    linalg.yield %s : f32
  }
  return
}
