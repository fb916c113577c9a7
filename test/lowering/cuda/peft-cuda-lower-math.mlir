// RUN: peft-opt %s --pass-pipeline="builtin.module(gpu.module(peft-cuda-lower-math))" | FileCheck %s --implicit-check-not=math.
//
// peft-cuda-lower-math: no math op is left for the NVVM lowering to call
// libdevice for.

// One PTX instruction each, f32 and f64; copysign's operands swapped (PTX's
// copysign takes the sign from its first operand).
// CHECK-LABEL: gpu.func @instructions
// CHECK-SAME: (%[[X:[^:]*]]: f32, %{{[^:]*}}: f64, %[[Y:[^:]*]]: f32,
// CHECK: llvm.inline_asm "sqrt.rn.f32 $0, $1;", "=f,f" %{{.*}} : (f32) -> f32
// CHECK: llvm.inline_asm "sqrt.rn.f64 $0, $1;", "=d,d" %{{.*}} : (f64) -> f64
// CHECK: llvm.inline_asm "abs.f32 $0, $1;"
// CHECK: llvm.inline_asm "fma.rn.f32 $0, $1, $2, $3;", "=f,f,f,f"
// CHECK: llvm.inline_asm "cvt.rmi.f32.f32 $0, $1;"
// CHECK: llvm.inline_asm "cvt.rpi.f32.f32 $0, $1;"
// CHECK: llvm.inline_asm "cvt.rzi.f32.f32 $0, $1;"
// CHECK: llvm.inline_asm "cvt.rni.f32.f32 $0, $1;"
// CHECK: llvm.inline_asm "copysign.f32 $0, $1, $2;", "=f,f,f" %[[Y]], %[[X]] : (f32, f32) -> f32
// Transcendentals: MLIR's polynomials (floor among their steps).
// CHECK: arith.select
// CHECK: gpu.return
gpu.module @kernels {
  gpu.func @instructions(%x: f32, %d: f64, %y: f32, %out: memref<16xf32>, %out64: memref<1xf64>) kernel {
    %c0 = arith.constant 0 : index
    %s = math.sqrt %x : f32
    %s64 = math.sqrt %d : f64
    %a = math.absf %x : f32
    %f = math.fma %x, %y, %a : f32
    %fl = math.floor %x : f32
    %ce = math.ceil %x : f32
    %tr = math.trunc %x : f32
    %re = math.roundeven %x : f32
    %cs = math.copysign %x, %y : f32
    %e = math.exp %x : f32
    %l = math.log %x : f32
    %er = math.erf %x : f32
    %t = math.tanh %x : f32
    %p = math.powf %x, %y : f32
    %r = math.rsqrt %x : f32
    %ro = math.round %x : f32
    %v0 = arith.addf %s, %a : f32
    %v1 = arith.addf %v0, %f : f32
    %v2 = arith.addf %v1, %fl : f32
    %v3 = arith.addf %v2, %ce : f32
    %v4 = arith.addf %v3, %tr : f32
    %v5 = arith.addf %v4, %re : f32
    %v6 = arith.addf %v5, %cs : f32
    %v7 = arith.addf %v6, %e : f32
    %v8 = arith.addf %v7, %l : f32
    %v9 = arith.addf %v8, %er : f32
    %v10 = arith.addf %v9, %t : f32
    %v11 = arith.addf %v10, %p : f32
    %v12 = arith.addf %v11, %r : f32
    %v13 = arith.addf %v12, %ro : f32
    memref.store %v13, %out[%c0] : memref<16xf32>
    memref.store %s64, %out64[%c0] : memref<1xf64>
    gpu.return
  }
}
