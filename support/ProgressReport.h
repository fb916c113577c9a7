//===- ProgressReport.h - How far a long pass is, for a tool to show -*- C++ -*-===//
//
// A pass that works through many items (the merge: layer after layer, on
// several threads) reports "layer 12 of 96"; a tool that shows progress
// installs a sink (peftc's line on a terminal), and without one reports
// cost nothing. The sink is called from the pass's threads, one at a time.
//===----------------------------------------------------------------------===//
#ifndef PEFT_SUPPORT_PROGRESSREPORT_H
#define PEFT_SUPPORT_PROGRESSREPORT_H

#include "llvm/ADT/StringRef.h"

#include <cstddef>
#include <functional>

namespace peft {

/// Receives `done` of `total` `items` ("layer").
using ProgressSink = std::function<void(llvm::StringRef items, size_t done, size_t total)>;

/// Installs `sink` for the whole process (an empty one removes it).
void setProgressSink(ProgressSink sink);

/// Reports to the sink, if any.
void reportProgress(llvm::StringRef items, size_t done, size_t total);

} // namespace peft

#endif // PEFT_SUPPORT_PROGRESSREPORT_H
