// RUN: peft-opt %s --verify-diagnostics --pass-pipeline="builtin.module(gpu.module(peft-cuda-lower-mma))"
//
// A bf16 mma.sync of another shape than m16n8k16 into f32 is refused,
// naming the op.

gpu.module @kernels {
  gpu.func @other_shape(%a: vector<2x2xbf16>, %b: vector<1x2xbf16>, %c: vector<2x2xf32>, %out: memref<2x2xf32>) kernel {
    // expected-error @+1 {{bf16 mma.sync must be m16n8k16 into f32}}
    %d = nvgpu.mma.sync(%a, %b, %c) {mmaShape = [16, 8, 8]} : (vector<2x2xbf16>, vector<1x2xbf16>, vector<2x2xf32>) -> vector<2x2xf32>
    gpu.return
  }
}
