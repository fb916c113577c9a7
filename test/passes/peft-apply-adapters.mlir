// RUN: rm -rf %t && mkdir -p %t
// RUN: %python %testtools/make_adapter.py %t/first --config '{"r": 1, "lora_alpha": 2, "target_modules": ["fc"]}' \
// RUN:   --tensor base_model.model.fc.lora_A.weight:1x2:1 --tensor base_model.model.fc.lora_B.weight:2x1:0.5
// RUN: peft-opt %s --pass-pipeline="builtin.module(peft-apply-adapters{adapters=%t/first})" | FileCheck %s --check-prefix=MERGE
// RUN: peft-opt %s --pass-pipeline="builtin.module(peft-apply-adapters{adapters=%t/first mode=fuse})" | FileCheck %s --check-prefix=FUSE
// RUN: peft-opt %s --pass-pipeline="builtin.module(peft-apply-adapters{adapters=%t/first=one mode=multi slots=2 slot-methods=ia3})" \
// RUN:   | FileCheck %s --check-prefix=MULTI
//
// peft-apply-adapters: peftc's adapter stage as a registered pipeline
// (passes/AdapterPipeline.h), its options peftc's by the same names: the
// adapters attached, then merged (mode=merge, the default), left unmerged
// (mode=fuse) or put in slots (mode=multi), the IR cleaned up.

// W' = 1 + (2 / 1)·0.5·1 = 2.
// MERGE-LABEL: func.func @forward
// MERGE: %[[W:.*]] = peft.weight "fc.weight" = dense<2.000000e+00> : tensor<2x2xf32>
// MERGE: peft.linear "fc" %{{.*}}, %[[W]]
// MERGE-NOT: peft.lora
// FUSE-LABEL: func.func @forward
// FUSE: %[[Y:.*]] = peft.linear "fc"
// FUSE: peft.lora "default" %{{.*}}, %[[Y]], {{.*}} {scale = 2.000000e+00 : f32}
// MULTI-LABEL: func.func @forward
// MULTI-SAME: peft.name = "adapter_index"
// MULTI: peft.multi_lora ["one", ""]
// MULTI: peft.multi_ia3 ["one", ""]
func.func @forward(%x: tensor<?x2xf32> {peft.name = "x", peft.dim_names = ["batch"]}) -> tensor<?x2xf32> {
  %w = peft.weight "fc.weight" = dense<1.0> : tensor<2x2xf32>
  %y = peft.linear "fc" %x, %w : (tensor<?x2xf32>, tensor<2x2xf32>) -> tensor<?x2xf32>
  return %y : tensor<?x2xf32>
}
