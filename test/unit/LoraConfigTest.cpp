//===- LoraConfigTest.cpp - PEFT's module matching rules --------------------===//
#include "frontends/adapters/HfPeftAdapter.h"
#include "support/Safetensors.h"

#include "TempDir.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace peft;
using peft::testing::TempDir;

namespace {

TEST(LoraConfig, ListTargetsMatchWholeNamesOrDottedSuffixes) {
  LoraConfig config;
  config.targetModules = {"query", "attn.c_proj"};
  EXPECT_TRUE(config.targets("encoder.layer.0.attention.self.query"));
  EXPECT_TRUE(config.targets("query"));
  EXPECT_TRUE(config.targets("transformer.h.1.attn.c_proj"));
  EXPECT_FALSE(config.targets("transformer.h.1.mlp.c_proj"));
  EXPECT_FALSE(config.targets("encoder.layer.0.attention.self.myquery"));
}

TEST(LoraConfig, StringTargetIsAFullRegexMatch) {
  LoraConfig config;
  config.targetRegex = R"(.*\.(query|value))";
  EXPECT_TRUE(config.targets("encoder.layer.0.attention.self.value"));
  EXPECT_FALSE(config.targets("encoder.layer.0.attention.self.value.extra"));
  EXPECT_FALSE(config.targets("value")); // The regex needs a dot before.
}

TEST(LoraConfig, LayersToTransformReadsTheLayerIndex) {
  LoraConfig config;
  config.targetModules = {"c_attn"};
  config.layersToTransform = std::vector<int64_t>{1};
  EXPECT_TRUE(config.targets("transformer.h.1.attn.c_attn"));
  EXPECT_FALSE(config.targets("transformer.h.0.attn.c_attn"));
  config.layersPattern = {"layers"};
  EXPECT_FALSE(config.targets("transformer.h.1.attn.c_attn")); // Not under "layers".
  EXPECT_TRUE(config.targets("model.layers.1.attn.c_attn"));
}

TEST(LoraConfig, ExcludeModulesWins) {
  LoraConfig config;
  config.targetModules = {"dense"};
  config.excludeModules = {"output.dense"};
  EXPECT_TRUE(config.targets("encoder.layer.0.intermediate.dense"));
  EXPECT_FALSE(config.targets("encoder.layer.0.output.dense"));
}

TEST(LoraConfig, PatternsPickRankAndAlphaPerModule) {
  LoraConfig config;
  config.rank = 8;
  config.alpha = 16;
  config.rankPattern = {{"value", 2}, {"layer.1.*query", 4}};
  config.alphaPattern = {{"query", 3}};
  EXPECT_EQ(config.rankFor("encoder.layer.0.attention.self.value"), 2);
  EXPECT_EQ(config.rankFor("encoder.layer.1.attention.self.query"), 4);
  EXPECT_EQ(config.rankFor("encoder.layer.0.attention.self.query"), 8);
  EXPECT_DOUBLE_EQ(config.scaleFor("encoder.layer.0.attention.self.value"), 16.0 / 2);
  EXPECT_DOUBLE_EQ(config.scaleFor("encoder.layer.0.attention.self.query"), 3.0 / 8);
  config.useRslora = true;
  EXPECT_DOUBLE_EQ(config.scaleFor("encoder.layer.0.attention.self.query"), 3.0 / std::sqrt(8.0));
}

TEST(HfPeftAdapter, RejectsWhatItCannotApplyExactly) {
  TempDir dir;
  auto error = [&](const std::string &config) {
    dir.write("adapter_config.json", config);
    auto adapter = readHfPeftAdapter(dir.file(""), "default");
    return adapter ? std::string() : llvm::toString(adapter.takeError());
  };
  EXPECT_NE(error(R"({"peft_type": "VERA"})")
                .find("peft_type 'VERA' is not supported (supported: LORA, IA3, LOHA, LOKR, and "
                      "peft-mlir's SSF, LINEAR_ADAPTER, REPADAPTER, BOTTLENECK, STDHA)"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "REPADAPTER", "position": "after"})")
                .find("a REPADAPTER stands before its module"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "BOTTLENECK", "non_linearity": "swish"})")
                .find("'non_linearity' \"swish\" is not relu, gelu, silu or tanh"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LINEAR_ADAPTER", "groups": 2})")
                .find("'groups' must be 1 (LINEAR_ADAPTER)"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "bias": "some"})").find("'bias' must be"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "r": "eight"})")
                .find("'r' is \"eight\", which must be an integer"),
            std::string::npos);
  EXPECT_NE(error(R"({"r": 8})").find("missing 'peft_type'"), std::string::npos);
  EXPECT_NE(error("{not json").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA"})").find("adapter_model.safetensors: missing"),
            std::string::npos);
  dir.write("adapter_model.bin", "pickle");
  EXPECT_NE(error(R"({"peft_type": "LORA"})").find("pickle"), std::string::npos);
}

/// The error reading `config` as adapter_config.json gives, or "".
static std::string configError(const TempDir &dir, const std::string &config) {
  dir.write("adapter_config.json", config);
  auto read = readAdapterConfig(dir.file("adapter_config.json"));
  return read ? std::string() : llvm::toString(read.takeError());
}

TEST(HfPeftAdapter, NumbersKeepTheirMeaningOrAreRefused) {
  TempDir dir;
  auto error = [&](const std::string &config) { return configError(dir, config); };
  // nlohmann would read 2^32 + 2 and 2.5 as 2, and 10^12 as INT_MIN.
  EXPECT_NE(error(R"({"peft_type": "LORA", "r": 4294967298})")
                .find("'r' is 4294967298, which is out of range"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "r": 2.5})").find("'r' is 2.5, which must be an integer"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "rank_pattern": {"query": 1000000000000}})")
                .find("'rank_pattern' maps 'query' to 1000000000000, which is out of range"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "rank_pattern": {"query": 0}})")
                .find("which must be positive"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "layers_to_transform": [1.5]})")
                .find("'layers_to_transform' is [1.5], which must be a list of integers"),
            std::string::npos);
  EXPECT_EQ(error(R"({"peft_type": "LORA", "r": 16, "rank_pattern": {"query": 4}})"), "");
}

TEST(HfPeftAdapter, RegexesAreCheckedWhenRead) {
  TempDir dir;
  auto error = [&](const std::string &config) { return configError(dir, config); };
  for (const char *key : {"target_modules", "exclude_modules"})
    EXPECT_NE(error(std::string(R"({"peft_type": "LORA", ")") + key + R"(": "(query"})")
                  .find(std::string("'") + key + "' holds '(query', not a regex"),
              std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "rank_pattern": {"[": 2}})")
                .find("'rank_pattern' holds '[', not a regex"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "layers_pattern": "(h"})")
                .find("'layers_pattern' holds '(h', not a regex"),
            std::string::npos);
  // Back-references need the backtracking matcher this reader never uses.
  EXPECT_NE(error(R"({"peft_type": "LORA", "target_modules": "(a)\\1"})").find("not a regex"),
            std::string::npos);
  // libstdc++'s parser overflows an int on such a number (found by fuzzing).
  EXPECT_NE(error(R"({"peft_type": "LORA", "target_modules": "\\18467440737095516151"})")
                .find("a regex with a number of more than 9 digits"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "target_modules": "a{99999999999}"})")
                .find("a regex with a number of more than 9 digits"),
            std::string::npos);
  EXPECT_NE(error(R"({"peft_type": "LORA", "target_modules": ")" + std::string(2000, 'a') + "\"}")
                .find("is a regex of 2000 characters"),
            std::string::npos);
}

TEST(LoraConfig, LongModuleNamesMatchWithoutRecursion) {
  // libstdc++'s default matcher recurses per character: 200 KB overflowed.
  LoraConfig config;
  config.targetRegex = R"(.*\.(query|value))";
  std::string path = std::string(200000, 'a') + ".query";
  EXPECT_TRUE(config.targets(path));
  config.targetRegex.reset();
  config.targetModules = {"query"};
  config.layersToTransform = std::vector<int64_t>{1};
  EXPECT_TRUE(config.targets(std::string(200000, 'a') + ".layer.1.query"));
  // An index past int64 is no layer, not an exception.
  EXPECT_FALSE(config.targets("encoder.layer.99999999999999999999999.query"));
  config.rankPattern = {{"query", 2}};
  EXPECT_EQ(config.rankFor(std::string(200000, 'b') + ".query"), 2);
}

/// Writes a LoRA adapter with `config` and a one-element F32 tensor per key.
static llvm::Expected<LoraAdapter> readWithTensors(const TempDir &dir, const std::string &config,
                                                   const std::vector<std::string> &keys) {
  dir.write("adapter_config.json", config);
  static const float one = 1;
  std::map<std::string, TensorView> tensors;
  for (const std::string &key : keys)
    tensors[key] = TensorView{DType::F32, {1, 1}, reinterpret_cast<const uint8_t *>(&one), 4};
  if (llvm::Error error = writeSafetensors(dir.file("adapter_model.safetensors"), tensors))
    return std::move(error);
  return readHfPeftAdapter(dir.file(""), "default");
}

TEST(HfPeftAdapter, ReadsWholeParametersAsPeftsLoaderDoes) {
  TempDir dir;
  // LoRA on an embedding saves the layer under it too (save_embedding_layers);
  // modules_to_save naming a container saves every parameter under it.
  auto adapter = readWithTensors(
      dir, R"({"peft_type": "LORA", "r": 1, "target_modules": ["embed_tokens"],
               "modules_to_save": ["pooler"]})",
      {"base_model.model.model.embed_tokens.lora_embedding_A",
       "base_model.model.model.embed_tokens.lora_embedding_B",
       "base_model.model.model.embed_tokens.base_layer.weight",
       "base_model.model.pooler.dense.weight", "base_model.model.pooler.dense.bias"});
  ASSERT_TRUE(bool(adapter)) << llvm::toString(adapter.takeError());
  std::vector<std::string> replaced;
  for (const ReplacedParameter &parameter : adapter->replacedParameters)
    replaced.push_back(parameter.modulePath + " " + parameter.parameter);
  EXPECT_EQ(replaced, (std::vector<std::string>{"model.embed_tokens weight", "pooler.dense bias",
                                                "pooler.dense weight"}));
  // A module outside modules_to_save is no parameter PEFT would have saved.
  auto other = readWithTensors(
      dir, R"({"peft_type": "LORA", "r": 1, "target_modules": ["query"],
               "modules_to_save": ["pooler"]})",
      {"base_model.model.classifier.dense.weight"});
  ASSERT_FALSE(bool(other));
  EXPECT_NE(llvm::toString(other.takeError()).find("'base_model.model.classifier.dense.weight' is "
                                                   "not a LoRA tensor"),
            std::string::npos);
}

} // namespace
