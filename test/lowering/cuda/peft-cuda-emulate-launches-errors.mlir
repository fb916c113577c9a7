// RUN: peft-opt %s --split-input-file --verify-diagnostics --peft-cuda-emulate-launches
//
// What threads run one after another cannot reproduce is refused, naming the
// op: a value read from memory or a thread's loop index used across a
// barrier, a barrier under a condition, private memory used other than by
// loads and stores.

func.func @loaded_across_barrier(%in: memref<4xf32>, %out: memref<4xf32>) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %value = memref.load %in[%tx] : memref<4xf32>
    gpu.barrier
    // expected-error @+1 {{a value read from memory is used across a barrier}}
    memref.store %value, %out[%tx] : memref<4xf32>
    gpu.terminator
  }
  return
}

// -----

func.func @conditional_barrier(%out: memref<4xf32>, %any: i1) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    // expected-error @+1 {{a barrier must be in the kernel's body or in its loops}}
    scf.if %any {
      gpu.barrier
    }
    gpu.terminator
  }
  return
}

// -----

func.func @thread_bounds(%out: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    // expected-error @+1 {{a value of a single thread is used across a barrier}}
    scf.for %i = %c0 to %tx step %c1 {
      gpu.barrier
    }
    gpu.terminator
  }
  return
}

// -----

func.func @private_view(%out: memref<4xf32>) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1)
             private(%acc : memref<2xf32, #gpu.address_space<private>>) {
    // expected-error @+1 {{private memory is only loaded from and stored to}}
    %view = memref.subview %acc[0] [1] [1] : memref<2xf32, #gpu.address_space<private>> to memref<1xf32, strided<[1]>, #gpu.address_space<private>>
    gpu.terminator
  }
  return
}
