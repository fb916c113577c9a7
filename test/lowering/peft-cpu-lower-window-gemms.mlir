// RUN: peft-opt %s --split-input-file --peft-cpu-lower-window-gemms="micro-rows=4 vector-width=8 tile=16 k-block=18" | FileCheck %s

#in = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d3, d2 + d4 * 7 + d5)>
#w = affine_map<(d0, d1, d2, d3, d4, d5) -> (d1, d3, d4, d5)>
#out = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2)>
#bias = affine_map<(d0, d1, d2) -> (d1)>
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// A 3x3 convolution over a 7-wide padded grid, 4 channels to 10, 42
// positions (6 output rows at the pitch of 7), the output starting from the
// bias: the broadcast is left to the kernel, which runs over (image, panel of
// 16 positions) units on the threads: 3 panels per image.
// CHECK-LABEL: func.func @conv3x3
// CHECK-NOT: linalg.generic
// CHECK: %[[UNITS:.*]] = arith.muli %{{.*}}, %c3
// CHECK: constant @peft_window_gemm_4x10x42_l63_taps_0_1_2_7_8_9_14_15_16_from_bias_task
// CHECK: %[[COUNT:.*]] = arith.index_cast %[[UNITS]]
// CHECK: call @peft_parallel_for(%{{.*}}, %{{.*}}, %[[COUNT]])
func.func @conv3x3(%x: memref<?x4x63xf32>, %w: memref<10x4x3x3xf32>, %b: memref<10xf32>, %y: memref<?x10x42xf32>) {
  linalg.generic {indexing_maps = [#bias, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%b : memref<10xf32>) outs(%y : memref<?x10x42xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  linalg.generic {indexing_maps = [#in, #w, #out], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%x, %w : memref<?x4x63xf32>, memref<10x4x3x3xf32>) outs(%y : memref<?x10x42xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %p = arith.mulf %a, %c : f32
    %s = arith.addf %o, %p : f32
    linalg.yield %s : f32
  }
  return
}

// The kernel: per unit, its image and panel; full panels, then the last one
// (10 positions: a full vector and a masked one of 2).
// CHECK-LABEL: func.func private @peft_window_gemm_4x10x42_l63_taps_0_1_2_7_8_9_14_15_16_from_bias(
// CHECK-SAME: %[[IN:[^:]*]]: memref<?x4x63xf32, strided<[?, ?, 1], offset: ?>>, %[[W:[^:]*]]: memref<10x4x3x3xf32, strided<[?, ?, ?, ?], offset: ?>>, %[[OUT:[^:]*]]: memref<?x10x42xf32, strided<[?, ?, 1], offset: ?>>, %[[BIAS:[^:]*]]: memref<10xf32, strided<[?], offset: ?>>, %[[BEGIN:[^:]*]]: index, %[[END:[^:]*]]: index)
// CHECK: scf.for %[[UNIT:.*]] = %[[BEGIN]] to %[[END]]
// CHECK:   %[[IMAGE:.*]] = arith.divui %[[UNIT]], %c3
// CHECK:   %[[PANEL:.*]] = arith.remui %[[UNIT]], %c3
// CHECK:   %[[FULL:.*]] = arith.cmpi ult, %[[PANEL]], %c2
// CHECK:   scf.if %[[FULL]]
// Channel blocks of 18 / 9 = 2 channels, tiles of 4 output channels.
// CHECK:     scf.for %[[C0:.*]] = %c0 to %c4 step %c2
// CHECK:       scf.for %{{.*}} = %c0{{.*}} to %c8 step %c4
// The first block starts from the bias, the others from the output.
// CHECK:         %[[FIRST:.*]] = arith.cmpi eq, %[[C0]], %c0
// CHECK:         scf.if %[[FIRST]]
// CHECK-COUNT-4:   memref.load %[[BIAS]]
// CHECK:         } else {
// CHECK-COUNT-8:   vector.load %[[OUT]]
// Per channel and tap: 2 window loads at the tap's offset, 4 broadcasts of
// the weight, 8 FMAs; 9 taps.
// CHECK:         scf.for %[[C:.*]] = %[[C0]] to %{{.*}} step %c1{{.*}} iter_args
// CHECK-COUNT-2:   vector.load %[[IN]][%[[IMAGE]], %[[C]], %{{.*}}]
// CHECK:           memref.load %[[W]][%{{.*}}, %[[C]], %c0{{.*}}, %c0{{.*}}]
// CHECK-COUNT-8:   vector.fma
// CHECK-COUNT-2:   vector.load %[[IN]]
// CHECK:           memref.load %[[W]][%{{.*}}, %[[C]], %c0{{.*}}, %c1{{.*}}]
// CHECK-COUNT-64:  vector.fma
// CHECK:           scf.yield
// CHECK-COUNT-8: vector.store
// The last 2 output channels: a tile of 2.
// CHECK-COUNT-4: vector.fma
// CHECK:   } else {
// CHECK:     vector.create_mask %c2{{.*}} : vector<8xi1>
// CHECK:     vector.maskedload %[[IN]]
// CHECK:     vector.maskedstore %[[OUT]]
// CHECK-LABEL: func.func private @peft_window_gemm_4x10x42_l63_taps_0_1_2_7_8_9_14_15_16_from_bias_task(
// CHECK-COUNT-4: llvm.load

// -----

#in = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d3, d2 + d4 * 7 + d5)>
#w = affine_map<(d0, d1, d2, d3, d4, d5) -> (d1, d3, d4, d5)>
#out = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2)>

// A phase of a strided convolution reads a strided slice of the kernel (any
// weight strides work) and accumulates into what the output holds; a fill
// of zeros is left to the kernel. Operands with a strided innermost
// dimension stay a generic.
// CHECK-LABEL: func.func @phases
// CHECK-SAME: %{{[^:]*}}: memref<2x4x28xf32>, %[[W:[^:]*]]: memref<8x4x2x2xf32, strided<[36, 9, 6, 2], offset: 4>>
// CHECK: memref.cast %[[W]] : memref<8x4x2x2xf32, strided<[36, 9, 6, 2], offset: 4>> to memref<8x4x2x2xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK: constant @peft_window_gemm_4x8x16_l28_taps_0_1_7_8_task
// CHECK-NOT: linalg.fill
// CHECK: constant @peft_window_gemm_4x8x16_l28_taps_0_1_7_8_from_zero_task
// CHECK: linalg.generic
// CHECK-SAME: strided<[224, 56, 2]>
func.func @phases(%x: memref<2x4x28xf32>, %w: memref<8x4x2x2xf32, strided<[36, 9, 6, 2], offset: 4>>, %y: memref<2x8x16xf32>, %z: memref<2x8x16xf32>, %strided: memref<2x4x28xf32, strided<[224, 56, 2]>>) {
  linalg.generic {indexing_maps = [#in, #w, #out], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%x, %w : memref<2x4x28xf32>, memref<8x4x2x2xf32, strided<[36, 9, 6, 2], offset: 4>>) outs(%y : memref<2x8x16xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %p = arith.mulf %a, %c : f32
    %s = arith.addf %o, %p : f32
    linalg.yield %s : f32
  }
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%z : memref<2x8x16xf32>)
  linalg.generic {indexing_maps = [#in, #w, #out], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%x, %w : memref<2x4x28xf32>, memref<8x4x2x2xf32, strided<[36, 9, 6, 2], offset: 4>>) outs(%z : memref<2x8x16xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %p = arith.mulf %a, %c : f32
    %s = arith.addf %o, %p : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#in, #w, #out], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%strided, %w : memref<2x4x28xf32, strided<[224, 56, 2]>>, memref<8x4x2x2xf32, strided<[36, 9, 6, 2], offset: 4>>) outs(%y : memref<2x8x16xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %p = arith.mulf %a, %c : f32
    %s = arith.addf %o, %p : f32
    linalg.yield %s : f32
  }
  return
}
