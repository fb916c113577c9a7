//===- ThreadPool.cpp - The runtime's threads for compiled code -----------===//
#include "runtime/ThreadPool.h"

#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace peft {
namespace {

/// Workers wait for a generation number to change, run their chunk of the
/// current job and count down; the caller runs chunk 0 and waits for zero.
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
      workers.emplace_back([this, i, start = generation] { work(i, start); });
  }

  void run(ParallelTask task, void *context, int64_t count) {
    std::unique_lock<std::mutex> lock(busy, std::try_to_lock);
    int64_t chunks = std::min<int64_t>(count, int64_t(workers.size()) + 1);
    if (!lock.owns_lock() || chunks <= 1) {
      task(context, 0, count);
      return;
    }
    {
      std::lock_guard<std::mutex> state(mutex);
      job = {task, context, count, chunks};
      pending = int(workers.size());
      ++generation;
    }
    wake.notify_all();
    runChunk(0);
    std::unique_lock<std::mutex> state(mutex);
    done.wait(state, [this] { return pending == 0; });
  }

private:
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
      {
        std::unique_lock<std::mutex> state(mutex);
        wake.wait(state, [&] { return stopping || generation != seen; });
        if (stopping)
          return;
        seen = generation;
      }
      runChunk(index);
      std::lock_guard<std::mutex> state(mutex);
      if (--pending == 0)
        done.notify_one();
    }
  }

  void stopWorkers() {
    {
      std::lock_guard<std::mutex> state(mutex);
      stopping = true;
    }
    wake.notify_all();
    for (std::thread &worker : workers)
      worker.join();
    workers.clear();
    stopping = false;
  }

  std::mutex busy;  // Held by the caller of a job, or by resize.
  std::mutex mutex; // Guards the fields below.
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  Job job;
  uint64_t generation = 0;
  int pending = 0;
  bool stopping = false;
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
