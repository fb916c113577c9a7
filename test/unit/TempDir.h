//===- TempDir.h - A scratch directory for one test -------------*- C++ -*-===//
#ifndef PEFT_TEST_UNIT_TEMPDIR_H
#define PEFT_TEST_UNIT_TEMPDIR_H

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace peft::testing {

/// Creates a fresh directory and removes it with everything in it.
class TempDir {
public:
  TempDir() { llvm::sys::fs::createUniqueDirectory("peft-unit", path); }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }

  std::string file(llvm::StringRef name) const {
    llvm::SmallString<256> result(path);
    llvm::sys::path::append(result, name);
    return result.str().str();
  }

  /// Writes `bytes` to `name` in the directory and returns its path.
  std::string write(llvm::StringRef name, llvm::StringRef bytes) const {
    std::string target = file(name);
    std::error_code error;
    llvm::raw_fd_ostream os(target, error);
    os << bytes;
    return target;
  }

private:
  llvm::SmallString<256> path;
};

} // namespace peft::testing

#endif // PEFT_TEST_UNIT_TEMPDIR_H
