//===- OutputFile.cpp - Write outputs whole, and only where asked -----------===//
#include "support/OutputFile.h"

#include "llvm/Support/FileSystem.h"

namespace peft {

llvm::Error writeFileAtomically(llvm::StringRef path,
                                llvm::function_ref<llvm::Error(llvm::raw_ostream &)> write) {
  auto fail = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), path + ": " + message);
  };
  llvm::sys::fs::file_status status;
  if (path != "-" && !llvm::sys::fs::status(path, status, /*follow=*/false)) {
    if (status.type() == llvm::sys::fs::file_type::symlink_file)
      return fail("is a symbolic link; not writing through it");
    if (status.type() == llvm::sys::fs::file_type::directory_file)
      return fail("is a directory");
  }
  // The writer's own errors pass as they are; the file system's get the path,
  // which LLVM's messages lack ("Is a directory").
  llvm::Error writerError = llvm::Error::success();
  llvm::Error error = llvm::writeToOutput(path, [&](llvm::raw_ostream &os) -> llvm::Error {
    if (llvm::Error failed = write(os)) {
      writerError = std::move(failed);
      return llvm::make_error<llvm::StringError>("writer failed", llvm::inconvertibleErrorCode());
    }
    return llvm::Error::success();
  });
  if (writerError) {
    llvm::consumeError(std::move(error));
    return writerError;
  }
  if (!error)
    return llvm::Error::success();
  std::string message = llvm::toString(std::move(error));
  if (llvm::StringRef(message).starts_with(path))
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  return fail(message);
}

} // namespace peft
