//===- Progress.cpp - peftc's progress line on a terminal ------------------===//
#include "Progress.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace peft {

Progress::Progress() {
  const char *term = std::getenv("TERM");
  on = llvm::sys::Process::StandardErrIsDisplayed() && !(term && !std::strcmp(term, "dumb"));
}

Progress::~Progress() { clear(); }

void Progress::show(const llvm::Twine &text) {
  // Back to the start of the line, the line erased, then the text (cut to
  // the terminal's width, so that it never wraps).
  std::string line = ("peftc: " + text).str();
  unsigned width = llvm::sys::Process::StandardErrColumns();
  if (width > 1 && line.size() >= width)
    line.resize(width - 1);
  llvm::errs() << "\r\x1b[K" << line;
  llvm::errs().flush();
  shown = true;
}

void Progress::stage(const llvm::Twine &stage) {
  if (!on)
    return;
  current = stage.str();
  show(current);
}

void Progress::detail(const llvm::Twine &detail) {
  if (on)
    show(current + ", " + detail);
}

void Progress::clear() {
  if (!shown)
    return;
  llvm::errs() << "\r\x1b[K";
  llvm::errs().flush();
  shown = false;
}

namespace {

/// Reports the passes that run on the module itself (nested ones run per
/// function, possibly on several threads, and are not counted).
class PassProgress final : public mlir::PassInstrumentation {
public:
  PassProgress(Progress &progress, llvm::StringRef stage, size_t count)
      : progress(progress), stage(stage.str()), count(count) {}

  void runBeforePass(mlir::Pass *pass, mlir::Operation *op) override {
    if (!llvm::isa<mlir::ModuleOp>(op) || op->getParentOp())
      return;
    ++index;
    progress.stage(stage + ": pass " + llvm::Twine(index) + " of " + llvm::Twine(count) + " (" +
                   pass->getArgument() + ")");
  }

private:
  Progress &progress;
  std::string stage;
  size_t count, index = 0;
};

} // namespace

std::unique_ptr<mlir::PassInstrumentation> Progress::passes(llvm::StringRef stage,
                                                            size_t passes) {
  if (!on)
    return nullptr;
  return std::make_unique<PassProgress>(*this, stage, passes);
}

} // namespace peft
