//===- adapter_config_fuzzer.cpp - Fuzz readAdapterConfig -------------------===//
//
// adapter_config.json comes with a downloaded adapter. Reading it, and then
// deciding which modules it adapts and with what rank and alpha (its regexes
// run over the model's module paths), must report bad configs as errors.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"

#include "frontends/adapters/HfPeftAdapter.h"

// Module paths as the fixtures' models name them: BERT, GPT-2, LLaMA, ViT,
// the CNN, and odd ones (empty, a bare name, digits-only layers).
static const char *const kModulePaths[] = {
    "bert.encoder.layer.0.attention.self.query",
    "bert.encoder.layer.11.output.dense",
    "transformer.h.1.attn.c_attn",
    "model.layers.0.self_attn.q_proj",
    "model.layers.31.mlp.down_proj",
    "vit.embeddings.patch_embeddings.projection",
    "conv1",
    "classifier",
    "lm_head",
    "",
    "a.0.b.1.c.2",
};

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string path = peft::fuzz::writeInput(data, size, "adapter_config.json");
  auto config = peft::readAdapterConfig(path);
  if (!config) {
    llvm::consumeError(config.takeError());
    return 0;
  }
  for (const char *module : kModulePaths) {
    (void)config->targets(module);
    (void)config->rankFor(module);
    (void)config->alphaFor(module);
    (void)config->scaleFor(module);
    (void)config->isFeedforward(module);
  }
  return 0;
}
