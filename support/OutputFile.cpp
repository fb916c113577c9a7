//===- OutputFile.cpp - Write outputs whole, and only where asked -----------===//
#include "support/OutputFile.h"

#include "llvm/Support/FileSystem.h"

namespace peft {

/// The error a stream met (a full disk, a file size limit), cleared: a
/// raw_fd_ostream destroyed with an error aborts the process ("LLVM ERROR:
/// IO failure on output stream"), which is why llvm::writeToOutput, which
/// checks none after its final flush, is not used here.
static std::error_code takeStreamError(llvm::raw_fd_ostream &os) {
  os.flush();
  std::error_code error = os.error();
  os.clear_error();
  return error;
}

llvm::Error writeFileAtomically(llvm::StringRef path,
                                llvm::function_ref<llvm::Error(llvm::raw_ostream &)> write) {
  auto fail = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), path + ": " + message);
  };
  if (path == "-") {
    if (llvm::Error error = write(llvm::outs()))
      return error;
    if (std::error_code error = takeStreamError(llvm::outs()))
      return fail("cannot write: " + error.message());
    return llvm::Error::success();
  }
  llvm::sys::fs::file_status status;
  if (!llvm::sys::fs::status(path, status, /*follow=*/false)) {
    if (status.type() == llvm::sys::fs::file_type::symlink_file)
      return fail("is a symbolic link; not writing through it");
    if (status.type() == llvm::sys::fs::file_type::directory_file)
      return fail("is a directory");
  }
  auto temporary = llvm::sys::fs::TempFile::create(path + ".tmp-%%%%%%",
                                                   llvm::sys::fs::all_read |
                                                       llvm::sys::fs::all_write);
  if (!temporary)
    return fail("cannot create a temporary file beside it: " +
                llvm::toString(temporary.takeError()));
  // The writer's own errors pass as they are; the file system's get the path.
  llvm::Error writerError = llvm::Error::success();
  std::error_code streamError;
  {
    llvm::raw_fd_ostream os(temporary->FD, /*shouldClose=*/false);
    writerError = write(os);
    streamError = takeStreamError(os);
  }
  if (writerError || streamError) {
    llvm::consumeError(temporary->discard());
    if (writerError)
      return writerError;
    return fail("cannot write: " + streamError.message());
  }
  if (llvm::Error error = temporary->keep(path))
    return fail("cannot move into place: " + llvm::toString(std::move(error)));
  return llvm::Error::success();
}

} // namespace peft
