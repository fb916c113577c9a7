// RUN: peft-opt %s --canonicalize | FileCheck %s

// A fresh PEFT adapter (B initialized to zeros) does not change its layer.
// CHECK-LABEL: func.func @fresh_adapter
// CHECK-SAME: (%{{.*}}: tensor<2x4xf32>, %[[BASE:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[BASE]]
func.func @fresh_adapter(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = peft.weight "a" = dense<0.5> : tensor<2x4xf32>
  %b = peft.weight "b" = dense<0.0> : tensor<3x2xf32>
  %y = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// Nor does one scaled by zero.
// CHECK-LABEL: func.func @zero_scale
// CHECK-NEXT: return %arg1
func.func @zero_scale(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %a: tensor<2x4xf32>, %b: tensor<3x2xf32>) -> tensor<2x3xf32> {
  %y = peft.lora "default" %x, %base, %a, %b {scale = 0.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// An adapter that does change the output stays; unused weights go away.
// CHECK-LABEL: func.func @trained_adapter
// CHECK-NOT: "unused"
// CHECK: peft.lora
func.func @trained_adapter(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %unused = peft.weight "unused" = dense<1.0> : tensor<2xf32>
  %a = peft.weight "a" = dense<0.5> : tensor<2x4xf32>
  %b = peft.weight "b" = dense<[[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]> : tensor<3x2xf32>
  %y = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
