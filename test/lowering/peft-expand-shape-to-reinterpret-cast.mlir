// RUN: peft-opt %s --peft-expand-shape-to-reinterpret-cast | FileCheck %s

// [batch·sequence, 32] -> [batch, sequence, 32] on a contiguous buffer: the
// same memory with new sizes and row-major strides.
// CHECK-LABEL: func.func @split_dynamic_rows
// CHECK-SAME: (%[[ROWS:.*]]: memref<?x32xf32>, %[[B:.*]]: index, %[[S:.*]]: index)
// CHECK: %[[STRIDE:.*]] = arith.muli %[[S]], %{{.*}} : index
// CHECK: memref.reinterpret_cast %[[ROWS]] to offset: [0], sizes: [%[[B]], %[[S]], 32], strides: [%[[STRIDE]], 32, 1] : memref<?x32xf32> to memref<?x?x32xf32>
// CHECK-NOT: memref.expand_shape
func.func @split_dynamic_rows(%rows: memref<?x32xf32>, %b: index, %s: index) -> memref<?x?x32xf32> {
  %0 = memref.expand_shape %rows [[0, 1], [2]] output_shape [%b, %s, 32] : memref<?x32xf32> into memref<?x?x32xf32>
  return %0 : memref<?x?x32xf32>
}

// A group with one dynamic size is upstream's to lower.
// CHECK-LABEL: func.func @one_dynamic_size
// CHECK: memref.expand_shape
func.func @one_dynamic_size(%rows: memref<?x32xf32>, %b: index) -> memref<?x4x8xf32> {
  %0 = memref.expand_shape %rows [[0], [1, 2]] output_shape [%b, 4, 8] : memref<?x32xf32> into memref<?x4x8xf32>
  return %0 : memref<?x4x8xf32>
}

// So is a strided source.
// CHECK-LABEL: func.func @strided_source
// CHECK: memref.expand_shape
func.func @strided_source(%rows: memref<?x32xf32, strided<[64, 1]>>, %b: index, %s: index) -> memref<?x?x32xf32, strided<[?, 64, 1]>> {
  %0 = memref.expand_shape %rows [[0, 1], [2]] output_shape [%b, %s, 32] : memref<?x32xf32, strided<[64, 1]>> into memref<?x?x32xf32, strided<[?, 64, 1]>>
  return %0 : memref<?x?x32xf32, strided<[?, 64, 1]>>
}
