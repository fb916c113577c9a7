// RUN: peft-opt %s --peft-cpu-approximate-math | FileCheck %s \
// RUN:   --implicit-check-not=math.erf --implicit-check-not=math.tanh --implicit-check-not=math.fma

// erf and tanh become arithmetic: no libm call is left to branch on the data
// (the implicit checks keep math.erf, math.tanh and math.fma out of the whole
// output, the expansions included).
// CHECK-LABEL: func.func @activations
// CHECK: arith.select
// CHECK: return
func.func @activations(%x: f32, %v: vector<8xf32>) -> (f32, vector<8xf32>) {
  %e = math.erf %x : f32
  %t = math.tanh %v : vector<8xf32>
  return %e, %t : f32, vector<8xf32>
}

// exp and sqrt are left to LLVM's intrinsics.
// CHECK-LABEL: func.func @others
// CHECK: math.exp
// CHECK: math.sqrt
func.func @others(%x: f32) -> (f32, f32) {
  %e = math.exp %x : f32
  %s = math.sqrt %x : f32
  return %e, %s : f32, f32
}
