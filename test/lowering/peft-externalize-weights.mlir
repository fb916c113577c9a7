// RUN: peft-opt %s --peft-externalize-weights | FileCheck %s

// Every weight becomes a trailing argument that names it; a weight used twice
// (same name, same source) becomes one argument.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[X:.*]]: tensor<2x4xf32> {peft.name = "x"},
// CHECK-SAME: %[[W:.*]]: tensor<3x4xf32> {peft.file = "model.onnx", peft.weight = "fc.weight"},
// CHECK-SAME: %[[B:.*]]: tensor<3xf32> {peft.value = dense<5.000000e-01> : tensor<3xf32>, peft.weight = "fc.bias"})
// CHECK-SAME: attributes {llvm.emit_c_interface}
// CHECK-NOT: peft.weight "
// CHECK: peft.linear "fc" %[[X]], %[[W]], %[[B]]
// CHECK: peft.linear "fc2" %[[X]], %[[W]], %[[B]]
func.func @forward(%x: tensor<2x4xf32> {peft.name = "x"}) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
  %w = peft.weight "fc.weight" from "model.onnx" : tensor<3x4xf32>
  %b = peft.weight "fc.bias" = dense<0.5> : tensor<3xf32>
  %y = peft.linear "fc" %x, %w, %b : (tensor<2x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %w2 = peft.weight "fc.weight" from "model.onnx" : tensor<3x4xf32>
  %z = peft.linear "fc2" %x, %w2, %b : (tensor<2x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %y, %z : tensor<2x3xf32>, tensor<2x3xf32>
}

// Private helpers are not entries.
// CHECK-LABEL: func.func private @helper
// CHECK-SAME: () -> tensor<2xf32>
// CHECK: peft.weight "h"
func.func private @helper() -> tensor<2xf32> {
  %w = peft.weight "h" = dense<1.0> : tensor<2xf32>
  return %w : tensor<2xf32>
}
