//===- HfPeftAdapter.h - Hugging Face PEFT adapters on disk -----*- C++ -*-===//
//
// Reads an adapter directory exactly as Hugging Face PEFT saves it:
// adapter_config.json plus adapter_model.safetensors, whose tensors are named
// `base_model.model.<module path>.lora_A.weight` and `...lora_B.weight`
// (LoRA), `base_model.model.<module path>.ia3_l` (IA3), or LoHa's and LoKr's
// factors (`...hada_w1_a`, `...lokr_w1`). The same layout holds peft-mlir's
// own formats for the methods PEFT lacks (SSF, LINEAR_ADAPTER, REPADAPTER,
// BOTTLENECK; docs/adapters.md), read by OwnAdapterFormats.cpp.
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_FRONTENDS_ADAPTERS_HFPEFTADAPTER_H
#define PEFT_FRONTENDS_ADAPTERS_HFPEFTADAPTER_H

#include "support/Safetensors.h"

#include "llvm/Support/Error.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace peft {

/// The parts of a LoraConfig (or IA3Config) that decide which modules are
/// adapted and how.
struct LoraConfig {
  /// "LORA", "IA3", "LOHA", "LOKR", or one of peft-mlir's own: "SSF",
  /// "LINEAR_ADAPTER", "REPADAPTER", "BOTTLENECK", "STDHA" (no tensors).
  std::string peftType = "LORA";
  /// Residual adapters (our formats): whether they stand on the input of
  /// their module ("before") or on its output ("after"), the factor of
  /// their branch, the groups of the up-projection, and the activation
  /// between the projections.
  std::string position = "after";
  double scaling = 1.0;
  int64_t groups = 1;
  std::string nonLinearity = "identity";
  /// The file as written, which an ONNX export carries along.
  std::string text;
  /// STDHA (our format): clip length, attention heads, and heads shifted
  /// each way.
  int64_t numFrames = 0, numHeads = 0, shiftHeads = 1;
  /// IA3: the modules whose input is scaled (the others' output is).
  std::vector<std::string> feedforwardModules;
  std::optional<std::string> feedforwardRegex;
  int rank = 8;
  double alpha = 8;
  bool useRslora = false;
  bool useDora = false;
  /// LoHa, LoKr: convolutions with kernels other than 1×1 have their factors
  /// in the CP form (hada_t1, lokr_t2).
  bool useEffectiveConv2d = false;
  /// "none", "all" or "lora_only": which base biases the file holds.
  std::string bias = "none";
  std::vector<std::string> modulesToSave;
  /// Whether the model stores the weights of linear layers [in, out]
  /// (GPT-2's Conv1D), which is how replaced weights are laid out.
  bool fanInFanOut = false;
  /// `target_modules` as a list (exact name or dotted suffix) ...
  std::vector<std::string> targetModules;
  /// ... or as a regex that must match the whole module path.
  std::optional<std::string> targetRegex;
  std::vector<std::string> excludeModules;
  std::optional<std::string> excludeRegex;
  std::optional<std::vector<int64_t>> layersToTransform;
  std::vector<std::string> layersPattern;
  /// Regex -> value, in the file's order; the first match wins.
  std::vector<std::pair<std::string, int>> rankPattern;
  std::vector<std::pair<std::string, double>> alphaPattern;

  /// Whether PEFT would have adapted the module at `path`.
  bool targets(const std::string &path) const;
  int rankFor(const std::string &path) const;
  double alphaFor(const std::string &path) const;
  /// lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA.
  double scaleFor(const std::string &path) const;
  /// IA3: whether the module at `path` is a feed-forward one.
  bool isFeedforward(const std::string &path) const;
};

/// One adapted module: where its A and B matrices live.
struct LoraModule {
  std::string modulePath;
  std::string tensorA, tensorB; ///< Names inside the safetensors file.
  /// [r, in] and [out, r]; a convolution's are [r, C, kernel...] and
  /// [out, r, 1...]; an embedding's [r, num_embeddings] and [dim, r].
  TensorView a, b;
  bool embedding = false;       ///< lora_embedding_A / lora_embedding_B.
  std::string tensorBias;       ///< lora_B.bias ([out]), with lora_bias: true.
  TensorView bias;
  std::string tensorMagnitude;  ///< DoRA's lora_magnitude_vector ([out]).
  TensorView magnitude;
  double scale = 1.0;

  bool isConvolution() const { return a.shape.size() > 2; }
};

/// One module adapted by IA3: its learned vector `ia3_l` scales the module's
/// output ([out, 1]) or, for a feed-forward module, its input ([1, in]).
struct Ia3Module {
  std::string modulePath;
  std::string tensor; ///< The name of `ia3_l` inside the safetensors file.
  TensorView scale;
  bool feedforward = false;
};

/// One module adapted by LoHa or LoKr: its factors by PEFT's names
/// (hada_w1_a, hada_w1_b, hada_w2_a, hada_w2_b; lokr_w1 or lokr_w1_a and
/// lokr_w1_b, lokr_w2 or lokr_w2_a and lokr_w2_b), and on a convolution in
/// the CP form (use_effective_conv2d) the cores hada_t1, hada_t2 or lokr_t2.
struct FactoredModule {
  struct Factor {
    std::string tensor; ///< The name inside the safetensors file.
    TensorView view;
  };
  std::string modulePath;
  std::map<std::string, Factor> factors;
  double scale = 1.0; ///< alpha / r.

  const Factor *find(llvm::StringRef name) const {
    auto found = factors.find(name.str());
    return found == factors.end() ? nullptr : &found->second;
  }
  /// The CP core of a side (`hada_w1` -> `hada_t1`, `lokr_w2` -> `lokr_t2`),
  /// [r, r, kernel...]: the side is then rebuilt from the core, `<side>_a`
  /// [r, out] and `<side>_b` [r, in]. Null when the side is not in that form.
  const Factor *core(llvm::StringRef side) const {
    std::string name = side.str();
    size_t at = name.rfind("_w");
    if (at == std::string::npos)
      return nullptr;
    name[at + 1] = 't';
    return find(name);
  }
};

/// A whole parameter of the base model that the adapter replaces: a module in
/// `modules_to_save` (`base_model.model.classifier.weight`), or a bias saved
/// with `bias` = "all" / "lora_only" (`...query.base_layer.bias`).
struct ReplacedParameter {
  std::string modulePath;
  std::string parameter; ///< "weight", "bias", ...
  std::string tensor;    ///< The name inside the safetensors file.
  TensorView value;
};

/// One module adapted by SSF: its output y = scale⊙x + shift per channel
/// (`<module>.ssf_scale`, `<module>.ssf_shift`, [C] each).
struct SsfModule {
  std::string modulePath;
  std::string tensorScale, tensorShift;
  TensorView scale, shift;
};

/// One residual adapter x + s·(up(act(down·x + down_bias)) + up_bias) on a
/// module's input or output (LINEAR_ADAPTER, REPADAPTER, BOTTLENECK). The
/// biases are optional (empty tensor names).
struct ResidualAdapterModule {
  std::string modulePath;
  std::string tensorDown, tensorDownBias, tensorUp, tensorUpBias;
  TensorView down, downBias, up, upBias;
};

struct LoraAdapter {
  std::string name;        ///< What the IR calls it ("default" unless given).
  std::string weightsFile; ///< Path of adapter_model.safetensors; empty when
                           ///< the tensors are held in memory (fresh ones).
  LoraConfig config;
  std::vector<LoraModule> modules; ///< Sorted by module path.
  std::vector<Ia3Module> ia3Modules; ///< For peft_type IA3, sorted by module path.
  std::vector<FactoredModule> factoredModules; ///< For LOHA and LOKR.
  std::vector<ReplacedParameter> replacedParameters;
  std::vector<SsfModule> ssfModules;                   ///< For SSF.
  std::vector<ResidualAdapterModule> residualModules; ///< For the residual adapters.
  std::unique_ptr<SafetensorsFile> weights;
};

/// Reads and checks adapter_config.json (or any file in its format).
llvm::Expected<LoraConfig> readAdapterConfig(llvm::StringRef path);

/// Whether `peftType` is one of peft-mlir's own formats.
bool isOwnAdapterFormat(llvm::StringRef peftType);
/// Checks the config keys of peft-mlir's own formats.
llvm::Error checkOwnAdapterConfig(const LoraConfig &config, const std::string &path);
/// Files the tensors of an adapter in one of peft-mlir's own formats under
/// their modules, checking their shapes.
llvm::Error collectOwnFormatModules(LoraAdapter &adapter);

/// Reads and validates the adapter in `directory`. Errors name the file and the
/// tensor or config key at fault.
llvm::Expected<LoraAdapter> readHfPeftAdapter(llvm::StringRef directory,
                                              llvm::StringRef name);

} // namespace peft

#endif // PEFT_FRONTENDS_ADAPTERS_HFPEFTADAPTER_H
