//===- TensorTest.cpp - Sizes of tensors read from files --------------------===//
#include "support/Tensor.h"

#include <gtest/gtest.h>

using namespace peft;

namespace {

TEST(Tensor, CheckedByteSizeNeverWraps) {
  EXPECT_EQ(checkedByteSize({2, 3}, DType::F32), 24u);
  EXPECT_EQ(checkedByteSize({}, DType::F64), 8u);
  EXPECT_EQ(checkedByteSize({0, int64_t(1) << 62}, DType::F32), 0u); // Empty is empty.
  // [2^62, 4] of F32 is 2^66 bytes: it wrapped to 0 and matched an empty file.
  EXPECT_EQ(checkedByteSize({int64_t(1) << 62, 4}, DType::F32), std::nullopt);
  // Two factors each under the limit whose product wraps past 2^64.
  EXPECT_EQ(checkedByteSize({int64_t(1) << 40, int64_t(1) << 40, 4}, DType::F32), std::nullopt);
  EXPECT_EQ(checkedByteSize({-2, 16}, DType::F32), std::nullopt);
  EXPECT_EQ(checkedByteSize({int64_t(1) << 46}, DType::F32), kMaxTensorBytes);
  EXPECT_EQ(checkedByteSize({(int64_t(1) << 46) + 1}, DType::F32), std::nullopt);
}

} // namespace
