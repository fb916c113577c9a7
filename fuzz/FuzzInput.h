//===- FuzzInput.h - Hand a fuzz input to a path-based reader ---*- C++ -*-===//
//
// The readers under test take paths (they memory-map or read files), so each
// input is written to a file in a directory of this process's own: in
// /dev/shm where there is one (no disk I/O), else in $TMPDIR. Parallel
// fuzzers (-jobs, -fork) are separate processes and never share a file.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_FUZZ_FUZZINPUT_H
#define PEFT_FUZZ_FUZZINPUT_H

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace peft::fuzz {

/// Removes `dir` and the plain files in it (nothing deeper is ever made).
inline void removeDir(const std::string &dir) {
  if (DIR *d = opendir(dir.c_str())) {
    while (dirent *entry = readdir(d))
      if (std::strcmp(entry->d_name, ".") && std::strcmp(entry->d_name, ".."))
        unlink((dir + "/" + entry->d_name).c_str());
    closedir(d);
  }
  rmdir(dir.c_str());
}

/// This process's directory, made on first use: <base>/peft-fuzz-<pid>.
/// A fuzzer that crashes leaves its directory behind (no exit handlers run),
/// so directories of processes that no longer exist are removed here.
inline const std::string &inputDir() {
  // Never freed: the exit handler below runs after static destructors would.
  static const std::string &dir = *new std::string([] {
    struct stat st;
    std::string base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
                               access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    if (DIR *d = opendir(base.c_str())) {
      while (dirent *entry = readdir(d)) {
        int pid;
        char tail;
        if (std::sscanf(entry->d_name, "peft-fuzz-%d%c", &pid, &tail) == 1 &&
            kill(pid, 0) != 0 && errno == ESRCH)
          removeDir(base + "/" + entry->d_name);
      }
      closedir(d);
    }
    std::string path = base + "/peft-fuzz-" + std::to_string(getpid());
    removeDir(path); // A stale one of a process that had our pid.
    if (mkdir(path.c_str(), 0700) != 0) {
      std::perror(("mkdir " + path).c_str());
      std::abort();
    }
    std::atexit([] { removeDir(inputDir()); });
    return path;
  }());
  return dir;
}

/// Writes `data` to `name` in this process's directory and returns its path.
inline std::string writeInput(const uint8_t *data, size_t size, const char *name) {
  std::string path = inputDir() + "/" + name;
  // A new file, not the old one truncated: a reader may still map the last.
  unlink(path.c_str());
  FILE *file = std::fopen(path.c_str(), "wb");
  if (!file || (size && std::fwrite(data, 1, size, file) != size) || std::fclose(file)) {
    std::perror(("write " + path).c_str());
    std::abort();
  }
  return path;
}

/// Reads every byte of a view, so that ASan checks the whole range a reader
/// claims is there.
inline void touch(const uint8_t *data, size_t size) {
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < size; ++i)
    sink = sink ^ data[i];
  (void)sink;
}

} // namespace peft::fuzz

#endif // PEFT_FUZZ_FUZZINPUT_H
