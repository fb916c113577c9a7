//===- SlotRunsTest.cpp - The order --mode multi's slot GEMMs run in ---------===//
//
// peft_slot_runs (runtime/cpu/model_support.c), which the CPU's slot GEMM
// kernels call with their index memref and a buffer: every element of a
// slot >= 0 in exactly one run, runs by slot and then position, consecutive
// elements of a slot merged only when the rows allow it.
//===----------------------------------------------------------------------===//
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

extern "C" int64_t peft_slot_runs(int64_t *indexAllocated, int64_t *index, int64_t indexOffset,
                                  int64_t indexSize, int64_t indexStride, int64_t first,
                                  int64_t last, int64_t mergeable, int64_t *runsAllocated,
                                  int64_t *runs, int64_t runsOffset, int64_t runsSize,
                                  int64_t runsStride);

namespace {

struct SlotRun {
  int64_t first, count;
  bool operator==(const SlotRun &other) const { return first == other.first && count == other.count; }
};

/// The runs of elements [first, last) of `slots`, read through a strided
/// index (every `stride`-th value after an offset of 3) as MLIR passes it.
std::vector<SlotRun> slotRuns(const std::vector<int64_t> &slots, int64_t first, int64_t last,
                          bool mergeable, int64_t stride = 1) {
  std::vector<int64_t> strided(3 + slots.size() * stride, 99);
  for (size_t e = 0; e < slots.size(); ++e)
    strided[3 + e * stride] = slots[e];
  int64_t elements = last - first;
  std::vector<int64_t> buffer(4 * elements + 1, -7);
  int64_t found =
      peft_slot_runs(strided.data(), strided.data(), 3, int64_t(slots.size()), stride, first, last,
                     mergeable, buffer.data(), buffer.data(), 0, int64_t(buffer.size()), 1);
  std::vector<SlotRun> runs;
  for (int64_t r = 0; r < found; ++r)
    runs.push_back({buffer[2 * r], buffer[2 * r + 1]});
  return runs;
}

TEST(SlotRuns, GroupsEachSlotsElementsWhereverTheyAre) {
  // Slots 1 and 0 interleaved, a -1, a run of 2s.
  std::vector<int64_t> slots = {1, 0, 1, -1, 2, 2, 0, 1, 1};
  EXPECT_EQ(slotRuns(slots, 0, 9, true),
            (std::vector<SlotRun>{{1, 1}, {6, 1}, {0, 1}, {2, 1}, {7, 2}, {4, 2}}));
  // Rows that do not lie contiguous: one element per run, still by slot.
  EXPECT_EQ(slotRuns(slots, 0, 9, false),
            (std::vector<SlotRun>{{1, 1}, {6, 1}, {0, 1}, {2, 1}, {7, 1}, {8, 1}, {4, 1}, {5, 1}}));
  // A thread's part of the batch, through a strided index.
  EXPECT_EQ(slotRuns(slots, 2, 8, true, /*stride=*/2),
            (std::vector<SlotRun>{{6, 1}, {2, 1}, {7, 1}, {4, 2}}));
  EXPECT_TRUE(slotRuns(slots, 3, 3, true).empty());
  EXPECT_TRUE(slotRuns({-1, -1}, 0, 2, true).empty());
}

TEST(SlotRuns, CoversEveryElementOnceInSlotOrder) {
  std::mt19937 random(7);
  for (int64_t size : {1, 2, 5, 33, 64, 257}) {
    std::vector<int64_t> slots(size);
    for (int64_t &slot : slots)
      slot = int64_t(random() % 9) - 1;
    // Sorted runs of a few slots too (long runs to merge).
    if (size == 64)
      for (int64_t e = 0; e < size; ++e)
        slots[e] = e / 20;
    std::vector<SlotRun> runs = slotRuns(slots, 0, size, true);
    std::vector<int> covered(size, 0);
    int64_t lastSlot = -1, lastEnd = -1;
    for (const SlotRun &run : runs) {
      int64_t slot = slots[run.first];
      ASSERT_GE(slot, 0);
      ASSERT_GE(run.count, 1);
      for (int64_t e = run.first; e < run.first + run.count; ++e) {
        ASSERT_EQ(slots[e], slot) << "size " << size << " element " << e;
        ++covered[e];
      }
      // By slot, then position; a run ends where its slot's next element
      // is not the next element of the batch.
      ASSERT_TRUE(slot > lastSlot || (slot == lastSlot && run.first > lastEnd)) << size;
      lastSlot = slot;
      lastEnd = run.first + run.count;
      if (lastEnd < size)
        ASSERT_NE(slots[lastEnd], slot) << "size " << size << ": an unmerged run";
    }
    for (int64_t e = 0; e < size; ++e)
      EXPECT_EQ(covered[e], slots[e] >= 0 ? 1 : 0) << "size " << size << " element " << e;
  }
}

} // namespace
