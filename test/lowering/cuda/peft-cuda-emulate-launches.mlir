// RUN: peft-opt %s --split-input-file --peft-cuda-emulate-launches | FileCheck %s --implicit-check-not=gpu.
//
// peft-cuda-emulate-launches: a launch as loops over its blocks and threads
// (z, y, x; blocks outside), the ids and sizes it reads mapped; device
// allocations, frees and copies as the host's.

// CHECK-LABEL: func.func @kernel
// CHECK-SAME: (%[[HOST:[^:]*]]: memref<4xf32>, %[[BLOCKS:[^:]*]]: index)
// CHECK: %[[BUFFER:.*]] = memref.alloc() : memref<4xf32>
// CHECK: memref.copy %[[HOST]], %[[BUFFER]]
// CHECK: scf.for %{{.*}} = %c0 to %c1
// CHECK:   scf.for %{{.*}} = %c0 to %c1
// CHECK:     scf.for %[[BX:.*]] = %c0 to %[[BLOCKS]]
// CHECK:       scf.for %{{.*}} = %c0 to %c1
// CHECK:         scf.for %{{.*}} = %c0 to %c1
// CHECK:           scf.for %[[TX:.*]] = %c0 to %c2
// CHECK:             %[[BASE:.*]] = arith.muli %[[BX]], %c2
// CHECK:             %[[ID:.*]] = arith.addi %[[BASE]], %[[TX]]
// CHECK:             memref.store %{{.*}}, %[[BUFFER]][%[[ID]]]
// CHECK: memref.dealloc %[[BUFFER]]
func.func @kernel(%host: memref<4xf32>, %blocks: index) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %buffer = gpu.alloc () : memref<4xf32>
  gpu.memcpy %buffer, %host : memref<4xf32>, memref<4xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %blocks, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c2, %sy = %c1, %sz = %c1) {
    %base = arith.muli %bx, %sx : index
    %id = arith.addi %base, %tx : index
    %one = arith.constant 1.0 : f32
    memref.store %one, %buffer[%id] : memref<4xf32>
    gpu.terminator
  }
  gpu.dealloc %buffer : memref<4xf32>
  return
}

// -----

// Barriers split a block's threads into phases, each a loop over the
// threads: before the loop, in the loop before and after its barrier, after
// it. Index arithmetic a later phase uses is recomputed there; workgroup
// memory is one host buffer; private memory a buffer with a row per thread.
// CHECK-LABEL: func.func @phases
// CHECK-SAME: (%[[OUT:[^:]*]]: memref<8xf32>, %[[STEPS:[^:]*]]: index)
// CHECK: %[[SHARED:.*]] = memref.alloc() : memref<4xf32>
// CHECK: arith.muli
// CHECK: %[[THREADS:.*]] = arith.muli
// CHECK: %[[PRIVATE:.*]] = memref.alloc(%[[THREADS]]) : memref<?x1xf32>
// CHECK: scf.for %[[BX:[^ ]*]] = %c0 to %c2
//   Phase 1: each thread zeroes its accumulator.
// CHECK:   scf.for %[[T1:[^ ]*]] = %c0 to %c4
// CHECK:     memref.store %{{.*}}, %[[PRIVATE]][%{{.*}}, %c0{{.*}}]
// CHECK:   }
//   The loop holding barriers, once per block.
// CHECK:   scf.for %[[STEP:[^ ]*]] = %c0{{.*}} to %[[STEPS]]
//     Phase 2: each thread writes its slot of shared memory.
// CHECK:     scf.for %[[T2:[^ ]*]] = %c0 to %c4
// CHECK:       memref.store %{{.*}}, %[[SHARED]][%[[T2]]]
// CHECK:     }
//     Phase 3: each thread reads its neighbour's slot, the neighbour's
//     index recomputed from the thread.
// CHECK:     scf.for %[[T3:[^ ]*]] = %c0 to %c4
// CHECK:       %[[NEXT:.*]] = arith.addi %[[T3]], %c1
// CHECK:       %[[WRAPPED:.*]] = arith.remui %[[NEXT]], %c4
// CHECK:       memref.load %[[SHARED]][%[[WRAPPED]]]
// CHECK:       memref.store %{{.*}}, %[[PRIVATE]]
// CHECK:     }
// CHECK:   }
//   Phase 4: each thread's result out.
// CHECK:   scf.for %[[T4:[^ ]*]] = %c0 to %c4
// CHECK:     memref.load %[[PRIVATE]]
// CHECK:     memref.store %{{.*}}, %[[OUT]]
// CHECK: memref.dealloc %[[SHARED]]
// CHECK: memref.dealloc %[[PRIVATE]]
func.func @phases(%out: memref<8xf32>, %steps: index) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c2, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1)
             workgroup(%shared : memref<4xf32, #gpu.address_space<workgroup>>)
             private(%acc : memref<1xf32, #gpu.address_space<private>>) {
    %c0 = arith.constant 0 : index
    %zero = arith.constant 0.0 : f32
    %next = arith.addi %tx, %c1 : index
    %neighbour = arith.remui %next, %sx : index
    memref.store %zero, %acc[%c0] : memref<1xf32, #gpu.address_space<private>>
    scf.for %step = %c0 to %steps step %c1 {
      %value = arith.index_cast %tx : index to i32
      %f = arith.sitofp %value : i32 to f32
      memref.store %f, %shared[%tx] : memref<4xf32, #gpu.address_space<workgroup>>
      gpu.barrier
      %theirs = memref.load %shared[%neighbour] : memref<4xf32, #gpu.address_space<workgroup>>
      %sum = memref.load %acc[%c0] : memref<1xf32, #gpu.address_space<private>>
      %new = arith.addf %sum, %theirs : f32
      memref.store %new, %acc[%c0] : memref<1xf32, #gpu.address_space<private>>
      gpu.barrier
    }
    %base = arith.muli %bx, %sx : index
    %id = arith.addi %base, %tx : index
    %result = memref.load %acc[%c0] : memref<1xf32, #gpu.address_space<private>>
    memref.store %result, %out[%id] : memref<8xf32>
    gpu.terminator
  }
  return
}

// -----

// What a loop holding barriers carries (a thread's accumulator) is kept in a
// row per thread across them: stored before, loaded where it is used, the
// step's new value stored once nothing needs the old one, loaded after.
// CHECK-LABEL: func.func @carried
// CHECK: %[[SHARED:.*]] = memref.alloc() : memref<4xf32>
// CHECK: %[[CARRIED:.*]] = memref.alloc(%{{.*}}) : memref<?x1xf32>
//   Before the loop, each thread's initial value.
// CHECK: scf.for %{{.*}} to %c4
// CHECK:   memref.store %cst, %[[CARRIED]]
// CHECK: scf.for %{{.*}} = %c0 to %c3
//   Phase 1 of a step reads the carried value where it is used.
// CHECK:   scf.for %[[T:[^ ]*]] = %{{.*}} to %c4
// CHECK:     %[[MINE:.*]] = memref.load %[[CARRIED]]
// CHECK:     memref.store %[[MINE]], %[[SHARED]][%[[T]]]
//   Phase 2 reads it again, and stores the step's new value.
// CHECK:   scf.for %{{.*}} to %c4
// CHECK:     %[[THEIRS:.*]] = memref.load %[[SHARED]][%c0]
// CHECK:     %[[OLD:.*]] = memref.load %[[CARRIED]]
// CHECK:     %[[NEW:.*]] = arith.addf %[[OLD]], %[[THEIRS]]
// CHECK:     memref.store %[[NEW]], %[[CARRIED]]
//   After the loop, the result from the slot.
// CHECK: scf.for %{{.*}} to %c4
// CHECK:   %[[TOTAL:.*]] = memref.load %[[CARRIED]]
// CHECK:   memref.store %[[TOTAL]], %arg0
func.func @carried(%out: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1)
             workgroup(%shared : memref<4xf32, #gpu.address_space<workgroup>>) {
    %sum = scf.for %i = %c0 to %c3 step %c1 iter_args(%acc = %zero) -> (f32) {
      memref.store %acc, %shared[%tx] : memref<4xf32, #gpu.address_space<workgroup>>
      gpu.barrier
      %theirs = memref.load %shared[%c0] : memref<4xf32, #gpu.address_space<workgroup>>
      %next = arith.addf %acc, %theirs : f32
      gpu.barrier
      scf.yield %next : f32
    }
    memref.store %sum, %out[%tx] : memref<4xf32>
    gpu.terminator
  }
  return
}

// -----

// Asynchronous copies are done at once, zeros past their source elements;
// their groups and waits go.
// CHECK-LABEL: func.func @async_copies
// CHECK-SAME: (%[[SRC:[^:]*]]: memref<8xf32>, %[[COUNT:[^:]*]]: index, %[[OUT:[^:]*]]: memref<4xf32>)
// CHECK-NOT: nvgpu.
// CHECK: %[[SHARED:.*]] = memref.alloc() : memref<4xf32>
// CHECK: %[[READ:.*]] = arith.cmpi ult, %c0{{.*}}, %[[COUNT]]
// CHECK: %[[VALUE:.*]] = scf.if %[[READ]] -> (f32) {
// CHECK:   memref.load %[[SRC]]
// CHECK: } else {
// CHECK:   scf.yield %cst
// CHECK: memref.store %[[VALUE]], %[[SHARED]]
func.func @async_copies(%src: memref<8xf32>, %count: index, %out: memref<4xf32>) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1)
             workgroup(%shared : memref<4xf32, #gpu.address_space<workgroup>>) {
    %copy = nvgpu.device_async_copy %src[%tx], %shared[%tx], 1, %count : memref<8xf32> to memref<4xf32, #gpu.address_space<workgroup>>
    %group = nvgpu.device_async_create_group %copy
    nvgpu.device_async_wait %group {numGroups = 0 : i32}
    gpu.barrier
    %v = memref.load %shared[%tx] : memref<4xf32, #gpu.address_space<workgroup>>
    memref.store %v, %out[%tx] : memref<4xf32>
    gpu.terminator
  }
  return
}

// -----

// A value read before a barrier from memory the kernel writes, and used
// after it, is kept in a row per thread: stored where it is read, loaded
// where it is used.
// CHECK-LABEL: func.func @loaded_across
// CHECK-SAME: (%[[IN:[^:]*]]: memref<4xf32>, %[[OUT:[^:]*]]: memref<4xf32>)
// CHECK: %[[KEPT:.*]] = memref.alloc(%{{.*}}) : memref<?x1xf32>
// CHECK: scf.for %[[T1:[^ ]*]] = %c0 to %c4
// CHECK:   %[[VALUE:.*]] = memref.load %[[IN]][%[[T1]]]
// CHECK:   memref.store %[[VALUE]], %[[KEPT]][%{{.*}}, %c0
// CHECK: scf.for %[[T2:[^ ]*]] = %c0 to %c4
// CHECK:   %[[AGAIN:.*]] = memref.load %[[KEPT]][%{{.*}}, %c0
// CHECK:   memref.store %[[AGAIN]], %[[OUT]][%[[T2]]]
// CHECK:   memref.store %{{.*}}, %[[IN]][%[[T2]]]
func.func @loaded_across(%in: memref<4xf32>, %out: memref<4xf32>) {
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %value = memref.load %in[%tx] : memref<4xf32>
    gpu.barrier
    memref.store %value, %out[%tx] : memref<4xf32>
    memref.store %zero, %in[%tx] : memref<4xf32>
    gpu.terminator
  }
  return
}

// -----

// From memory the kernel does not write (an adapter's slot index, its
// rank), a value reads the same in every phase: it is read again where it
// is used, like arithmetic (here once per block, outside the phases), and
// may bound a loop that holds barriers (the same for every thread of a
// block: it depends on the block alone). Nothing is kept per thread.
// CHECK-LABEL: func.func @constant_bound
// CHECK-SAME: (%[[COUNTS:[^:]*]]: memref<2xindex>, %[[OUT:[^:]*]]: memref<2x4xindex>)
// CHECK-NOT: memref.alloc
// CHECK: scf.for %[[BLOCK:[^ ]*]] = %{{.*}} to %c2
// (The phase before the loop, each thread's, reads it too, unused.)
// CHECK: memref.load %[[COUNTS]][%[[BLOCK]]]
// CHECK: %[[COUNT:.*]] = memref.load %[[COUNTS]][%[[BLOCK]]]
// CHECK-NEXT: scf.for %{{[^ ]*}} = %c0 to %[[COUNT]]
// CHECK:   scf.for %[[T:[^ ]*]] = %{{.*}} to %c4
// CHECK:     memref.store %[[COUNT]], %[[OUT]][%[[BLOCK]], %[[T]]]
func.func @constant_bound(%counts: memref<2xindex>, %out: memref<2x4xindex>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c2, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c4, %sy = %c1, %sz = %c1) {
    %n = memref.load %counts[%bx] : memref<2xindex>
    scf.for %i = %c0 to %n step %c1 {
      gpu.barrier
      memref.store %n, %out[%bx, %tx] : memref<2x4xindex>
    }
    gpu.terminator
  }
  return
}

// -----

// ldmatrix x4 as an exchange: each lane stores its row's indices in a
// scratch buffer, a barrier, then lane l reads, of matrix q, elements
// 2·(l%4) and 2·(l%4) + 1 of the row lane 8q + l/4 of its warp gave; a
// barrier before the scratch is reused. The fragment crosses that barrier in
// private memory.
// CHECK-LABEL: func.func @ldmatrix
// CHECK-SAME: (%[[OUT:[^:]*]]: memref<64x2xf16>)
// CHECK-DAG: %[[TILE:.*]] = memref.alloc() : memref<16x16xf16>
// CHECK-DAG: %[[ROWS:.*]] = memref.alloc() : memref<64x2xindex>
// CHECK-DAG: %[[KEPT:.*]] = memref.alloc(%{{.*}}) : memref<?x1xvector<4x2xf16>>
// CHECK: scf.for %{{[^ ]*}} = %c0 to %c64
// CHECK:   memref.store %{{.*}}, %[[ROWS]][%[[T1:[^,]*]], %c0{{[_0-9]*}}
// CHECK:   memref.store %{{.*}}, %[[ROWS]][%[[T1]], %c1{{[_0-9]*}}
// CHECK: scf.for %{{[^ ]*}} = %c0 to %c64
// CHECK:   %[[LANE:.*]] = arith.remui %{{.*}}, %c32{{[_0-9]*}}
// CHECK:   %[[QUAD:.*]] = arith.divui %[[LANE]], %c4{{[_0-9]*}}
// CHECK:   %[[PAIR:.*]] = arith.muli %{{.*}}, %c2{{[_0-9]*}}
// CHECK:   %[[ROW_IN_WARP:.*]] = arith.addi %[[QUAD]], %c0{{[_0-9]*}}
// CHECK:   %[[WARP:.*]] = arith.subi %{{.*}}, %[[LANE]]
// CHECK:   %[[FROM:.*]] = arith.addi %[[WARP]], %[[ROW_IN_WARP]]
// CHECK:   %[[ROW:.*]] = memref.load %[[ROWS]][%[[FROM]], %c0{{[_0-9]*}}]
// CHECK:   %[[COL0:.*]] = memref.load %[[ROWS]][%[[FROM]], %c1{{[_0-9]*}}]
// CHECK:   %[[COL:.*]] = arith.addi %[[COL0]], %{{.*}}
// CHECK:   memref.load %[[TILE]][%[[ROW]], %[[COL]]]
// CHECK-COUNT-7: memref.load %[[TILE]]
// CHECK:   %[[FRAGMENT:.*]] = vector.from_elements {{.*}} : vector<4x2xf16>
// CHECK:   memref.store %[[FRAGMENT]], %[[KEPT]]
// CHECK: scf.for %{{[^ ]*}} = %c0 to %c64
// CHECK:   memref.load %[[KEPT]]
func.func @ldmatrix(%out: memref<64x2xf16>) {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1)
             workgroup(%tile : memref<16x16xf16, #gpu.address_space<workgroup>>) {
    %c8 = arith.constant 8 : index
    %c16 = arith.constant 16 : index
    %row = arith.remui %tx, %c16 : index
    %half = arith.divui %tx, %c16 : index
    %column = arith.muli %half, %c8 : index
    %fragment = nvgpu.ldmatrix %tile[%row, %column] {numTiles = 4 : i32, transpose = false} : memref<16x16xf16, #gpu.address_space<workgroup>> -> vector<4x2xf16>
    %pair = vector.extract %fragment[0] : vector<2xf16> from vector<4x2xf16>
    %c0 = arith.constant 0 : index
    vector.store %pair, %out[%tx, %c0] : memref<64x2xf16>, vector<2xf16>
    gpu.terminator
  }
  return
}

// -----

// gpu.shuffle xor as an exchange: each lane stores its value in a scratch
// buffer, a barrier, then lane l reads lane l ^ offset of its warp; a
// barrier before the scratch is reused. The value crosses it in private
// memory.
// CHECK-LABEL: func.func @shuffle
// CHECK-SAME: (%[[OUT:[^:]*]]: memref<64xf32>)
// CHECK-DAG: %[[VALUES:.*]] = memref.alloc() : memref<64x1xf32>
// CHECK-DAG: %[[KEPT:.*]] = memref.alloc(%{{.*}}) : memref<?x1xf32>
// CHECK: scf.for %[[T1:[^ ]*]] = %c0 to %c64
// CHECK:   memref.store %{{.*}}, %[[VALUES]][%{{.*}}, %c0{{[_0-9]*}}]
// CHECK: scf.for %{{[^ ]*}} = %c0 to %c64
// CHECK:   %[[LANE:.*]] = arith.remui %{{.*}}, %c32{{[_0-9]*}}
// CHECK:   %[[SOURCE:.*]] = arith.xori %[[LANE]], %{{.*}}
// CHECK:   %[[VALID:.*]] = arith.cmpi ult, %[[SOURCE]], %c32{{[_0-9]*}}
// CHECK:   %[[WARP:.*]] = arith.subi %{{.*}}, %[[LANE]]
// CHECK:   %[[OTHER:.*]] = arith.addi %[[WARP]], %[[SOURCE]]
// CHECK:   %[[FROM:.*]] = arith.select %[[VALID]], %[[OTHER]], %{{.*}}
// CHECK:   %[[READ:.*]] = memref.load %[[VALUES]][%[[FROM]], %c0{{[_0-9]*}}]
// CHECK:   memref.store %[[READ]], %[[KEPT]]
// CHECK: scf.for %{{[^ ]*}} = %c0 to %c64
// CHECK:   %[[KEPT_READ:.*]] = memref.load %[[KEPT]]
// CHECK:   memref.store %[[KEPT_READ]], %[[OUT]]
func.func @shuffle(%out: memref<64xf32>) {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    %i = arith.index_cast %tx : index to i32
    %v = arith.sitofp %i : i32 to f32
    %c5 = arith.constant 5 : i32
    %c32 = arith.constant 32 : i32
    %other, %valid = gpu.shuffle xor %v, %c5, %c32 : f32
    memref.store %other, %out[%tx] : memref<64xf32>
    gpu.terminator
  }
  return
}

// -----

// mma.sync m16n8k16 as an exchange: each lane stores its A and B fragments,
// widened, in scratch buffers, a barrier, then sums each of its four elements
// of C over k from the lanes of its warp that hold row and k (A) and k and
// column (B), as PTX lays the fragments out; a barrier.
// CHECK-LABEL: func.func @mma
// CHECK-DAG: %[[A:.*]] = memref.alloc() : memref<32x8xf32>
// CHECK-DAG: %[[B:.*]] = memref.alloc() : memref<32x4xf32>
// CHECK: scf.for %{{[^ ]*}} = %c0 to %c32
// CHECK:   %[[WIDE:.*]] = arith.extf %{{.*}} : bf16 to f32
// CHECK:   memref.store %[[WIDE]], %[[A]][%{{.*}}, %c0{{[_0-9]*}}
// CHECK-COUNT-7: memref.store %{{.*}}, %[[A]]
// CHECK-COUNT-4: memref.store %{{.*}}, %[[B]]
// CHECK: scf.for %{{[^ ]*}} = %c0 to %c32
// CHECK:   scf.for %{{.*}} to %c16 step %{{.*}} iter_args(%[[SUM:[^ ]*]] =
// CHECK:     %[[X:.*]] = memref.load %[[A]]
// CHECK:     %[[Y:.*]] = memref.load %[[B]]
// CHECK:     math.fma %[[X]], %[[Y]], %[[SUM]] : f32
// CHECK-COUNT-3: iter_args
// CHECK:   vector.from_elements {{.*}} : vector<2x2xf32>
func.func @mma(%a: vector<4x2xbf16>, %b: vector<2x2xbf16>, %c: vector<2x2xf32>, %out: memref<32x2xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %d = nvgpu.mma.sync(%a, %b, %c) {mmaShape = [16, 8, 16]} : (vector<4x2xbf16>, vector<2x2xbf16>, vector<2x2xf32>) -> vector<2x2xf32>
    %row = vector.extract %d[0] : vector<2xf32> from vector<2x2xf32>
    %c0 = arith.constant 0 : index
    vector.store %row, %out[%tx, %c0] : memref<32x2xf32>, vector<2xf32>
    gpu.terminator
  }
  return
}
