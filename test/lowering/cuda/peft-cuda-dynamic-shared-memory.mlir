// RUN: peft-opt %s --split-input-file --peft-cuda-dynamic-shared-memory | FileCheck %s
//
// peft-cuda-dynamic-shared-memory: a launch whose workgroup buffers need more
// than 48 KiB launches with their total as dynamic shared memory, each
// buffer a view of it at a multiple of 128 bytes; smaller launches stay.

// 40960 + 60 + 34816 bytes: the second buffer at 40960, the third at 41088
// (40960 + 60 rounded up to 128), 75904 in all. Private memory and the
// kernel's body are kept; the body uses the views.
// CHECK-LABEL: func.func @large
// CHECK: %[[BYTES:.*]] = arith.constant 75904 : i32
// CHECK: gpu.launch
// CHECK-SAME: dynamic_shared_memory_size %[[BYTES]]
// CHECK-SAME: private(%[[ACC:[^ ]*]] : memref<64xf32, #gpu.address_space<private>>)
// CHECK-NOT: workgroup(
// CHECK: %[[SHARED:.*]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: %[[AT_A:.*]] = arith.constant 0 : index
// CHECK: %[[A:.*]] = memref.view %[[SHARED]][%[[AT_A]]][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<4x128x40xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[AT_B:.*]] = arith.constant 40960 : index
// CHECK: %[[B:.*]] = memref.view %[[SHARED]][%[[AT_B]]][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<3x5xf32, #gpu.address_space<workgroup>>
// CHECK: %[[AT_C:.*]] = arith.constant 41088 : index
// CHECK: %[[C:.*]] = memref.view %[[SHARED]][%[[AT_C]]][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<4x32x136xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[X:.*]] = memref.load %[[B]]
// CHECK: memref.store %[[X]], %[[ACC]]
// CHECK: %[[H:.*]] = memref.load %[[A]]
// CHECK: memref.store %[[H]], %[[C]]
// CHECK: gpu.terminator
func.func @large(%out: memref<4xf32>) {
  %c1 = arith.constant 1 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1)
             workgroup(%a : memref<4x128x40xbf16, #gpu.address_space<workgroup>>, %b : memref<3x5xf32, #gpu.address_space<workgroup>>, %c : memref<4x32x136xbf16, #gpu.address_space<workgroup>>)
             private(%acc : memref<64xf32, #gpu.address_space<private>>) {
    %c0 = arith.constant 0 : index
    %x = memref.load %b[%c0, %tx] : memref<3x5xf32, #gpu.address_space<workgroup>>
    memref.store %x, %acc[%c0] : memref<64xf32, #gpu.address_space<private>>
    %h = memref.load %a[%c0, %c0, %c0] : memref<4x128x40xbf16, #gpu.address_space<workgroup>>
    memref.store %h, %c[%c0, %c0, %c0] : memref<4x32x136xbf16, #gpu.address_space<workgroup>>
    %y = memref.load %acc[%c0] : memref<64xf32, #gpu.address_space<private>>
    memref.store %y, %out[%bx] : memref<4xf32>
    gpu.terminator
  }
  return
}

// -----

// 48 KiB exactly: static, as it was.
// CHECK-LABEL: func.func @small
// CHECK: gpu.launch
// CHECK-SAME: workgroup(%{{[^ ]*}} : memref<2x96x128xf16, #gpu.address_space<workgroup>>)
// CHECK-NOT: dynamic_shared_memory
func.func @small(%out: memref<4xf16>) {
  %c1 = arith.constant 1 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c1, %sy = %c1, %sz = %c1)
             workgroup(%a : memref<2x96x128xf16, #gpu.address_space<workgroup>>) {
    %c0 = arith.constant 0 : index
    %h = memref.load %a[%c0, %c0, %c0] : memref<2x96x128xf16, #gpu.address_space<workgroup>>
    memref.store %h, %out[%bx] : memref<4xf16>
    gpu.terminator
  }
  return
}
