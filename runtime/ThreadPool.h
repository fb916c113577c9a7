//===- ThreadPool.h - The runtime's threads for compiled code --*- C++ -*-===//
//
// Compiled models split their parallel loops (a GEMM's weight panels) into
// tasks over [0, count) and hand them to `peft_parallel_for`, which every
// model.so exports from runtime/cpu/model_support.c; the runtime points it at
// this pool when it loads the model. Each index runs on exactly one thread and
// the split never changes what an index computes, so results are the same
// bit for bit whatever the number of threads.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_RUNTIME_THREADPOOL_H
#define PEFT_RUNTIME_THREADPOOL_H

#include <cstdint>

namespace peft {

/// `task(context, begin, end)` runs the indices [begin, end).
using ParallelTask = void (*)(void *context, int64_t begin, int64_t end);

/// Threads to use when nothing is set: PEFT_NUM_THREADS if it is a positive
/// integer, else the CPUs this process may run on.
int defaultThreadCount();

/// Sets the pool's size (n <= 0: defaultThreadCount()); returns it. Waits
/// for running work first.
int setThreadCount(int n);
int threadCount();

/// Runs task over [0, count) in contiguous chunks, one per thread, the
/// calling thread taking the first. A pool already busy (another thread's
/// model) runs the task on the caller alone.
void parallelFor(ParallelTask task, void *context, int64_t count);

} // namespace peft

#endif // PEFT_RUNTIME_THREADPOOL_H
