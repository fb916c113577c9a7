//===- HfPeftAdapter.h - Hugging Face PEFT adapters on disk -----*- C++ -*-===//
//
// Reads an adapter directory exactly as Hugging Face PEFT saves it:
// adapter_config.json plus adapter_model.safetensors, whose tensors are named
// `base_model.model.<module path>.lora_A.weight` and `...lora_B.weight`.
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

/// The parts of a LoraConfig that decide which modules are adapted and how.
struct LoraConfig {
  int rank = 8;
  double alpha = 8;
  bool useRslora = false;
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
};

/// One adapted module: where its A and B matrices live.
struct LoraModule {
  std::string modulePath;
  std::string tensorA, tensorB; ///< Names inside the safetensors file.
  TensorView a, b;              ///< [r, in] and [out, r].
  double scale = 1.0;
};

struct LoraAdapter {
  std::string name;        ///< What the IR calls it ("default" unless given).
  std::string weightsFile; ///< Path of adapter_model.safetensors.
  LoraConfig config;
  std::vector<LoraModule> modules; ///< Sorted by module path.
  std::unique_ptr<SafetensorsFile> weights;
};

/// Reads and validates the adapter in `directory`. Errors name the file and the
/// tensor or config key at fault.
llvm::Expected<LoraAdapter> readHfPeftAdapter(llvm::StringRef directory,
                                              llvm::StringRef name);

} // namespace peft

#endif // PEFT_FRONTENDS_ADAPTERS_HFPEFTADAPTER_H
