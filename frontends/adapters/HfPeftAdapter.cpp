//===- HfPeftAdapter.cpp - Hugging Face PEFT adapters on disk ---------------===//
#include "frontends/adapters/HfPeftAdapter.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <regex>

namespace peft {

using Json = nlohmann::ordered_json;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

//===----------------------------------------------------------------------===//
// Module matching, as PEFT's check_target_module_exists does it
//===----------------------------------------------------------------------===//

/// The longest regex a config may hold: libstdc++ compiles patterns by
/// recursive descent, so length bounds its stack use. PEFT's are far shorter.
static constexpr size_t kMaxPatternLength = 1024;

/// Compiles a regex of adapter_config.json (Python's syntax, which ECMAScript
/// shares for what configs use). Polynomial mode matches breadth first: the
/// default executor recurses once per character of the subject, and a long
/// module name would overflow the stack. It refuses back-references.
static llvm::Expected<std::regex> compileRegex(const std::string &pattern,
                                               llvm::StringRef shown = "") {
  if (shown.empty())
    shown = pattern;
  if (pattern.size() > kMaxPatternLength)
    return fail("is a regex of " + llvm::Twine(shown.size()) + " characters (at most " +
                llvm::Twine(kMaxPatternLength - 16) + ")");
  // libstdc++ reads a repeat count or back-reference number into an int
  // without checking it: a long run of digits overflows inside its parser.
  for (size_t start = pattern.find_first_of("0123456789"); start != std::string::npos;) {
    size_t end = pattern.find_first_not_of("0123456789", start);
    if ((end == std::string::npos ? pattern.size() : end) - start > 9)
      return fail("holds '" + shown.take_front(60) + "', a regex with a number of more than "
                  "9 digits");
    start = end == std::string::npos ? end : pattern.find_first_of("0123456789", end);
  }
  try {
    return std::regex(pattern, std::regex::ECMAScript | std::regex_constants::__polynomial);
  } catch (const std::regex_error &error) {
    return fail("holds '" + shown.take_front(60) + "', not a regex this reader supports (" +
                error.what() + ")");
  }
}

/// Whether `pattern` (checked when the config was read) matches all of `text`.
static bool fullMatch(const std::string &pattern, const std::string &text) {
  auto regex = compileRegex(pattern);
  if (!regex) {
    llvm::consumeError(regex.takeError());
    return false;
  }
  return std::regex_match(text, *regex);
}

/// `(.*\.)?(KEY)`: a key of rank_pattern or alpha_pattern, matched against
/// a whole module path.
static std::string patternKeyRegex(const std::string &key) { return "(.*\\.)?(" + key + ")"; }

/// `.*\.(COMPONENT)`: what precedes a layer index in PEFT's
/// `.*\.{layers_pattern}\.(\d+)\.`.
static std::string layerPrefixRegex(const std::string &component) {
  return ".*\\.(" + component + ")";
}

static bool matchesList(const std::vector<std::string> &names,
                        const std::string &path) {
  for (const std::string &name : names)
    if (path == name || llvm::StringRef(path).ends_with("." + name))
      return true;
  return false;
}

/// The layer index PEFT reads from a path: the number after the last
/// `.<component>.` (any component, or one of `layers_pattern`). Each
/// all-digit component with a component after it is a candidate, the last
/// first as the greedy `.*` finds it; its prefix must end with the pattern.
static std::optional<int64_t> layerIndex(const std::vector<std::string> &patterns,
                                         const std::string &path) {
  std::vector<std::string> components =
      patterns.empty() ? std::vector<std::string>{"[^.]*"} : patterns;
  for (const std::string &component : components) {
    llvm::StringRef rest(path);
    // rfind(c, from) looks before `from`: `end` walks the dots backwards.
    for (size_t end = rest.rfind('.'); end != llvm::StringRef::npos;
         end = rest.rfind('.', end)) {
      size_t start = rest.rfind('.', end);
      if (start == llvm::StringRef::npos)
        break;
      llvm::StringRef digits = rest.slice(start + 1, end);
      if (digits.empty() || digits.find_first_not_of("0123456789") != llvm::StringRef::npos ||
          !fullMatch(layerPrefixRegex(component), rest.take_front(start).str()))
        continue;
      int64_t index;
      // An index past int64 is no layer in layers_to_transform.
      if (digits.getAsInteger(10, index))
        return std::nullopt;
      return index;
    }
  }
  return std::nullopt;
}

bool LoraConfig::isFeedforward(const std::string &path) const {
  if (feedforwardRegex)
    return fullMatch(*feedforwardRegex, path);
  return matchesList(feedforwardModules, path);
}

bool LoraConfig::targets(const std::string &path) const {
  if (excludeRegex ? fullMatch(*excludeRegex, path)
                   : matchesList(excludeModules, path))
    return false;
  if (targetRegex)
    return fullMatch(*targetRegex, path);
  if (std::find(targetModules.begin(), targetModules.end(), path) !=
      targetModules.end())
    return true;
  if (!matchesList(targetModules, path))
    return false;
  if (!layersToTransform)
    return true;
  std::optional<int64_t> index = layerIndex(layersPattern, path);
  return index && std::find(layersToTransform->begin(), layersToTransform->end(),
                            *index) != layersToTransform->end();
}

template <typename T>
static T patternValue(const std::vector<std::pair<std::string, T>> &patterns,
                      const std::string &path, T fallback) {
  for (const auto &[key, value] : patterns)
    if (fullMatch(patternKeyRegex(key), path))
      return value;
  return fallback;
}

int LoraConfig::rankFor(const std::string &path) const {
  return patternValue(rankPattern, path, rank);
}

double LoraConfig::alphaFor(const std::string &path) const {
  return patternValue(alphaPattern, path, alpha);
}

double LoraConfig::scaleFor(const std::string &path) const {
  double r = rankFor(path);
  return alphaFor(path) / (useRslora ? std::sqrt(r) : r);
}

//===----------------------------------------------------------------------===//
// adapter_config.json
//===----------------------------------------------------------------------===//

namespace {
/// Reads typed keys of the config, recording the first type error.
class ConfigReader {
public:
  ConfigReader(const Json &json, std::string path) : json(json), path(std::move(path)) {}

  template <typename T> void read(const char *key, T &out) {
    if (!json.contains(key) || json[key].is_null())
      return;
    if (std::optional<std::string> problem = checkNumbers<T>(json[key]))
      return setError(key, "is " + json[key].dump().substr(0, 30) + ", which " + *problem);
    try {
      out = json[key].get<T>();
    } catch (const Json::exception &) {
      setError(key, "has the wrong type");
    }
  }

  /// Why `value` cannot be a T without losing its meaning: nlohmann converts
  /// 2.5 to 2 and wraps 2^32 + 2 to 2 when asked for an int.
  template <typename T> static std::optional<std::string> checkNumbers(const Json &value) {
    if constexpr (std::is_same_v<T, bool>) {
      return std::nullopt;
    } else if constexpr (std::is_integral_v<T>) {
      if (!value.is_number_integer())
        return std::string("must be an integer");
      bool fits = value.is_number_unsigned()
                      ? value.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                      : value.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                            value.get<int64_t>() <= int64_t(std::numeric_limits<T>::max());
      if (!fits)
        return "is out of range";
      return std::nullopt;
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!value.is_number())
        return std::string("must be a number");
      return std::nullopt;
    } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
      if (!value.is_array())
        return std::string("must be a list of integers");
      for (const Json &item : value)
        if (std::optional<std::string> problem = checkNumbers<int64_t>(item))
          return "must be a list of integers";
      return std::nullopt;
    } else {
      return std::nullopt;
    }
  }

  /// A key that holds either a string (a regex) or a list of names.
  void readNamesOrRegex(const char *key, std::vector<std::string> &names,
                        std::optional<std::string> &regex) {
    if (!json.contains(key) || json[key].is_null())
      return;
    if (json[key].is_string())
      regex = json[key].get<std::string>();
    else
      read(key, names);
  }

  void readLayers(std::optional<std::vector<int64_t>> &layers) {
    const char *key = "layers_to_transform";
    if (json.contains(key) && json[key].is_number_integer())
      layers = std::vector<int64_t>{json[key].get<int64_t>()};
    else if (json.contains(key) && !json[key].is_null())
      read(key, layers.emplace());
  }

  void readStrings(const char *key, std::vector<std::string> &out) {
    if (json.contains(key) && json[key].is_string())
      out = {json[key].get<std::string>()};
    else
      read(key, out);
  }

  template <typename T>
  void readPattern(const char *key, std::vector<std::pair<std::string, T>> &out) {
    if (!json.contains(key) || json[key].is_null())
      return;
    if (!json[key].is_object())
      return setError(key, "must be an object");
    for (auto &[pattern, value] : json[key].items()) {
      std::optional<std::string> problem = checkNumbers<T>(value);
      if (!problem && value.template get<T>() <= 0)
        problem = "must be positive";
      if (problem)
        return setError(key, "maps '" + llvm::StringRef(pattern).take_front(60).str() +
                                 "' to " + value.dump().substr(0, 30) + ", which " + *problem);
      out.emplace_back(pattern, value.template get<T>());
    }
  }

  void setError(const std::string &key, const std::string &what) {
    if (error.empty())
      error = path + ": '" + key + "' " + what;
  }

  const Json &json;
  std::string path;
  std::string error;
};
} // namespace

/// Rejects peft types this reader does not handle, so that an adapter is
/// never silently applied with the wrong math.
static llvm::Error checkSupported(const Json &json, const std::string &path) {
  std::string peftType = json["peft_type"].is_string()
                             ? json["peft_type"].get<std::string>()
                             : std::string();
  if (peftType != "LORA" && peftType != "IA3" && peftType != "LOHA" && peftType != "LOKR" &&
      !isOwnAdapterFormat(peftType))
    return fail(path + ": peft_type '" + peftType +
                "' is not supported (supported: LORA, IA3, LOHA, LOKR, and peft-mlir's SSF, "
                "LINEAR_ADAPTER, REPADAPTER, BOTTLENECK, STDHA)");
  return llvm::Error::success();
}

/// Compiles every regex of `config` once, so that a bad one is an error that
/// names its key rather than an exception while matching.
static llvm::Error checkRegexes(const LoraConfig &config, const std::string &path) {
  struct Regex {
    const char *key;
    std::string regex, asWritten;
  };
  std::vector<Regex> regexes;
  for (auto [key, regex] : {std::pair{"target_modules", &config.targetRegex},
                            std::pair{"exclude_modules", &config.excludeRegex},
                            std::pair{"feedforward_modules", &config.feedforwardRegex}})
    if (*regex)
      regexes.push_back({key, **regex, **regex});
  for (const std::string &pattern : config.layersPattern)
    regexes.push_back({"layers_pattern", layerPrefixRegex(pattern), pattern});
  for (const auto &entry : config.rankPattern)
    regexes.push_back({"rank_pattern", patternKeyRegex(entry.first), entry.first});
  for (const auto &entry : config.alphaPattern)
    regexes.push_back({"alpha_pattern", patternKeyRegex(entry.first), entry.first});
  for (const Regex &regex : regexes)
    if (auto compiled = compileRegex(regex.regex, regex.asWritten); !compiled)
      return fail(path + ": '" + regex.key + "' " + llvm::toString(compiled.takeError()));
  return llvm::Error::success();
}

llvm::Expected<LoraConfig> readAdapterConfig(llvm::StringRef file) {
  std::string path = file.str();
  auto text = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!text)
    return fail(path + ": cannot open: " + text.getError().message());
  Json json = Json::parse((*text)->getBuffer().begin(), (*text)->getBuffer().end(),
                          nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    return fail(path + ": not a JSON object");
  if (!json.contains("peft_type"))
    return fail(path + ": missing 'peft_type'");
  if (llvm::Error error = checkSupported(json, path))
    return std::move(error);

  LoraConfig config;
  config.text = (*text)->getBuffer().str();
  ConfigReader reader(json, path);
  config.peftType = json["peft_type"].get<std::string>();
  reader.readNamesOrRegex("feedforward_modules", config.feedforwardModules,
                          config.feedforwardRegex);
  reader.read("r", config.rank);
  reader.read(config.peftType == "LOHA" || config.peftType == "LOKR" ? "alpha" : "lora_alpha",
              config.alpha);
  reader.read("use_rslora", config.useRslora);
  reader.read("use_dora", config.useDora);
  reader.read("use_effective_conv2d", config.useEffectiveConv2d);
  reader.read("bias", config.bias);
  reader.readStrings("modules_to_save", config.modulesToSave);
  reader.read("fan_in_fan_out", config.fanInFanOut);
  // fan_in_fan_out does not change lora_A/lora_B (each peft.linear records
  // its own weight layout, which the merge follows); it tells how replaced
  // weights of linear layers are laid out.
  reader.readNamesOrRegex("target_modules", config.targetModules, config.targetRegex);
  reader.readNamesOrRegex("exclude_modules", config.excludeModules, config.excludeRegex);
  reader.readLayers(config.layersToTransform);
  reader.readStrings("layers_pattern", config.layersPattern);
  reader.readPattern("rank_pattern", config.rankPattern);
  reader.readPattern("alpha_pattern", config.alphaPattern);
  if (config.peftType == "REPADAPTER")
    config.position = "before";
  reader.read("position", config.position);
  reader.read("scaling", config.scaling);
  reader.read("groups", config.groups);
  if (config.peftType == "BOTTLENECK")
    config.nonLinearity = "relu";
  reader.read("non_linearity", config.nonLinearity);
  reader.read("num_frames", config.numFrames);
  reader.read("num_heads", config.numHeads);
  reader.read("shift_heads", config.shiftHeads);
  if (!reader.error.empty())
    return fail(reader.error);
  if (isOwnAdapterFormat(config.peftType)) {
    if (llvm::Error error = checkOwnAdapterConfig(config, path))
      return std::move(error);
  }
  if (config.rank <= 0)
    return fail(path + ": 'r' must be positive");
  if (llvm::Error error = checkRegexes(config, path))
    return std::move(error);
  if (config.bias != "none" && config.bias != "all" && config.bias != "lora_only")
    return fail(path + ": 'bias' must be \"none\", \"all\" or \"lora_only\"");
  if (config.targetRegex && *config.targetRegex == "all-linear")
    return fail(path + ": target_modules \"all-linear\" is not supported yet; "
                       "list the module names");
  return config;
}

//===----------------------------------------------------------------------===//
// adapter_model.safetensors
//===----------------------------------------------------------------------===//

static constexpr llvm::StringLiteral kKeyPrefix = "base_model.model.";

/// Whether a module in `modules_to_save` holds the module at `path`: PEFT
/// wraps every module whose name ends with an entry (a plain suffix, as
/// _set_trainable matches), and saves every parameter under it.
static bool savedWhole(const std::vector<std::string> &modulesToSave, llvm::StringRef path) {
  // Each ancestor of the module (a prefix ending before a '.'), then itself.
  for (size_t end = path.find('.');; end = path.find('.', end + 1)) {
    llvm::StringRef ancestor = path.take_front(end);
    for (const std::string &entry : modulesToSave)
      if (ancestor.ends_with(entry))
        return true;
    if (end == llvm::StringRef::npos)
      return false;
  }
}

/// Whether `key` is a whole parameter of the base model that PEFT's loader
/// puts into the model; if so it is recorded. These are the parameters of
/// modules in `modules_to_save`, the biases `bias` = "all" / "lora_only"
/// saves, and the layer under an adapter saved whole
/// (`<module>.base_layer.weight`: the embedding layers PEFT saves with
/// save_embedding_layers, by default when LoRA targets embed_tokens or
/// lm_head).
static bool collectReplacedParameter(LoraAdapter &adapter, llvm::StringRef key,
                                     const TensorView &view) {
  llvm::StringRef rest = key;
  if (!rest.consume_front(kKeyPrefix))
    return false;
  auto [module, parameter] = rest.rsplit('.');
  bool wrapped = module.consume_back(".base_layer"); // The layer under a LoRA.
  const LoraConfig &config = adapter.config;
  bool savedBias = parameter == "bias" && config.bias != "none";
  bool savedLayer = wrapped && (parameter == "weight" || parameter == "bias");
  bool saved = !wrapped && savedWhole(config.modulesToSave, module);
  if (!savedBias && !savedLayer && !saved)
    return false;
  adapter.replacedParameters.push_back({module.str(), parameter.str(), key.str(), view});
  return true;
}

/// IA3's tensors: `base_model.model.<module>.ia3_l`, [out, 1] for a module
/// whose output it scales, [1, in] for a feed-forward module.
static llvm::Error collectIa3Modules(LoraAdapter &adapter) {
  const std::string &file = adapter.weightsFile;
  for (const auto &[key, view] : adapter.weights->tensors()) {
    llvm::StringRef path(key);
    if (collectReplacedParameter(adapter, key, view))
      continue;
    if (!path.consume_front(kKeyPrefix) || !path.consume_back(".ia3_l"))
      return fail(file + ": tensor '" + key +
                  "' is not an IA3 vector (base_model.model.<module>.ia3_l)");
    Ia3Module module{path.str(), key, view, adapter.config.isFeedforward(path.str())};
    if (!adapter.config.targets(module.modulePath))
      return fail(file + ": tensor '" + key + "' adapts module '" + module.modulePath +
                  "', which adapter_config.json does not target");
    // A convolution's is [1, C, 1...] either way.
    bool convolution = view.shape.size() > 2 && view.shape[0] == 1 &&
                       view.numElements() == view.shape[1];
    bool vector = view.shape.size() == 2 && view.shape[module.feedforward ? 0 : 1] == 1;
    if (!view.isFloat() || !(vector || convolution))
      return fail(file + ": tensor '" + key + "' is " + dtypeName(view.dtype) + " " +
                  formatShape(view.shape) + "; IA3 vectors are float [" +
                  (module.feedforward ? "1, in] for feed-forward modules"
                                      : "out, 1] for the others") +
                  " ([1, C, 1...] on convolutions)");
    adapter.ia3Modules.push_back(std::move(module));
  }
  if (adapter.ia3Modules.empty())
    return fail(file + ": holds no IA3 tensors");
  return llvm::Error::success();
}

/// The factor names of LoHa and LoKr (with the CP form's cores); any other
/// key is an error.
static bool isFactorName(llvm::StringRef peftType, llvm::StringRef name) {
  if (peftType == "LOHA")
    return llvm::is_contained(
        {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"}, name);
  return llvm::is_contained(
      {"lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"}, name);
}

/// Checks that a factor is a float tensor of `rank` dimensions (or more,
/// `orMore`), and returns its shape.
static llvm::Error checkFactor(const FactoredModule::Factor *factor, size_t rank, bool orMore,
                               const std::string &file) {
  const std::vector<int64_t> &shape = factor->view.shape;
  if (factor->view.isFloat() && (shape.size() == rank || (orMore && shape.size() > rank)))
    return llvm::Error::success();
  return fail(file + ": tensor '" + factor->tensor + "' is " + dtypeName(factor->view.dtype) + " " +
              formatShape(shape) + "; expected a float tensor of rank " + llvm::Twine(rank) +
              (orMore ? " or more" : ""));
}

/// A side in the CP form (use_effective_conv2d, which PEFT applies to
/// convolutions with kernels other than 1×1): the core [r, r, kernel...]
/// with `<side>_a` [r, out] and `<side>_b` [r, in], which the caller has
/// found present and of rank 2.
static llvm::Error checkCpSide(const FactoredModule &module, const std::string &side, int rank,
                               const LoraConfig &config, const std::string &file) {
  const FactoredModule::Factor *core = module.core(side);
  const std::vector<int64_t> &coreShape = core->view.shape;
  if (!config.useEffectiveConv2d)
    return fail(file + ": tensor '" + core->tensor +
                "' is a CP core, which PEFT writes only with use_effective_conv2d, but "
                "adapter_config.json does not set it");
  if (llvm::Error error = checkFactor(core, 3, true, file))
    return error;
  const std::vector<int64_t> &a = module.find(side + "_a")->view.shape;
  const std::vector<int64_t> &b = module.find(side + "_b")->view.shape;
  llvm::StringRef coreName = llvm::StringRef(core->tensor).rsplit('.').second;
  if (coreShape[0] != rank || coreShape[1] != rank || a[0] != rank || b[0] != rank)
    return fail(file + ": module '" + module.modulePath + "': " + coreName + " " +
                formatShape(coreShape) + ", " + side + "_a " + formatShape(a) + " and " + side +
                "_b " + formatShape(b) +
                " are not the CP form's [r, r, kernel...] core with [r, out] and [r, in] "
                "factors, r=" + llvm::Twine(rank));
  if (llvm::all_of(llvm::ArrayRef(coreShape).drop_front(2), [](int64_t size) { return size == 1; }))
    return fail(file + ": tensor '" + core->tensor + "' is a CP core " + formatShape(coreShape) +
                " for a 1×1 kernel, which PEFT never writes (use_effective_conv2d leaves 1×1 "
                "convolutions in the plain form)");
  return llvm::Error::success();
}

/// LoHa: hada_w1_a [out, r]·hada_w1_b [r, n] and the same for w2; in the CP
/// form, hada_t1 [r, r, kernel...] with hada_w1_a [r, out] and hada_w1_b
/// [r, in], and the same for w2.
static llvm::Error checkLohaModule(const FactoredModule &module, int rank, const LoraConfig &config,
                                   const std::string &file) {
  bool cp = module.find("hada_t1") || module.find("hada_t2");
  std::vector<const char *> names = {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"};
  if (cp)
    names.insert(names.end(), {"hada_t1", "hada_t2"});
  for (const char *name : names) {
    const FactoredModule::Factor *factor = module.find(name);
    if (!factor)
      return fail(file + ": module '" + module.modulePath + "' has no " + name +
                  (cp ? " (its other factors are in the CP form)" : ""));
    if (llvm::StringRef(name).starts_with("hada_w"))
      if (llvm::Error error = checkFactor(factor, 2, false, file))
        return error;
  }
  auto shape = [&](const char *name) { return module.find(name)->view.shape; };
  if (cp) {
    for (const char *side : {"hada_w1", "hada_w2"})
      if (llvm::Error error = checkCpSide(module, side, rank, config, file))
        return error;
    // The Hadamard product needs both sides of one shape.
    if (shape("hada_t1") != shape("hada_t2") || shape("hada_w1_a") != shape("hada_w2_a") ||
        shape("hada_w1_b") != shape("hada_w2_b"))
      return fail(file + ": module '" + module.modulePath + "': hada_t1 " +
                  formatShape(shape("hada_t1")) + ", hada_w1_a " + formatShape(shape("hada_w1_a")) +
                  " and hada_w1_b " + formatShape(shape("hada_w1_b")) + " do not match hada_t2 " +
                  formatShape(shape("hada_t2")) + ", hada_w2_a " + formatShape(shape("hada_w2_a")) +
                  " and hada_w2_b " + formatShape(shape("hada_w2_b")));
    return llvm::Error::success();
  }
  if (shape("hada_w1_a") != shape("hada_w2_a") || shape("hada_w1_b") != shape("hada_w2_b") ||
      shape("hada_w1_a")[1] != rank || shape("hada_w1_b")[0] != rank)
    return fail(file + ": module '" + module.modulePath + "': hada_w1_a " +
                formatShape(shape("hada_w1_a")) + ", hada_w1_b " + formatShape(shape("hada_w1_b")) +
                ", hada_w2_a " + formatShape(shape("hada_w2_a")) + " and hada_w2_b " +
                formatShape(shape("hada_w2_b")) + " are not [out, r] and [r, in] pairs with r=" +
                llvm::Twine(rank));
  return llvm::Error::success();
}

/// LoKr: each of w1 and w2 given whole or as a factored pair of rank r; w2
/// also in the CP form, lokr_t2 [r, r, kernel...] with lokr_w2_a [r, out]
/// and lokr_w2_b [r, in].
static llvm::Error checkLokrModule(const FactoredModule &module, int rank, const LoraConfig &config,
                                   const std::string &file) {
  for (std::string side : {"lokr_w1", "lokr_w2"}) {
    const FactoredModule::Factor *whole = module.find(side);
    const FactoredModule::Factor *a = module.find(side + "_a"), *b = module.find(side + "_b");
    if (bool(whole) == (a && b) || bool(a) != bool(b))
      return fail(file + ": module '" + module.modulePath + "' needs either " + side + " or " +
                  side + "_a and " + side + "_b");
    const FactoredModule::Factor *core = module.core(side);
    if (core && whole)
      return fail(file + ": module '" + module.modulePath + "': " +
                  llvm::StringRef(core->tensor).rsplit('.').second + " (the CP form) goes with " +
                  side + "_a and " + side + "_b, not " + side);
    if (whole) {
      if (llvm::Error error = checkFactor(whole, 2, side == "lokr_w2", file))
        return error;
      continue;
    }
    for (const FactoredModule::Factor *factor : {a, b})
      if (llvm::Error error = checkFactor(factor, 2, false, file))
        return error;
    if (core) {
      if (llvm::Error error = checkCpSide(module, side, rank, config, file))
        return error;
      continue;
    }
    if (a->view.shape[1] != rank || b->view.shape[0] != rank)
      return fail(file + ": module '" + module.modulePath + "': " + side + "_a " +
                  formatShape(a->view.shape) + " and " + side + "_b " +
                  formatShape(b->view.shape) + " are not [m, r] and [r, n] with r=" +
                  llvm::Twine(rank));
  }
  return llvm::Error::success();
}

/// LoHa's and LoKr's factors, grouped by module.
static llvm::Error collectFactoredModules(LoraAdapter &adapter) {
  const std::string &file = adapter.weightsFile;
  const LoraConfig &config = adapter.config;
  std::map<std::string, FactoredModule> byPath;
  for (const auto &[key, view] : adapter.weights->tensors()) {
    if (collectReplacedParameter(adapter, key, view))
      continue;
    llvm::StringRef rest(key);
    auto [path, name] = rest.rsplit('.');
    if (!path.consume_front(kKeyPrefix) || !isFactorName(config.peftType, name))
      return fail(file + ": tensor '" + key + "' is not a " + config.peftType +
                  " factor (base_model.model.<module>." +
                  (config.peftType == "LOHA" ? "hada_w1_a, ...)" : "lokr_w1, ...)") +
                  " nor a bias or a module to save that adapter_config.json names");
    FactoredModule &module = byPath[path.str()];
    module.modulePath = path.str();
    module.factors[name.str()] = {key, view};
  }
  for (auto &[path, module] : byPath) {
    if (!config.targets(path))
      return fail(file + ": tensor '" + module.factors.begin()->second.tensor + "' adapts module '" +
                  path + "', which adapter_config.json does not target");
    int rank = config.rankFor(path);
    if (llvm::Error error = config.peftType == "LOHA" ? checkLohaModule(module, rank, config, file)
                                                      : checkLokrModule(module, rank, config, file))
      return error;
    module.scale = config.alphaFor(path) / rank;
    adapter.factoredModules.push_back(std::move(module));
  }
  if (adapter.factoredModules.empty())
    return fail(file + ": holds no " + config.peftType + " tensors");
  return llvm::Error::success();
}

/// What a LoRA tensor is, from the end of its key.
enum class LoraRole { A, B, Bias, EmbeddingA, EmbeddingB, Magnitude };

constexpr std::pair<llvm::StringLiteral, LoraRole> kLoraSuffixes[] = {
    {".lora_A.weight", LoraRole::A},
    {".lora_B.weight", LoraRole::B},
    {".lora_B.bias", LoraRole::Bias},
    {".lora_embedding_A", LoraRole::EmbeddingA},
    {".lora_embedding_B", LoraRole::EmbeddingB},
    {".lora_magnitude_vector", LoraRole::Magnitude},
    {".lora_magnitude_vector.weight", LoraRole::Magnitude}, // PEFT before 0.12.
};

/// Splits `base_model.model.<module>.<suffix>` into the module and the role.
static std::optional<std::pair<std::string, LoraRole>> parseLoraKey(llvm::StringRef key) {
  if (!key.consume_front(kKeyPrefix))
    return std::nullopt;
  for (const auto &[suffix, role] : kLoraSuffixes)
    if (key.ends_with(suffix))
      return std::pair(key.drop_back(suffix.size()).str(), role);
  return std::nullopt;
}

/// Files one tensor under its module, checking what can be checked alone.
static llvm::Error addLoraTensor(LoraModule &module, LoraRole role, const std::string &key,
                                 const TensorView &view, const std::string &file) {
  auto wrong = [&](const llvm::Twine &expected) {
    return fail(file + ": tensor '" + key + "' is " + dtypeName(view.dtype) + " " +
                formatShape(view.shape) + "; " + expected);
  };
  if (!view.isFloat())
    return wrong("LoRA tensors are F32, F16, BF16 or F64");
  switch (role) {
  case LoraRole::Bias:
    if (view.shape.size() != 1)
      return wrong("a LoRA bias is a vector [out]");
    module.tensorBias = key, module.bias = view;
    return llvm::Error::success();
  case LoraRole::Magnitude:
    module.tensorMagnitude = key, module.magnitude = view;
    return llvm::Error::success();
  case LoraRole::EmbeddingA:
  case LoraRole::EmbeddingB:
    module.embedding = true;
    [[fallthrough]];
  case LoraRole::A:
  case LoraRole::B:
    if (view.shape.size() < 2 || (module.embedding && view.shape.size() != 2))
      return wrong("LoRA weights are matrices (convolutions: [r, C, kernel...] and "
                   "[out, r, 1...])");
    bool isA = role == LoraRole::A || role == LoraRole::EmbeddingA;
    (isA ? module.tensorA : module.tensorB) = key;
    (isA ? module.a : module.b) = view;
    return llvm::Error::success();
  }
  llvm_unreachable("unknown LoRA role");
}

/// Checks a module's tensors against each other and the config.
static llvm::Error checkLoraModule(LoraModule &module, const LoraConfig &config,
                                   const std::string &file) {
  const std::string &path = module.modulePath;
  if (module.tensorA.empty() || module.tensorB.empty())
    return fail(file + ": module '" + path + "' has " +
                (module.tensorA.empty() ? "lora_B but no lora_A" : "lora_A but no lora_B"));
  bool pointwiseB = llvm::all_of(llvm::ArrayRef(module.b.shape).drop_front(2),
                                 [](int64_t size) { return size == 1; });
  if (module.a.shape.size() != module.b.shape.size() || !pointwiseB)
    return fail(file + ": module '" + path + "': lora_B " + formatShape(module.b.shape) +
                " does not follow lora_A " + formatShape(module.a.shape) +
                " (convolutions: [out, r, 1...] after [r, C, kernel...])");
  if (module.a.shape[0] != module.b.shape[1])
    return fail(file + ": module '" + path + "': lora_A " + formatShape(module.a.shape) +
                " and lora_B " + formatShape(module.b.shape) + " disagree on the rank");
  if (!module.tensorBias.empty() && module.bias.shape[0] != module.b.shape[0])
    return fail(file + ": tensor '" + module.tensorBias + "' " +
                formatShape(module.bias.shape) + " does not match lora_B " +
                formatShape(module.b.shape));
  if (config.useDora != !module.tensorMagnitude.empty())
    return fail(file + ": module '" + path + "' " +
                (config.useDora ? "has no lora_magnitude_vector, which use_dora needs"
                                : "has a lora_magnitude_vector but use_dora is not set"));
  if (!module.tensorMagnitude.empty() &&
      module.magnitude.numElements() != module.b.shape[0])
    return fail(file + ": tensor '" + module.tensorMagnitude + "' " +
                formatShape(module.magnitude.shape) + " does not hold one magnitude per "
                "output of lora_B " + formatShape(module.b.shape));
  if (!config.targets(path))
    return fail(file + ": tensor '" + module.tensorA + "' adapts module '" + path +
                "', which adapter_config.json does not target");
  if (module.a.shape[0] != config.rankFor(path))
    return fail(file + ": tensor '" + module.tensorA + "' has rank " +
                llvm::Twine(module.a.shape[0]) + " but adapter_config.json gives r=" +
                llvm::Twine(config.rankFor(path)) + " for module '" + path + "'");
  module.scale = config.scaleFor(path);
  return llvm::Error::success();
}

/// Groups the tensors by module and checks each against the config.
static llvm::Error collectModules(LoraAdapter &adapter) {
  if (adapter.config.peftType == "IA3")
    return collectIa3Modules(adapter);
  if (adapter.config.peftType == "LOHA" || adapter.config.peftType == "LOKR")
    return collectFactoredModules(adapter);
  if (isOwnAdapterFormat(adapter.config.peftType))
    return collectOwnFormatModules(adapter);
  std::map<std::string, LoraModule> byPath;
  const std::string &file = adapter.weightsFile;
  for (const auto &[key, view] : adapter.weights->tensors()) {
    auto parsed = parseLoraKey(key);
    if (!parsed && collectReplacedParameter(adapter, key, view))
      continue;
    if (!parsed)
      return fail(file + ": tensor '" + key +
                  "' is not a LoRA tensor (base_model.model.<module>.lora_A.weight, "
                  "lora_B.weight, lora_B.bias, lora_embedding_A/B, lora_magnitude_vector), "
                  "nor a bias or a module to save that adapter_config.json names");
    LoraModule &module = byPath[parsed->first];
    module.modulePath = parsed->first;
    if (llvm::Error error = addLoraTensor(module, parsed->second, key, view, file))
      return error;
  }
  for (auto &[path, module] : byPath) {
    if (llvm::Error error = checkLoraModule(module, adapter.config, file))
      return error;
    adapter.modules.push_back(std::move(module));
  }
  if (adapter.modules.empty())
    return fail(file + ": holds no LoRA tensors");
  return llvm::Error::success();
}

llvm::Expected<LoraAdapter> readHfPeftAdapter(llvm::StringRef directory,
                                              llvm::StringRef name) {
  if (!llvm::sys::fs::is_directory(directory))
    return fail(directory + ": not an adapter directory");
  llvm::SmallString<256> configPath(directory), weightsPath(directory);
  llvm::sys::path::append(configPath, "adapter_config.json");
  llvm::sys::path::append(weightsPath, "adapter_model.safetensors");

  LoraAdapter adapter;
  adapter.name = name.str();
  adapter.weightsFile = weightsPath.str().str();
  auto config = readAdapterConfig(configPath);
  if (!config)
    return config.takeError();
  adapter.config = std::move(*config);

  if (adapter.config.peftType == "STDHA")
    return adapter; // A head shift has no tensors.
  if (!llvm::sys::fs::exists(weightsPath)) {
    llvm::SmallString<256> picklePath(directory);
    llvm::sys::path::append(picklePath, "adapter_model.bin");
    if (llvm::sys::fs::exists(picklePath))
      return fail(picklePath + ": torch pickle adapters are not read (they can run "
                               "code); save with safe_serialization=True");
    return fail(weightsPath + ": missing");
  }
  auto weights = SafetensorsFile::open(weightsPath);
  if (!weights)
    return weights.takeError();
  adapter.weights = std::move(*weights);
  if (llvm::Error error = collectModules(adapter))
    return std::move(error);
  return adapter;
}

} // namespace peft
