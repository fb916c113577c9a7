// RUN: peft-opt %s --peft-cpu-tile-and-vectorize | FileCheck %s

// A GEMM with a dynamic row count: 64-row blocks, 4x16 register tiles whose
// accumulator stays in registers across an 8-wide K loop, and a scalar loop
// for the rows that do not fill a register tile.
// CHECK-LABEL: func.func @gemm
// CHECK: scf.for %[[BLOCK:.*]] = %c0 to %{{.*}} step %c64
// Full register tiles, up to the last multiple of 4 rows:
// CHECK:   scf.for %[[ROW:.*]] = %c0 to %[[FULL:.*]] step %c4
// CHECK:     scf.for %[[COL:.*]] = %c0 to %c32 step %c16
// CHECK:       %[[ACC:.*]] = vector.transfer_read {{.*}} : tensor<4x16xf32>, vector<4x16xf32>
// CHECK:       scf.for %{{.*}} = %c0 to %c64 step %c8 iter_args(%{{.*}} = %[[ACC]]) -> (vector<4x16xf32>)
// CHECK:         vector.transfer_read {{.*}} : tensor<4x8xf32>, vector<4x8xf32>
// CHECK:         vector.transfer_read {{.*}} : tensor<8x16xf32>, vector<8x16xf32>
// CHECK-COUNT-32: vector.fma {{.*}} : vector<16xf32>
// CHECK:       vector.transfer_write {{.*}} : vector<4x16xf32>, tensor<4x16xf32>
// The remaining rows:
// CHECK:   scf.for %{{.*}} = %[[FULL]] to %{{.*}} step %c4
// CHECK:     linalg.matmul
func.func @gemm(%x: tensor<?x64xf32>, %w: tensor<64x32xf32>, %acc: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = linalg.matmul ins(%x, %w : tensor<?x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// Register tiles follow the options (AVX-512 hosts use 32 columns).
// RUN: peft-opt %s --peft-cpu-tile-and-vectorize="micro-rows=2 micro-cols=32" | FileCheck %s --check-prefix=WIDE
// WIDE: vector.transfer_read {{.*}} vector<2x32xf32>
// WIDE: vector.fma {{.*}} : vector<32xf32>
