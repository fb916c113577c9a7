//===- Manifest.h - What a compiled artifact holds --------------*- C++ -*-===//
//
// An artifact is a directory: manifest.json, the compiled library and the
// weights (safetensors). The compiler writes the manifest, the runtime reads
// it; this header is the one definition of its schema.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_RUNTIME_MANIFEST_H
#define PEFT_RUNTIME_MANIFEST_H

#include <cstdint>
#include <string>
#include <vector>

namespace peft {

/// A named tensor of the entry's signature; -1 marks a dynamic size.
struct ManifestTensor {
  std::string name;
  std::string dtype; ///< Safetensors spelling: F32, I64, ...
  std::vector<int64_t> shape;
  /// The model's names for dynamic dimensions ("batch"), "" where unnamed;
  /// empty when no dimension is named. Inputs that share a name must agree.
  std::vector<std::string> dimNames;
  /// An integer input that indexes rows directly (token ids): its values
  /// must lie in [-indexBound, indexBound); 0 when unbounded.
  int64_t indexBound = 0;
};

/// An adapter left unmerged: its weights are inputs of the entry, so another
/// adapter with the same targets, ranks and scales can take their place.
struct ManifestAdapter {
  std::string name;    ///< "default", or the NAME of --adapter DIR=NAME.
  std::string method;  ///< LoRA, DoRA, IA3, LoHa, LoKr.
  std::string module;  ///< The adapted module's path.
  double scale = 1;    ///< Compiled into the code.
  /// Its tensors, by their names in the artifact: adapterWeightName(key in
  /// adapter_model.safetensors, name).
  std::vector<std::string> weights;
};

/// The name an adapter's tensor has in an artifact (and in exported ONNX):
/// its key in adapter_model.safetensors with the adapter's name inserted the
/// way PEFT names parameters in memory (`...lora_A.weight` ->
/// `...lora_A.NAME.weight`, `...lora_embedding_A` -> `...lora_embedding_A.NAME`),
/// so that adapters on the same modules keep weights of their own.
std::string adapterWeightName(const std::string &fileKey, const std::string &adapter);

struct Manifest {
  static constexpr int kVersion = 1;
  /// The most dimensions a tensor of the signature may have.
  static constexpr size_t kMaxRank = 16;
  std::string target = "cpu";
  std::string library;     ///< File name inside the artifact directory.
  std::string entry;       ///< Symbol of the packed entry, `void (void **)`.
  std::string weightsFile; ///< File name inside the artifact directory.
  std::vector<ManifestTensor> inputs, outputs;
  /// Weights in the order the entry takes them, after the inputs.
  std::vector<ManifestTensor> weights;
  std::vector<ManifestAdapter> adapters;

  std::string toJson() const;
  /// Parses and checks `text` (our format marker, each field's type and
  /// range, file names that stay inside the artifact); on failure returns
  /// false and sets `error` to one line naming the field.
  bool fromJson(const std::string &text, std::string &error);

  /// The entry's signature (names, dtypes and shapes of inputs, outputs and
  /// weights, in order) as one string. The library exports it as
  /// `<entry>_signature`, so that the runtime can refuse a manifest that no
  /// longer describes the code.
  std::string signature() const;
};

} // namespace peft

#endif // PEFT_RUNTIME_MANIFEST_H
