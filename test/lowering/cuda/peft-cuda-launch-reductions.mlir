// RUN: peft-opt %s --split-input-file --peft-cuda-launch-reductions --canonicalize --cse | FileCheck %s
//
// peft-cuda-launch-reductions: a reduction over one dimension as one block
// per output element; threads fold strided elements from the neutral
// element; 32- and 64-bit partials combine within each warp by xor
// shuffles, lane 0 of each warp stores its warp's total in shared memory, a
// barrier, and every warp combines those by shuffles again; other types
// halve their partials in shared memory between barriers. Thread 0 combines
// the total into the output.

// Softmax's row maximum, rows of dynamic length: 256 threads, 8 warps.
// CHECK-LABEL: func.func @row_max
// CHECK-SAME: (%[[X:[^:]*]]: memref<?x4x?x?xf32>, %[[OUT:[^:]*]]: memref<?x4x?xf32>)
// CHECK-DAG: %[[NEUTRAL:.*]] = arith.constant 0xFF800000 : f32
// CHECK-DAG: %[[B:.*]] = memref.dim %[[X]], %c0
// CHECK-DAG: %[[I:.*]] = memref.dim %[[X]], %c2
// CHECK-DAG: %[[J:.*]] = memref.dim %[[X]], %c3
// CHECK: %[[BH:.*]] = arith.muli %[[B]], %c4
// CHECK: %[[ROWS:.*]] = arith.muli %[[BH]], %[[I]]
// CHECK: gpu.launch blocks(%[[ROW:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %[[ROWS]], %{{[^ ]*}} = %c1, %{{[^ ]*}} = %c1)
// CHECK-SAME: threads(%[[T:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c256,
// CHECK-SAME: workgroup(%[[SHARED:[^ ]*]] : memref<8xf32, #gpu.address_space<workgroup>>)
// CHECK-DAG: %[[II:.*]] = arith.remui %[[ROW]], %[[I]]
// CHECK-DAG: %[[REST:.*]] = arith.divui %[[ROW]], %[[I]]
// CHECK-DAG: %[[HH:.*]] = arith.remui %[[REST]], %c4
// CHECK: %[[PARTIAL:.*]] = scf.for %[[E:.*]] = %[[T]] to %[[J]] step %c256 iter_args(%[[ACC:.*]] = %[[NEUTRAL]]) -> (f32) {
// CHECK:   %[[V:.*]] = memref.load %[[X]][%{{.*}}, %[[HH]], %[[II]], %[[E]]]
// CHECK:   %[[M:.*]] = arith.maximumf %[[ACC]], %[[V]]
// CHECK:   scf.yield %[[M]]
// CHECK: %[[S16:.*]], %{{.*}} = gpu.shuffle xor %[[PARTIAL]], %c16_i32, %c32_i32 : f32
// CHECK: %[[M16:.*]] = arith.maximumf %[[PARTIAL]], %[[S16]]
// CHECK: gpu.shuffle xor %[[M16]], %c8_i32, %c32_i32
// CHECK: gpu.shuffle xor %{{.*}}, %c4_i32, %c32_i32
// CHECK: gpu.shuffle xor %{{.*}}, %c2_i32, %c32_i32
// CHECK: %[[S1:.*]], %{{.*}} = gpu.shuffle xor %[[M2:.*]], %c1_i32, %c32_i32
// CHECK: %[[WARP_TOTAL:.*]] = arith.maximumf %[[M2]], %[[S1]]
// CHECK: %[[LANE:.*]] = arith.remui %[[T]], %c32
// CHECK: %[[WARP:.*]] = arith.divui %[[T]], %c32
// CHECK: %[[LANE0:.*]] = arith.cmpi eq, %[[LANE]], %c0
// CHECK: scf.if %[[LANE0]] {
// CHECK:   memref.store %[[WARP_TOTAL]], %[[SHARED]][%[[WARP]]]
// CHECK: gpu.barrier
// CHECK: %[[IN:.*]] = arith.cmpi ult, %[[LANE]], %c8
// CHECK: %[[READ:.*]] = scf.if %[[IN]] -> (f32) {
// CHECK:   memref.load %[[SHARED]][%[[LANE]]]
// CHECK: } else {
// CHECK:   scf.yield %[[NEUTRAL]]
// CHECK: gpu.shuffle xor %[[READ]], %c16_i32, %c32_i32
// CHECK-COUNT-4: gpu.shuffle xor
// CHECK: %[[TOTAL:.*]] = arith.maximumf
// CHECK: %[[FIRST:.*]] = arith.cmpi eq, %[[T]], %c0
// CHECK: scf.if %[[FIRST]] {
// CHECK:   %[[OLD:.*]] = memref.load %[[OUT]][%{{.*}}, %[[HH]], %[[II]]]
// CHECK:   %[[NEW:.*]] = arith.maximumf %[[OLD]], %[[TOTAL]]
// CHECK:   memref.store %[[NEW]], %[[OUT]][%{{.*}}, %[[HH]], %[[II]]]
// CHECK-NOT: gpu.barrier
// CHECK-NOT: linalg.generic
func.func @row_max(%x: memref<?x4x?x?xf32>, %out: memref<?x4x?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(b, h, i, j) -> (b, h, i, j)>, affine_map<(b, h, i, j) -> (b, h, i)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%x : memref<?x4x?x?xf32>) outs(%out : memref<?x4x?xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %m = arith.maximumf %acc, %in : f32
    linalg.yield %m : f32
  }
  return
}

// -----

// Layer norm's variance over rows of 40: 64 threads (the power of two a row
// needs), 2 warps; the mean broadcast along the row and the index the body
// reads come from the row and the element.
// CHECK-LABEL: func.func @variance
// CHECK-SAME: (%[[X:[^:]*]]: memref<?x40xf32>, %[[MEAN:[^:]*]]: memref<?xf32>, %[[OUT:[^:]*]]: memref<?xf32>)
// CHECK: gpu.launch blocks(%[[ROW:[^,]*]], %{{[^)]*}}) in
// CHECK-SAME: threads(%[[T:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c64,
// CHECK-SAME: workgroup(%{{[^ ]*}} : memref<2xf32, #gpu.address_space<workgroup>>)
// CHECK: %[[I:.*]] = arith.remui %[[ROW]], %{{.*}}
// CHECK: scf.for %[[E:.*]] = %[[T]] to %c40 step %c64 iter_args(%[[ACC:.*]] = %{{.*}}) -> (f32) {
// CHECK:   %[[V:.*]] = memref.load %[[X]][%[[I]], %[[E]]]
// CHECK:   %[[MU:.*]] = memref.load %[[MEAN]][%[[I]]]
// CHECK:   %[[D:.*]] = arith.subf %[[V]], %[[MU]]
// CHECK:   %[[INDEX:.*]] = arith.index_cast %[[E]]
// CHECK:   arith.mulf
// CHECK:   arith.addf %[[ACC]]
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: gpu.barrier
// CHECK: arith.cmpi ult, %{{.*}}, %c2
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: arith.addf
// CHECK: memref.store %{{.*}}, %[[OUT]][%[[I]]]
func.func @variance(%x: memref<?x40xf32>, %mean: memref<?xf32>, %out: memref<?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>, affine_map<(i, j) -> (i)>], iterator_types = ["parallel", "reduction"]} ins(%x, %mean : memref<?x40xf32>, memref<?xf32>) outs(%out : memref<?xf32>) {
  ^bb0(%v: f32, %mu: f32, %acc: f32):
    %d = arith.subf %v, %mu : f32
    %j = linalg.index 1 : index
    %ji = arith.index_cast %j : index to i32
    %jf = arith.sitofp %ji : i32 to f32
    %w = arith.mulf %d, %jf : f32
    %s = arith.addf %acc, %w : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A half-type sum (shuffles move 32- and 64-bit values): 64 threads halve
// their partials in shared memory, 6 steps between barriers.
// CHECK-LABEL: func.func @half_sum
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[T:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c64,
// CHECK-SAME: workgroup(%[[SHARED:[^ ]*]] : memref<64xf16, #gpu.address_space<workgroup>>)
// CHECK: memref.store %{{.*}}, %[[SHARED]][%[[T]]]
// CHECK: gpu.barrier
// CHECK: scf.for %[[LEVEL:.*]] = %c0 to %c6 step %c1 {
// CHECK:   %[[NEXT:.*]] = arith.addi %[[LEVEL]], %c1
// CHECK:   %[[HALF:.*]] = arith.shrui %c64, %[[NEXT]]
// CHECK:   %[[LOWER:.*]] = arith.cmpi ult, %[[T]], %[[HALF]]
// CHECK:   scf.if %[[LOWER]] {
// CHECK:     %[[MINE:.*]] = memref.load %[[SHARED]][%[[T]]]
// CHECK:     %[[OTHER:.*]] = arith.addi %[[T]], %[[HALF]]
// CHECK:     %[[THEIRS:.*]] = memref.load %[[SHARED]][%[[OTHER]]]
// CHECK:     %[[BOTH:.*]] = arith.addf %[[MINE]], %[[THEIRS]]
// CHECK:     memref.store %[[BOTH]], %[[SHARED]][%[[T]]]
// CHECK:   gpu.barrier
// CHECK: %[[TOTAL:.*]] = memref.load %[[SHARED]][%c0]
// CHECK: arith.addf %{{.*}}, %[[TOTAL]]
// CHECK-NOT: gpu.shuffle
func.func @half_sum(%x: memref<?x40xf16>, %out: memref<?xf16>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>], iterator_types = ["parallel", "reduction"]} ins(%x : memref<?x40xf16>) outs(%out : memref<?xf16>) {
  ^bb0(%v: f16, %acc: f16):
    %s = arith.addf %acc, %v : f16
    linalg.yield %s : f16
  }
  return
}

// -----

// Left to the loop kernels: the output used twice (not a fold), an operation
// whose order matters, two reduction loops, and an output that a parallel
// loop does not index (blocks would fold into one element at once).
// CHECK-LABEL: func.func @others
// CHECK-NOT: gpu.launch
// CHECK-COUNT-4: linalg.generic
func.func @others(%x: memref<8x16xf32>, %y: memref<8x4x4xf32>, %out: memref<8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>], iterator_types = ["parallel", "reduction"]} ins(%x : memref<8x16xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %p = arith.mulf %acc, %acc : f32
    %s = arith.addf %p, %v : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>], iterator_types = ["parallel", "reduction"]} ins(%x : memref<8x16xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.subf %acc, %v : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, j, k)>, affine_map<(i, j, k) -> (i)>], iterator_types = ["parallel", "reduction", "reduction"]} ins(%y : memref<8x4x4xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, j, k)>, affine_map<(i, j, k) -> (i)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%y : memref<8x4x4xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%v: f32, %acc: f32):
    %s = arith.addf %acc, %v : f32
    linalg.yield %s : f32
  }
  return
}
