// RUN: peft-opt %s --peft-cuda-emulate-launches | FileCheck %s --implicit-check-not=gpu.
//
// peft-cuda-emulate-launches: a launch as loops over its blocks and threads
// (z, y, x; blocks outside), the ids and sizes it reads mapped; device
// allocations, frees and copies as the host's.

// CHECK-LABEL: func.func @kernel
// CHECK-SAME: (%[[HOST:[^:]*]]: memref<4xf32>, %[[BLOCKS:[^:]*]]: index)
// CHECK: %[[BUFFER:.*]] = memref.alloc() : memref<4xf32>
// CHECK: memref.copy %[[HOST]], %[[BUFFER]]
// CHECK: scf.for %{{.*}} = %c0 to %c1
// CHECK:   scf.for %{{.*}} = %c0 to %c1
// CHECK:     scf.for %[[BX:.*]] = %c0 to %[[BLOCKS]]
// CHECK:       scf.for %{{.*}} = %c0 to %c1
// CHECK:         scf.for %{{.*}} = %c0 to %c1
// CHECK:           scf.for %[[TX:.*]] = %c0 to %c2
// CHECK:             %[[BASE:.*]] = arith.muli %[[BX]], %c2
// CHECK:             %[[ID:.*]] = arith.addi %[[BASE]], %[[TX]]
// CHECK:             memref.store %{{.*}}, %[[BUFFER]][%[[ID]]]
// CHECK: memref.dealloc %[[BUFFER]]
func.func @kernel(%host: memref<4xf32>, %blocks: index) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %buffer = gpu.alloc () : memref<4xf32>
  gpu.memcpy %buffer, %host : memref<4xf32>, memref<4xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %blocks, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c2, %sy = %c1, %sz = %c1) {
    %base = arith.muli %bx, %sx : index
    %id = arith.addi %base, %tx : index
    %one = arith.constant 1.0 : f32
    memref.store %one, %buffer[%id] : memref<4xf32>
    gpu.terminator
  }
  gpu.dealloc %buffer : memref<4xf32>
  return
}
