// RUN: peft-opt %s --split-input-file --pass-pipeline="builtin.module(gpu.module(peft-cuda-lower-mma))" | FileCheck %s
//
// peft-cuda-lower-mma: a bf16 mma.sync m16n8k16 into f32 becomes NVVM's
// mma.sync: each fragment row (two bf16) one 32-bit register, C's four f32
// taken apart, the result's four put back together. f16 is left to the
// upstream lowering.

// CHECK-LABEL: gpu.func @bf16
// CHECK-SAME: (%[[A:[^:]*]]: vector<4x2xbf16>, %[[B:[^:]*]]: vector<2x2xbf16>, %[[C:[^:]*]]: vector<2x2xf32>
// CHECK: %[[C0:.*]] = vector.extract %[[C]][0, 0]
// CHECK: %[[C3:.*]] = vector.extract %[[C]][1, 1]
// CHECK: %[[PAIR:.*]] = vector.extract %[[A]][0] : vector<2xbf16> from vector<4x2xbf16>
// CHECK: %[[BITS:.*]] = vector.bitcast %[[PAIR]] : vector<2xbf16> to vector<1xi32>
// CHECK: %[[A0:.*]] = vector.extract %[[BITS]][0] : i32 from vector<1xi32>
// CHECK: %[[D:.*]] = nvvm.mma.sync A[%[[A0]], %{{[^,]*}}, %{{[^,]*}}, %{{[^]]*}}] B[%{{[^,]*}}, %{{[^]]*}}] C[%[[C0]], %{{[^,]*}}, %{{[^,]*}}, %[[C3]]]
// CHECK-SAME: layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>
// CHECK-SAME: multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>
// CHECK-SAME: shape = #nvvm.shape<m = 16, n = 8, k = 16>
// CHECK: %[[D0:.*]] = llvm.extractvalue %[[D]][0]
// CHECK: %[[D3:.*]] = llvm.extractvalue %[[D]][3]
// CHECK: %[[RESULT:.*]] = vector.from_elements %[[D0]], %{{.*}}, %{{.*}}, %[[D3]] : vector<2x2xf32>
// CHECK: vector.store %[[RESULT]]
// CHECK-LABEL: gpu.func @f16
// CHECK: nvgpu.mma.sync
// CHECK-NOT: nvvm.mma.sync
gpu.module @kernels {
  gpu.func @bf16(%a: vector<4x2xbf16>, %b: vector<2x2xbf16>, %c: vector<2x2xf32>, %out: memref<2x2xf32>) kernel {
    %d = nvgpu.mma.sync(%a, %b, %c) {mmaShape = [16, 8, 16]} : (vector<4x2xbf16>, vector<2x2xbf16>, vector<2x2xf32>) -> vector<2x2xf32>
    %c0 = arith.constant 0 : index
    vector.store %d, %out[%c0, %c0] : memref<2x2xf32>, vector<2x2xf32>
    gpu.return
  }
  gpu.func @f16(%a: vector<4x2xf16>, %b: vector<2x2xf16>, %c: vector<2x2xf32>, %out: memref<2x2xf32>) kernel {
    %d = nvgpu.mma.sync(%a, %b, %c) {mmaShape = [16, 8, 16]} : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
    %c0 = arith.constant 0 : index
    vector.store %d, %out[%c0, %c0] : memref<2x2xf32>, vector<2x2xf32>
    gpu.return
  }
}
