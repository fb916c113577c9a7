// RUN: peft-opt %s --split-input-file --verify-diagnostics --peft-cuda-emulate-launches
//
// What threads run one after another cannot reproduce is refused, naming the
// op: warp operations in blocks of a size known only at run time, mma.sync
// shapes other than m16n8k16, a thread's loop index used across a barrier, a
// barrier under a condition, private memory used other than by loads and
// stores.

func.func @warps_of_any_size(%threads: index, %a: vector<4x2xf16>, %b: vector<2x2xf16>, %c: vector<2x2xf32>) {
  %c1 = arith.constant 1 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %threads, %sy = %c1, %sz = %c1) {
    // expected-error @+1 {{warp operations need a block of a constant size}}
    %d = nvgpu.mma.sync(%a, %b, %c) {mmaShape = [16, 8, 16]} : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
    gpu.terminator
  }
  return
}

// -----

func.func @other_mma_shape(%a: vector<2x2xf16>, %b: vector<1x2xf16>, %c: vector<2x2xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    // expected-error @+1 {{only mma.sync m16n8k16 into f32 runs on the host}}
    %d = nvgpu.mma.sync(%a, %b, %c) {mmaShape = [16, 8, 8]} : (vector<2x2xf16>, vector<1x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
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

// -----

// A loop bound read from memory the kernel writes: not the same in every
// phase (a bound read from memory it does not write is: see
// peft-cuda-emulate-launches.mlir's constant_bound).
func.func @written_bound(%counts: memref<1xindex>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %n = memref.load %counts[%c0] : memref<1xindex>
    // expected-error @+1 {{a value read from memory is used across a barrier}}
    scf.for %i = %c0 to %n step %c1 {
      gpu.barrier
      memref.store %c1, %counts[%c0] : memref<1xindex>
    }
    gpu.terminator
  }
  return
}
