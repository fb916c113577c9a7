//===- ModelLibrary.cpp - An artifact's model.so, opened and checked --------===//
#include "runtime/ModelLibrary.h"

#include <dlfcn.h>

namespace peft {

void *ModelLibrary::find(const char *name) const { return dlsym(handle, name); }

void ModelLibrary::close() {
  if (handle)
    dlclose(handle);
  handle = nullptr;
  entry = nullptr;
}

bool openModelLibrary(const Manifest &manifest, const std::string &directory,
                      ModelLibrary &library, std::string &error) {
  std::string path = directory + "/" + manifest.library;
  library.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library.handle) {
    error = path + ": cannot load: " + dlerror();
    return false;
  }
  library.entry = reinterpret_cast<void (*)(void **)>(library.find(manifest.entry.c_str()));
  if (!library.entry) {
    error = path + ": no entry symbol '" + manifest.entry + "'";
    return false;
  }
  std::string signatureSymbol = manifest.entry + "_signature";
  auto *signature = static_cast<const char *>(library.find(signatureSymbol.c_str()));
  if (!signature) {
    error = path + ": no '" + signatureSymbol + "' symbol; it was not compiled by this peftc";
    return false;
  }
  if (manifest.signature() != signature) {
    error = directory + "/manifest.json: describes other inputs, outputs or weights than " +
            path + " was compiled for; recompile the artifact";
    return false;
  }
  return true;
}

} // namespace peft
