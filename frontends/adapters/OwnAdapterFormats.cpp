//===- OwnAdapterFormats.cpp - peft-mlir's adapter formats ------------------===//
//
// The methods Hugging Face PEFT lacks, saved the way PEFT saves its own
// (adapter_config.json + adapter_model.safetensors, tensors under
// `base_model.model.<module path>.`), as docs/adapters.md specifies:
//
//   SSF             ssf_scale [C], ssf_shift [C]
//   LINEAR_ADAPTER  adapter_down.weight [h, d], adapter_up.weight [d, h]
//   BOTTLENECK        (each with an optional .bias)
//   REPADAPTER      adapter_conv_A.weight [h, d, 1], adapter_conv_B.weight
//                   [d, h / groups, 1] (nn.Conv1d kernels), optional .bias
//   STDHA           none: the config alone (num_frames, num_heads,
//                   shift_heads)
//
//===----------------------------------------------------------------------===//
#include "frontends/adapters/HfPeftAdapter.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

#include <map>

namespace peft {

static constexpr llvm::StringLiteral kKeyPrefix = "base_model.model.";

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

bool isOwnAdapterFormat(llvm::StringRef peftType) {
  return llvm::is_contained({"SSF", "LINEAR_ADAPTER", "REPADAPTER", "BOTTLENECK", "STDHA"},
                            peftType);
}

llvm::Error checkOwnAdapterConfig(const LoraConfig &config, const std::string &path) {
  const std::string &type = config.peftType;
  if (config.position != "before" && config.position != "after")
    return fail(path + ": 'position' must be \"before\" or \"after\", got \"" + config.position +
                "\"");
  if (type == "REPADAPTER" && config.position != "before")
    return fail(path + ": a REPADAPTER stands before its module ('position' \"before\")");
  if (type == "SSF" && config.position != "after")
    return fail(path + ": SSF follows its module ('position' \"after\")");
  if (config.groups < 1 || (type != "REPADAPTER" && config.groups != 1))
    return fail(path + ": 'groups' must be 1 (" + type + ") or positive (REPADAPTER)");
  if (type == "STDHA" && (config.numFrames < 1 || config.numHeads < 1 || config.shiftHeads < 1 ||
                          2 * config.shiftHeads > config.numHeads))
    return fail(path + ": STDHA needs 'num_frames' >= 1, 'num_heads' >= 1 and 1 <= "
                       "'shift_heads' <= num_heads / 2");
  bool linear = type == "LINEAR_ADAPTER" || type == "REPADAPTER";
  if (linear && config.nonLinearity != "identity")
    return fail(path + ": a " + type + " has no 'non_linearity' (it is linear)");
  if (type == "BOTTLENECK" &&
      !llvm::is_contained({"relu", "gelu", "silu", "tanh"}, config.nonLinearity))
    return fail(path + ": 'non_linearity' \"" + config.nonLinearity +
                "\" is not relu, gelu, silu or tanh");
  return llvm::Error::success();
}

namespace {
/// The tensor names of one family, after `base_model.model.<module>.`.
struct ResidualNames {
  llvm::StringLiteral down, downBias, up, upBias;
};
constexpr ResidualNames kProjectionNames = {"adapter_down.weight", "adapter_down.bias",
                                            "adapter_up.weight", "adapter_up.bias"};
constexpr ResidualNames kRepAdapterNames = {"adapter_conv_A.weight", "adapter_conv_A.bias",
                                            "adapter_conv_B.weight", "adapter_conv_B.bias"};

/// Groups an adapter's tensors by module: module path -> tensor name -> key.
using TensorsByModule = std::map<std::string, std::map<std::string, std::string>>;
} // namespace

/// Splits every key into its module and tensor name, refusing keys outside
/// `names`.
static llvm::Expected<TensorsByModule> groupTensors(const LoraAdapter &adapter,
                                                    llvm::ArrayRef<llvm::StringRef> names) {
  TensorsByModule modules;
  for (const auto &[key, view] : adapter.weights->tensors()) {
    llvm::StringRef rest(key);
    const llvm::StringRef *name = llvm::find_if(names, [&](llvm::StringRef candidate) {
      return rest.ends_with(("." + candidate).str());
    });
    if (!rest.consume_front(kKeyPrefix) || name == names.end())
      return fail(adapter.weightsFile + ": tensor '" + key + "' is not a " +
                  adapter.config.peftType + " tensor (base_model.model.<module>." +
                  llvm::join(names, ", ") + ")");
    std::string module = rest.drop_back(name->size() + 1).str();
    if (!adapter.config.targets(module))
      return fail(adapter.weightsFile + ": tensor '" + key + "' adapts module '" + module +
                  "', which adapter_config.json does not target");
    if (!view.isFloat())
      return fail(adapter.weightsFile + ": tensor '" + key + "' is " +
                  dtypeName(view.dtype) + "; adapter tensors are float");
    modules[module][name->str()] = key;
  }
  if (modules.empty())
    return fail(adapter.weightsFile + ": holds no " + adapter.config.peftType + " tensors");
  return modules;
}

static llvm::Error collectSsfModules(LoraAdapter &adapter) {
  auto modules = groupTensors(adapter, {"ssf_scale", "ssf_shift"});
  if (!modules)
    return modules.takeError();
  const std::string &file = adapter.weightsFile;
  for (auto &[path, tensors] : *modules) {
    if (tensors.size() != 2)
      return fail(file + ": module '" + path + "' has " + tensors.begin()->first +
                  " alone; SSF needs ssf_scale and ssf_shift");
    SsfModule module{path, tensors["ssf_scale"], tensors["ssf_shift"], {}, {}};
    module.scale = adapter.weights->tensors().at(module.tensorScale);
    module.shift = adapter.weights->tensors().at(module.tensorShift);
    if (module.scale.shape.size() != 1 || module.shift.shape != module.scale.shape)
      return fail(file + ": module '" + path + "': ssf_scale " + formatShape(module.scale.shape) +
                  " and ssf_shift " + formatShape(module.shift.shape) +
                  " must both be [C]");
    adapter.ssfModules.push_back(std::move(module));
  }
  return llvm::Error::success();
}

/// Checks a residual adapter's shapes: down [h, d], up [d, h / groups] (with
/// a trailing 1 for REPADAPTER's Conv1d kernels), biases [h] and [d].
static llvm::Error checkResidualModule(const ResidualAdapterModule &module,
                                       const LoraConfig &config, const std::string &file) {
  bool conv1d = config.peftType == "REPADAPTER";
  auto matrix = [&](const TensorView &view) {
    bool fits = view.shape.size() == (conv1d ? 3u : 2u) && (!conv1d || view.shape[2] == 1);
    return fits ? std::vector<int64_t>(view.shape.begin(), view.shape.begin() + 2)
                : std::vector<int64_t>();
  };
  std::vector<int64_t> down = matrix(module.down), up = matrix(module.up);
  std::string form = conv1d ? "[h, d, 1] and [d, h / groups, 1]" : "[h, d] and [d, h]";
  if (down.empty() || up.empty() || up[0] != down[1] || up[1] * config.groups != down[0])
    return fail(file + ": module '" + module.modulePath + "': tensors '" + module.tensorDown +
                "' " + formatShape(module.down.shape) + " and '" + module.tensorUp + "' " +
                formatShape(module.up.shape) + " must be " + form +
                (conv1d ? " with groups = " + std::to_string(config.groups) : std::string()));
  for (auto [tensor, view, size] : {std::tuple(module.tensorDownBias, module.downBias, down[0]),
                                    std::tuple(module.tensorUpBias, module.upBias, up[0])})
    if (!tensor.empty() && view.shape != std::vector<int64_t>{size})
      return fail(file + ": tensor '" + tensor + "' " + formatShape(view.shape) + " must be [" +
                  std::to_string(size) + "]");
  return llvm::Error::success();
}

static llvm::Error collectResidualModules(LoraAdapter &adapter) {
  const ResidualNames &names =
      adapter.config.peftType == "REPADAPTER" ? kRepAdapterNames : kProjectionNames;
  auto modules = groupTensors(adapter, {names.down, names.downBias, names.up, names.upBias});
  if (!modules)
    return modules.takeError();
  const auto &tensors = adapter.weights->tensors();
  for (auto &[path, keys] : *modules) {
    auto take = [&](llvm::StringRef name, std::string &key, TensorView &view) {
      if (auto found = keys.find(name.str()); found != keys.end())
        key = found->second, view = tensors.at(key);
    };
    ResidualAdapterModule module;
    module.modulePath = path;
    take(names.down, module.tensorDown, module.down);
    take(names.downBias, module.tensorDownBias, module.downBias);
    take(names.up, module.tensorUp, module.up);
    take(names.upBias, module.tensorUpBias, module.upBias);
    if (module.tensorDown.empty() || module.tensorUp.empty())
      return fail(adapter.weightsFile + ": module '" + path + "' lacks " +
                  (module.tensorDown.empty() ? names.down : names.up));
    if (llvm::Error error = checkResidualModule(module, adapter.config, adapter.weightsFile))
      return error;
    adapter.residualModules.push_back(std::move(module));
  }
  return llvm::Error::success();
}

llvm::Error collectOwnFormatModules(LoraAdapter &adapter) {
  if (adapter.config.peftType == "SSF")
    return collectSsfModules(adapter);
  return collectResidualModules(adapter);
}

} // namespace peft
