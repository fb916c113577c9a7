//===- OutputFile.h - Write outputs whole, and only where asked ---*- C++ -*-===//
#ifndef PEFT_SUPPORT_OUTPUTFILE_H
#define PEFT_SUPPORT_OUTPUTFILE_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace peft {

/// Writes `path` through a temporary file beside it that is renamed into
/// place once `write` succeeds: the file appears whole or not at all. "-" is
/// standard output. A destination that is a directory or a symbolic link is
/// refused; every error names `path`.
llvm::Error writeFileAtomically(llvm::StringRef path,
                                llvm::function_ref<llvm::Error(llvm::raw_ostream &)> write);

} // namespace peft

#endif // PEFT_SUPPORT_OUTPUTFILE_H
