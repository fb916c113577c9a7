//===- ManifestTest.cpp - Packed weights in the manifest and the runtime ----===//
#include "runtime/Manifest.h"
#include "runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>

using namespace peft;

namespace {

TEST(PanelLayout, PacksBothOrientationsWithZeroPadding) {
  // W [N = 5, K = 3]: W[n][k] = 10 n + k; panels of 2 channels.
  std::vector<float> w(15);
  for (int n = 0; n < 5; ++n)
    for (int k = 0; k < 3; ++k)
      w[n * 3 + k] = 10 * n + k;
  PanelLayout layout{"w", 2, /*transposed=*/true, {5, 3}};
  ASSERT_EQ(layout.packedShape(), (std::vector<int64_t>{3, 3, 2}));
  std::vector<float> packed(18, -1);
  packPanels(w.data(), layout, packed.data());
  for (int p = 0; p < 3; ++p)
    for (int k = 0; k < 3; ++k)
      for (int j = 0; j < 2; ++j) {
        int n = p * 2 + j;
        EXPECT_EQ(packed[(p * 3 + k) * 2 + j], n < 5 ? 10 * n + k : 0) << p << k << j;
      }
  // The same matrix stored [K, N] packs the same.
  std::vector<float> wt(15);
  for (int n = 0; n < 5; ++n)
    for (int k = 0; k < 3; ++k)
      wt[k * 5 + n] = w[n * 3 + k];
  std::vector<float> packedT(18, -1);
  packPanels(wt.data(), PanelLayout{"w", 2, false, {3, 5}}, packedT.data());
  EXPECT_EQ(packed, packedT);
}

Manifest packedManifest() {
  Manifest manifest;
  manifest.library = "model.so";
  manifest.entry = "forward_packed";
  manifest.weightsFile = "weights.safetensors";
  ManifestTensor weight{"fc.weight", "F32", {3, 3, 2}};
  weight.panels = PanelLayout{"fc.weight", 2, true, {5, 3}};
  manifest.weights.push_back(weight);
  return manifest;
}

TEST(PanelLayout, RoundTripsThroughTheManifest) {
  Manifest manifest = packedManifest(), read;
  std::string error;
  ASSERT_TRUE(read.fromJson(manifest.toJson(), error)) << error;
  ASSERT_TRUE(read.weights[0].panels.has_value());
  EXPECT_EQ(read.weights[0].panels->sourceShape, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(read.weights[0].panels->tile, 2);
  EXPECT_TRUE(read.weights[0].panels->transposed);
  EXPECT_EQ(read.weights[0].sourceName(), "fc.weight");
}

TEST(PanelLayout, RefusesALayoutThatDoesNotFitTheWeight) {
  Manifest manifest = packedManifest(), read;
  manifest.weights[0].panels->sourceShape = {7, 3}; // 4 panels, not 3.
  std::string error;
  EXPECT_FALSE(read.fromJson(manifest.toJson(), error));
  EXPECT_EQ(error, "'weights[0].panels' does not describe this F32 weight's shape");
  manifest = packedManifest();
  manifest.weights[0].panels->tile = 0;
  EXPECT_FALSE(read.fromJson(manifest.toJson(), error));
  EXPECT_EQ(error, "'weights[0].panels.tile' is not an integer in [1, 1024]");
}

/// Two adapter slots of rank capacity 4 on one layer (in 8, out 6), with
/// IA3 vectors on its input and output.
Manifest slottedManifest() {
  Manifest manifest = packedManifest();
  manifest.weights = {{"s.a", "F32", {2, 8, 4}},    {"s.b", "F32", {2, 4, 6}},
                      {"s.scales", "F32", {2}},     {"s.bias", "F32", {2, 6}},
                      {"s.ia3_in", "F32", {2, 8}}, {"s.ia3_out", "F32", {2, 6}}};
  manifest.slots = ManifestSlots{
      2, 4, {"first", ""}, {{"fc", "s.a", "s.b", "s.scales", "s.bias", "s.ia3_in", "s.ia3_out"}}};
  return manifest;
}

TEST(ManifestSlots, RoundTripThroughTheManifest) {
  Manifest manifest = slottedManifest(), read;
  std::string error;
  ASSERT_TRUE(read.fromJson(manifest.toJson(), error)) << error;
  ASSERT_TRUE(read.slots.has_value());
  EXPECT_EQ(read.slots->count, 2);
  EXPECT_EQ(read.slots->capacity, 4);
  EXPECT_EQ(read.slots->filled, (std::vector<std::string>{"first", ""}));
  ASSERT_EQ(read.slots->layers.size(), 1u);
  EXPECT_EQ(read.slots->layers[0].module, "fc");
  EXPECT_EQ(read.slots->layers[0].loraBias, "s.bias");
  EXPECT_EQ(read.slots->layers[0].ia3In, "s.ia3_in");
  EXPECT_EQ(read.slots->layers[0].ia3Out, "s.ia3_out");
}

TEST(ManifestSlots, RefusesWeightsNotShapedAsTheSlots) {
  Manifest manifest = slottedManifest(), read;
  manifest.weights[0].shape = {2, 8, 5}; // Capacity 5, not 4.
  std::string error;
  EXPECT_FALSE(read.fromJson(manifest.toJson(), error));
  EXPECT_EQ(error, "'adapter_slots.layers[0]' does not name F32 weights shaped as the slots");
  manifest = slottedManifest();
  manifest.weights[4].shape = {2, 6}; // IA3 on the input: 8 features, not 6.
  EXPECT_FALSE(read.fromJson(manifest.toJson(), error));
  EXPECT_EQ(error, "'adapter_slots.layers[0]' does not name F32 weights shaped as the slots");
  manifest = slottedManifest();
  manifest.slots->filled = {"first"};
  EXPECT_FALSE(read.fromJson(manifest.toJson(), error));
  EXPECT_EQ(error, "'adapter_slots.filled' is not a name (or \"\") per slot");
}

TEST(ManifestSlots, DoraSlotsNameTheLayerWeight) {
  Manifest manifest = slottedManifest(), read;
  manifest.weights.push_back({"s.dora", "F32", {2, 6}});
  manifest.weights.push_back({"fc.weight", "F32", {6, 8}});
  ManifestSlots::Layer &layer = manifest.slots->layers[0];
  layer.doraScales = "s.dora";
  layer.weight = "fc.weight";
  std::string error;
  ASSERT_TRUE(read.fromJson(manifest.toJson(), error)) << error;
  EXPECT_EQ(read.slots->layers[0].doraScales, "s.dora");
  EXPECT_EQ(read.slots->layers[0].weight, "fc.weight");
  EXPECT_FALSE(read.slots->layers[0].weightInOut);
  // Stored [in, out] (GPT-2's Conv1D) only when the manifest says so.
  layer.weightInOut = true;
  EXPECT_FALSE(read.fromJson(manifest.toJson(), error));
  EXPECT_EQ(error, "'adapter_slots.layers[0]' does not name F32 weights shaped as the slots");
  manifest.weights.back().shape = {8, 6};
  ASSERT_TRUE(read.fromJson(manifest.toJson(), error)) << error;
  EXPECT_TRUE(read.slots->layers[0].weightInOut);
}

TEST(ManifestSlots, DoraSlotsOfAHalfLayerNameNoWeight) {
  // A layer kept in f16 or bf16: its DoRA slots work for compiled-in
  // adapters, and the runtime, finding no F32 weight named, refuses to load one.
  Manifest manifest = slottedManifest(), read;
  manifest.weights.push_back({"s.dora", "F32", {2, 6}});
  manifest.slots->layers[0].doraScales = "s.dora";
  std::string error;
  ASSERT_TRUE(read.fromJson(manifest.toJson(), error)) << error;
  EXPECT_EQ(read.slots->layers[0].doraScales, "s.dora");
  EXPECT_EQ(read.slots->layers[0].weight, "");
}

TEST(ThreadPool, RunsEveryIndexOnceForEveryThreadCount) {
  for (int threads : {1, 2, 3, 7}) {
    ASSERT_EQ(setThreadCount(threads), threads);
    EXPECT_EQ(threadCount(), threads);
    for (int64_t count : {1, 2, 5, 100}) {
      std::vector<std::atomic<int>> hits(count);
      parallelFor(
          [](void *context, int64_t begin, int64_t end) {
            auto &seen = *static_cast<std::vector<std::atomic<int>> *>(context);
            for (int64_t i = begin; i < end; ++i)
              ++seen[i];
          },
          &hits, count);
      for (int64_t i = 0; i < count; ++i)
        EXPECT_EQ(hits[i], 1) << threads << " threads, " << count << " tasks, index " << i;
    }
  }
  setThreadCount(0);
}

} // namespace
