// RUN: peft-opt %s --peft-externalize-weights | FileCheck %s

// Every weight becomes a trailing argument that names it; a weight used twice
// (same name, same source) becomes one argument.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[X:.*]]: tensor<2x4xf32> {peft.name = "x"},
// CHECK-SAME: %[[W:.*]]: tensor<3x4xf32> {peft.file = "model.onnx", peft.weight = "fc.weight"},
// CHECK-SAME: %[[B:.*]]: tensor<3xf32> {peft.value = dense<5.000000e-01> : tensor<3xf32>, peft.weight = "fc.bias"})
// CHECK-SAME: attributes {llvm.emit_c_interface}
// No weight op is left anywhere in the body: a CHECK-NOT before, between and
// after the layers (the last one up to the next CHECK-LABEL).
// CHECK-NOT: peft.weight "
// CHECK: peft.linear "fc" %[[X]], %[[W]], %[[B]]
// CHECK-NOT: peft.weight "
// CHECK: peft.linear "fc2" %[[X]], %[[W]], %[[B]]
// CHECK-NOT: peft.weight "
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

// An adapter's own tensors are named as PEFT names them in memory, after the
// adapter, with their key in the file in peft.key: two adapters reading one
// weight op (say after CSE) each get an argument of their own (the copy made
// for the second stands before the original).
// CHECK-LABEL: func.func @two_adapters
// CHECK-SAME: %[[W:[^:]*]]: tensor<3x4xf32> {peft.file = "model.onnx", peft.weight = "fc.weight"}
// CHECK-SAME: %[[A2:[^:]*]]: tensor<2x4xf32> {peft.file = "a.safetensors", peft.key = "base_model.model.fc.lora_A.weight", peft.weight = "base_model.model.fc.lora_A.second.weight"}
// CHECK-SAME: %[[A1:[^:]*]]: tensor<2x4xf32> {peft.file = "a.safetensors", peft.key = "base_model.model.fc.lora_A.weight", peft.weight = "base_model.model.fc.lora_A.first.weight"}
// CHECK-SAME: %[[B2:[^:]*]]: tensor<3x2xf32> {peft.file = "a.safetensors", peft.key = "base_model.model.fc.lora_B.weight", peft.weight = "base_model.model.fc.lora_B.second.weight"}
// CHECK-SAME: %[[B1:[^:]*]]: tensor<3x2xf32> {peft.file = "a.safetensors", peft.key = "base_model.model.fc.lora_B.weight", peft.weight = "base_model.model.fc.lora_B.first.weight"}
// CHECK: %[[Y:.*]] = peft.linear "fc" %{{.*}}, %[[W]]
// CHECK: %[[Z:.*]] = peft.lora "first" %{{.*}}, %[[Y]], %[[A1]], %[[B1]]
// CHECK: peft.lora "second" %{{.*}}, %[[Z]], %[[A2]], %[[B2]]
func.func @two_adapters(%x: tensor<2x4xf32> {peft.name = "x"}) -> tensor<2x3xf32> {
  %w = peft.weight "fc.weight" from "model.onnx" : tensor<3x4xf32>
  %y = peft.linear "fc" %x, %w : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
  %a = peft.weight "base_model.model.fc.lora_A.weight" from "a.safetensors" : tensor<2x4xf32>
  %b = peft.weight "base_model.model.fc.lora_B.weight" from "a.safetensors" : tensor<3x2xf32>
  %z = peft.lora "first" %x, %y, %a, %b {scale = 2.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  %u = peft.lora "second" %x, %z, %a, %b {scale = 1.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %u : tensor<2x3xf32>
}
