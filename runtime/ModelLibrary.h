//===- ModelLibrary.h - An artifact's model.so, opened and checked -*- C++ -*-===//
#ifndef PEFT_RUNTIME_MODELLIBRARY_H
#define PEFT_RUNTIME_MODELLIBRARY_H

#include "runtime/Manifest.h"

#include <string>

namespace peft {

/// A model.so every target's artifact has: the host code, entry
/// `void ENTRY(void **args)`.
struct ModelLibrary {
  void *handle = nullptr;
  void (*entry)(void **) = nullptr;

  /// A symbol of the library, or null.
  void *find(const char *name) const;
  /// Unloads the library (its destructors run), if it is open.
  void close();
};

/// Opens the library `manifest` names in `directory` and finds its entry;
/// false with `error` set ("PATH: why") when it does not load, lacks the
/// entry, or was compiled for another signature than the manifest's (the
/// code trusts the shapes and order of its arguments: a manifest edited or
/// paired with another library would make it read past buffers).
bool openModelLibrary(const Manifest &manifest, const std::string &directory,
                      ModelLibrary &library, std::string &error);

} // namespace peft

#endif // PEFT_RUNTIME_MODELLIBRARY_H
