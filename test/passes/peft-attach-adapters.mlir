// RUN: rm -rf %t && mkdir -p %t
// RUN: %python %testtools/make_adapter.py %t/first --config '{"r": 2, "lora_alpha": 4, "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:2x4:1 --tensor base_model.model.enc.fc.lora_B.weight:3x2:0.5
// RUN: %python %testtools/make_adapter.py %t/second --config '{"r": 1, "lora_alpha": 1, "use_rslora": true, "target_modules": "enc\\..*"}' \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:1x4:2:F16 --tensor base_model.model.enc.fc.lora_B.weight:3x1:3:F16
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/first,%t/second=style" | FileCheck %s

// CHECK-LABEL: func.func @forward
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x3xf32> {
  %w = peft.weight "enc.fc.weight" = dense<1.0> : tensor<3x4xf32>
  // CHECK: %[[BASE:.*]] = peft.linear "enc.fc" %[[X:.*]], %{{.*}} :
  %y = peft.linear "enc.fc" %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
  // The adapter's matrices stay in its file; scale = lora_alpha / r.
  // CHECK: %[[A1:.*]] = peft.weight "base_model.model.enc.fc.lora_A.weight" from "{{.*}}first/adapter_model.safetensors" : tensor<2x4xf32>
  // CHECK: %[[B1:.*]] = peft.weight "base_model.model.enc.fc.lora_B.weight" from "{{.*}}first/adapter_model.safetensors" : tensor<3x2xf32>
  // CHECK: %[[L1:.*]] = peft.lora "default" %[[X]], %[[BASE]], %[[A1]], %[[B1]] {scale = 2.000000e+00 : f32}
  // A second adapter chains onto the first, so that their outputs add.
  // rsLoRA scales by lora_alpha / sqrt(r); F16 tensors keep their type.
  // CHECK: %[[A2:.*]] = peft.weight "base_model.model.enc.fc.lora_A.weight" from "{{.*}}second/adapter_model.safetensors" : tensor<1x4xf16>
  // CHECK: %[[B2:.*]] = peft.weight "base_model.model.enc.fc.lora_B.weight" from "{{.*}}second/adapter_model.safetensors" : tensor<3x1xf16>
  // CHECK: %[[L2:.*]] = peft.lora "style" %[[X]], %[[L1]], %[[A2]], %[[B2]] {scale = 1.000000e+00 : f32}
  // CHECK: return %[[L2]]
  return %y : tensor<?x3xf32>
}

// A weight scales an adapter's delta: the weighted sum of two adapters.
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/first:0.25,%t/second=style:-2" | FileCheck %s --check-prefix=WEIGHTED
// WEIGHTED: peft.lora "default" {{.*}} {scale = 5.000000e-01 : f32}
// WEIGHTED: peft.lora "style" {{.*}} {scale = -2.000000e+00 : f32}
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/first:heavy" 2>&1 | FileCheck %s --check-prefix=BAD-WEIGHT
// BAD-WEIGHT: error: adapter '{{.*}}first:heavy': expected DIR[=NAME][:WEIGHT], WEIGHT a number

// A model exported from a submodule (no "bert." prefix) still matches
// adapter keys written for the whole model.
// RUN: %python %testtools/make_adapter.py %t/prefixed --config '{"r": 2, "lora_alpha": 2, "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.bert.enc.fc.lora_A.weight:2x4:1 --tensor base_model.model.bert.enc.fc.lora_B.weight:3x2:1
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/prefixed" | FileCheck %s --check-prefix=PREFIX
// PREFIX: peft.lora "default" {{.*}} {scale = 1.000000e+00 : f32}

// An adapter for a module the model lacks names the tensor and the module.
// RUN: %python %testtools/make_adapter.py %t/missing --config '{"r": 2, "target_modules": ["proj"]}' \
// RUN:   --tensor base_model.model.enc.proj.lora_A.weight:2x4:1 --tensor base_model.model.enc.proj.lora_B.weight:3x2:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/missing" 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: error: {{.*}}missing/adapter_model.safetensors: tensor 'base_model.model.enc.proj.lora_A.weight' targets module 'enc.proj', which is not a layer of the model

// Shapes that do not fit the layer name both tensors and the module.
// RUN: %python %testtools/make_adapter.py %t/shape --config '{"r": 2, "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:2x5:1 --tensor base_model.model.enc.fc.lora_B.weight:3x2:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/shape" 2>&1 | FileCheck %s --check-prefix=SHAPE
// SHAPE: error: {{.*}}shape/adapter_model.safetensors: tensors 'base_model.model.enc.fc.lora_A.weight' [2, 5] and 'base_model.model.enc.fc.lora_B.weight' [3, 2] do not fit module 'enc.fc' with 4 inputs and 3 outputs

// A rank that disagrees with adapter_config.json (r, or rank_pattern).
// RUN: %python %testtools/make_adapter.py %t/rank --config '{"r": 4, "rank_pattern": {"fc": 3}, "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:2x4:1 --tensor base_model.model.enc.fc.lora_B.weight:3x2:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/rank" 2>&1 | FileCheck %s --check-prefix=RANK
// RANK: error: {{.*}}: tensor 'base_model.model.enc.fc.lora_A.weight' has rank 2 but adapter_config.json gives r=3 for module 'enc.fc'

// Tensors for a module the config does not target.
// RUN: %python %testtools/make_adapter.py %t/untargeted --config '{"r": 2, "target_modules": ["query"]}' \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:2x4:1 --tensor base_model.model.enc.fc.lora_B.weight:3x2:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/untargeted" 2>&1 | FileCheck %s --check-prefix=UNTARGETED
// UNTARGETED: error: {{.*}}: tensor 'base_model.model.enc.fc.lora_A.weight' adapts module 'enc.fc', which adapter_config.json does not target

// A damaged safetensors file.
// RUN: %python %testtools/make_adapter.py %t/truncated --config '{"r": 2, "target_modules": ["fc"]}' --truncate 4 \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:2x4:1 --tensor base_model.model.enc.fc.lora_B.weight:3x2:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/truncated" 2>&1 | FileCheck %s --check-prefix=TRUNCATED
// TRUNCATED: error: {{.*}}truncated/adapter_model.safetensors: tensors cover 56 bytes of a data buffer of 52

// IA3: a peft.ia3 on the output of an attention-type module ([out, 1]), and
// on the input of a feed-forward one ([1, in]), which only that layer reads.
// RUN: %python %testtools/make_adapter.py %t/ia3-out --config '{"peft_type": "IA3", "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.ia3_l:3x1:2
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/ia3-out" | FileCheck %s --check-prefix=IA3-OUT
// IA3-OUT: %[[BASE:.*]] = peft.linear "enc.fc" %arg0
// IA3-OUT: %[[SCALED:.*]] = peft.ia3 "default" %[[BASE]], %{{.*}} : (tensor<?x3xf32>, tensor<3x1xf32>) -> tensor<?x3xf32>
// IA3-OUT: return %[[SCALED]]
// RUN: %python %testtools/make_adapter.py %t/ia3-in --config '{"peft_type": "IA3", "target_modules": ["fc"], "feedforward_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.ia3_l:1x4:2
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/ia3-in" | FileCheck %s --check-prefix=IA3-IN
// IA3-IN: %[[SCALED:.*]] = peft.ia3 "default" %arg0, %{{.*}} : (tensor<?x4xf32>, tensor<1x4xf32>) -> tensor<?x4xf32>
// IA3-IN: %[[Y:.*]] = peft.linear "enc.fc" %[[SCALED]]
// IA3-IN: return %[[Y]]
// A vector stored the other way round for the module's kind is refused.
// RUN: %python %testtools/make_adapter.py %t/ia3-shape --config '{"peft_type": "IA3", "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.ia3_l:1x3:2
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/ia3-shape" 2>&1 | FileCheck %s --check-prefix=IA3-SHAPE
// IA3-SHAPE: error: {{.*}}ia3-shape/adapter_model.safetensors: tensor 'base_model.model.enc.fc.ia3_l' is F32 [1, 3]; IA3 vectors are float [out, 1] for the others
// RUN: %python %testtools/make_adapter.py %t/ia3-size --config '{"peft_type": "IA3", "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.ia3_l:5x1:2
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/ia3-size" 2>&1 | FileCheck %s --check-prefix=IA3-SIZE
// IA3-SIZE: error: {{.*}}ia3-size/adapter_model.safetensors: tensor 'base_model.model.enc.fc.ia3_l' [5, 1] does not fit module 'enc.fc' with 3 outputs

// lora_bias: lora_B.bias becomes the peft.lora's fifth operand.
// RUN: %python %testtools/make_adapter.py %t/bias --config '{"r": 2, "lora_alpha": 4, "lora_bias": true, "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:2x4:1 --tensor base_model.model.enc.fc.lora_B.weight:3x2:1 \
// RUN:   --tensor base_model.model.enc.fc.lora_B.bias:3:1
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/bias" | FileCheck %s --check-prefix=BIAS
// BIAS: %[[BIAS:.*]] = peft.weight "base_model.model.enc.fc.lora_B.bias" from "{{.*}}bias/adapter_model.safetensors" : tensor<3xf32>
// BIAS: peft.lora "default" %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[BIAS]] {scale = 2.000000e+00 : f32}
// RUN: %python %testtools/make_adapter.py %t/bias-size --config '{"r": 2, "lora_bias": true, "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:2x4:1 --tensor base_model.model.enc.fc.lora_B.weight:3x2:1 \
// RUN:   --tensor base_model.model.enc.fc.lora_B.bias:4:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/bias-size" 2>&1 | FileCheck %s --check-prefix=BIAS-SIZE
// BIAS-SIZE: error: {{.*}}bias-size/adapter_model.safetensors: tensor 'base_model.model.enc.fc.lora_B.bias' [4] does not match lora_B [3, 2]
