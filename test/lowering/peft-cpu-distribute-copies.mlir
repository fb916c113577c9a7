// RUN: peft-opt %s --peft-cpu-distribute-copies="min-elements=64" | FileCheck %s

// A pad as bufferization leaves it: a fill spelled as a map, then the
// interior copied into a strided view. Both become rows on the threads, each
// row a loop of loads and stores.
// CHECK-LABEL: func.func @pad
// CHECK-SAME: (%[[X:.*]]: memref<?x4x8x8xf32>, %[[Y:.*]]: memref<?x4x10x10xf32>)
// CHECK: %[[N:.*]] = memref.dim %[[Y]], %c0
// CHECK: scf.forall (%[[I:.*]], %[[J:.*]], %[[K:.*]]) in (%[[N]], 4, 10)
// CHECK:   scf.for %[[L:.*]] = %c0{{.*}} to %{{.*}} step %c1
// CHECK:     memref.store %{{.*}}, %[[Y]][%[[I]], %[[J]], %[[K]], %[[L]]]
// CHECK: %[[INSIDE:.*]] = memref.subview %[[Y]][0, 0, 1, 1]
// CHECK: scf.forall (%[[A:.*]], %[[B:.*]], %[[C:.*]]) in (%{{.*}}, 4, 8)
// CHECK:   scf.for %[[D:.*]] =
// CHECK:     %[[V:.*]] = memref.load %[[X]][%[[A]], %[[B]], %[[C]], %[[D]]]
// CHECK:     memref.store %[[V]], %[[INSIDE]][%[[A]], %[[B]], %[[C]], %[[D]]]
// CHECK-NOT: memref.copy
// CHECK-NOT: linalg.map
func.func @pad(%x: memref<?x4x8x8xf32>, %y: memref<?x4x10x10xf32>) {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %n = memref.dim %x, %c0 : memref<?x4x8x8xf32>
  linalg.map outs(%y : memref<?x4x10x10xf32>)
    (%init: f32) {
      linalg.yield %zero : f32
    }
  %inside = memref.subview %y[0, 0, 1, 1] [%n, 4, 8, 8] [1, 1, 1, 1] : memref<?x4x10x10xf32> to memref<?x4x8x8xf32, strided<[400, 100, 10, 1], offset: 11>>
  memref.copy %x, %inside : memref<?x4x8x8xf32> to memref<?x4x8x8xf32, strided<[400, 100, 10, 1], offset: 11>>
  return
}

// A fill, and a strided slice made contiguous: the same. Small ones, and
// vectors, stay as they are.
// CHECK-LABEL: func.func @fill_and_gather
// CHECK: scf.forall {{.*}} in (16, 16)
// CHECK:   memref.store %{{.*}}, %{{.*}} : memref<16x16x16xf32>
// CHECK: scf.forall {{.*}} in (8, 8)
// CHECK:   memref.load %{{.*}} : memref<8x8x8xf32, strided<[512, 64, 2]>>
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : memref<4x4xf32>)
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<64xf32> to memref<64xf32>
func.func @fill_and_gather(%a: memref<16x16x16xf32>, %b: memref<8x8x8xf32, strided<[512, 64, 2]>>, %c: memref<8x8x8xf32>, %small: memref<4x4xf32>, %v: memref<64xf32>, %w: memref<64xf32>) {
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%one : f32) outs(%a : memref<16x16x16xf32>)
  memref.copy %b, %c : memref<8x8x8xf32, strided<[512, 64, 2]>> to memref<8x8x8xf32>
  linalg.fill ins(%one : f32) outs(%small : memref<4x4xf32>)
  memref.copy %v, %w : memref<64xf32> to memref<64xf32>
  return
}
