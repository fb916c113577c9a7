// RUN: peft-opt %s --peft-externalize-weights --peft-cpu-lowering -o %t
// RUN: FileCheck %s < %t
// RUN: FileCheck %s --check-prefix=LLVM < %t

// The whole CPU pipeline ends in the LLVM dialect alone, with the packed
// entry the runtime calls; weights arrive as arguments, not constants.
// LLVM has negative checks only, so each covers the whole output (between
// CHECK-DAG matches nothing is checked, not even --implicit-check-not).
// LLVM-NOT: builtin.unrealized_conversion_cast
// LLVM-NOT: peft.linear
// LLVM-NOT: peft.lora
// LLVM-NOT: linalg.
// CHECK-DAG: llvm.func @forward(
// One pointer for the result, the input and each of the three weights.
// CHECK-DAG: llvm.func @_mlir_ciface_forward(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr {{{.*}}}, %{{.*}}: !llvm.ptr {{{.*}}}, %{{.*}}: !llvm.ptr {{{.*}}})
// CHECK-DAG: llvm.func @forward_packed(%{{.*}}: !llvm.ptr)
// erf is a polynomial (peft-cpu-approximate-math): no call to libm's erff or fmaf.
// LLVM-NOT: @erff
// LLVM-NOT: @fmaf
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x3xf32> {
  %w = peft.weight "w" from "model.safetensors" : tensor<3x4xf32>
  %a = peft.weight "a" from "adapter.safetensors" : tensor<2x4xf32>
  %b = peft.weight "b" = dense<1.0> : tensor<3x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
  %z = peft.lora "default" %x, %y, %a, %b {scale = 2.0 : f32} : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<?x3xf32>
  %c0 = arith.constant 0 : index
  %n = tensor.dim %z, %c0 : tensor<?x3xf32>
  %e = tensor.empty(%n) : tensor<?x3xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                       iterator_types = ["parallel", "parallel"]} ins(%z : tensor<?x3xf32>) outs(%e : tensor<?x3xf32>) {
  ^bb0(%in: f32, %out: f32):
    %r = math.erf %in : f32
    linalg.yield %r : f32
  } -> tensor<?x3xf32>
  return %g : tensor<?x3xf32>
}
