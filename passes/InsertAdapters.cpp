//===- InsertAdapters.cpp - Attach freshly initialized adapters -------------===//
#include "passes/Passes.h"

#include "passes/AdapterAttacher.h"

#include "llvm/Support/xxhash.h"

#include <cmath>
#include <deque>
#include <random>

namespace peft {
#define GEN_PASS_DEF_INSERTADAPTERS
#include "passes/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// A fresh adapter and the values its tensor views point into.
struct FreshAdapter {
  LoraAdapter adapter;
  std::deque<std::vector<float>> values;
  uint64_t seed = 0;

  /// A tensor of `shape` filled by `fill` (given a generator seeded with the
  /// module path), and its view.
  template <typename Fill>
  TensorView tensor(std::vector<int64_t> shape, StringRef path, Fill fill) {
    std::vector<float> &data = values.emplace_back(numElements(shape));
    std::mt19937_64 generator(seed ^ llvm::xxh3_64bits(path));
    for (float &value : data)
      value = fill(generator);
    return TensorView{DType::F32, std::move(shape), reinterpret_cast<const uint8_t *>(data.data()),
                      data.size() * sizeof(float)};
  }
  TensorView constant(std::vector<int64_t> shape, StringRef path, float value) {
    return tensor(std::move(shape), path, [&](std::mt19937_64 &) { return value; });
  }
};

std::string key(StringRef path, StringRef tensor) {
  return ("base_model.model." + path + "." + tensor).str();
}

/// PEFT's fresh LoRA: A kaiming-uniform (±1/√fan_in), B zeros; on an
/// embedding A zeros and B standard normal.
void addLora(FreshAdapter &fresh, StringRef path, AdaptableLayer layer) {
  const LoraConfig &config = fresh.adapter.config;
  int64_t rank = config.rankFor(path.str());
  LoraModule module;
  module.modulePath = path.str();
  module.scale = config.scaleFor(path.str());
  module.embedding = isa<EmbeddingOp>(layer.getOperation());
  SmallVector<int64_t> weightShape(layer.getWeight().getType().getShape());
  if (module.embedding) {
    std::normal_distribution<float> normal;
    module.tensorA = key(path, "lora_embedding_A"), module.tensorB = key(path, "lora_embedding_B");
    module.a = fresh.constant({rank, layer.getInFeatures()}, path, 0.0f);
    module.b = fresh.tensor({layer.getOutFeatures(), rank}, path,
                            [&](std::mt19937_64 &generator) { return normal(generator); });
  } else {
    bool conv = isa<ConvOp>(layer.getOperation());
    std::vector<int64_t> aShape = {rank, layer.getInFeatures()}, bShape = {layer.getOutFeatures(), rank};
    if (conv) {
      aShape = {rank};
      aShape.insert(aShape.end(), weightShape.begin() + 1, weightShape.end());
      bShape.resize(weightShape.size(), 1);
    }
    float bound = 1.0f / std::sqrt(static_cast<float>(layer.getInFeatures()));
    std::uniform_real_distribution<float> uniform(-bound, bound);
    module.tensorA = key(path, "lora_A.weight"), module.tensorB = key(path, "lora_B.weight");
    module.a = fresh.tensor(aShape, path, [&](std::mt19937_64 &generator) { return uniform(generator); });
    module.b = fresh.constant(bShape, path, 0.0f);
  }
  fresh.adapter.modules.push_back(std::move(module));
}

/// PEFT's fresh IA3: ones, [out, 1] (or [1, in] for a feed-forward module;
/// [1, C, 1, 1] on a convolution).
void addIa3(FreshAdapter &fresh, StringRef path, AdaptableLayer layer) {
  bool feedforward = fresh.adapter.config.isFeedforward(path.str());
  auto conv = dyn_cast<ConvOp>(layer.getOperation());
  std::vector<int64_t> shape;
  if (conv)
    shape = {1, feedforward ? conv.getWeight().getType().getDimSize(1) *
                                  static_cast<int64_t>(conv.getGroups())
                            : layer.getOutFeatures(), 1, 1};
  else
    shape = feedforward ? std::vector<int64_t>{1, layer.getInFeatures()}
                        : std::vector<int64_t>{layer.getOutFeatures(), 1};
  fresh.adapter.ia3Modules.push_back(
      {path.str(), key(path, "ia3_l"), fresh.constant(shape, path, 1.0f), feedforward});
}

/// Our fresh SSF: scale ones, shift zeros.
void addSsf(FreshAdapter &fresh, StringRef path, int64_t channels) {
  fresh.adapter.ssfModules.push_back({path.str(), key(path, "ssf_scale"), key(path, "ssf_shift"),
                                      fresh.constant({channels}, path, 1.0f),
                                      fresh.constant({channels}, path, 0.0f)});
}

struct InsertAdaptersPass : peft::impl::InsertAdaptersBase<InsertAdaptersPass> {
  using InsertAdaptersBase::InsertAdaptersBase;

  void runOnOperation() override {
    AdapterAttacher attacher(getOperation());
    for (const std::string &spec : configs) {
      auto [file, name] = StringRef(spec).split('=');
      FreshAdapter fresh;
      fresh.seed = seed;
      if (failed(makeAdapter(fresh, file, name.empty() ? "default" : name, attacher)) ||
          failed(attacher.attach(fresh.adapter, 1.0)))
        return signalPassFailure();
    }
  }

  LogicalResult makeAdapter(FreshAdapter &fresh, StringRef file, StringRef name,
                            const AdapterAttacher &attacher) {
    auto config = readAdapterConfig(file);
    if (!config)
      return getOperation().emitError(llvm::toString(config.takeError()));
    std::string type = config->peftType;
    if (type != "LORA" && type != "IA3" && type != "SSF")
      return getOperation().emitError() << file << ": inserting " << type
                                        << " adapters is not supported (LORA, IA3, SSF)";
    if (config->useDora || config->bias != "none")
      return getOperation().emitError()
             << file << ": inserting DoRA or LoRA biases is not supported";
    fresh.adapter.name = name.str();
    fresh.adapter.config = std::move(*config);
    std::map<std::string, AdaptableLayer> layers; // In module-path order.
    for (const auto &entry : attacher.getLayers())
      if (fresh.adapter.config.targets(entry.getKey().str()))
        layers[entry.getKey().str()] = entry.getValue();
    for (auto [path, layer] : layers) {
      if (type == "LORA")
        addLora(fresh, path, layer);
      else if (type == "IA3")
        addIa3(fresh, path, layer);
      else if (!isa<EmbeddingOp>(layer.getOperation()))
        addSsf(fresh, path, layer.getOutFeatures());
    }
    if (type == "SSF")
      for (const auto &entry : attacher.getNorms())
        if (fresh.adapter.config.targets(entry.getKey().str()))
          addSsf(fresh, entry.getKey(), LayerNormOp(entry.getValue()).getNormalizedSize());
    if (fresh.adapter.modules.empty() && fresh.adapter.ia3Modules.empty() &&
        fresh.adapter.ssfModules.empty())
      return getOperation().emitError() << file << ": target_modules name no layer of the model";
    return success();
  }
};

} // namespace
