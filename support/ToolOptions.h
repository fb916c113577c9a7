//===- ToolOptions.h - What the tools' command lines share -------*- C++ -*-===//
#ifndef PEFT_SUPPORT_TOOLOPTIONS_H
#define PEFT_SUPPORT_TOOLOPTIONS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CommandLine.h"

namespace peft {

/// peft-mlir's version (CMakeLists.txt's project version).
llvm::StringRef version();

/// Before a tool parses its command line: `--version` prints `TOOL
/// (peft-mlir VERSION)` and the LLVM it was built with; `--help` lists the
/// options of `categories` only (libLLVM's hundreds still parse, hidden);
/// libLLVM's `--threads` becomes `--llvm-threads`, so that `--threads` is
/// the tool's own or an unknown option, never silently LLVM's. A write past
/// the file size limit (`ulimit -f`) is an error the tool reports, as a full
/// disk is, not a signal that kills it.
void prepareToolOptions(llvm::StringRef tool,
                        llvm::ArrayRef<const llvm::cl::OptionCategory *> categories);

} // namespace peft

#endif // PEFT_SUPPORT_TOOLOPTIONS_H
