// RUN: peft-opt %s --peft-cpu-approximate-math | FileCheck %s \
// RUN:   --implicit-check-not=math.erf --implicit-check-not=math.tanh --implicit-check-not=math.fma \
// RUN:   --implicit-check-not=math.exp --implicit-check-not=math.floor

// erf, tanh and exp become arithmetic: no libm call is left to branch on the
// data, nor a vector exp for LLVM to split into calls (the implicit checks
// keep math.erf, math.tanh, math.exp and math.fma out of the whole output,
// the expansions included).
// CHECK-LABEL: func.func @activations
// CHECK: arith.select
// exp's approximation rounds with LLVM's floor, not libm's.
// CHECK: llvm.intr.floor({{.*}}) : (vector<16xf32>) -> vector<16xf32>
// CHECK: return
func.func @activations(%x: f32, %v: vector<8xf32>) -> (f32, vector<8xf32>, vector<16xf32>) {
  %e = math.erf %x : f32
  %t = math.tanh %v : vector<8xf32>
  %w = vector.broadcast %x : f32 to vector<16xf32>
  %x16 = math.exp %w : vector<16xf32>
  return %e, %t, %x16 : f32, vector<8xf32>, vector<16xf32>
}

// sqrt is left to LLVM's intrinsic (one instruction).
// CHECK-LABEL: func.func @others
// CHECK: math.sqrt
func.func @others(%x: f32) -> f32 {
  %s = math.sqrt %x : f32
  return %s : f32
}

// Rounding on vectors and scalars: LLVM's intrinsics (one instruction each),
// not a libm call per element.
// CHECK-LABEL: func.func @rounding
// CHECK: llvm.intr.floor({{.*}}) : (vector<16xf32>) -> vector<16xf32>
// CHECK: llvm.intr.ceil({{.*}}) : (f32) -> f32
// CHECK: llvm.intr.trunc({{.*}}) : (vector<8xf32>) -> vector<8xf32>
// CHECK: llvm.intr.roundeven({{.*}}) : (f32) -> f32
// CHECK-NOT: math.
func.func @rounding(%v: vector<16xf32>, %x: f32, %w: vector<8xf32>) -> (vector<16xf32>, f32, vector<8xf32>, f32) {
  %f = math.floor %v : vector<16xf32>
  %c = math.ceil %x : f32
  %t = math.trunc %w : vector<8xf32>
  %r = math.roundeven %x : f32
  return %f, %c, %t, %r : vector<16xf32>, f32, vector<8xf32>, f32
}
