/*===- model_support.c - Helpers that compiled models call -------*- C -*-===*\
 *
 * Linked into every model.so by peftc, so that artifacts need no MLIR
 * library at run time. Implements what MLIR's lowering calls out to:
 * memrefCopy, for copies between memrefs with arbitrary strides; and what
 * our code generation calls: peft_parallel_for, which runs a task on the
 * runtime's thread pool once the runtime has installed it.
 *
\*===----------------------------------------------------------------------===*/
#include <stdint.h>
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
