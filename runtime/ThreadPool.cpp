//===- ThreadPool.cpp - The runtime's threads for compiled code -----------===//
#include "runtime/ThreadPool.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace peft {
namespace {

/// Spins for about `budget` before the caller blocks. A forward pass hands
/// the threads hundreds of short jobs, separated by a little serial work:
/// a worker that went to sleep after each would take a futex wake-up (tens
/// of microseconds, more when the scheduler is slow) to start the next.
static inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

template <typename Ready>
static bool spinUntil(Ready ready, std::chrono::microseconds budget) {
  auto start = std::chrono::steady_clock::now();
  for (unsigned spin = 1;; ++spin) {
    if (ready())
      return true;
    relax();
    if (spin % 256 == 0 && std::chrono::steady_clock::now() - start > budget)
      return false;
  }
}

/// Workers wait for a generation number to change (spinning a while, then
/// sleeping), run their chunk of the current job and count down; the
/// caller runs chunk 0 and waits for zero.
class Pool {
public:
  ~Pool() { resize(1); }

  int size() {
    std::lock_guard<std::mutex> lock(busy);
    return int(workers.size()) + 1;
  }

  void resize(int threads) {
    std::lock_guard<std::mutex> lock(busy);
    stopWorkers();
    // New workers start at the current job: it is done, not theirs to run.
    for (int i = 1; i < threads; ++i)
      workers.emplace_back([this, i, start = generation.load()] { work(i, start); });
  }

  void run(ParallelTask task, void *context, int64_t count) {
    std::unique_lock<std::mutex> lock(busy, std::try_to_lock);
    int64_t chunks = std::min<int64_t>(count, int64_t(workers.size()) + 1);
    if (!lock.owns_lock() || chunks <= 1) {
      task(context, 0, count);
      return;
    }
    job = {task, context, count, chunks};
    pending.store(int(workers.size()), std::memory_order_relaxed);
    {
      // Under the mutex, so that a worker about to sleep sees the change.
      std::lock_guard<std::mutex> state(mutex);
      generation.fetch_add(1, std::memory_order_release);
    }
    wake.notify_all();
    runChunk(0);
    auto finished = [this] { return pending.load(std::memory_order_acquire) == 0; };
    while (!spinUntil(finished, kSpin))
      std::this_thread::yield(); // More threads than cores: let the others run.
  }

private:
  static constexpr std::chrono::microseconds kSpin{2000};

  struct Job {
    ParallelTask task = nullptr;
    void *context = nullptr;
    int64_t count = 0, chunks = 0;
  };

  void runChunk(int64_t chunk) {
    if (chunk >= job.chunks)
      return;
    int64_t begin = job.count * chunk / job.chunks;
    int64_t end = job.count * (chunk + 1) / job.chunks;
    job.task(job.context, begin, end);
  }

  void work(int index, uint64_t seen) {
    for (;;) {
      auto changed = [&] {
        return stopping.load(std::memory_order_acquire) ||
               generation.load(std::memory_order_acquire) != seen;
      };
      if (!spinUntil(changed, kSpin)) {
        std::unique_lock<std::mutex> state(mutex);
        wake.wait(state, changed);
      }
      if (stopping.load(std::memory_order_acquire))
        return;
      seen = generation.load(std::memory_order_acquire);
      runChunk(index);
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void stopWorkers() {
    {
      std::lock_guard<std::mutex> state(mutex);
      stopping.store(true, std::memory_order_release);
    }
    wake.notify_all();
    for (std::thread &worker : workers)
      worker.join();
    workers.clear();
    stopping.store(false, std::memory_order_release);
  }

  std::mutex busy;  // Held by the caller of a job, or by resize.
  std::mutex mutex; // Pairs with `wake` for sleeping workers.
  std::condition_variable wake;
  std::vector<std::thread> workers;
  Job job; // Written before `generation` changes, read after.
  std::atomic<uint64_t> generation{0};
  std::atomic<int> pending{0};
  std::atomic<bool> stopping{false};
};

Pool &pool() {
  static Pool *instance = [] {
    auto *created = new Pool(); // Never destroyed: models may run during exit.
    created->resize(defaultThreadCount());
    return created;
  }();
  return *instance;
}

} // namespace

int defaultThreadCount() {
  if (const char *text = std::getenv("PEFT_NUM_THREADS")) {
    char *end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (end != text && *end == '\0' && value > 0)
      return int(std::min<long>(value, 1024));
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    return std::max(1, CPU_COUNT(&set));
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

int setThreadCount(int n) {
  int threads = n > 0 ? std::min(n, 1024) : defaultThreadCount();
  pool().resize(threads);
  return threads;
}

int threadCount() { return pool().size(); }

void parallelFor(ParallelTask task, void *context, int64_t count) {
  if (count > 0)
    pool().run(task, context, count);
}

} // namespace peft
