// RUN: peft-opt %s --peft-cpu-lower-panel-gemms="micro-rows=4 vector-width=8 k-block=16 m-block=32" | FileCheck %s

// out[?, 36] += x[?, 24] · W, W in 3 panels of 16 channels (two vectors of 8).
// The GEMM becomes a call of its task on the runtime's threads, with the
// operands' descriptors in a context on the stack.
// CHECK-LABEL: func.func @gemm
// CHECK: %[[CONTEXT:.*]] = llvm.alloca
// CHECK-COUNT-3: llvm.store
// CHECK: %[[TASK:.*]] = constant @peft_panel_gemm_24x36_16_task
// CHECK: %[[POINTER:.*]] = builtin.unrealized_conversion_cast %[[TASK]]
// CHECK: %[[COUNT:.*]] = arith.index_cast %c3
// CHECK: call @peft_parallel_for(%[[POINTER]], %[[CONTEXT]], %[[COUNT]])
// CHECK-NOT: linalg.generic

// Operands whose rows are not contiguous stay a generic (lowered to loops).
// CHECK-LABEL: func.func @strided
// CHECK: linalg.generic

// The kernel: row blocks of 32, the full panels of the threads' range, then
// K blocks of 16 (24 is not a multiple: the last one is shorter).
// CHECK-LABEL: func.func private @peft_panel_gemm_24x36_16(
// CHECK-SAME: memref<?x24xf32, strided<[?, 1], offset: ?>>, %[[W:[^:]*]]: memref<3x24x16xf32>, %{{[^:]*}}: memref<?x36xf32, strided<[?, 1], offset: ?>>, %[[BEGIN:[^:]*]]: index, %[[END:[^:]*]]: index)
// CHECK: scf.for %{{.*}} step %c32
// CHECK:   %[[LAST:.*]] = arith.minui %[[END]], %c2
// CHECK:   scf.for %[[P:.*]] = %[[BEGIN]] to %[[LAST]] step %c1
// CHECK:     scf.for %{{.*}} = %{{.*}} to %c24 step %c16
// CHECK:       arith.minui %{{.*}}, %c24
// The sums start from out: its rows' lines 4 panels ahead (the column
// clamped to 35) are asked for while this panel computes.
// CHECK:       %[[AHEAD:.*]] = arith.minui %{{.*}}, %c35
// CHECK:       scf.for
// CHECK:         memref.prefetch %{{.*}}[%{{.*}}, %[[AHEAD]]], write, locality<3>, data
// Register tiles of 4 rows: 8 accumulators loaded, a K loop of 2 panel loads,
// 4 broadcasts and 8 FMAs, 8 stores.
// CHECK:       scf.for %{{.*}} step %c4
// CHECK-COUNT-8: vector.load {{.*}} : memref<?x36xf32, strided<[?, 1], offset: ?>>, vector<8xf32>
// CHECK:         scf.for {{.*}} iter_args
// CHECK-COUNT-2:   vector.load %[[W]]
// CHECK:           vector.broadcast
// CHECK-COUNT-8:   vector.fma {{.*}} : vector<8xf32>
// CHECK-COUNT-8: vector.store
// The rows left: 2, then 1.
// CHECK:       scf.if
// CHECK-COUNT-4: vector.fma
// CHECK:       scf.if
// CHECK-COUNT-2: vector.fma
// The last panel, 4 channels of 16: one masked vector, one not computed.
// CHECK:   %[[PARTIAL:.*]] = arith.cmpi ugt, %[[END]], %c2
// CHECK:   scf.if %[[PARTIAL]]
// CHECK:       vector.create_mask %c4{{.*}} : vector<8xi1>
// CHECK:       vector.maskedload
// CHECK:       vector.maskedstore
// CHECK-LABEL: func.func private @peft_panel_gemm_24x36_16_task(
// CHECK-SAME: %[[C:.*]]: !llvm.ptr, %[[B:.*]]: index, %[[E:.*]]: index)
// CHECK-COUNT-3: llvm.load
// CHECK: call @peft_panel_gemm_24x36_16({{.*}}, %[[B]], %[[E]])
#mk = affine_map<(m, n, k) -> (m, k)>
#panel = affine_map<(m, n, k) -> (n floordiv 16, k, n mod 16)>
#mn = affine_map<(m, n, k) -> (m, n)>
func.func @gemm(%x: memref<?x24xf32>, %w: memref<3x24x16xf32>, %out: memref<?x36xf32>) {
  linalg.generic {indexing_maps = [#mk, #panel, #mn], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>)
      attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %p, %c : f32
    linalg.yield %s : f32
  }
  return
}

func.func @strided(%x: memref<4x24xf32, strided<[48, 2]>>, %w: memref<3x24x16xf32>, %out: memref<4x36xf32>) {
  linalg.generic {indexing_maps = [#mk, #panel, #mn], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<4x24xf32, strided<[48, 2]>>, memref<3x24x16xf32>) outs(%out : memref<4x36xf32>)
      attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %p, %c : f32
    linalg.yield %s : f32
  }
  return
}

// RUN: peft-opt %s --peft-cpu-lower-panel-gemms="micro-rows=4 vector-width=8 row-tile=16" | FileCheck %s --check-prefix=BATCH
// Attention's scores: [batch, heads, i, k] · [batch, heads, k, j], j known at
// run time. The matrices of the batch go to the threads; each runs the
// kernel that reads B's rows as they are, the last run of columns masked.
// BATCH-LABEL: func.func @scores
// BATCH: %[[HEADS:.*]] = arith.muli %{{.*}}, %{{.*}}
// BATCH: call @peft_parallel_for(%{{.*}}, %{{.*}}, %{{.*}})
// BATCH-LABEL: func.func private @peft_row_gemm_8xd_16(
// BATCH-SAME: memref<?x8xf32, strided<[?, 1], offset: ?>>, %[[B:[^:]*]]: memref<?x?xf32, strided<[?, 1], offset: ?>>
// BATCH: vector.load %[[B]]
// BATCH: vector.maskedload %[[B]]
// BATCH: vector.maskedstore
// BATCH-LABEL: func.func private @peft_row_gemm_8xd_16_batch_d_4_d_4_d_4(
// BATCH: memref.subview {{.*}} to memref<?x8xf32, strided<[?, 1], offset: ?>>
// BATCH: call @peft_row_gemm_8xd_16(
#lhs = affine_map<(b, h, i, j, k) -> (b, h, i, k)>
#rhs = affine_map<(b, h, i, j, k) -> (b, h, k, j)>
#out = affine_map<(b, h, i, j, k) -> (b, h, i, j)>
func.func @scores(%q: memref<?x4x?x8xf32>, %k: memref<?x4x8x?xf32>, %s: memref<?x4x?x?xf32>) {
  linalg.generic {indexing_maps = [#lhs, #rhs, #out], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<?x4x?x8xf32>, memref<?x4x8x?xf32>) outs(%s : memref<?x4x?x?xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %c, %p : f32
    linalg.yield %r : f32
  }
  return
}

// RUN: peft-opt %s --peft-cpu-lower-panel-gemms="micro-rows=4 vector-width=8 k-block=16 m-block=32" | FileCheck %s --check-prefix=LOWRANK
// An unmerged LoRA: the layer's GEMM, the shrink s = x·Aᵀ (r = 4), then
// s·Bᵀ into the layer's output, B packed in the layer's panels. The layer's
// GEMM and s·Bᵀ become one call, at the second, of a kernel that adds s·Bᵀ
// in the registers of the last K block before storing them.
// LOWRANK-LABEL: func.func @lora
// LOWRANK: constant @peft_panel_gemm_24x4_16_task
// LOWRANK: constant @peft_panel_gemm_24x36_16_lowrank4_task
// LOWRANK-NOT: linalg.generic
// With an op between them that reads the output, they stay two calls.
// LOWRANK-LABEL: func.func @blocked
// LOWRANK: constant @peft_panel_gemm_24x36_16_task
// LOWRANK: memref.copy
// LOWRANK: constant @peft_panel_gemm_4x36_16_task
// LOWRANK-LABEL: func.func private @peft_panel_gemm_24x36_16_lowrank4(
// LOWRANK-SAME: %{{[^:]*}}: memref<?x24xf32, strided<[?, 1], offset: ?>>, %[[W:[^:]*]]: memref<3x24x16xf32>, %[[S:[^:]*]]: memref<?x4xf32, strided<[?, 1], offset: ?>>, %[[B:[^:]*]]: memref<3x4x16xf32>
// LOWRANK:   scf.for {{.*}} iter_args
// LOWRANK:     vector.load %[[W]]
// LOWRANK:   %[[LAST:.*]] = arith.cmpi eq
// LOWRANK:   scf.if %[[LAST]] -> (vector<8xf32>
// LOWRANK:     scf.for %{{.*}} = %c0{{.*}} to %c4{{.*}} step %c1{{.*}} iter_args
// LOWRANK:       vector.load %[[B]]
// LOWRANK:       memref.load %[[S]]
// LOWRANK:       vector.fma
// LOWRANK:   } else {
// LOWRANK:   vector.store
#panel4 = affine_map<(m, n, k) -> (n floordiv 16, k, n mod 16)>
func.func @lora(%x: memref<?x24xf32>, %w: memref<3x24x16xf32>, %a: memref<1x24x16xf32>, %b: memref<3x4x16xf32>, %s: memref<?x4xf32>, %out: memref<?x36xf32>) {
  linalg.generic {indexing_maps = [#mk, #panel, #mn], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>)
      attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%p: f32, %q: f32, %c: f32):
    %m = arith.mulf %p, %q : f32
    %r = arith.addf %m, %c : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#mk, #panel4, #mn], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %a : memref<?x24xf32>, memref<1x24x16xf32>) outs(%s : memref<?x4xf32>)
      attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%p: f32, %q: f32, %c: f32):
    %m = arith.mulf %p, %q : f32
    %r = arith.addf %m, %c : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#mk, #panel4, #mn], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%s, %b : memref<?x4xf32>, memref<3x4x16xf32>) outs(%out : memref<?x36xf32>)
      attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%p: f32, %q: f32, %c: f32):
    %m = arith.mulf %p, %q : f32
    %r = arith.addf %m, %c : f32
    linalg.yield %r : f32
  }
  return
}

func.func @blocked(%x: memref<?x24xf32>, %w: memref<3x24x16xf32>, %b: memref<3x4x16xf32>, %s: memref<?x4xf32>, %out: memref<?x36xf32>, %copy: memref<?x36xf32>) {
  linalg.generic {indexing_maps = [#mk, #panel, #mn], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x24xf32>, memref<3x24x16xf32>) outs(%out : memref<?x36xf32>)
      attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%p: f32, %q: f32, %c: f32):
    %m = arith.mulf %p, %q : f32
    %r = arith.addf %m, %c : f32
    linalg.yield %r : f32
  }
  memref.copy %out, %copy : memref<?x36xf32> to memref<?x36xf32>
  linalg.generic {indexing_maps = [#mk, #panel4, #mn], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%s, %b : memref<?x4xf32>, memref<3x4x16xf32>) outs(%out : memref<?x36xf32>)
      attrs = {peft.panel_gemm = 16 : i64} {
  ^bb0(%p: f32, %q: f32, %c: f32):
    %m = arith.mulf %p, %q : f32
    %r = arith.addf %m, %c : f32
    linalg.yield %r : f32
  }
  return
}

// RUN: peft-opt %s --peft-cpu-lower-panel-gemms="micro-rows=4 vector-width=8 row-tile=16" | FileCheck %s --check-prefix=SLOTS
// peft.multi_lora's shrink: each row's slot of Aᵀ [3 slots, 32, 16] selected
// by a generic marked peft.slot_gather, then the batched GEMM x[b]·Aᵀ[slot].
// The copy goes: the elements of the batch go to the threads; each thread
// asks peft_slot_runs (the model's support library) for its elements' runs
// in slot order (each slot's elements one after another, wherever they lie;
// consecutive ones of one slot, while their rows lie contiguous, one run;
// slot -1 none) and calls the row kernel on the table at each run's slot.
// SLOTS-LABEL: func.func @slot_rows
// SLOTS-NOT: peft.slot_gather
// SLOTS: constant @peft_row_gemm_32x16_16_slots_d_8_3_32_d_8_task
// SLOTS: call @peft_parallel_for
// SLOTS-NOT: linalg.generic
// SLOTS-LABEL: func.func private @peft_row_gemm_32x16_16_slots_d_8_3_32_d_8(
// SLOTS-SAME: %[[X:[^:]*]]: memref<?x8x32xf32, {{.*}}>, %[[TABLE:[^:]*]]: memref<3x32x16xf32, {{.*}}>, %[[OUT:[^:]*]]: memref<?x8x16xf32, {{.*}}>, %[[INDEX:[^:]*]]: memref<?xi64, {{.*}}>, %[[FIRST:[^:]*]]: index, %[[LAST:[^:]*]]: index)
// Room for the runs and the sort: 4 per element.
// SLOTS: %[[ELEMENTS:.*]] = arith.subi %[[LAST]], %[[FIRST]]
// SLOTS: %[[ROOM:.*]] = arith.muli %[[ELEMENTS]], %c4
// SLOTS: %[[PAIRS:.*]] = memref.alloc(%[[ROOM]]) : memref<?xi64>
// SLOTS: %[[ANY:.*]] = memref.cast %[[INDEX]]
// SLOTS: %[[FOUND:.*]] = call @peft_slot_runs(%[[ANY]], %[[FIRST]], %[[LAST]], %{{.*}}, %[[PAIRS]])
// SLOTS: scf.for %[[EACH:.*]] = %c0 to %[[FOUND]]
// SLOTS:   %[[START:.*]] = memref.load %[[PAIRS]]
// SLOTS:   %[[COUNT:.*]] = memref.load %[[PAIRS]]
// SLOTS:   %[[SLOT:.*]] = memref.load %[[INDEX]]
// SLOTS:   memref.reinterpret_cast %{{.*}} to offset: [%{{.*}}], sizes: [%{{.*}}, 16], strides: [%{{.*}}, 1]
// SLOTS:   call @peft_row_gemm_32x16_16(
// SLOTS: memref.dealloc %[[PAIRS]]
// SLOTS-LABEL: func.func private @peft_slot_runs(memref<?xi64, strided<[?], offset: ?>>, index, index, index, memref<?xi64>) -> index
#slot_index = affine_map<(b, i, j) -> (b)>
#slot_all = affine_map<(b, i, j) -> (b, i, j)>
#x_rows = affine_map<(b, i, j, k) -> (b, i, k)>
#a_rows = affine_map<(b, i, j, k) -> (b, k, j)>
#down = affine_map<(b, i, j, k) -> (b, i, j)>
func.func @slot_rows(%x: memref<?x8x32xf32>, %index: memref<?xi64>, %a: memref<3x32x16xf32>, %down: memref<?x8x16xf32>) {
  %c0 = arith.constant 0 : index
  %batch = memref.dim %index, %c0 : memref<?xi64>
  %rows = memref.alloc(%batch) : memref<?x32x16xf32>
  linalg.generic {indexing_maps = [#slot_index, #slot_all], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%index : memref<?xi64>) outs(%rows : memref<?x32x16xf32>) attrs = {peft.slot_gather} {
  ^bb0(%in: i64, %out: f32):
    %i = arith.index_cast %in : i64 to index
    %slot = arith.maxsi %i, %c0 : index
    %k = linalg.index 1 : index
    %j = linalg.index 2 : index
    %v = memref.load %a[%slot, %k, %j] : memref<3x32x16xf32>
    linalg.yield %v : f32
  }
  linalg.generic {indexing_maps = [#x_rows, #a_rows, #down], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %rows : memref<?x8x32xf32>, memref<?x32x16xf32>) outs(%down : memref<?x8x16xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %r, %m : f32
    linalg.yield %s : f32
  }
  memref.dealloc %rows : memref<?x32x16xf32>
  return
}

// RUN: peft-opt %s --peft-cpu-lower-panel-gemms="micro-rows=4 vector-width=8 row-tile=16" | FileCheck %s --check-prefix=RANKED
// With the slots' ranks (peft.slot_gather = 2: the gather zeros columns of
// Aᵀ past the slot's rank), each run's GEMM is over its slot's rank: the
// kernel with N known at run time, on the first `rank` columns of the table
// and of the output; a slot of rank 0 runs nothing.
// RANKED-LABEL: func.func @ranked_slot_rows
// RANKED: constant @peft_row_gemm_32xd_16_slots_ranked2_d_8_3_32_d_8_task
// RANKED-LABEL: func.func private @peft_row_gemm_32xd_16_slots_ranked2_d_8_3_32_d_8(
// RANKED-SAME: %[[RANKS:[^:]*]]: memref<3xf32
// RANKED:     %[[STORED:.*]] = memref.load %[[RANKS]]
// RANKED:     %[[RANK_I64:.*]] = arith.fptosi %[[STORED]]
// RANKED:     %[[RANK:.*]] = arith.index_cast %[[RANK_I64]]
// RANKED:     %[[SOME:.*]] = arith.cmpi ugt, %[[RANK]]
// RANKED:     scf.if %[[SOME]]
// RANKED:       memref.reinterpret_cast %{{.*}} to offset: [%{{.*}}], sizes: [%{{.*}}, %[[RANK]]], strides: [%{{.*}}, 1]
// RANKED:       call @peft_row_gemm_32xd_16(
func.func @ranked_slot_rows(%x: memref<?x8x32xf32>, %index: memref<?xi64>, %a: memref<3x32x16xf32>, %ranks: memref<3xf32>, %down: memref<?x8x16xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %batch = memref.dim %index, %c0 : memref<?xi64>
  %rows = memref.alloc(%batch) : memref<?x32x16xf32>
  linalg.generic {indexing_maps = [#slot_index, #slot_all], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%index : memref<?xi64>) outs(%rows : memref<?x32x16xf32>) attrs = {peft.slot_gather = 2 : i64} {
  ^bb0(%in: i64, %out: f32):
    %i = arith.index_cast %in : i64 to index
    %slot = arith.maxsi %i, %c0 : index
    %k = linalg.index 1 : index
    %j = linalg.index 2 : index
    %v = memref.load %a[%slot, %k, %j] : memref<3x32x16xf32>
    %r = memref.load %ranks[%slot] : memref<3xf32>
    %rank = arith.fptosi %r : f32 to i64
    %position = arith.index_cast %j : index to i64
    %inside = arith.cmpi slt, %position, %rank : i64
    %picked = arith.select %inside, %v, %zero : f32
    linalg.yield %picked : f32
  }
  linalg.generic {indexing_maps = [#x_rows, #a_rows, #down], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %rows : memref<?x8x32xf32>, memref<?x32x16xf32>) outs(%down : memref<?x8x16xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %r, %m : f32
    linalg.yield %s : f32
  }
  memref.dealloc %rows : memref<?x32x16xf32>
  return
}

// RUN: peft-opt %s --peft-cpu-lower-panel-gemms="micro-rows=4 vector-width=8 row-tile=16" | FileCheck %s --check-prefix=SHRINK
// A shrink over a long K (80) to a rank known at run time: a rank of at
// most 8 runs micro-kernels of one vector, not the panel's two masked, and
// each K step asks for the line of Aᵀ 32 rows further (the last row at most).
// SHRINK-LABEL: func.func private @peft_row_gemm_80xd_16(
// SHRINK: %[[FITS:.*]] = arith.cmpi ule, %{{.*}}, %c8
// SHRINK: scf.if %[[FITS]]
// SHRINK: scf.for %[[K:[^ ]*]] = {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// SHRINK:   %[[AHEAD:.*]] = arith.addi %[[K]], %c32
// SHRINK:   %[[CLAMPED:.*]] = arith.minui %[[AHEAD]], %c79
// SHRINK:   memref.prefetch %arg1[%[[CLAMPED]], %{{.*}}], read
// SHRINK-NOT: memref.prefetch
// SHRINK-COUNT-4: vector.fma
// SHRINK-NOT: vector.fma
// SHRINK: scf.yield
func.func @ranked_long_shrink(%x: memref<?x8x80xf32>, %index: memref<?xi64>, %a: memref<3x80x16xf32>, %ranks: memref<3xf32>, %down: memref<?x8x16xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %batch = memref.dim %index, %c0 : memref<?xi64>
  %rows = memref.alloc(%batch) : memref<?x80x16xf32>
  linalg.generic {indexing_maps = [#slot_index, #slot_all], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%index : memref<?xi64>) outs(%rows : memref<?x80x16xf32>) attrs = {peft.slot_gather = 2 : i64} {
  ^bb0(%in: i64, %out: f32):
    %i = arith.index_cast %in : i64 to index
    %slot = arith.maxsi %i, %c0 : index
    %k = linalg.index 1 : index
    %j = linalg.index 2 : index
    %v = memref.load %a[%slot, %k, %j] : memref<3x80x16xf32>
    %r = memref.load %ranks[%slot] : memref<3xf32>
    %rank = arith.fptosi %r : f32 to i64
    %position = arith.index_cast %j : index to i64
    %inside = arith.cmpi slt, %position, %rank : i64
    %picked = arith.select %inside, %v, %zero : f32
    linalg.yield %picked : f32
  }
  linalg.generic {indexing_maps = [#x_rows, #a_rows, #down], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %rows : memref<?x8x80xf32>, memref<?x80x16xf32>) outs(%down : memref<?x8x16xf32>) {
  ^bb0(%p: f32, %q: f32, %r: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %r, %m : f32
    linalg.yield %s : f32
  }
  memref.dealloc %rows : memref<?x80x16xf32>
  return
}
