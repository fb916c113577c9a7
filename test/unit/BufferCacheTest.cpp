//===- BufferCacheTest.cpp - The model library's buffer cache -------------===//
//
// What memref.alloc and memref.dealloc lower to in a CPU model
// (runtime/cpu/model_support.c): freed blocks are kept per size class and
// handed out again, however many a run frees, so that a forward pass does
// not fault its buffers in afresh every run.
//===----------------------------------------------------------------------===//
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

extern "C" void *_mlir_memref_to_llvm_alloc(size_t size);
extern "C" void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t size);
extern "C" void _mlir_memref_to_llvm_free(void *pointer);

namespace {

TEST(BufferCache, ReusesEveryBlockOfARun) {
  // More blocks than the first cache (256 slots) held: a decoder's run.
  std::vector<void *> first;
  for (int i = 0; i < 1000; ++i) {
    void *block = _mlir_memref_to_llvm_alloc(32768 + 64 * (i % 3));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % 64, 0u);
    std::memset(block, i & 0xff, 32768);
    first.push_back(block);
  }
  for (void *block : first)
    _mlir_memref_to_llvm_free(block);
  std::set<void *> freed(first.begin(), first.end());
  std::vector<void *> second;
  for (int i = 0; i < 1000; ++i) {
    void *block = _mlir_memref_to_llvm_alloc(32768 + 64 * (i % 3));
    EXPECT_TRUE(freed.count(block)) << "block " << i << " was not reused";
    second.push_back(block);
  }
  EXPECT_EQ(std::set<void *>(second.begin(), second.end()).size(), second.size());
  for (void *block : second)
    _mlir_memref_to_llvm_free(block);
}

TEST(BufferCache, ClassesDoNotMix) {
  // 1 MiB and 1 MiB + 1 fall in classes 1/8 apart; a block of one is never
  // handed out for the other, and a block fits its request.
  void *small = _mlir_memref_to_llvm_alloc(1 << 20);
  _mlir_memref_to_llvm_free(small);
  void *large = _mlir_memref_to_llvm_alloc((1 << 20) + 1);
  EXPECT_NE(large, small);
  std::memset(large, 1, (1 << 20) + 1);
  EXPECT_EQ(_mlir_memref_to_llvm_alloc(1 << 20), small);
  _mlir_memref_to_llvm_free(small);
  _mlir_memref_to_llvm_free(large);
  // A block of nothing is not cached; small sizes round to cache lines.
  void *empty = _mlir_memref_to_llvm_alloc(0);
  ASSERT_NE(empty, nullptr);
  _mlir_memref_to_llvm_free(empty);
  for (size_t size : {1, 64, 65, 511, 512, 513}) {
    void *block = _mlir_memref_to_llvm_alloc(size);
    ASSERT_NE(block, nullptr) << size;
    std::memset(block, 0, size);
    _mlir_memref_to_llvm_free(block);
    EXPECT_EQ(_mlir_memref_to_llvm_alloc(size), block) << size;
    _mlir_memref_to_llvm_free(block);
  }
}

TEST(BufferCache, WideAlignmentsBypassTheCache) {
  void *block = _mlir_memref_to_llvm_aligned_alloc(4096, 10000);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % 4096, 0u);
  std::memset(block, 0, 10000);
  _mlir_memref_to_llvm_free(block);
  _mlir_memref_to_llvm_free(nullptr);
}

} // namespace
