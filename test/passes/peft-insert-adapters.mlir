// RUN: rm -rf %t && mkdir -p %t
// RUN: echo '{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["fc", "conv", "embed"]}' > %t/lora.json
// RUN: echo '{"peft_type": "IA3", "target_modules": ["fc", "down"], "feedforward_modules": ["down"]}' > %t/ia3.json
// RUN: echo '{"peft_type": "SSF", "target_modules": ["norm", "conv"]}' > %t/ssf.json
// RUN: peft-opt %s --peft-insert-adapters="configs=%t/lora.json,%t/ia3.json=scales,%t/ssf.json=ssf seed=1" | FileCheck %s

// Fresh adapters as PEFT initializes them, named as PEFT saves them: LoRA's A
// uniform in ±1/√fan_in and B zeros (on an embedding A zeros, B normal); IA3
// ones ([out, 1], or [1, in] on a feed-forward layer's input); SSF scale ones,
// shift zeros. The config of each is kept on the module for an ONNX export.
// CHECK: module attributes {peft.adapter_configs = {default = "{{.*}}LORA{{.*}}", scales = "{{.*}}IA3{{.*}}", ssf = "{{.*}}SSF{{.*}}"}}
// CHECK-LABEL: func.func @forward
// CHECK: %[[EMBED:.*]] = peft.embedding "embed"
// CHECK: peft.lora "default" %arg0, %[[EMBED]]
// CHECK: %[[NORM:.*]] = peft.layer_norm "norm"
// CHECK: %[[NORM_SSF:.*]] = peft.ssf "ssf" %[[NORM]]
// CHECK: %[[FC:.*]] = peft.linear "fc" %[[NORM_SSF]]
// CHECK: %[[LORA:.*]] = peft.lora "default" %[[NORM_SSF]], %[[FC]], {{.*}} {scale = 2.000000e+00 : f32}
// CHECK: %[[FC_OUT:.*]] = peft.ia3 "scales" %[[LORA]]
// CHECK: %[[SCALED:.*]] = peft.ia3 "scales" %[[FC_OUT]]
// CHECK: peft.linear "down" %[[SCALED]]
// CHECK: %[[CONV:.*]] = peft.conv "conv"
// CHECK: %[[CONV_LORA:.*]] = peft.lora "default" %arg2, %[[CONV]]
// CHECK: peft.ssf "ssf" %[[CONV_LORA]], {{.*}} {channel_dim = 1 : i64}
// RUN: peft-opt %s --peft-insert-adapters="configs=%t/lora.json,%t/ia3.json=scales,%t/ssf.json=ssf seed=1" | FileCheck %s --check-prefix=WEIGHTS
// WEIGHTS-DAG: peft.weight "base_model.model.embed.lora_embedding_A" = dense<0.000000e+00> : tensor<2x10xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.embed.lora_embedding_B" = dense<{{\[\[}}{{.*}}]]> : tensor<4x2xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.norm.ssf_scale" = dense<1.000000e+00> : tensor<4xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.norm.ssf_shift" = dense<0.000000e+00> : tensor<4xf32>
// Uniform in ±1/√4: every value is 0.0... to 0.4..., either sign.
// WEIGHTS-DAG: peft.weight "base_model.model.fc.lora_A.weight" = dense<{{\[\[}}{{(-?0\.[0-4][0-9]*(, )?)+}}], [{{(-?0\.[0-4][0-9]*(, )?)+}}]]> : tensor<2x4xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.fc.lora_B.weight" = dense<0.000000e+00> : tensor<3x2xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.fc.ia3_l" = dense<1.000000e+00> : tensor<3x1xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.down.ia3_l" = dense<1.000000e+00> : tensor<1x3xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.conv.lora_A.weight" = dense<{{.*}}> : tensor<2x3x3x3xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.conv.lora_B.weight" = dense<0.000000e+00> : tensor<5x2x1x1xf32>
// WEIGHTS-DAG: peft.weight "base_model.model.conv.ssf_scale" = dense<1.000000e+00> : tensor<5xf32>
func.func @forward(%ids: tensor<?xi64>, %x: tensor<?x4xf32>, %image: tensor<?x3x6x6xf32>) -> (tensor<?x4xf32>, tensor<?x3xf32>, tensor<?x3xf32>, tensor<?x5x4x4xf32>) {
  %table = peft.weight "embed.weight" = dense<1.0> : tensor<10x4xf32>
  %e = peft.embedding "embed" %ids, %table : (tensor<?xi64>, tensor<10x4xf32>) -> tensor<?x4xf32>
  %g = peft.weight "norm.weight" = dense<1.0> : tensor<4xf32>
  %n = peft.layer_norm "norm" %x, %g {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %w = peft.weight "fc.weight" = dense<1.0> : tensor<3x4xf32>
  %y = peft.linear "fc" %n, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
  %wd = peft.weight "down.weight" = dense<1.0> : tensor<3x3xf32>
  %d = peft.linear "down" %y, %wd : (tensor<?x3xf32>, tensor<3x3xf32>) -> tensor<?x3xf32>
  %k = peft.weight "conv.weight" = dense<1.0> : tensor<5x3x3x3xf32>
  %c = peft.conv "conv" %image, %k {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64} : (tensor<?x3x6x6xf32>, tensor<5x3x3x3xf32>) -> tensor<?x5x4x4xf32>
  return %e, %y, %d, %c : tensor<?x4xf32>, tensor<?x3xf32>, tensor<?x3xf32>, tensor<?x5x4x4xf32>
}

// RUN: echo '{"peft_type": "LOHA", "r": 2, "target_modules": ["fc"]}' > %t/loha.json
// RUN: not peft-opt %s --peft-insert-adapters="configs=%t/loha.json" 2>&1 | FileCheck %s --check-prefix=LOHA
// LOHA: error: {{.*}}loha.json: inserting LOHA adapters is not supported (LORA, IA3, SSF)
// RUN: echo '{"peft_type": "LORA", "use_dora": true, "target_modules": ["fc"]}' > %t/dora.json
// RUN: not peft-opt %s --peft-insert-adapters="configs=%t/dora.json" 2>&1 | FileCheck %s --check-prefix=DORA
// DORA: error: {{.*}}dora.json: inserting DoRA or LoRA biases is not supported
// RUN: echo '{"peft_type": "LORA", "target_modules": ["q_proj"]}' > %t/none.json
// RUN: not peft-opt %s --peft-insert-adapters="configs=%t/none.json" 2>&1 | FileCheck %s --check-prefix=NONE
// NONE: error: {{.*}}none.json: target_modules name no layer of the model
