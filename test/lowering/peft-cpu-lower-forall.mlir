// RUN: peft-opt %s --peft-cpu-lower-forall | FileCheck %s

#id = affine_map<(d0, d1) -> (d0, d1)>

// A forall over (2, ?) rows: a call through peft_parallel_for over 2·n
// iterations, the captures (the memrefs, the dynamic bound) in a context
// struct on the caller's stack; the task function runs a range of
// iterations, delinearized back into the two induction variables.
// CHECK-LABEL: func.func @rows(
// CHECK-SAME: %[[X:.*]]: memref<2x?x16xf32>, %[[Y:.*]]: memref<2x?x16xf32>, %[[N:.*]]: index)
// CHECK:   %[[CTX:.*]] = llvm.alloca
// CHECK:   %[[TOTAL:.*]] = arith.muli %[[N]], %c2
// CHECK:   llvm.store
// CHECK:   %[[TASK:.*]] = constant @rows_parallel_0_task
// CHECK:   %[[COUNT:.*]] = arith.index_cast %[[TOTAL]] : index to i64
// CHECK:   call @peft_parallel_for({{.*}}, %[[CTX]], %[[COUNT]])
// CHECK-NOT: scf.forall
// CHECK: func.func private @rows_parallel_0(%[[XK:.*]]: memref<2x?x16xf32>, %{{.*}}: memref<2x?x16xf32>, %[[NK:.*]]: index, %[[BEGIN:.*]]: index, %[[END:.*]]: index)
// CHECK:   scf.for %[[T:.*]] = %[[BEGIN]] to %[[END]]
// CHECK:     %[[IJ:.*]]:2 = affine.delinearize_index %[[T]] into (2, %[[NK]])
// CHECK:     memref.subview %[[XK]][%[[IJ]]#0, %[[IJ]]#1, 0]
// CHECK:     linalg.generic
func.func @rows(%x: memref<2x?x16xf32>, %y: memref<2x?x16xf32>, %n: index) {
  scf.forall (%i, %j) in (2, %n) {
    %xs = memref.subview %x[%i, %j, 0] [1, 1, 16] [1, 1, 1] : memref<2x?x16xf32> to memref<1x16xf32, strided<[16, 1], offset: ?>>
    %ys = memref.subview %y[%i, %j, 0] [1, 1, 16] [1, 1, 1] : memref<2x?x16xf32> to memref<1x16xf32, strided<[16, 1], offset: ?>>
    linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%xs : memref<1x16xf32, strided<[16, 1], offset: ?>>) outs(%ys : memref<1x16xf32, strided<[16, 1], offset: ?>>) {
    ^bb0(%v: f32, %o: f32):
      %e = math.exp %v : f32
      linalg.yield %e : f32
    }
  }
  return
}

// Two loops that make the same function (two layers) share one.
// CHECK-LABEL: func.func @layers(
// CHECK:   constant @layers_parallel_0_task
// CHECK:   call @peft_parallel_for(
// CHECK:   constant @layers_parallel_0_task
// CHECK:   call @peft_parallel_for(
// CHECK: func.func private @layers_parallel_0(
// CHECK-NOT: func.func private @layers_parallel_1(
func.func @layers(%x: memref<64x16xf32>, %y: memref<64x16xf32>) {
  scf.forall (%i) in (64) {
    %xs = memref.subview %x[%i, 0] [1, 16] [1, 1] : memref<64x16xf32> to memref<16xf32, strided<[1], offset: ?>>
    %ys = memref.subview %y[%i, 0] [1, 16] [1, 1] : memref<64x16xf32> to memref<16xf32, strided<[1], offset: ?>>
    memref.copy %xs, %ys : memref<16xf32, strided<[1], offset: ?>> to memref<16xf32, strided<[1], offset: ?>>
  }
  scf.forall (%i) in (64) {
    %ys = memref.subview %y[%i, 0] [1, 16] [1, 1] : memref<64x16xf32> to memref<16xf32, strided<[1], offset: ?>>
    %xs = memref.subview %x[%i, 0] [1, 16] [1, 1] : memref<64x16xf32> to memref<16xf32, strided<[1], offset: ?>>
    memref.copy %ys, %xs : memref<16xf32, strided<[1], offset: ?>> to memref<16xf32, strided<[1], offset: ?>>
  }
  return
}

// A forall in a forall: the inner one runs serially in the outer's task.
// CHECK-LABEL: func.func @nested(
// CHECK:   call @peft_parallel_for
// CHECK: func.func private @nested_parallel_0(
// CHECK:   scf.for
// CHECK:     scf.for
// CHECK-NOT: scf.forall

// The tasks unpack the context and call the functions; they come last.
// CHECK: func.func private @rows_parallel_0_task(%{{.*}}: !llvm.ptr, %{{.*}}: index, %{{.*}}: index)
// CHECK:   llvm.load
// CHECK:   call @rows_parallel_0(
// CHECK: func.func private @peft_parallel_for(!llvm.ptr, !llvm.ptr, i64)
// CHECK: func.func private @layers_parallel_0_task(
// CHECK: func.func private @nested_parallel_0_task(
func.func @nested(%x: memref<8x8xf32>) {
  %c = arith.constant 1.0 : f32
  scf.forall (%i) in (8) {
    scf.forall (%j) in (8) {
      memref.store %c, %x[%i, %j] : memref<8x8xf32>
    }
  }
  return
}
