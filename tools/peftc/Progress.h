//===- Progress.h - peftc's progress line on a terminal ---------*- C++ -*-===//
//
// A long compile (BERT-base: seconds; larger models: minutes) says where it
// is: one line on stderr, rewritten in place, "peftc: STAGE: pass I of N
// (PASS), layer J of M", cleared when peftc ends. Only while stderr is a terminal: logs,
// pipes and tests see nothing of it.
//===----------------------------------------------------------------------===//
#ifndef PEFT_TOOLS_PEFTC_PROGRESS_H
#define PEFT_TOOLS_PEFTC_PROGRESS_H

#include "mlir/Pass/PassInstrumentation.h"
#include "llvm/ADT/Twine.h"

#include <memory>
#include <string>

namespace peft {

class Progress {
public:
  /// Enabled when stderr is a terminal (and TERM is not "dumb").
  Progress();
  ~Progress();

  bool enabled() const { return on; }

  /// Shows `stage` alone (a step that is not a pass pipeline).
  void stage(const llvm::Twine &stage);

  /// Shows `detail` after the stage last shown ("layer 12 of 96", from a
  /// pass's reportProgress).
  void detail(const llvm::Twine &detail);

  /// What a pass manager of `passes` top-level passes adds to report each
  /// of them under `stage` (null when disabled).
  std::unique_ptr<mlir::PassInstrumentation> passes(llvm::StringRef stage, size_t passes);

  /// Clears the line (before an error is printed, and at the end).
  void clear();

private:
  void show(const llvm::Twine &text);
  bool on = false, shown = false;
  std::string current; ///< The stage last shown.
};

} // namespace peft

#endif // PEFT_TOOLS_PEFTC_PROGRESS_H
