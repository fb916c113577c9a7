// The old adapters and their weights are nowhere in the output (a CHECK-NOT
// after the combined adapter would miss the one before it).
// RUN: peft-opt %s --split-input-file --peft-combine-adapters="method=cat" 2>/dev/null | FileCheck %s --check-prefix=CAT \
// RUN:   --implicit-check-not='peft.lora "{{first|second}}"' --implicit-check-not='peft.weight "{{[ab][12]}}"'
// RUN: peft-opt %s --split-input-file --peft-combine-adapters="method=svd rank=1" 2>/dev/null | FileCheck %s --check-prefix=SVD \
// RUN:   --implicit-check-not='peft.lora "{{first|second}}"' --implicit-check-not='peft.weight "{{[ab][12]}}"'
// RUN: peft-opt %s --split-input-file --peft-combine-adapters="method=svd rank=1" 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARKS

// cat: A = [2·[1, 0]; 0.5·[0, 1]], B = [[1, 3], [2, 4]], scale 1; the old
// adapters and their weights are gone.
// CAT-LABEL: func.func @two_loras
// CAT: %[[Y:.*]] = peft.linear "fc"
// CAT: %[[A:.*]] = peft.weight "combined.fc.lora_A" = dense<{{\[}}[2.000000e+00, 0.000000e+00], [0.000000e+00, 5.000000e-01]]> : tensor<2x2xf32>
// CAT: %[[B:.*]] = peft.weight "combined.fc.lora_B" = dense<{{\[}}[1.000000e+00, 3.000000e+00], [2.000000e+00, 4.000000e+00]]> : tensor<2x2xf32>
// CAT: %[[Z:.*]] = peft.lora "combined" %{{.*}}, %[[Y]], %[[A]], %[[B]] {scale = 1.000000e+00 : f32}
// CAT-NOT: peft.lora
// CAT: return %[[Z]]
//
// svd to rank 1 of ΔW = [[2, 1.5], [4, 2]] (σ = 5.108, 0.392): σ₂²/Σσ² discarded.
// REMARKS: remark: adapters on 'fc' combined by svd: rank 1 of 2 kept, discarded energy 5.84e-03
// SVD-LABEL: func.func @two_loras
// SVD: peft.lora "combined" {{.*}} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>)
// SVD-NOT: peft.lora
func.func @two_loras(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<0.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %a1 = peft.weight "a1" = dense<[[1.0, 0.0]]> : tensor<1x2xf32>
  %b1 = peft.weight "b1" = dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %l1 = peft.lora "first" %x, %y, %a1, %b1 {scale = 2.0 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  %a2 = peft.weight "a2" = dense<[[0.0, 1.0]]> : tensor<1x2xf32>
  %b2 = peft.weight "b2" = dense<[[3.0], [4.0]]> : tensor<2x1xf32>
  %l2 = peft.lora "second" %x, %l1, %a2, %b2 {scale = 0.5 : f32} : (tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  return %l2 : tensor<3x2xf32>
}

// -----

// Chains with other adapter kinds are left alone.
// REMARKS: remark: adapters on 'fc' not combined: only LoRA adapters combine
// CAT-LABEL: func.func @mixed
// CAT: peft.ia3
func.func @mixed(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %w = peft.weight "fc.weight" = dense<0.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
  %l = peft.weight "l" = dense<2.0> : tensor<2x1xf32>
  %s = peft.ia3 "scales" %y, %l : (tensor<3x2xf32>, tensor<2x1xf32>) -> tensor<3x2xf32>
  return %s : tensor<3x2xf32>
}
