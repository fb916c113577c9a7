//===- ToolOptions.cpp - What the tools' command lines share ---------------===//
#include "support/ToolOptions.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/raw_ostream.h"

#include <csignal>
#include <string>

namespace peft {

llvm::StringRef version() { return PEFT_MLIR_VERSION; }

void prepareToolOptions(llvm::StringRef tool,
                        llvm::ArrayRef<const llvm::cl::OptionCategory *> categories) {
  llvm::cl::SetVersionPrinter([name = tool.str()](llvm::raw_ostream &os) {
    os << name << " (peft-mlir " << version() << "), built with LLVM " << LLVM_VERSION_STRING
       << "\n";
  });
  auto &registered = llvm::cl::getRegisteredOptions();
  if (auto threads = registered.find("threads"); threads != registered.end())
    threads->second->setArgStr("llvm-threads");
  llvm::cl::HideUnrelatedOptions(categories);
  // LLVM's handlers (InitLLVM) print a crash report for SIGXFSZ; ignored, a
  // write past `ulimit -f` fails with EFBIG and is reported like a full disk.
  std::signal(SIGXFSZ, SIG_IGN);
}

} // namespace peft
