//===- ProgressReport.cpp - How far a long pass is --------------------------===//
#include "support/ProgressReport.h"

#include <mutex>

namespace peft {

namespace {
std::mutex sinkMutex;
ProgressSink &sink() {
  static ProgressSink installed;
  return installed;
}
} // namespace

void setProgressSink(ProgressSink newSink) {
  std::lock_guard<std::mutex> lock(sinkMutex);
  sink() = std::move(newSink);
}

void reportProgress(llvm::StringRef items, size_t done, size_t total) {
  std::lock_guard<std::mutex> lock(sinkMutex);
  if (sink())
    sink()(items, done, total);
}

} // namespace peft
