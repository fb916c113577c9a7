//===- manifest_fuzzer.cpp - Fuzz Manifest::fromJson ------------------------===//
//
// The runtime parses manifest.json from an artifact directory; bad JSON or a
// wrong schema must come back as an error, never as an exception or a crash.
// An accepted manifest is written back with toJson, which must read again.
//
//===----------------------------------------------------------------------===//
#include "runtime/Manifest.h"

#include <cstdint>
#include <cstdio>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  peft::Manifest manifest;
  std::string error;
  if (!manifest.fromJson(text, error))
    return 0;
  for (const peft::ManifestAdapter &adapter : manifest.adapters)
    for (const std::string &weight : adapter.weights)
      (void)peft::adapterWeightName(weight, adapter.name);
  peft::Manifest again;
  if (!again.fromJson(manifest.toJson(), error)) {
    std::fprintf(stderr, "toJson wrote a manifest fromJson refuses: %s\n", error.c_str());
    __builtin_trap();
  }
  return 0;
}
