// RUN: peft-opt %s --split-input-file --verify-diagnostics --peft-cuda-launch-kernels
//
// peft-cuda-launch-kernels: host code that would read device memory is an
// error at the op that reads it.

func.func @size_from_data(%shape: memref<1xindex>) -> memref<?xf32> {
  %c0 = arith.constant 0 : index
  // expected-error @below {{host code would use a value read from device memory}}
  %n = memref.load %shape[%c0] : memref<1xindex>
  %out = memref.alloc(%n) : memref<?xf32>
  return %out : memref<?xf32>
}

// -----

func.func @parallel_reduction(%x: memref<8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  // expected-error @below {{a parallel loop with reductions cannot run as a kernel}}
  %sum = scf.parallel (%i) = (%c0) to (%c8) step (%c1) init (%zero) -> f32 {
    %v = memref.load %x[%i] : memref<8xf32>
    scf.reduce(%v : f32) {
    ^bb0(%a: f32, %b: f32):
      %s = arith.addf %a, %b : f32
      scf.reduce.return %s : f32
    }
  }
  return %sum : f32
}
