/*===- model_support.c - Helpers that compiled models call -------*- C -*-===*\
 *
 * Linked into every model.so by peftc, so that artifacts need no MLIR
 * library at run time. Implements what MLIR's lowering calls out to:
 * memrefCopy, for copies between memrefs with arbitrary strides, and the
 * allocation functions (below); and what our code generation calls:
 * peft_parallel_for, which runs a task on the runtime's thread pool once the
 * runtime has installed it, and peft_slot_runs, which orders a batch's rows
 * by adapter slot for --mode multi's GEMMs; and what LLVM's back end may call where the
 * system's compiler runtime lacks it (__truncsfbf2).
 *
\*===----------------------------------------------------------------------===*/
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* MLIR's unranked memref: the rank and a pointer to a ranked descriptor
 * {allocated, aligned, offset, sizes[rank], strides[rank]}. */
typedef struct {
  int64_t rank;
  void *descriptor;
} UnrankedMemRef;

typedef struct {
  char *allocated;
  char *aligned;
  int64_t offset;
  int64_t sizesAndStrides[];
} MemRefDescriptor;

#define PEFT_MAX_RANK 16

typedef void (*PeftTask)(void *context, int64_t begin, int64_t end);
typedef void (*PeftParallelFor)(PeftTask task, void *context, int64_t count);

/* Set once by the runtime that loads this library; serial until then. */
static PeftParallelFor parallelFor = 0;

void peft_model_set_parallel_for(PeftParallelFor runner) { parallelFor = runner; }

void peft_parallel_for(PeftTask task, void *context, int64_t count) {
  if (parallelFor)
    parallelFor(task, context, count);
  else if (count > 0)
    task(context, 0, count);
}

/* --mode multi's slot GEMMs: the runs of batch elements [first, last) that
 * one GEMM each computes, given each element's slot (index[e], a strided
 * i64 vector as MLIR passes a memref<?xi64, strided<[?], offset: ?>>).
 * Elements go by slot, then by position, so that each slot's rows run one
 * after another however the batch is ordered (its factors stay in cache:
 * SGMV's segments without moving rows); elements of slot -1 are left out;
 * consecutive elements of one slot are one run when `mergeable` (their rows
 * are contiguous). Writes (first element, count) pairs to runs[0, 2·result);
 * `runs` (a memref<?xi64>) has room for 4·(last − first): the rest is the
 * sort's scratch. */
int64_t peft_slot_runs(int64_t *indexAllocated, int64_t *index, int64_t indexOffset,
                       int64_t indexSize, int64_t indexStride, int64_t first, int64_t last,
                       int64_t mergeable, int64_t *runsAllocated, int64_t *runs,
                       int64_t runsOffset, int64_t runsSize, int64_t runsStride) {
  (void)indexAllocated, (void)indexSize, (void)runsAllocated, (void)runsSize, (void)runsStride;
  const int64_t *slots = index + indexOffset;
  int64_t count = last - first;
  if (count <= 0)
    return 0;
  int64_t *order = runs + runsOffset + 2 * count, *scratch = order + count;
  for (int64_t i = 0; i < count; ++i)
    order[i] = first + i;
  /* A stable bottom-up merge sort by slot (positions stay in order). */
  for (int64_t width = 1; width < count; width *= 2) {
    for (int64_t low = 0; low < count; low += 2 * width) {
      int64_t middle = low + width < count ? low + width : count;
      int64_t high = low + 2 * width < count ? low + 2 * width : count;
      int64_t left = low, right = middle, out = low;
      while (left < middle && right < high)
        scratch[out++] = slots[order[right] * indexStride] < slots[order[left] * indexStride]
                             ? order[right++]
                             : order[left++];
      while (left < middle)
        scratch[out++] = order[left++];
      while (right < high)
        scratch[out++] = order[right++];
    }
    int64_t *swap = order;
    order = scratch;
    scratch = swap;
  }
  int64_t *pairs = runs + runsOffset, found = 0;
  for (int64_t i = 0; i < count; ++i) {
    int64_t element = order[i], slot = slots[element * indexStride];
    if (slot < 0)
      continue;
    if (found && mergeable && slots[pairs[2 * found - 2] * indexStride] == slot &&
        pairs[2 * found - 2] + pairs[2 * found - 1] == element) {
      ++pairs[2 * found - 1];
      continue;
    }
    pairs[2 * found] = element;
    pairs[2 * found + 1] = 1;
    ++found;
  }
  return found;
}

/* Buffers. A forward pass allocates the same sizes in every run; malloc hands
 * large ones back to the kernel on free and the next run faults them in again
 * page by page (a fifth of BERT-base's time). Freed buffers are kept instead,
 * on a free list per size class, and reused; the cache is bounded in bytes
 * only (a decoder with adapters on every module frees hundreds of blocks a
 * run), and emptied when the library is unloaded. Each block starts with a
 * header of one cache line that records its class, so that free knows it. */
#define PEFT_HEADER 64
#define PEFT_CACHE_BYTES ((size_t)1 << 30)

typedef struct BlockHeader {
  size_t size;               /* The size class: bytes after the header; 0: not cached. */
  char *base;                /* What aligned_alloc returned. */
  struct BlockHeader *next;  /* The next cached block of its class. */
} BlockHeader;

/* A class has at most four significant bits (below), so its highest bit and
 * the three after it name it: 8 lists per power of two. */
#define PEFT_CLASS_LISTS (64 * 8)

static pthread_mutex_t cacheLock = PTHREAD_MUTEX_INITIALIZER;
static BlockHeader *cachedBlocks[PEFT_CLASS_LISTS];
static size_t cachedBytes = 0;

/* Rounds up to a class of at most 1/8 more (8 classes per power of two),
 * and to whole cache lines: aligned_alloc takes only sizes that are
 * multiples of the alignment. */
static size_t sizeClass(size_t size) {
  size_t step = size <= 512 ? 64 : ((size_t)1 << (63 - __builtin_clzll(size))) / 8;
  return (size + step - 1) & ~(step - 1);
}

/* The list of a class (bytes > 0, a multiple of 64). */
static BlockHeader **classList(size_t bytes) {
  int high = 63 - __builtin_clzll(bytes);
  return &cachedBlocks[high * 8 + ((bytes >> (high - 3)) & 7)];
}

static void *allocateBlock(size_t size) {
  size_t bytes = sizeClass(size);
  if (bytes) {
    BlockHeader **list = classList(bytes);
    pthread_mutex_lock(&cacheLock);
    BlockHeader *block = *list;
    if (block) {
      *list = block->next;
      cachedBytes -= bytes;
    }
    pthread_mutex_unlock(&cacheLock);
    if (block)
      return (char *)block + PEFT_HEADER;
  }
  char *block = aligned_alloc(PEFT_HEADER, PEFT_HEADER + bytes);
  if (!block)
    return 0;
  *(BlockHeader *)block = (BlockHeader){bytes, block, 0};
  return block + PEFT_HEADER;
}

static void releaseBlock(void *pointer) {
  if (!pointer)
    return;
  BlockHeader *block = (BlockHeader *)((char *)pointer - PEFT_HEADER);
  size_t bytes = block->size;
  if (bytes == 0) {
    free(block->base);
    return;
  }
  BlockHeader **list = classList(bytes);
  pthread_mutex_lock(&cacheLock);
  if (cachedBytes + bytes <= PEFT_CACHE_BYTES) {
    block->next = *list;
    *list = block;
    cachedBytes += bytes;
    pthread_mutex_unlock(&cacheLock);
    return;
  }
  pthread_mutex_unlock(&cacheLock);
  free(block);
}

__attribute__((destructor)) static void emptyCache(void) {
  for (int i = 0; i < PEFT_CLASS_LISTS; ++i) {
    while (cachedBlocks[i]) {
      BlockHeader *block = cachedBlocks[i];
      cachedBlocks[i] = block->next;
      free(block);
    }
  }
  cachedBytes = 0;
}

/* What memref.alloc and memref.dealloc lower to (finalize-memref-to-llvm's
 * use-generic-functions); blocks are 64-byte aligned. */
void *_mlir_memref_to_llvm_alloc(size_t size) { return allocateBlock(size); }

void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t size) {
  if (alignment <= PEFT_HEADER)
    return allocateBlock(size);
  /* Wider alignments (none of our lowering asks for one) are not cached. */
  char *base = aligned_alloc(alignment, alignment + ((size + alignment - 1) & ~(alignment - 1)));
  if (!base)
    return 0;
  *(BlockHeader *)(base + alignment - PEFT_HEADER) = (BlockHeader){0, base, 0};
  return base + alignment;
}

void _mlir_memref_to_llvm_free(void *pointer) { releaseBlock(pointer); }

/* For the runtime: frees a buffer the model returned (an adopted output). */
void peft_model_free_buffer(void *pointer) { releaseBlock(pointer); }

void memrefCopy(int64_t elementSize, UnrankedMemRef *source, UnrankedMemRef *target) {
  const MemRefDescriptor *src = source->descriptor;
  const MemRefDescriptor *dst = target->descriptor;
  int64_t rank = source->rank;
  char *srcBase = src->aligned + src->offset * elementSize;
  char *dstBase = dst->aligned + dst->offset * elementSize;
  if (rank == 0) {
    memcpy(dstBase, srcBase, elementSize);
    return;
  }
  const int64_t *sizes = src->sizesAndStrides;
  const int64_t *srcStrides = src->sizesAndStrides + rank;
  const int64_t *dstStrides = dst->sizesAndStrides + rank;
  for (int64_t d = 0; d < rank; ++d)
    if (sizes[d] == 0)
      return;
  /* Copy whole rows when the innermost dimension is contiguous on both sides. */
  int64_t innermost = rank - 1;
  int64_t run = (srcStrides[innermost] == 1 && dstStrides[innermost] == 1) ? sizes[innermost] : 1;
  int64_t index[PEFT_MAX_RANK] = {0};
  int64_t srcOffset = 0, dstOffset = 0;
  for (;;) {
    memcpy(dstBase + dstOffset * elementSize, srcBase + srcOffset * elementSize,
           run * elementSize);
    /* Advance the multi-index, skipping the run just copied. */
    int64_t d = run > 1 ? innermost - 1 : innermost;
    for (; d >= 0; --d) {
      srcOffset += srcStrides[d];
      dstOffset += dstStrides[d];
      if (++index[d] < sizes[d])
        break;
      srcOffset -= srcStrides[d] * sizes[d];
      dstOffset -= dstStrides[d] * sizes[d];
      index[d] = 0;
    }
    if (d < 0)
      return;
  }
}

#if defined(__x86_64__)
/* f32 to bf16, rounded to nearest even, NaNs kept quiet NaNs. LLVM's x86
 * back end calls it for bf16 values it keeps as f32 in registers on a CPU
 * without bf16 conversions (no AVX512-BF16 or AVX-NE-CONVERT); libgcc has
 * it from GCC 13 on, Debian 12's GCC 12 does not. The bf16 comes back in
 * the low 16 bits of xmm0, where a float is returned. */
float __truncsfbf2(float value) {
  uint32_t bits, rounded;
  memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    rounded = (bits >> 16) | 0x40u;
  else
    rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  float result;
  memcpy(&result, &rounded, sizeof result);
  return result;
}
#endif
