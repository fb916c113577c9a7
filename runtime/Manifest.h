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
#include <optional>
#include <string>
#include <vector>

namespace peft {

/// A weight stored in the panel layout of a back end's GEMM micro-kernel: the
/// matrix W (N output channels by K inputs) cut into ceil(N / tile) panels of
/// `tile` channels, each K rows of `tile` contiguous floats,
/// `packed[p][k][j] = W[p·tile + j][k]`, zero past N. Files hold W as it was
/// trained; the compiler and the runtime pack it (packPanels).
struct PanelLayout {
  std::string of;      ///< The weight's name in the model or adapter files.
  int64_t tile = 0;    ///< Output channels per panel.
  bool transposed = true; ///< W is stored [N, K] (torch's Linear), else [K, N].
  /// As stored: [N, K], or [K, N]; transposed, also [N, K1, K2, ...] (a
  /// convolution's [out, in, kernel...]), read as [N, K1·K2·...].
  std::vector<int64_t> sourceShape;

  int64_t n() const { return sourceShape[transposed ? 0 : 1]; }
  int64_t k() const {
    if (!transposed)
      return sourceShape[0];
    int64_t k = 1;
    for (size_t d = 1; d < sourceShape.size(); ++d)
      k *= sourceShape[d];
    return k;
  }
  /// [ceil(N / tile), K, tile].
  std::vector<int64_t> packedShape() const;
};

/// Packs the row-major F32 matrix `source` (layout.sourceShape) into
/// `packed` (layout.packedShape() elements).
void packPanels(const float *source, const PanelLayout &layout, float *packed);

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
  /// An input choosing each row's adapter slot (--mode multi): its values
  /// must lie in [-1, adapterSlots), -1 for none; 0 when it is not one.
  int64_t adapterSlots = 0;
  /// A weight stored packed; absent for weights stored as they were trained.
  std::optional<PanelLayout> panels;

  /// The name of the model's or adapter's tensor this weight is made from.
  const std::string &sourceName() const { return panels ? panels->of : name; }
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

/// --mode multi: the adapter slots each row of a batch picks from (input
/// adapter_index), and on each layer the weights that hold them, so that the
/// runtime can load adapters into free slots.
struct ManifestSlots {
  /// One layer's slot weights, by their names in the artifact: each slot's
  /// Aᵀ [count, in, capacity] and Bᵀ [count, capacity, out], scales [count],
  /// lora_bias [count, out], IA3 vectors on its input [count, in] and output
  /// [count, out], DoRA's per-output factors [count, out] (each "" when the
  /// slots have none); with DoRA slots, the layer's weight when it is F32
  /// ([out, in], [in, out] when `weightInOut`, or packed in panels), from
  /// which a DoRA adapter loaded at run time gets its factors.
  struct Layer {
    std::string module, loraA, loraB, scales, loraBias, ia3In, ia3Out, doraScales, weight;
    /// Each slot's rank on the layer, [count] (0: nothing there), which
    /// lets the CPU's kernels skip the padding; "" in artifacts without.
    std::string ranks;
    bool weightInOut = false;
  };
  int64_t count = 0, capacity = 0;
  /// The adapter compiled into each slot, "" for a free one.
  std::vector<std::string> filled;
  std::vector<Layer> layers;
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
  /// Files for people and tools to read that the library was compiled from
  /// and embeds (a GPU target's kernels.ptx); the runtime needs none of them.
  std::vector<std::string> sources;
  std::vector<ManifestTensor> inputs, outputs;
  /// Weights in the order the entry takes them, after the inputs.
  std::vector<ManifestTensor> weights;
  std::vector<ManifestAdapter> adapters;
  std::optional<ManifestSlots> slots;

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
