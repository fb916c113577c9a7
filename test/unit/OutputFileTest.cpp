//===- OutputFileTest.cpp - Outputs whole or not at all ---------------------===//
#include "support/OutputFile.h"

#include "TempDir.h"

#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>

#include <csignal>
#include <sys/resource.h>

using namespace peft;
using peft::testing::TempDir;

namespace {

/// Within its scope, a write past `bytes` fails with EFBIG (a full disk
/// cannot be had in a test; the stream sees an error all the same).
class FileSizeLimit {
public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved);
    previousHandler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previousHandler);
  }

private:
  rlimit saved;
  void (*previousHandler)(int);
};

/// The names in `dir`.
std::vector<std::string> listing(const TempDir &dir) {
  std::vector<std::string> names;
  std::error_code error;
  for (llvm::sys::fs::directory_iterator it(dir.file(""), error), end; it != end && !error;
       it.increment(error))
    names.push_back(llvm::sys::path::filename(it->path()).str());
  return names;
}

/// Writes a megabyte to `path` under a file size limit of 64 KB.
llvm::Error writeMegabyteOverLimit(const std::string &path) {
  std::string megabyte(1 << 20, 'x');
  FileSizeLimit limit(64 * 1024);
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    os << megabyte;
    return llvm::Error::success();
  });
}

TEST(OutputFile, AWriteThatFailsLeavesNothingAndNamesThePath) {
  TempDir dir;
  std::string path = dir.file("big.bin");
  llvm::Error error = writeMegabyteOverLimit(path);
  ASSERT_TRUE(static_cast<bool>(error));
  EXPECT_EQ(llvm::toString(std::move(error)), path + ": cannot write: File too large");
  EXPECT_TRUE(listing(dir).empty()) << "left: " << listing(dir).front();
}

TEST(OutputFile, AFailedWriteKeepsTheFileItWouldReplace) {
  TempDir dir;
  std::string path = dir.write("kept.bin", "old");
  llvm::Error error = writeMegabyteOverLimit(path);
  ASSERT_TRUE(static_cast<bool>(error));
  llvm::consumeError(std::move(error));
  EXPECT_EQ(listing(dir), std::vector<std::string>{"kept.bin"});
  uint64_t size = 0;
  llvm::sys::fs::file_size(path, size);
  EXPECT_EQ(size, 3u);
}

TEST(OutputFile, TheWritersOwnErrorPassesAsItIs) {
  TempDir dir;
  std::string path = dir.file("out.bin");
  llvm::Error error = writeFileAtomically(path, [](llvm::raw_ostream &os) {
    os << "partial";
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "tensor w: bad shape");
  });
  EXPECT_EQ(llvm::toString(std::move(error)), "tensor w: bad shape");
  EXPECT_TRUE(listing(dir).empty());
}

TEST(OutputFile, ASuccessfulWriteAppearsWhole) {
  TempDir dir;
  std::string path = dir.file("out.bin");
  ASSERT_FALSE(static_cast<bool>(writeFileAtomically(path, [](llvm::raw_ostream &os) {
    os << "whole";
    return llvm::Error::success();
  })));
  EXPECT_EQ(listing(dir), std::vector<std::string>{"out.bin"});
  uint64_t size = 0;
  llvm::sys::fs::file_size(path, size);
  EXPECT_EQ(size, 5u);
}

} // namespace
