// RUN: peft-opt %s --split-input-file --peft-cuda-launch-kernels | FileCheck %s
// RUN: peft-opt %s --split-input-file --peft-cuda-launch-kernels="block-size=64" | FileCheck %s --check-prefix=BLOCK
//
// peft-cuda-launch-kernels: what touches memory runs on the GPU; the host
// allocates device buffers and launches.

// A parallel nest: one thread per iteration, linearized (j fastest), guarded,
// in blocks of 256; no launch for an empty space; the buffer on the device.
// CHECK-LABEL: func.func @bias_add
// CHECK-SAME: (%[[X:[^:]*]]: memref<?x8xf32>, %[[BIAS:[^:]*]]: memref<8xf32>)
// CHECK: %[[N:.*]] = memref.dim %[[X]]
// CHECK: %[[OUT:.*]] = gpu.alloc {{ *}}(%[[N]]) : memref<?x8xf32>
// CHECK: %[[BLOCKS:.*]] = arith.ceildivui %[[TOTAL:[^,]*]], %c256
// CHECK: %[[ANY:.*]] = arith.cmpi ugt, %[[TOTAL]]
// CHECK: scf.if %[[ANY]] {
// CHECK:   gpu.launch blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[BLOCKS]], %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c256,
// CHECK:     %[[BASE:.*]] = arith.muli %[[BX]], %c256
// CHECK:     %[[ID:.*]] = arith.addi %[[BASE]], %[[TX]]
// CHECK:     %[[IN:.*]] = arith.cmpi ult, %[[ID]], %[[TOTAL]]
// CHECK:     scf.if %[[IN]] {
// CHECK:       arith.remui %[[ID]]
// CHECK:       arith.divui %[[ID]]
// CHECK:       memref.load %[[X]]
// CHECK:       memref.load %[[BIAS]]
// CHECK:       memref.store %{{.*}}, %[[OUT]]
// CHECK:     gpu.terminator
// CHECK: return %[[OUT]]
// BLOCK-LABEL: func.func @bias_add
// BLOCK: gpu.launch {{.*}} threads({{.*}}) in (%{{.*}} = %c64,
func.func @bias_add(%x: memref<?x8xf32>, %bias: memref<8xf32>) -> memref<?x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %n = memref.dim %x, %c0 : memref<?x8xf32>
  %out = memref.alloc(%n) {alignment = 64 : i64} : memref<?x8xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c8) step (%c1, %c1) {
    %a = memref.load %x[%i, %j] : memref<?x8xf32>
    %b = memref.load %bias[%j] : memref<8xf32>
    %s = arith.addf %a, %b : f32
    memref.store %s, %out[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  return %out : memref<?x8xf32>
}

// -----

// A copy becomes a nest of its own; a reduction to one element (an scf.for
// alone) runs in a kernel of one thread; a temporary is freed on the device.
// CHECK-LABEL: func.func @copy_and_sum
// CHECK: %[[TMP:.*]] = gpu.alloc {{ *}}(%{{.*}}) : memref<?xf32>
// CHECK: gpu.launch
// CHECK:   memref.load %{{.*}} : memref<?xf32>
// CHECK:   memref.store %{{.*}}, %[[TMP]]
// CHECK: gpu.launch blocks({{.*}}) in (%{{[^ ]*}} = %[[ONE:c1[_0-9]*]], {{.*}}) threads({{.*}}) in (%{{[^ ]*}} = %[[ONE]],
// CHECK:   scf.for
// CHECK:     memref.load %[[TMP]]
// CHECK: gpu.dealloc {{ *}}%[[TMP]]
// CHECK-NOT: memref.copy
// CHECK-NOT: memref.alloc
func.func @copy_and_sum(%x: memref<?xf32>, %sum: memref<f32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = memref.dim %x, %c0 : memref<?xf32>
  %tmp = memref.alloc(%n) : memref<?xf32>
  memref.copy %x, %tmp : memref<?xf32> to memref<?xf32>
  scf.for %i = %c0 to %n step %c1 {
    %a = memref.load %tmp[%i] : memref<?xf32>
    %s = memref.load %sum[] : memref<f32>
    %t = arith.addf %a, %s : f32
    memref.store %t, %sum[] : memref<f32>
  }
  memref.dealloc %tmp : memref<?xf32>
  return
}

// -----

// A constant global: a device copy filled from the host's at the start,
// freed before the return.
memref.global "private" constant @table : memref<4xf32> = dense<[1.0, 2.0, 3.0, 4.0]>
// CHECK-LABEL: func.func @global
// CHECK: %[[HOST:.*]] = memref.get_global @table
// CHECK: %[[DEVICE:.*]] = gpu.alloc {{ *}}() : memref<4xf32>
// CHECK: gpu.memcpy {{ *}}%[[DEVICE]], %[[HOST]]
// CHECK: gpu.launch
// CHECK:   memref.load %[[DEVICE]]
// CHECK: gpu.dealloc {{ *}}%[[DEVICE]]
// CHECK-NEXT: return
func.func @global(%out: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %t = memref.get_global @table : memref<4xf32>
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %v = memref.load %t[%i] : memref<4xf32>
    memref.store %v, %out[%i] : memref<4xf32>
    scf.reduce
  }
  return
}

// -----

// A launch already there (peft-cuda-launch-gemms' kernels), even under a
// condition, is a kernel: not wrapped into another one.
// CHECK-LABEL: func.func @launched
// CHECK-NOT: gpu.launch
// CHECK: scf.if
// CHECK-NEXT: gpu.launch
// CHECK-NOT: gpu.launch
func.func @launched(%out: memref<4xf32>, %any: i1) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  scf.if %any {
    gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
               threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
      %one = arith.constant 1.0 : f32
      memref.store %one, %out[%tx] : memref<4xf32>
      gpu.terminator
    }
  }
  return
}
