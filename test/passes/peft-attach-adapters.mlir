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
// SHAPE: error: {{.*}}shape/adapter_model.safetensors: tensors 'base_model.model.enc.fc.lora_A.weight' [2, 5] and 'base_model.model.enc.fc.lora_B.weight' [3, 2] do not fit module 'enc.fc' with weight [3, 4]

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
// BIAS: %[[HB:.*]] = peft.weight "base_model.model.enc.fc.lora_B.bias" from "{{.*}}bias/adapter_model.safetensors" : tensor<3xf32>
// BIAS: peft.lora "default" %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[HB]] {scale = 2.000000e+00 : f32}
// RUN: %python %testtools/make_adapter.py %t/bias-size --config '{"r": 2, "lora_bias": true, "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.enc.fc.lora_A.weight:2x4:1 --tensor base_model.model.enc.fc.lora_B.weight:3x2:1 \
// RUN:   --tensor base_model.model.enc.fc.lora_B.bias:4:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/bias-size" 2>&1 | FileCheck %s --check-prefix=BIAS-SIZE
// BIAS-SIZE: error: {{.*}}bias-size/adapter_model.safetensors: tensor 'base_model.model.enc.fc.lora_B.bias' [4] does not match lora_B [3, 2]

// LoRA on a convolution takes the layer's strides and pads; on an embedding,
// PEFT's lora_embedding_A / lora_embedding_B; DoRA takes the layer's weight
// and bias besides its magnitude vector.
// RUN: %python %testtools/make_adapter.py %t/kinds --config '{"r": 2, "target_modules": ["stem", "embed"]}' \
// RUN:   --tensor base_model.model.stem.lora_A.weight:2x3x3x3:0.1 --tensor base_model.model.stem.lora_B.weight:8x2x1x1:0.1 \
// RUN:   --tensor base_model.model.embed.lora_embedding_A:2x10:0.1 --tensor base_model.model.embed.lora_embedding_B:4x2:0.1
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/kinds" | FileCheck %s --check-prefix=KINDS
// KINDS-LABEL: func.func @kinds
// KINDS: %[[E:.*]] = peft.embedding "embed" %[[IDS:[^,]*]],
// KINDS: %[[EA:.*]] = peft.weight "base_model.model.embed.lora_embedding_A" from {{.*}} : tensor<2x10xf32>
// KINDS: peft.lora "default" %[[IDS]], %[[E]], %[[EA]], {{.*}} : (tensor<2x5xi64>, tensor<2x5x4xf32>, tensor<2x10xf32>, tensor<4x2xf32>) -> tensor<2x5x4xf32>
// KINDS: %[[C:.*]] = peft.conv "stem"
// KINDS: peft.lora "default" %{{.*}}, %[[C]], {{.*}} {pads = array<i64: 1, 1, 1, 1>, scale = 4.000000e+00 : f32, strides = array<i64: 2, 2>} : (tensor<1x3x8x8xf32>, tensor<1x8x4x4xf32>, tensor<2x3x3x3xf32>, tensor<8x2x1x1xf32>)
// RUN: %python %testtools/make_adapter.py %t/dora --config '{"r": 2, "use_dora": true, "target_modules": ["head"]}' \
// RUN:   --tensor base_model.model.head.lora_A.weight:2x4:0.1 --tensor base_model.model.head.lora_B.weight:3x2:0.1 \
// RUN:   --tensor base_model.model.head.lora_magnitude_vector:3:1
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/dora" | FileCheck %s --check-prefix=DORA
// DORA-LABEL: func.func @kinds
// DORA: %[[W:.*]] = peft.weight "head.weight"
// DORA: %[[HB:.*]] = peft.weight "head.bias"
// DORA: %[[Y:.*]] = peft.linear "head" %[[X:[^,]*]], %[[W]], %[[HB]] {weight_in_out}
// DORA: %[[M:.*]] = peft.weight "base_model.model.head.lora_magnitude_vector" from {{.*}} : tensor<3xf32>
// DORA: peft.dora "default" %[[X]], %[[Y]], %[[W]], %{{.*}}, %{{.*}}, %[[M]], bias %[[HB]] {scale = 4.000000e+00 : f32, weight_in_out}
//
// A DoRA adapter without its magnitudes, and tensors on the wrong kind of layer.
// RUN: %python %testtools/make_adapter.py %t/no-magnitude --config '{"r": 2, "use_dora": true, "target_modules": ["head"]}' \
// RUN:   --tensor base_model.model.head.lora_A.weight:2x4:0.1 --tensor base_model.model.head.lora_B.weight:3x2:0.1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/no-magnitude" 2>&1 | FileCheck %s --check-prefix=NO-MAGNITUDE
// NO-MAGNITUDE: error: {{.*}}no-magnitude/adapter_model.safetensors: module 'head' has no lora_magnitude_vector, which use_dora needs
// RUN: %python %testtools/make_adapter.py %t/wrong-kind --config '{"r": 2, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.lora_A.weight:2x27:0.1 --tensor base_model.model.stem.lora_B.weight:8x2:0.1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/wrong-kind" 2>&1 | FileCheck %s --check-prefix=WRONG-KIND
// WRONG-KIND: error: {{.*}}wrong-kind/adapter_model.safetensors: tensor 'base_model.model.stem.lora_A.weight' targets module 'stem', a peft.conv layer: a convolution takes lora_A.weight [r, C, kernel...]
// RUN: %python %testtools/make_adapter.py %t/grouped --config '{"r": 2, "target_modules": ["depthwise"]}' \
// RUN:   --tensor base_model.model.depthwise.lora_A.weight:2x1x3x3:0.1 --tensor base_model.model.depthwise.lora_B.weight:8x2x1x1:0.1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/grouped" 2>&1 | FileCheck %s --check-prefix=GROUPED
// GROUPED: error: {{.*}}grouped/adapter_model.safetensors: tensor 'base_model.model.depthwise.lora_A.weight' targets module 'depthwise', a peft.conv layer: LoRA on a grouped or dilated convolution is not supported
func.func @kinds(%ids: tensor<2x5xi64>, %image: tensor<1x3x8x8xf32>, %x: tensor<2x4xf32>)
    -> (tensor<2x5x4xf32>, tensor<1x8x4x4xf32>, tensor<1x8x4x4xf32>, tensor<2x3xf32>) {
  %table = peft.weight "embed.weight" = dense<1.0> : tensor<10x4xf32>
  %e = peft.embedding "embed" %ids, %table : (tensor<2x5xi64>, tensor<10x4xf32>) -> tensor<2x5x4xf32>
  %k = peft.weight "stem.weight" = dense<1.0> : tensor<8x3x3x3xf32>
  %kb = peft.weight "stem.bias" = dense<0.0> : tensor<8xf32>
  %c = peft.conv "stem" %image, %k, %kb {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64}
    : (tensor<1x3x8x8xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>) -> tensor<1x8x4x4xf32>
  %dk = peft.weight "depthwise.weight" = dense<1.0> : tensor<8x1x3x3xf32>
  %d = peft.conv "depthwise" %c, %dk {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, groups = 8 : i64}
    : (tensor<1x8x4x4xf32>, tensor<8x1x3x3xf32>) -> tensor<1x8x4x4xf32>
  %w = peft.weight "head.weight" = dense<1.0> : tensor<4x3xf32>
  %b = peft.weight "head.bias" = dense<0.5> : tensor<3xf32>
  %y = peft.linear "head" %x, %w, %b {weight_in_out} : (tensor<2x4xf32>, tensor<4x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %e, %c, %d, %y : tensor<2x5x4xf32>, tensor<1x8x4x4xf32>, tensor<1x8x4x4xf32>, tensor<2x3xf32>
}

// modules_to_save replaces a module's parameters whole, under the model's
// names for them; a weight the model stores [in, out] gets PyTorch's
// [out, in] tensor transposed. bias = "lora_only" / "all" replace biases,
// also a LoRA layer's (<module>.base_layer.bias).
// RUN: %python %testtools/make_adapter.py %t/saved --config '{"r": 2, "target_modules": ["stem"], "modules_to_save": ["head"], "bias": "all"}' \
// RUN:   --tensor base_model.model.stem.lora_A.weight:2x3x3x3:0.1 --tensor base_model.model.stem.lora_B.weight:8x2x1x1:0.1 \
// RUN:   --tensor base_model.model.head.weight:3x4:1,2,3,4,5,6,7,8,9,10,11,12 --tensor base_model.model.head.bias:3:7 \
// RUN:   --tensor base_model.model.stem.base_layer.bias:8:3
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/saved" | FileCheck %s --check-prefix=SAVED
// SAVED-LABEL: func.func @kinds
// SAVED: %[[STEM_BIAS:.*]] = peft.weight "stem.bias" = dense<3.000000e+00> : tensor<8xf32>
// SAVED: peft.conv "stem" %{{.*}}, %{{.*}}, %[[STEM_BIAS]]
// SAVED: %[[HW:.*]] = peft.weight "head.weight" = dense<{{\[}}[1.000000e+00, 5.000000e+00, 9.000000e+00], [2.000000e+00, 6.000000e+00, 1.000000e+01], [3.000000e+00, 7.000000e+00, 1.100000e+01], [4.000000e+00, 8.000000e+00, 1.200000e+01]]> : tensor<4x3xf32>
// SAVED: %[[HB2:.*]] = peft.weight "head.bias" = dense<7.000000e+00> : tensor<3xf32>
// SAVED: peft.linear "head" %{{.*}}, %[[HW]], %[[HB2]] {weight_in_out}
//
// A parameter the model does not name, or one of another shape, is refused.
// RUN: %python %testtools/make_adapter.py %t/unnamed --config '{"r": 2, "target_modules": ["stem"], "modules_to_save": ["norm"]}' \
// RUN:   --tensor base_model.model.stem.lora_A.weight:2x3x3x3:0.1 --tensor base_model.model.stem.lora_B.weight:8x2x1x1:0.1 \
// RUN:   --tensor base_model.model.norm.weight:4:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/unnamed" 2>&1 | FileCheck %s --check-prefix=UNNAMED
// UNNAMED: error: {{.*}}unnamed/adapter_model.safetensors: tensor 'base_model.model.norm.weight' replaces parameter 'weight' of module 'norm', which is not a named weight of the model (the exporter may have folded, renamed or shared it)
// RUN: %python %testtools/make_adapter.py %t/saved-shape --config '{"r": 2, "target_modules": ["stem"], "modules_to_save": ["head"]}' \
// RUN:   --tensor base_model.model.stem.lora_A.weight:2x3x3x3:0.1 --tensor base_model.model.stem.lora_B.weight:8x2x1x1:0.1 \
// RUN:   --tensor base_model.model.head.bias:4:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/saved-shape" 2>&1 | FileCheck %s --check-prefix=SAVED-SHAPE
// SAVED-SHAPE: error: {{.*}}saved-shape/adapter_model.safetensors: tensor 'base_model.model.head.bias' replaces 'head.bias' of module 'head' but is F32 [4] where the model has F32 [3]

// LoHa: each module's weight delta from PEFT's hada factors, α/r = 8/2, in
// PyTorch's [out, in] layout whatever the stored one.
// RUN: %python %testtools/make_adapter.py %t/loha --config '{"peft_type": "LOHA", "r": 2, "alpha": 8, "target_modules": ["head"]}' \
// RUN:   --tensor base_model.model.head.hada_w1_a:3x2:1 --tensor base_model.model.head.hada_w1_b:2x4:1 \
// RUN:   --tensor base_model.model.head.hada_w2_a:3x2:1 --tensor base_model.model.head.hada_w2_b:2x4:1
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/loha" | FileCheck %s --check-prefix=LOHA
// LOHA-LABEL: func.func @kinds
// LOHA: %[[Y:.*]] = peft.linear "head" %[[X:[^,]*]],
// LOHA: %[[P1:.*]] = peft.factor_product %{{.*}}, %{{.*}} : (tensor<3x2xf32>, tensor<2x4xf32>) -> tensor<3x4xf32>
// LOHA: %[[P2:.*]] = peft.factor_product
// LOHA: %[[D:.*]] = peft.loha_delta %[[P1]], %[[P2]] {scale = 4.000000e+00 : f32} : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
// LOHA: peft.add_delta "default" %[[X]], %[[Y]], %[[D]]
//
// LoKr on a convolution: lokr_w1 whole, lokr_w2 factored, kernel dims kept;
// the delta is applied with the layer's strides, dilations, pads and groups.
// F16 factors keep their type; their products and the delta are f32.
// RUN: %python %testtools/make_adapter.py %t/lokr --config '{"peft_type": "LOKR", "r": 1, "alpha": 1, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.lokr_w1:2x1:1:F16 --tensor base_model.model.stem.lokr_w2_a:4x1:1:F16 --tensor base_model.model.stem.lokr_w2_b:1x27:1:F16
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/lokr" | FileCheck %s --check-prefix=LOKR
// LOKR: %[[W2:.*]] = peft.factor_product %{{.*}}, %{{.*}} : (tensor<4x1xf16>, tensor<1x27xf16>) -> tensor<4x27xf32>
// LOKR: %[[D:.*]] = peft.lokr_delta %{{.*}}, %[[W2]] {scale = 1.000000e+00 : f32} : (tensor<2x1xf16>, tensor<4x27xf32>) -> tensor<8x3x3x3xf32>
// LOKR: peft.add_delta "default" %{{.*}}, %{{.*}}, %[[D]] {dilations = array<i64: 1, 1>, groups = 1 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}
//
// Factors that do not make the layer's weight, or a LoKr side given twice.
// RUN: %python %testtools/make_adapter.py %t/lokr-size --config '{"peft_type": "LOKR", "r": 1, "target_modules": ["head"]}' \
// RUN:   --tensor base_model.model.head.lokr_w1:2x2:1 --tensor base_model.model.head.lokr_w2:2x2:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/lokr-size" 2>&1 | FileCheck %s --check-prefix=LOKR-SIZE
// LOKR-SIZE: error: {{.*}}lokr-size/adapter_model.safetensors: the LOKR factors of module 'head' make a [4, 4] delta, but its weight is [3, 4]
// RUN: %python %testtools/make_adapter.py %t/lokr-twice --config '{"peft_type": "LOKR", "r": 1, "target_modules": ["head"]}' \
// RUN:   --tensor base_model.model.head.lokr_w1:1x2:1 --tensor base_model.model.head.lokr_w1_a:1x1:1 --tensor base_model.model.head.lokr_w1_b:1x2:1 \
// RUN:   --tensor base_model.model.head.lokr_w2:3x2:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/lokr-twice" 2>&1 | FileCheck %s --check-prefix=LOKR-TWICE
// LOKR-TWICE: error: {{.*}}lokr-twice/adapter_model.safetensors: module 'head' needs either lokr_w1 or lokr_w1_a and lokr_w1_b
//
// The CP form of a convolution's factors (use_effective_conv2d): a core
// [r, r, kh, kw] with factors [r, out] and [r, in], contracted into the
// [out, in·kh·kw] matrix that the Hadamard product reads.
// RUN: %python %testtools/make_adapter.py %t/loha-cp --config '{"peft_type": "LOHA", "r": 2, "alpha": 4, "use_effective_conv2d": true, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.hada_t1:2x2x3x3:1 --tensor base_model.model.stem.hada_w1_a:2x8:1 --tensor base_model.model.stem.hada_w1_b:2x3:1 \
// RUN:   --tensor base_model.model.stem.hada_t2:2x2x3x3:1 --tensor base_model.model.stem.hada_w2_a:2x8:1 --tensor base_model.model.stem.hada_w2_b:2x3:1
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/loha-cp" | FileCheck %s --check-prefix=LOHA-CP
// LOHA-CP-LABEL: func.func @kinds
// LOHA-CP: %[[C:.*]] = peft.conv "stem" %[[IMAGE:[^,]*]],
// LOHA-CP: %[[T1:.*]] = peft.weight "base_model.model.stem.hada_t1" from "{{.*}}loha-cp/adapter_model.safetensors" : tensor<2x2x3x3xf32>
// LOHA-CP-NEXT: %[[A1:.*]] = peft.weight "base_model.model.stem.hada_w1_a" from {{.*}} : tensor<2x8xf32>
// LOHA-CP-NEXT: %[[B1:.*]] = peft.weight "base_model.model.stem.hada_w1_b" from {{.*}} : tensor<2x3xf32>
// LOHA-CP-NEXT: %[[P1:.*]] = peft.cp_product %[[T1]], %[[A1]], %[[B1]] : (tensor<2x2x3x3xf32>, tensor<2x8xf32>, tensor<2x3xf32>) -> tensor<8x27xf32>
// LOHA-CP-NEXT: %[[T2:.*]] = peft.weight "base_model.model.stem.hada_t2"
// LOHA-CP-NEXT: %[[A2:.*]] = peft.weight "base_model.model.stem.hada_w2_a"
// LOHA-CP-NEXT: %[[B2:.*]] = peft.weight "base_model.model.stem.hada_w2_b"
// LOHA-CP-NEXT: %[[P2:.*]] = peft.cp_product %[[T2]], %[[A2]], %[[B2]]
// LOHA-CP-NEXT: %[[D:.*]] = peft.loha_delta %[[P1]], %[[P2]] {scale = 2.000000e+00 : f32} : (tensor<8x27xf32>, tensor<8x27xf32>) -> tensor<8x3x3x3xf32>
// LOHA-CP-NEXT: peft.add_delta "default" %[[IMAGE]], %[[C]], %[[D]] {dilations = array<i64: 1, 1>, groups = 1 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}
//
// LoKr: lokr_w1 factored, lokr_w2 in the CP form.
// RUN: %python %testtools/make_adapter.py %t/lokr-cp --config '{"peft_type": "LOKR", "r": 1, "alpha": 1, "use_effective_conv2d": true, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.lokr_w1_a:2x1:1 --tensor base_model.model.stem.lokr_w1_b:1x1:1 \
// RUN:   --tensor base_model.model.stem.lokr_t2:1x1x3x3:1 --tensor base_model.model.stem.lokr_w2_a:1x4:1 --tensor base_model.model.stem.lokr_w2_b:1x3:1
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/lokr-cp" | FileCheck %s --check-prefix=LOKR-CP
// LOKR-CP: %[[W1:.*]] = peft.factor_product %{{.*}}, %{{.*}} : (tensor<2x1xf32>, tensor<1x1xf32>) -> tensor<2x1xf32>
// LOKR-CP: %[[W2:.*]] = peft.cp_product %{{.*}}, %{{.*}}, %{{.*}} : (tensor<1x1x3x3xf32>, tensor<1x4xf32>, tensor<1x3xf32>) -> tensor<4x27xf32>
// LOKR-CP-NEXT: peft.lokr_delta %[[W1]], %[[W2]] {scale = 1.000000e+00 : f32} : (tensor<2x1xf32>, tensor<4x27xf32>) -> tensor<8x3x3x3xf32>
//
// CP factors name the tensor and module when they do not fit: on a linear
// layer or a kernel of another shape, a 1×1 core (PEFT keeps 1×1
// convolutions plain), a core without use_effective_conv2d, sides of
// different shapes, a side missing, a core beside a whole lokr_w2.
// RUN: %python %testtools/make_adapter.py %t/cp-linear --config '{"peft_type": "LOHA", "r": 2, "use_effective_conv2d": true, "target_modules": ["head"]}' \
// RUN:   --tensor base_model.model.head.hada_t1:2x2x3x3:1 --tensor base_model.model.head.hada_w1_a:2x3:1 --tensor base_model.model.head.hada_w1_b:2x4:1 \
// RUN:   --tensor base_model.model.head.hada_t2:2x2x3x3:1 --tensor base_model.model.head.hada_w2_a:2x3:1 --tensor base_model.model.head.hada_w2_b:2x4:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/cp-linear" 2>&1 | FileCheck %s --check-prefix=CP-LINEAR
// CP-LINEAR: error: {{.*}}cp-linear/adapter_model.safetensors: tensor 'base_model.model.head.hada_t1' is a CP core for a [3, 3] kernel (use_effective_conv2d), but module 'head' is a peft.linear layer with weight [3, 4]
// RUN: %python %testtools/make_adapter.py %t/cp-kernel --config '{"peft_type": "LOKR", "r": 1, "use_effective_conv2d": true, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.lokr_w1:2x1:1 --tensor base_model.model.stem.lokr_t2:1x1x1x9:1 \
// RUN:   --tensor base_model.model.stem.lokr_w2_a:1x4:1 --tensor base_model.model.stem.lokr_w2_b:1x3:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/cp-kernel" 2>&1 | FileCheck %s --check-prefix=CP-KERNEL
// CP-KERNEL: error: {{.*}}cp-kernel/adapter_model.safetensors: tensor 'base_model.model.stem.lokr_t2' is a CP core for a [1, 9] kernel (use_effective_conv2d), but module 'stem' is a peft.conv layer with weight [8, 3, 3, 3]
// RUN: %python %testtools/make_adapter.py %t/cp-1x1 --config '{"peft_type": "LOKR", "r": 1, "use_effective_conv2d": true, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.lokr_w1:2x1:1 --tensor base_model.model.stem.lokr_t2:1x1x1x1:1 \
// RUN:   --tensor base_model.model.stem.lokr_w2_a:1x4:1 --tensor base_model.model.stem.lokr_w2_b:1x3:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/cp-1x1" 2>&1 | FileCheck %s --check-prefix=CP-1X1
// CP-1X1: error: {{.*}}cp-1x1/adapter_model.safetensors: tensor 'base_model.model.stem.lokr_t2' is a CP core [1, 1, 1, 1] for a 1×1 kernel, which PEFT never writes (use_effective_conv2d leaves 1×1 convolutions in the plain form)
// RUN: %python %testtools/make_adapter.py %t/cp-flag --config '{"peft_type": "LOKR", "r": 1, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.lokr_w1:2x1:1 --tensor base_model.model.stem.lokr_t2:1x1x3x3:1 \
// RUN:   --tensor base_model.model.stem.lokr_w2_a:1x4:1 --tensor base_model.model.stem.lokr_w2_b:1x3:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/cp-flag" 2>&1 | FileCheck %s --check-prefix=CP-FLAG
// CP-FLAG: error: {{.*}}cp-flag/adapter_model.safetensors: tensor 'base_model.model.stem.lokr_t2' is a CP core, which PEFT writes only with use_effective_conv2d, but adapter_config.json does not set it
// RUN: %python %testtools/make_adapter.py %t/cp-sides --config '{"peft_type": "LOHA", "r": 2, "use_effective_conv2d": true, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.hada_t1:2x2x3x3:1 --tensor base_model.model.stem.hada_w1_a:2x8:1 --tensor base_model.model.stem.hada_w1_b:2x3:1 \
// RUN:   --tensor base_model.model.stem.hada_t2:2x2x3x3:1 --tensor base_model.model.stem.hada_w2_a:2x4:1 --tensor base_model.model.stem.hada_w2_b:2x3:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/cp-sides" 2>&1 | FileCheck %s --check-prefix=CP-SIDES
// CP-SIDES: error: {{.*}}cp-sides/adapter_model.safetensors: module 'stem': hada_t1 [2, 2, 3, 3], hada_w1_a [2, 8] and hada_w1_b [2, 3] do not match hada_t2 [2, 2, 3, 3], hada_w2_a [2, 4] and hada_w2_b [2, 3]
// RUN: %python %testtools/make_adapter.py %t/cp-rank --config '{"peft_type": "LOHA", "r": 2, "use_effective_conv2d": true, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.hada_t1:2x2x3x3:1 --tensor base_model.model.stem.hada_w1_a:8x2:1 --tensor base_model.model.stem.hada_w1_b:2x3:1 \
// RUN:   --tensor base_model.model.stem.hada_t2:2x2x3x3:1 --tensor base_model.model.stem.hada_w2_a:8x2:1 --tensor base_model.model.stem.hada_w2_b:2x3:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/cp-rank" 2>&1 | FileCheck %s --check-prefix=CP-RANK
// CP-RANK: error: {{.*}}cp-rank/adapter_model.safetensors: module 'stem': hada_t1 [2, 2, 3, 3], hada_w1_a [8, 2] and hada_w1_b [2, 3] are not the CP form's [r, r, kernel...] core with [r, out] and [r, in] factors, r=2
// RUN: %python %testtools/make_adapter.py %t/cp-missing --config '{"peft_type": "LOHA", "r": 2, "use_effective_conv2d": true, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.hada_t1:2x2x3x3:1 --tensor base_model.model.stem.hada_w1_a:2x8:1 --tensor base_model.model.stem.hada_w1_b:2x3:1 \
// RUN:   --tensor base_model.model.stem.hada_w2_a:2x8:1 --tensor base_model.model.stem.hada_w2_b:2x3:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/cp-missing" 2>&1 | FileCheck %s --check-prefix=CP-MISSING
// CP-MISSING: error: {{.*}}cp-missing/adapter_model.safetensors: module 'stem' has no hada_t2 (its other factors are in the CP form)
// RUN: %python %testtools/make_adapter.py %t/cp-whole --config '{"peft_type": "LOKR", "r": 1, "use_effective_conv2d": true, "target_modules": ["stem"]}' \
// RUN:   --tensor base_model.model.stem.lokr_w1:2x1:1 --tensor base_model.model.stem.lokr_t2:1x1x3x3:1 --tensor base_model.model.stem.lokr_w2:4x3x3x3:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/cp-whole" 2>&1 | FileCheck %s --check-prefix=CP-WHOLE
// CP-WHOLE: error: {{.*}}cp-whole/adapter_model.safetensors: module 'stem': lokr_t2 (the CP form) goes with lokr_w2_a and lokr_w2_b, not lokr_w2

// Our own formats (docs/adapters.md): SSF after a layer norm and a linear
// layer; a linear adapter on the input of that layer alone (the layer norm's
// other reader keeps it); a bottleneck after it.
// RUN: %python %testtools/make_adapter.py %t/ssf --config '{"peft_type": "SSF", "target_modules": ["prenorm", "mixer"]}' \
// RUN:   --tensor base_model.model.prenorm.ssf_scale:4:2 --tensor base_model.model.prenorm.ssf_shift:4:1 \
// RUN:   --tensor base_model.model.mixer.ssf_scale:3:2 --tensor base_model.model.mixer.ssf_shift:3:1
// RUN: %python %testtools/make_adapter.py %t/linear --config '{"peft_type": "LINEAR_ADAPTER", "position": "before", "scaling": 0.5, "target_modules": ["mixer"]}' \
// RUN:   --tensor base_model.model.mixer.adapter_down.weight:2x4:1 --tensor base_model.model.mixer.adapter_up.weight:4x2:1
// RUN: %python %testtools/make_adapter.py %t/bottleneck --config '{"peft_type": "BOTTLENECK", "non_linearity": "gelu", "target_modules": ["mixer"]}' \
// RUN:   --tensor base_model.model.mixer.adapter_down.weight:2x3:1 --tensor base_model.model.mixer.adapter_up.weight:3x2:1 \
// RUN:   --tensor base_model.model.mixer.adapter_up.bias:3:1
// RUN: peft-opt %s --peft-attach-adapters="adapters=%t/ssf,%t/linear=zeroi2v,%t/bottleneck=houlsby" | FileCheck %s --check-prefix=OWN
// OWN-LABEL: func.func @own_formats
// OWN: %[[NORM:.*]] = peft.layer_norm "prenorm"
// OWN: %[[NORM_SSF:.*]] = peft.ssf "default" %[[NORM]], %{{.*}}, %{{.*}} {channel_dim = 1 : i64}
// OWN: %[[DOWN:.*]] = peft.weight "base_model.model.mixer.adapter_down.weight" from "{{.*}}linear/adapter_model.safetensors" : tensor<2x4xf32>
// OWN: %[[LINEAR:.*]] = peft.bottleneck "zeroi2v" %[[NORM_SSF]], %[[DOWN]], %{{.*}} {activation = "identity", before_layer, groups = 1 : i64, scale = 5.000000e-01 : f32}
// OWN: %[[PROJ:.*]] = peft.linear "mixer" %[[LINEAR]]
// OWN: %[[PROJ_SSF:.*]] = peft.ssf "default" %[[PROJ]], %{{.*}}, %{{.*}} {channel_dim = 1 : i64}
// OWN: %[[HOULSBY:.*]] = peft.bottleneck "houlsby" %[[PROJ_SSF]], %{{.*}}, %{{.*}} up_bias %{{.*}} {activation = "gelu", groups = 1 : i64, scale = 1.000000e+00 : f32}
// OWN: return %[[HOULSBY]], %[[NORM_SSF]]
func.func @own_formats(%x: tensor<?x4xf32>) -> (tensor<?x3xf32>, tensor<?x4xf32>) {
  %g = peft.weight "prenorm.weight" = dense<1.0> : tensor<4xf32>
  %n = peft.layer_norm "prenorm" %x, %g {axis = 1 : i64, epsilon = 1.0e-5 : f32} : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %w = peft.weight "mixer.weight" = dense<1.0> : tensor<3x4xf32>
  %y = peft.linear "mixer" %n, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
  return %y, %n : tensor<?x3xf32>, tensor<?x4xf32>
}

// RUN: %python %testtools/make_adapter.py %t/ssf-wide --config '{"peft_type": "SSF", "target_modules": ["mixer"]}' \
// RUN:   --tensor base_model.model.mixer.ssf_scale:5:2 --tensor base_model.model.mixer.ssf_shift:5:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/ssf-wide" 2>&1 | FileCheck %s --check-prefix=SSF-WIDE
// SSF-WIDE: error: {{.*}}ssf-wide/adapter_model.safetensors: tensor 'base_model.model.mixer.ssf_scale' [5] does not fit the output channels of module 'mixer' [?, 3]
// RUN: %python %testtools/make_adapter.py %t/rep-on-conv --config '{"peft_type": "REPADAPTER", "groups": 1, "target_modules": ["patchify"]}' \
// RUN:   --tensor base_model.model.patchify.adapter_conv_A.weight:2x3x1:1 --tensor base_model.model.patchify.adapter_conv_B.weight:3x2x1:1
// RUN: not peft-opt %s --peft-attach-adapters="adapters=%t/rep-on-conv" 2>&1 | FileCheck %s --check-prefix=REP-CONV
// REP-CONV: error: {{.*}}: tensor 'base_model.model.patchify.adapter_conv_A.weight' targets module 'patchify', a peft.conv layer; REPADAPTER adapters stand on linear layers
func.func @patchify_conv(%x: tensor<?x3x4x4xf32>) -> tensor<?x3x4x4xf32> {
  %w = peft.weight "patchify.weight" = dense<1.0> : tensor<3x3x1x1xf32>
  %y = peft.conv "patchify" %x, %w {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, groups = 1 : i64} : (tensor<?x3x4x4xf32>, tensor<3x3x1x1xf32>) -> tensor<?x3x4x4xf32>
  return %y : tensor<?x3x4x4xf32>
}
