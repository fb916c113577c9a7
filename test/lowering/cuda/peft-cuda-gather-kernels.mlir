// RUN: peft-opt %s --peft-cuda-gather-kernels | FileCheck %s
//
// peft-cuda-gather-kernels: the kernels of every outlined module in one
// module, @kernels, named after the module each came from; their workgroup
// buffers aligned to 16 bytes (ldmatrix reads 16-byte rows).

// CHECK-LABEL: func.func @forward
// CHECK: gpu.launch_func @kernels::@forward_kernel blocks
// CHECK: gpu.launch_func @kernels::@forward_kernel_0 blocks
// CHECK: gpu.module @kernels {
// CHECK:   gpu.func @forward_kernel(%{{.*}}: memref<4xf32>) kernel
// CHECK:   gpu.func @forward_kernel_0(%{{.*}}: memref<4xf32>)
// CHECK-SAME: workgroup(%{{.*}} : memref<64xf16, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME: kernel
// CHECK-NOT: gpu.module
module attributes {gpu.container_module} {
  func.func @forward(%a: memref<4xf32>) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @forward_kernel::@forward_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<4xf32>)
    gpu.launch_func @forward_kernel_0::@forward_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<4xf32>)
    return
  }
  gpu.module @forward_kernel {
    gpu.func @forward_kernel(%arg0: memref<4xf32>) kernel {
      gpu.return
    }
  }
  gpu.module @forward_kernel_0 {
    gpu.func @forward_kernel(%arg0: memref<4xf32>) workgroup(%tile : memref<64xf16, #gpu.address_space<workgroup>>, %sums : memref<8xf32, #gpu.address_space<workgroup>>) kernel {
      gpu.return
    }
  }
}
