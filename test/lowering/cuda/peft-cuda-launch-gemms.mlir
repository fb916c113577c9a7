// RUN: peft-opt %s --split-input-file --peft-cuda-launch-gemms=tile=64 --canonicalize --cse | FileCheck %s
// RUN: peft-opt %s --split-input-file --peft-cuda-launch-gemms --canonicalize --cse | FileCheck %s --check-prefix=AUTO
// RUN: not peft-opt %s --split-input-file --peft-cuda-launch-gemms=tile=32 2>&1 | FileCheck %s --check-prefix=TILE
// TILE: error: peft-cuda-launch-gemms: tile must be 0, 64 or 128, not 32
//
// peft-cuda-launch-gemms: a contraction into f32 becomes one launch of the
// tiled kernel: blocks over 64 x 64 tiles of C (x: N, y: M, z: the batch),
// A and B staged in three stages of shared memory (f32 ones by asynchronous
// copies: step s computed while s + 1 and s + 2 arrive), accumulators in
// private memory, then added to C where they lie inside C. f32 operands:
// 256 threads, k-major staging, a 4 x 4 block of C per thread accumulated
// with fma. Operands of one half type: tensor cores (@bf16), in 64 x 64 or
// (AUTO, where C has enough of them: @bf16_large) 128 x 128 tiles.

// A linear layer, B stored [N, K] (torch's Linear), M dynamic.
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[A:[^:]*]]: memref<?x32xf32>, %[[B:[^:]*]]: memref<96x32xf32>, %[[C:[^:]*]]: memref<?x96xf32>)
// CHECK-DAG: %[[M:.*]] = memref.dim %[[A]], %c0
// CHECK-DAG: %[[ROWS:.*]] = arith.ceildivui %[[M]], %c64
// CHECK: scf.if
// CHECK: gpu.launch blocks(%[[BX:[^,]*]], %[[BY:[^,]*]], %{{[^)]*}}) in (%{{[^ ]*}} = %c2, %{{[^ ]*}} = %[[ROWS]], %{{[^ ]*}} = %c1)
// CHECK-SAME: threads(%[[T:[^,]*]], %{{.*}}) in (%{{[^ ]*}} = %c256, %{{[^ ]*}} = %c1, %{{[^ ]*}} = %c1)
// CHECK-SAME: workgroup(%[[SA:[^ ]*]] : memref<3x16x65xf32, #gpu.address_space<workgroup>>, %[[SB:[^ ]*]] : memref<3x16x65xf32, #gpu.address_space<workgroup>>)
// CHECK-SAME: private(%[[ACC:[^ ]*]] : memref<16xf32, #gpu.address_space<private>>)
// CHECK-DAG: %[[ROW0:.*]] = arith.muli %[[BY]], %c64
// CHECK-DAG: %[[COL0:.*]] = arith.muli %[[BX]], %c64
// CHECK-DAG: %[[TROW:.*]] = arith.divui %[[T]], %c16
// CHECK-DAG: %[[TCOL:.*]] = arith.remui %[[T]], %c16
// CHECK: memref.store %cst, %[[ACC]][%c15]
//   Step 0 into stage 0 before the loop. A is k-fastest: thread t copies
//   k = t % 16 of row t / 16 first (then rows 16, 32, 48 further); outside
//   A it copies nothing from A's first element and a zero.
// CHECK-DAG: %[[ROW:.*]] = arith.addi %[[ROW0]], %[[TROW]]
// CHECK-DAG: %[[IN_M:.*]] = arith.cmpi ult, %[[ROW]], %[[M]]
// CHECK-DAG: %[[IN_K:.*]] = arith.cmpi ult, %[[TCOL]], %c32
// CHECK: %[[IN:.*]] = arith.andi %[[IN_K]], %[[IN_M]]
// CHECK: %[[K:.*]] = arith.select %[[IN]], %[[TCOL]], %c0
// CHECK: %[[R:.*]] = arith.select %[[IN]], %[[ROW]], %c0
// CHECK: %[[N:.*]] = arith.select %[[IN]], %c1, %c0
// CHECK: nvgpu.device_async_copy %[[A]][%[[R]], %[[K]]], %[[SA]][%c0, %[[TCOL]], %[[TROW]]], 1, %[[N]]
// CHECK-COUNT-3: nvgpu.device_async_copy %[[A]]
//   B [N, K] is k-fastest too: B[n, k] staged at [k, n].
// CHECK-COUNT-4: nvgpu.device_async_copy %[[B]]{{.*}}, %[[SB]][%c0,
// CHECK: nvgpu.device_async_create_group
//   Step 1 into stage 1.
// CHECK-COUNT-8: nvgpu.device_async_copy {{.*}}[%c1,
// CHECK: %[[GROUP:.*]] = nvgpu.device_async_create_group
// CHECK: scf.for %[[STEP:.*]] = %c0 to %c2 step %c1 {
//   Wait for step s's copies (step s + 1's may be pending), one barrier,
//   then step s + 2 into the stage step s - 1 was computed from.
// CHECK:   nvgpu.device_async_wait %[[GROUP]] {numGroups = 1 : i32}
// CHECK:   gpu.barrier
// CHECK:   %[[AHEAD:.*]] = arith.addi %[[STEP]], %c2
// CHECK:   %[[OTHER:.*]] = arith.remui %[[AHEAD]], %c3
// CHECK-COUNT-8: nvgpu.device_async_copy {{.*}}[%[[OTHER]],
// CHECK:   nvgpu.device_async_create_group
// CHECK:   %[[STAGE:.*]] = arith.remui %[[STEP]], %c3
// CHECK:   scf.for %[[KK:.*]] = %c0 to %c16 step %c1 {
// CHECK:     %[[A0:.*]] = memref.load %[[SA]][%[[STAGE]], %[[KK]], %[[TROW]]]
// CHECK:     %[[B0:.*]] = memref.load %[[SB]][%[[STAGE]], %[[KK]], %[[TCOL]]]
// CHECK:     %[[S0:.*]] = memref.load %[[ACC]][%c0]
// CHECK:     %[[F0:.*]] = math.fma %[[A0]], %[[B0]], %[[S0]] : f32
// CHECK:     memref.store %[[F0]], %[[ACC]][%c0]
// CHECK-COUNT-15: math.fma
// CHECK:   }
// CHECK-NOT: gpu.barrier
// CHECK: }
// CHECK: nvgpu.device_async_wait %[[GROUP]] {numGroups = 0 : i32}
//   C += the accumulators, rows and columns 16 apart, inside C only.
//   (its first row is the one staged first: the same value)
// CHECK: %[[CCOL:.*]] = arith.addi %[[COL0]], %[[TCOL]]
// CHECK: scf.if
// CHECK-DAG: %[[OLD:.*]] = memref.load %[[C]][%[[ROW]], %[[CCOL]]]
// CHECK-DAG: %[[SUM:.*]] = memref.load %[[ACC]][%c0]
// CHECK:   %[[NEW:.*]] = arith.addf %[[OLD]], %[[SUM]]
// CHECK:   memref.store %[[NEW]], %[[C]][%[[ROW]], %[[CCOL]]]
// CHECK-COUNT-15: memref.store %{{.*}}, %[[C]]
// CHECK-NOT: linalg.matmul
func.func @linear(%a: memref<?x32xf32>, %b: memref<96x32xf32>, %c: memref<?x96xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%a, %b : memref<?x32xf32>, memref<96x32xf32>) outs(%c : memref<?x96xf32>)
  return
}

// -----

// B stored [K, N]: n is its fastest dimension, so neighbouring threads take
// neighbouring n (e % 64) and k = e / 64.
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: %[[B:[^:]*]]: memref<32x96xf32>
// CHECK: gpu.launch blocks(%{{[^)]*}}) in (%{{[^ ]*}} = %c2,
// CHECK: %[[NN:.*]] = arith.remui %{{.*}}, %c64
// CHECK: %[[KK:.*]] = arith.divui %{{.*}}, %c64
// CHECK: %[[K:.*]] = arith.select %{{.*}}, %[[KK]], %c0
// CHECK: nvgpu.device_async_copy %[[B]][%[[K]], %{{.*}}], %{{.*}}[%c0, %[[KK]], %[[NN]]]
func.func @matmul(%a: memref<?x32xf32>, %b: memref<32x96xf32>, %c: memref<?x96xf32>) {
  linalg.matmul ins(%a, %b : memref<?x32xf32>, memref<32x96xf32>) outs(%c : memref<?x96xf32>)
  return
}

// -----

// Attention's scores: batch dimensions (b, h) linearized into blocks' z, the
// last fastest; each operand indexed through its own map.
// CHECK-LABEL: func.func @batched
// CHECK-SAME: (%[[Q:[^:]*]]: memref<?x4x?x8xf32>, %[[K:[^:]*]]: memref<?x4x8x?xf32>, %[[S:[^:]*]]: memref<?x4x?x?xf32>)
// CHECK: %[[B:.*]] = memref.dim %[[Q]], %c0
// CHECK: %[[BATCH:.*]] = arith.muli %[[B]], %c4
// CHECK: gpu.launch blocks(%{{[^,]*}}, %{{[^,]*}}, %[[BZ:[^)]*]]) in (%{{[^ ]*}} = %{{[^,]*}}, %{{[^ ]*}} = %{{[^,]*}}, %{{[^ ]*}} = %[[BATCH]])
// CHECK-DAG: %[[H:.*]] = arith.remui %[[BZ]], %c4
// CHECK-DAG: %[[REST:.*]] = arith.divui %[[BZ]], %c4
// CHECK-DAG: %[[BI:.*]] = arith.remui %[[REST]], %[[B]]
// CHECK: nvgpu.device_async_copy %[[Q]][%[[BI]], %[[H]], %{{.*}}, %{{.*}}]
// CHECK: nvgpu.device_async_copy %[[K]][%[[BI]], %[[H]], %{{.*}}, %{{.*}}]
// CHECK: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[S]][%[[BI]], %[[H]], %{{.*}}, %{{.*}}]
func.func @batched(%q: memref<?x4x?x8xf32>, %k: memref<?x4x8x?xf32>, %s: memref<?x4x?x?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(b, h, i, j, d) -> (b, h, i, d)>, affine_map<(b, h, i, j, d) -> (b, h, d, j)>, affine_map<(b, h, i, j, d) -> (b, h, i, j)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%q, %k : memref<?x4x?x8xf32>, memref<?x4x8x?xf32>) outs(%s : memref<?x4x?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %c, %m : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Operands of one half type run on tensor cores: 128 threads (four warps,
// 2 x 2 over the tile), A and B staged [stage][row][k] as they are (rows of
// 40 elements), K steps of 32; rows of K a multiple of 8 long are copied in
// 16-byte chunks (cp.async of 8 elements, or of none and zeros). Per 16 of K
// each warp loads its fragments with ldmatrix x4 (its two m16 tiles of A;
// its four n8 tiles of B, two at a time) and issues eight mma.sync m16n8k16
// into the accumulators, 32 per thread, which then go to C.
// CHECK-LABEL: func.func @bf16
//
// With tile 0, M known only at run time: the 128 x 128 kernel where C has at least
// 256 of its tiles, else the 64 x 64 one.
// AUTO-LABEL: func.func @bf16
// AUTO-SAME: (%[[A:[^:]*]]: memref<?x64xbf16>,
// AUTO-DAG: %[[M:.*]] = memref.dim %[[A]], %c0
// AUTO-DAG: %[[ROWS128:.*]] = arith.ceildivui %[[M]], %c128
// AUTO: %[[LARGE:.*]] = arith.cmpi uge, %[[ROWS128]], %c256
// AUTO: scf.if %[[LARGE]] {
// AUTO:   gpu.launch
// AUTO-SAME: threads(%{{[^,]*}}, %{{.*}}) in (%{{[^ ]*}} = %c256,
// AUTO-SAME: workgroup(%{{[^ ]*}} : memref<4x128x40xbf16, #gpu.address_space<workgroup>>, %{{[^ ]*}} : memref<4x128x40xbf16, #gpu.address_space<workgroup>>)
// AUTO-SAME: private(%{{[^ ]*}} : memref<64xf32, #gpu.address_space<private>>)
// AUTO: } else {
// AUTO:   gpu.launch
// AUTO-SAME: threads(%{{[^,]*}}, %{{.*}}) in (%{{[^ ]*}} = %c128,
// AUTO-SAME: workgroup(%{{[^ ]*}} : memref<3x64x40xbf16, #gpu.address_space<workgroup>>,
// CHECK-SAME: (%[[A:[^:]*]]: memref<?x64xbf16>, %[[B:[^:]*]]: memref<48x64xbf16>, %[[C:[^:]*]]: memref<?x48xf32>)
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[T:[^,]*]], %{{.*}}) in (%{{[^ ]*}} = %c128,
// CHECK-SAME: workgroup(%[[SA:[^ ]*]] : memref<3x64x40xbf16, #gpu.address_space<workgroup>>, %[[SB:[^ ]*]] : memref<3x64x40xbf16, #gpu.address_space<workgroup>>)
// CHECK-SAME: private(%[[ACC:[^ ]*]] : memref<32xf32, #gpu.address_space<private>>)
//   Thread t copies chunk t % 4 (k = 8·(t % 4)) of row t / 4 first.
// CHECK: %[[CHUNK:.*]] = arith.remui %[[T]], %c4
// CHECK: %[[KK:.*]] = arith.muli %[[CHUNK]], %c8
// CHECK: %[[ROW:.*]] = arith.divui %[[T]], %c4
// CHECK: %[[N:.*]] = arith.select %{{.*}}, %c8, %c0
// CHECK: nvgpu.device_async_copy %[[A]][%{{.*}}, %{{.*}}], %[[SA]][%c0, %[[ROW]], %[[KK]]], 8, %[[N]] {bypassL1}
// CHECK: nvgpu.device_async_copy %[[A]]
// CHECK-COUNT-2: nvgpu.device_async_copy %[[B]]{{.*}}, %[[SB]][%c0,
// CHECK-COUNT-2: nvgpu.device_async_copy %[[A]]{{.*}}, %[[SA]][%c1,
// CHECK-COUNT-2: nvgpu.device_async_copy %[[B]]{{.*}}, %[[SB]][%c1,
// CHECK: scf.for
// CHECK: nvgpu.device_async_wait %{{.*}} {numGroups = 1 : i32}
// CHECK: gpu.barrier
// CHECK-COUNT-2: nvgpu.device_async_copy %[[A]]
// CHECK-COUNT-2: nvgpu.device_async_copy %[[B]]
// CHECK: %[[STAGE:.*]] = arith.remui %{{.*}}, %c3
// CHECK-COUNT-2: nvgpu.ldmatrix %[[SA]][%[[STAGE]], %{{.*}}, %{{.*}}] {numTiles = 4 : i32, transpose = false}
// CHECK-COUNT-2: nvgpu.ldmatrix %[[SB]][%[[STAGE]], %{{.*}}, %{{.*}}] {numTiles = 4 : i32, transpose = false}
// CHECK: %[[SUM:.*]] = memref.load %[[ACC]][%c0]
// CHECK: vector.from_elements %[[SUM]],
// CHECK: nvgpu.mma.sync({{.*}}) {mmaShape = [16, 8, 16]} : (vector<4x2xbf16>, vector<2x2xbf16>, vector<2x2xf32>) -> vector<2x2xf32>
// CHECK-COUNT-7: nvgpu.mma.sync
//   The second 16 of the step.
// CHECK-COUNT-4: nvgpu.ldmatrix
// CHECK-COUNT-8: nvgpu.mma.sync
// CHECK-NOT: gpu.barrier
// CHECK: }
// CHECK-COUNT-32: memref.store %{{.*}}, %[[C]]
// CHECK-NOT: linalg.matmul
func.func @bf16(%a: memref<?x64xbf16>, %b: memref<48x64xbf16>, %c: memref<?x48xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%a, %b : memref<?x64xbf16>, memref<48x64xbf16>) outs(%c : memref<?x48xf32>)
  return
}

// -----

// A weight stored [K, N] (N fastest) is staged [stage][k][n] in rows of 72,
// copied in chunks along N, and read by ldmatrix transposed: an 8 x 8
// matrix's rows are then k. A with rows of K not a multiple of 8 (36) is
// loaded element by element.
// CHECK-LABEL: func.func @weight_k_by_n
// CHECK-SAME: (%[[A:[^:]*]]: memref<?x36xf16>, %[[B:[^:]*]]: memref<36x64xf16>,
// CHECK: gpu.launch
// CHECK-SAME: workgroup(%[[SA:[^ ]*]] : memref<3x64x40xf16, #gpu.address_space<workgroup>>, %[[SB:[^ ]*]] : memref<3x32x72xf16, #gpu.address_space<workgroup>>)
// CHECK: memref.load %[[A]]
// CHECK: memref.store %{{.*}}, %[[SA]]
// CHECK: %[[CHUNK:.*]] = arith.remui %{{.*}}, %c8
// CHECK: %[[NN:.*]] = arith.muli %[[CHUNK]], %c8
// CHECK: %[[KK:.*]] = arith.divui %{{.*}}, %c8
// CHECK: nvgpu.device_async_copy %[[B]][%{{.*}}, %{{.*}}], %[[SB]][%c0, %[[KK]], %[[NN]]], 8
// CHECK: scf.for
// CHECK: nvgpu.ldmatrix %[[SB]]{{.*}} {numTiles = 4 : i32, transpose = true}
// CHECK: nvgpu.mma.sync
func.func @weight_k_by_n(%a: memref<?x36xf16>, %b: memref<36x64xf16>, %c: memref<?x64xf32>) {
  linalg.matmul ins(%a, %b : memref<?x36xf16>, memref<36x64xf16>) outs(%c : memref<?x64xf32>)
  return
}

// -----

// Mixed operands (a bf16 activation, an f32 LoRA weight) are multiplied with
// FMAs: the half type widened as it is staged.
// CHECK-LABEL: func.func @mixed
// CHECK: gpu.launch
// CHECK-SAME: workgroup(%{{[^ ]*}} : memref<3x16x65xf32, #gpu.address_space<workgroup>>,
// CHECK: %[[LOADED:.*]] = memref.load %{{.*}} : memref<?x32xbf16>
// CHECK: %[[WIDE:.*]] = arith.extf %[[LOADED]] : bf16 to f32
// CHECK: scf.yield %[[WIDE]] : f32
// CHECK: gpu.barrier
// CHECK-NOT: nvgpu.mma.sync
// CHECK-NOT: linalg.matmul
func.func @mixed(%a: memref<?x32xbf16>, %b: memref<48x32xf32>, %c: memref<?x48xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%a, %b : memref<?x32xbf16>, memref<48x32xf32>) outs(%c : memref<?x48xf32>)
  return
}

// -----

// Several K loops (here two: a product over [k, l] windows) are one K,
// linearized, the last fastest: each staged element's loops recovered.
// CHECK-LABEL: func.func @two_k
// CHECK-SAME: (%[[X:[^:]*]]: memref<8x4x8xf32>, %[[W:[^:]*]]: memref<8x4x8xf32>
// CHECK: gpu.launch
// CHECK: %[[K:.*]] = arith.select %{{.*}}, %{{.*}}, %c0
// CHECK: %[[L:.*]] = arith.remui %[[K]], %c8
// CHECK: %[[KK:.*]] = arith.divui %[[K]], %c8
// CHECK: nvgpu.device_async_copy %[[X]][%{{.*}}, %[[KK]], %[[L]]]
func.func @two_k(%x: memref<8x4x8xf32>, %w: memref<8x4x8xf32>, %y: memref<8x8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(m, n, k, l) -> (m, k, l)>, affine_map<(m, n, k, l) -> (n, k, l)>, affine_map<(m, n, k, l) -> (m, n)>], iterator_types = ["parallel", "parallel", "reduction", "reduction"]} ins(%x, %w : memref<8x4x8xf32>, memref<8x4x8xf32>) outs(%y : memref<8x8xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %r, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A convolution as the shared pipeline leaves it (rows of a flattened image,
// the window a sum of offsets) is an implicit GEMM: M the batch and output
// positions, N the output channels, K the input channels and the window; the
// input is read through its affine map, its index computed per element.
// CHECK-LABEL: func.func @conv
// CHECK-SAME: (%[[IN:[^:]*]]: memref<?x3x210xf32>, %[[F:[^:]*]]: memref<8x3x3x3xf32>, %[[OUT:[^:]*]]: memref<?x8x180xf32>)
// CHECK: gpu.launch
// CHECK: arith.cmpi ult, %{{.*}}, %c27
// CHECK: %[[KW:.*]] = arith.remui %[[K:[^,]*]], %c3
// CHECK: %[[P:.*]] = arith.remui %{{.*}}, %c180
// CHECK: %[[ROW:.*]] = arith.muli %{{.*}}, %c14
// CHECK: %[[AT:.*]] = arith.addi %[[P]], %[[ROW]]
// CHECK: %[[AT2:.*]] = arith.addi %[[AT]], %[[KW]]
// CHECK: nvgpu.device_async_copy %[[IN]][%{{.*}}, %{{.*}}, %[[AT2]]]
// CHECK: nvgpu.device_async_copy %[[F]]
// CHECK: scf.for %{{.*}} = %c0 to %c2 step %c1 {
// CHECK:   gpu.barrier
// CHECK: memref.store %{{.*}}, %[[OUT]]
// CHECK-NOT: linalg.generic
func.func @conv(%in: memref<?x3x210xf32>, %f: memref<8x3x3x3xf32>, %out: memref<?x8x180xf32>) {
  linalg.generic {indexing_maps = [affine_map<(n, c, p, ic, kh, kw) -> (n, ic, p + kh * 14 + kw)>, affine_map<(n, c, p, ic, kh, kw) -> (c, ic, kh, kw)>, affine_map<(n, c, p, ic, kh, kw) -> (n, c, p)>], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%in, %f : memref<?x3x210xf32>, memref<8x3x3x3xf32>) outs(%out : memref<?x8x180xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Left to the loop kernels: an accumulator of a half type, a body that is
// not a multiply-accumulate, and an output broadcast along a loop.
// CHECK-LABEL: func.func @others
// CHECK-NOT: gpu.launch
// CHECK: linalg.matmul
// CHECK: linalg.generic
// CHECK: linalg.generic
func.func @others(%a: memref<8x16xbf16>, %b: memref<16x8xbf16>, %c: memref<8x8xbf16>,
                  %x: memref<8x4x4xf32>, %w: memref<8x4x4xf32>, %y: memref<8x8xf32>) {
  linalg.matmul ins(%a, %b : memref<8x16xbf16>, memref<16x8xbf16>) outs(%c : memref<8x8xbf16>)
  linalg.generic {indexing_maps = [affine_map<(m, n, k, l) -> (m, k, l)>, affine_map<(m, n, k, l) -> (n, k, l)>, affine_map<(m, n, k, l) -> (m, n)>], iterator_types = ["parallel", "parallel", "reduction", "reduction"]} ins(%x, %w : memref<8x4x4xf32>, memref<8x4x4xf32>) outs(%y : memref<8x8xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %m = arith.maximumf %p, %q : f32
    %s = arith.addf %r, %m : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (m, n)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%y, %y : memref<8x8xf32>, memref<8x8xf32>) outs(%y : memref<8x8xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %r, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// An unmerged LoRA: the layer's GEMM and the expansion of its low-rank
// product add to the same output, so they are one kernel at the expansion,
// after the shrink and its scaling (which neither touch the output nor write
// the layer's input): the layer's K steps, then the rank's, into the same
// accumulators. A view of the output between them reads nothing.
// CHECK-LABEL: func.func @lora
// CHECK-SAME: (%[[X:[^:]*]]: memref<?x32xf32>, %[[W:[^:]*]]: memref<96x32xf32>, %[[A:[^:]*]]: memref<16x32xf32>, %[[B:[^:]*]]: memref<96x16xf32>, %[[Y:[^:]*]]: memref<?x96xf32>, %[[T:[^:]*]]: memref<?x16xf32>)
// CHECK: gpu.launch
// CHECK: memref.load %[[A]]
// CHECK: memref.store %{{.*}}, %[[T]]
// CHECK: linalg.generic
// CHECK: memref.expand_shape %[[Y]]
// CHECK: gpu.launch
// CHECK: nvgpu.device_async_copy %[[X]]
// CHECK: nvgpu.device_async_copy %[[W]]
// CHECK: scf.for %{{.*}} = %c0 to %c2 step %c1 {
// CHECK:   gpu.barrier
// CHECK:   nvgpu.device_async_copy %[[X]]
// CHECK:   nvgpu.device_async_copy %[[W]]
// CHECK:   math.fma
// CHECK: }
//   The layer's last step is computed before the rank's first steps
//   overwrite the stages.
// CHECK: nvgpu.device_async_wait %{{.*}} {numGroups = 0 : i32}
// CHECK-NEXT: gpu.barrier
//   The rank's single step: its copies, no loop left after folding.
// CHECK: nvgpu.device_async_copy %[[T]]
// CHECK: nvgpu.device_async_copy %[[B]]
// CHECK-NOT: nvgpu.device_async_copy %[[X]]
// CHECK:   gpu.barrier
// CHECK:   math.fma
// CHECK-NOT: gpu.barrier
// CHECK: memref.store %{{.*}}, %[[Y]]
// CHECK-NOT: gpu.launch
func.func @lora(%x: memref<?x32xf32>, %w: memref<96x32xf32>, %a: memref<16x32xf32>,
                %b: memref<96x16xf32>, %y: memref<?x96xf32>, %t: memref<?x16xf32>) -> memref<?x2x48xf32> {
  %c0 = arith.constant 0 : index
  %scale = arith.constant 2.0 : f32
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<?x32xf32>, memref<96x32xf32>) outs(%y : memref<?x96xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %a : memref<?x32xf32>, memref<16x32xf32>) outs(%t : memref<?x16xf32>)
  linalg.generic {indexing_maps = [affine_map<(m, n) -> (m, n)>], iterator_types = ["parallel", "parallel"]} outs(%t : memref<?x16xf32>) {
  ^bb0(%v: f32):
    %s = arith.mulf %v, %scale : f32
    linalg.yield %s : f32
  }
  %m = memref.dim %y, %c0 : memref<?x96xf32>
  %view = memref.expand_shape %y [[0], [1, 2]] output_shape [%m, 2, 48] : memref<?x96xf32> into memref<?x2x48xf32>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%t, %b : memref<?x16xf32>, memref<96x16xf32>) outs(%y : memref<?x96xf32>)
  return %view : memref<?x2x48xf32>
}

// -----

// Not when the output is read between (here: copied out), or when an input
// of the first is written between: two kernels, each in its place.
// CHECK-LABEL: func.func @apart
// CHECK-SAME: (%[[X:[^:]*]]: memref<8x32xf32>, %[[W:[^:]*]]: memref<96x32xf32>, %[[Y:[^:]*]]: memref<8x96xf32>, %[[COPY:[^:]*]]: memref<8x96xf32>
// CHECK: gpu.launch
// CHECK: memref.copy %[[Y]], %[[COPY]]
// CHECK: gpu.launch
// CHECK: linalg.fill ins(%{{.*}}) outs(%[[X]]
// CHECK: gpu.launch
func.func @apart(%x: memref<8x32xf32>, %w: memref<96x32xf32>, %y: memref<8x96xf32>, %copy: memref<8x96xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%y : memref<8x96xf32>)
  memref.copy %y, %copy : memref<8x96xf32> to memref<8x96xf32>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%y : memref<8x96xf32>)
  linalg.fill ins(%zero : f32) outs(%x : memref<8x32xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%y : memref<8x96xf32>)
  return
}

// -----

// Where C's sums start: a zero fill, or a bias broadcast along C's N, just
// before the GEMM is taken over: the kernel writes bias + sums (or the sums)
// without reading C, and the op that started C is gone. Anything else that
// wrote C before stays, and C is read and added to.
// CHECK-LABEL: func.func @starts
// CHECK-SAME: (%[[X:[^:]*]]: memref<8x32xf32>, %[[W:[^:]*]]: memref<96x32xf32>, %[[BIAS:[^:]*]]: memref<96xf32>, %[[Y:[^:]*]]: memref<8x96xf32>, %[[Z:[^:]*]]: memref<8x96xf32>, %[[V:[^:]*]]: memref<8x96xf32>)
// CHECK-NOT: linalg.fill
// CHECK-NOT: linalg.generic
// CHECK: gpu.launch
// CHECK-NOT: memref.load %[[Y]]
// CHECK:   %[[B:.*]] = memref.load %[[BIAS]][%[[N:[a-z0-9_]*]]]
// CHECK:   %[[SUM:.*]] = arith.addf %[[B]], %{{.*}}
// CHECK:   memref.store %[[SUM]], %[[Y]][%{{.*}}, %[[N]]]
// CHECK-NOT: memref.load %[[Y]]
// CHECK: gpu.launch
// CHECK-NOT: memref.load %[[Z]]
// CHECK:   memref.store %{{.*}}, %[[Z]]
// CHECK: memref.copy %[[Y]], %[[V]]
// CHECK: gpu.launch
// CHECK:   memref.load %[[V]]
// CHECK:   arith.addf
// CHECK:   memref.store %{{.*}}, %[[V]]
func.func @starts(%x: memref<8x32xf32>, %w: memref<96x32xf32>, %bias: memref<96xf32>,
                  %y: memref<8x96xf32>, %z: memref<8x96xf32>, %v: memref<8x96xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [affine_map<(m, n) -> (n)>, affine_map<(m, n) -> (m, n)>], iterator_types = ["parallel", "parallel"]} ins(%bias : memref<96xf32>) outs(%y : memref<8x96xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%y : memref<8x96xf32>)
  linalg.fill ins(%zero : f32) outs(%z : memref<8x96xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%z : memref<8x96xf32>)
  memref.copy %y, %v : memref<8x96xf32> to memref<8x96xf32>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%v : memref<8x96xf32>)
  return
}

// -----

// Not when C's buffer is written through another view between the start and
// the GEMM: the sums start from what that write left.
// CHECK-LABEL: func.func @start_overwritten
// CHECK: linalg.fill ins(%{{.*}}) outs(%[[Y:[^ ]*]] : memref<8x96xf32>)
// CHECK: linalg.fill
// CHECK: gpu.launch
// CHECK: memref.load %[[Y]]
func.func @start_overwritten(%x: memref<8x32xf32>, %w: memref<96x32xf32>, %buffer: memref<768xf32>) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %y = memref.expand_shape %buffer [[0, 1]] output_shape [8, 96] : memref<768xf32> into memref<8x96xf32>
  linalg.fill ins(%zero : f32) outs(%y : memref<8x96xf32>)
  linalg.fill ins(%one : f32) outs(%buffer : memref<768xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%y : memref<8x96xf32>)
  return
}

// -----

// Without tensor cores (an architecture before sm_80), half types are
// multiplied with FMAs.
// RUN: peft-opt %s --split-input-file --peft-cuda-launch-gemms="tensor-cores=false" | FileCheck %s --check-prefix=SIMT
// SIMT-LABEL: func.func @half_without_tensor_cores
// SIMT: workgroup(%{{[^ ]*}} : memref<3x16x65xf32, #gpu.address_space<workgroup>>,
// SIMT: arith.extf %{{.*}} : f16 to f32
// SIMT-NOT: nvgpu.mma.sync
func.func @half_without_tensor_cores(%a: memref<?x32xf16>, %b: memref<48x32xf16>, %c: memref<?x48xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%a, %b : memref<?x32xf16>, memref<48x32xf16>) outs(%c : memref<?x48xf32>)
  return
}

// -----

// The map that alone reads C after the products (GELU here, through a view
// splitting C's rows into a batch) is the kernel's epilogue: the kernel
// writes its result, at the element of C's linear index, and not C; the
// kernel runs where the map was.
// CHECK-LABEL: func.func @epilogue
// CHECK-SAME: (%[[X:[^:]*]]: memref<8x32xf32>, %[[W:[^:]*]]: memref<96x32xf32>, %[[Y:[^:]*]]: memref<2x4x96xf32>)
// CHECK: gpu.launch
// CHECK: scf.if
// CHECK:   %[[SUM:.*]] = memref.load %{{.*}}[%c0] : memref<16xf32, #gpu.address_space<private>>
// CHECK:   %[[LINEAR:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK-DAG: %[[COLUMN:.*]] = arith.remui %[[LINEAR]], %c96
// CHECK-DAG: %[[ROWS:.*]] = arith.divui %[[LINEAR]], %c96
// CHECK-DAG: %[[ROW:.*]] = arith.remui %[[ROWS]], %c4
// CHECK-DAG: %[[BATCH:.*]] = arith.divui %[[ROWS]], %c4
// CHECK:   %[[SCALED:.*]] = arith.divf %[[SUM]], %cst
// CHECK:   math.erf %[[SCALED]]
// CHECK:   memref.store %{{.*}}, %[[Y]][%[[BATCH]], %[[ROW]], %[[COLUMN]]]
// CHECK-NOT: linalg.generic
// CHECK-NOT: linalg.fill
func.func @epilogue(%x: memref<8x32xf32>, %w: memref<96x32xf32>, %y: memref<2x4x96xf32>) {
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<8x96xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<8x96xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%c : memref<8x96xf32>)
  %rows = memref.expand_shape %c [[0, 1], [2]] output_shape [2, 4, 96] : memref<8x96xf32> into memref<2x4x96xf32>
  %root2 = arith.constant 1.41421354 : f32
  %one = arith.constant 1.0 : f32
  %half = arith.constant 0.5 : f32
  linalg.generic {indexing_maps = [affine_map<(b, i, j) -> (b, i, j)>, affine_map<(b, i, j) -> (b, i, j)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%rows : memref<2x4x96xf32>) outs(%y : memref<2x4x96xf32>) {
  ^bb0(%in: f32, %o: f32):
    %d = arith.divf %in, %root2 : f32
    %e = math.erf %d : f32
    %p = arith.addf %e, %one : f32
    %t = arith.mulf %in, %p : f32
    %g = arith.mulf %t, %half : f32
    linalg.yield %g : f32
  }
  memref.dealloc %c : memref<8x96xf32>
  return
}

// -----

// A half model's layer: its bias widened into C, the GEMM of f16 on tensor
// cores, C narrowed to f16. The kernel starts from the bias (widened as it
// is read) and stores f16: neither map remains.
// CHECK-LABEL: func.func @half_layer
// CHECK-SAME: (%[[X:[^:]*]]: memref<?x64xf16>, %[[W:[^:]*]]: memref<48x64xf16>, %[[BIAS:[^:]*]]: memref<48xf16>, %[[Y:[^:]*]]: memref<?x48xf16>)
// CHECK: gpu.launch
// CHECK: nvgpu.mma.sync
// CHECK: scf.if
// CHECK:   %[[B:.*]] = memref.load %[[BIAS]][%{{.*}}] : memref<48xf16>
// CHECK:   %[[WIDE:.*]] = arith.extf %[[B]] : f16 to f32
// CHECK:   %[[SUM:.*]] = arith.addf %[[WIDE]], %{{.*}} : f32
// CHECK:   %[[NARROW:.*]] = arith.truncf %[[SUM]] : f32 to f16
// CHECK:   memref.store %[[NARROW]], %[[Y]]
// CHECK-NOT: linalg.generic
func.func @half_layer(%x: memref<?x64xf16>, %w: memref<48x64xf16>, %bias: memref<48xf16>, %y: memref<?x48xf16>) {
  %c0 = arith.constant 0 : index
  %m = memref.dim %x, %c0 : memref<?x64xf16>
  %c = memref.alloc(%m) : memref<?x48xf32>
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%bias : memref<48xf16>) outs(%c : memref<?x48xf32>) {
  ^bb0(%in: f16, %o: f32):
    %wide = arith.extf %in : f16 to f32
    linalg.yield %wide : f32
  }
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<?x64xf16>, memref<48x64xf16>) outs(%c : memref<?x48xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%c : memref<?x48xf32>) outs(%y : memref<?x48xf16>) {
  ^bb0(%in: f32, %o: f16):
    %narrow = arith.truncf %in : f32 to f16
    linalg.yield %narrow : f16
  }
  memref.dealloc %c : memref<?x48xf32>
  return
}

// -----

// C read again after the map (or the map writing what the GEMM reads) keeps
// the map apart: the kernel writes C.
// CHECK-LABEL: func.func @read_after
// CHECK: gpu.launch
// CHECK: memref.store %{{.*}}, %{{.*}} : memref<8x96xf32>
// CHECK: linalg.generic
// CHECK: memref.copy
// CHECK-LABEL: func.func @writes_input
// CHECK: gpu.launch
// CHECK: linalg.generic
func.func @read_after(%x: memref<8x32xf32>, %w: memref<96x32xf32>, %y: memref<8x96xf32>, %z: memref<8x96xf32>) {
  %c = memref.alloc() : memref<8x96xf32>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x32xf32>, memref<96x32xf32>) outs(%c : memref<8x96xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%c : memref<8x96xf32>) outs(%y : memref<8x96xf32>) {
  ^bb0(%in: f32, %o: f32):
    %n = arith.negf %in : f32
    linalg.yield %n : f32
  }
  memref.copy %c, %z : memref<8x96xf32> to memref<8x96xf32>
  memref.dealloc %c : memref<8x96xf32>
  return
}
func.func @writes_input(%x: memref<8x96xf32>, %w: memref<96x96xf32>) {
  %c = memref.alloc() : memref<8x96xf32>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
    ins(%x, %w : memref<8x96xf32>, memref<96x96xf32>) outs(%c : memref<8x96xf32>)
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%c, %x : memref<8x96xf32>, memref<8x96xf32>) outs(%x : memref<8x96xf32>) {
  ^bb0(%in: f32, %r: f32, %o: f32):
    %s = arith.addf %in, %r : f32
    linalg.yield %s : f32
  }
  memref.dealloc %c : memref<8x96xf32>
  return
}

// -----

// C's sizes known at compile time: 2048 x 2048 has 256 tiles of 128 x 128,
// so they are chosen; eight warps of 64 x 32 (warp w at rows 64·(w/4),
// columns 32·(w%4)), four stages (two pending while one is computed), 64
// accumulators per thread. Per 16 of K a warp loads four m16 tiles of A and
// four n8 tiles of B, and issues 16 mma.sync.
// AUTO-LABEL: func.func @bf16_large
// AUTO-NOT: scf.if
// AUTO: gpu.launch blocks(%{{[^)]*}}) in (%{{[^ ]*}} = %c16, %{{[^ ]*}} = %c16, %{{[^ ]*}} = %c1)
// AUTO-SAME: threads(%[[T:[^,]*]], %{{.*}}) in (%{{[^ ]*}} = %c256,
// AUTO-SAME: workgroup(%[[SA:[^ ]*]] : memref<4x128x40xbf16, #gpu.address_space<workgroup>>, %[[SB:[^ ]*]] : memref<4x32x136xbf16, #gpu.address_space<workgroup>>)
// AUTO-SAME: private(%{{[^ ]*}} : memref<64xf32, #gpu.address_space<private>>)
// AUTO-DAG: %[[WARP:.*]] = arith.divui %[[T]], %c32
// AUTO-DAG: %[[WROW:.*]] = arith.divui %[[WARP]], %c4
// AUTO-DAG: arith.muli %[[WROW]], %c64
// AUTO-DAG: %[[WCOL:.*]] = arith.remui %[[WARP]], %c4
// AUTO-DAG: arith.muli %[[WCOL]], %c32
// AUTO: nvgpu.device_async_create_group
// AUTO: nvgpu.device_async_create_group
// AUTO: %[[GROUP:.*]] = nvgpu.device_async_create_group
// AUTO: scf.for %{{.*}} = %c0 to %c8 step %c1 {
// AUTO:   nvgpu.device_async_wait %[[GROUP]] {numGroups = 2 : i32}
// AUTO:   gpu.barrier
// AUTO:   arith.remui %{{.*}}, %c4
// AUTO-COUNT-4: nvgpu.ldmatrix %[[SA]]
// AUTO-COUNT-2: nvgpu.ldmatrix %[[SB]]{{.*}} {numTiles = 4 : i32, transpose = true}
// AUTO-COUNT-16: nvgpu.mma.sync
// AUTO-COUNT-4: nvgpu.ldmatrix %[[SA]]
// AUTO-COUNT-2: nvgpu.ldmatrix %[[SB]]
// AUTO-COUNT-16: nvgpu.mma.sync
// AUTO-NOT: gpu.barrier
// AUTO: }
// AUTO: nvgpu.device_async_wait %[[GROUP]] {numGroups = 0 : i32}
// AUTO-COUNT-64: memref.store %{{.*}}, %{{.*}} : memref<2048x2048xf32>
func.func @bf16_large(%a: memref<2048x256xbf16>, %b: memref<256x2048xbf16>, %c: memref<2048x2048xf32>) {
  linalg.matmul ins(%a, %b : memref<2048x256xbf16>, memref<256x2048xbf16>) outs(%c : memref<2048x2048xf32>)
  return
}

// -----

// One tile short of 256 (2048 x 1920: 16 x 15): the 64 x 64 kernel.
// AUTO-LABEL: func.func @bf16_not_large_enough
// AUTO-NOT: scf.if
// AUTO: gpu.launch blocks(%{{[^)]*}}) in (%{{[^ ]*}} = %c30, %{{[^ ]*}} = %c32, %{{[^ ]*}} = %c1)
// AUTO-SAME: threads(%{{[^,]*}}, %{{.*}}) in (%{{[^ ]*}} = %c128,
// AUTO-NOT: gpu.launch
func.func @bf16_not_large_enough(%a: memref<2048x256xbf16>, %b: memref<256x1920xbf16>, %c: memref<2048x1920xf32>) {
  linalg.matmul ins(%a, %b : memref<2048x256xbf16>, memref<256x1920xbf16>) outs(%c : memref<2048x1920xf32>)
  return
}

// -----

// peft.multi_lora's expansion: each batch element's slot of Bᵀ [3 slots,
// rank capacity 16, 24] selected by a generic marked peft.slot_gather (= 1:
// zeros past the slot's rank along K), then the batched GEMM t[b]·Bᵀ[slot].
// The kernel reads the table at the block's slot (-1 reads slot 0) and the
// selection goes, with its buffer. K is the slot's rank, and 0 for an
// element without an adapter, whose C keeps its start (its update is scaled
// by 0): the K loop and the staging guards stop there.
// CHECK-LABEL: func.func @slot_expansion
// AUTO-LABEL: func.func @slot_expansion
// CHECK-SAME: (%[[T:[^:]*]]: memref<?x8x16xf32>, %[[INDEX:[^:]*]]: memref<?xi64>, %[[TABLE:[^:]*]]: memref<3x16x24xf32>, %[[RANKS:[^:]*]]: memref<3xf32>,
// CHECK-NOT: memref.alloc
// CHECK: gpu.launch blocks(%{{[^,]*}}, %{{[^,]*}}, %[[BZ:[^)]*]])
// CHECK:   %[[ELEMENT:.*]] = arith.remui %[[BZ]]
// CHECK:   %[[RAW:.*]] = memref.load %[[INDEX]][%[[ELEMENT]]]
// CHECK:   %[[NONE:.*]] = arith.cmpi slt, %[[RAW]], %c0_i64
// CHECK:   %[[WIDE:.*]] = arith.index_cast %[[RAW]]
// CHECK:   %[[SLOT:.*]] = arith.maxsi %[[WIDE]], %c0
// CHECK:   %[[STORED:.*]] = memref.load %[[RANKS]][%[[SLOT]]]
// CHECK:   %[[RANK_I64:.*]] = arith.fptosi %[[STORED]]
// CHECK:   %[[RANK:.*]] = arith.index_cast %[[RANK_I64]]
// CHECK:   %[[CAPPED:.*]] = arith.minui %[[RANK]], %c16
// CHECK:   %[[K:.*]] = arith.select %[[NONE]], %c0, %[[CAPPED]]
// CHECK:   %[[STEPS:.*]] = arith.ceildivui %[[K]], %c16
// CHECK:   nvgpu.device_async_copy %[[TABLE]][%[[SLOT]], %{{.*}}, %{{.*}}]
// CHECK:   scf.for %{{.*}} = %c0 to %[[STEPS]]
// CHECK-NOT: linalg.generic
// CHECK-NOT: memref.dealloc
#slot_index = affine_map<(b, i, j) -> (b)>
#slot_all = affine_map<(b, i, j) -> (b, i, j)>
#t_rows = affine_map<(b, i, j, k) -> (b, i, k)>
#b_rows = affine_map<(b, i, j, k) -> (b, k, j)>
#out = affine_map<(b, i, j, k) -> (b, i, j)>
func.func @slot_expansion(%t: memref<?x8x16xf32>, %index: memref<?xi64>, %b: memref<3x16x24xf32>, %ranks: memref<3xf32>, %out: memref<?x8x24xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %batch = memref.dim %index, %c0 : memref<?xi64>
  %rows = memref.alloc(%batch) : memref<?x16x24xf32>
  linalg.generic {indexing_maps = [#slot_index, #slot_all], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%index : memref<?xi64>) outs(%rows : memref<?x16x24xf32>) attrs = {peft.slot_gather = 1 : i64} {
  ^bb0(%in: i64, %o: f32):
    %i = arith.index_cast %in : i64 to index
    %slot = arith.maxsi %i, %c0 : index
    %k = linalg.index 1 : index
    %j = linalg.index 2 : index
    %v = memref.load %b[%slot, %k, %j] : memref<3x16x24xf32>
    %r = memref.load %ranks[%slot] : memref<3xf32>
    %rank = arith.fptosi %r : f32 to i64
    %position = arith.index_cast %k : index to i64
    %inside = arith.cmpi slt, %position, %rank : i64
    %picked = arith.select %inside, %v, %zero : f32
    linalg.yield %picked : f32
  }
  linalg.generic {indexing_maps = [#t_rows, #b_rows, #out], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%t, %rows : memref<?x8x16xf32>, memref<?x16x24xf32>) outs(%out : memref<?x8x24xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %r, %m : f32
    linalg.yield %s : f32
  }
  memref.dealloc %rows : memref<?x16x24xf32>
  return
}
