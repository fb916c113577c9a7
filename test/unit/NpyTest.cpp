//===- NpyTest.cpp - .npy reading and writing -------------------------------===//
#include "support/Npy.h"

#include "TempDir.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace peft;
using peft::testing::TempDir;

namespace {

TEST(Npy, WriteThenReadRoundTrips) {
  TempDir dir;
  for (std::vector<int64_t> shape : {std::vector<int64_t>{2, 3}, {5}, {}}) {
    std::vector<float> values(numElements(shape));
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = 0.5f * i;
    TensorView view{DType::F32, shape, reinterpret_cast<const uint8_t *>(values.data()),
                    values.size() * 4};
    std::string path = dir.file("a.npy");
    ASSERT_FALSE(static_cast<bool>(writeNpy(path, view)));
    auto array = readNpy(path);
    ASSERT_TRUE(static_cast<bool>(array)) << llvm::toString(array.takeError());
    EXPECT_EQ(array->shape, shape);
    EXPECT_EQ(array->dtype, DType::F32);
    ASSERT_EQ(array->bytes.size(), values.size() * 4);
    EXPECT_EQ(std::memcmp(array->bytes.data(), values.data(), array->bytes.size()), 0);
  }
}

TEST(Npy, ReadsWhatNumpyWrites) {
  TempDir dir;
  // np.save of np.array([[1, 2]], dtype=np.int64), byte for byte.
  std::string header = "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }";
  header.append(117 - header.size(), ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + std::string("\x76\x00", 2) + header;
  int64_t data[2] = {1, 2};
  bytes.append(reinterpret_cast<const char *>(data), 16);
  auto array = readNpy(dir.write("n.npy", bytes));
  ASSERT_TRUE(static_cast<bool>(array)) << llvm::toString(array.takeError());
  EXPECT_EQ(array->dtype, DType::I64);
  EXPECT_EQ(array->shape, (std::vector<int64_t>{1, 2}));
}

TEST(Npy, RejectsBadFiles) {
  TempDir dir;
  auto error = [&](const std::string &bytes) {
    auto array = readNpy(dir.write("bad.npy", bytes));
    return array ? std::string() : llvm::toString(array.takeError());
  };
  EXPECT_NE(error("not numpy at all").find("not a .npy file"), std::string::npos);
  std::string header = "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n";
  std::string prefix = std::string("\x93NUMPY\x01\x00", 8);
  prefix += static_cast<char>(header.size());
  prefix += '\0';
  EXPECT_NE(error(prefix + header + "abcd").find("Fortran"), std::string::npos);
  header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n";
  prefix[8] = static_cast<char>(header.size());
  EXPECT_NE(error(prefix + header + "abcd").find("needs 12"), std::string::npos);
  header = "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n";
  prefix[8] = static_cast<char>(header.size());
  EXPECT_NE(error(prefix + header + "abcdefgh").find("unsupported dtype"), std::string::npos);
}

/// A version 1 .npy file with `header` (padded as NumPy pads) and `data`.
static std::string npyBytes(std::string header, const std::string &data) {
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  return bytes + header + data;
}

TEST(Npy, RefusesHeadersNumpyRefuses) {
  TempDir dir;
  auto error = [&](const std::string &header, const std::string &data = "") {
    auto array = readNpy(dir.write("bad.npy", npyBytes(header, data)));
    return array ? std::string() : llvm::toString(array.takeError());
  };
  // A sign was read as part of the number: (-2, 16) became (2, 16).
  EXPECT_NE(error("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 16), }")
                .find("'shape' holds something other than non-negative integers"),
            std::string::npos);
  // 2^62 * 16 * 4 bytes wrapped to 0 and matched an empty file.
  EXPECT_NE(error("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 16), }")
                .find("shape [4611686018427387904, 16] is too large"),
            std::string::npos);
  EXPECT_NE(error("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }")
                .find("non-negative integers"),
            std::string::npos);
  EXPECT_NE(error("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }")
                .find("unexpected key 'extra'"),
            std::string::npos);
  EXPECT_NE(error("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }")
                .find("unexpected key 'descr'"),
            std::string::npos);
  EXPECT_NE(error("{'descr': '<f4', 'shape': (2,), }").find("lacks"), std::string::npos);
  EXPECT_NE(error("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing")
                .find("text after"),
            std::string::npos);
  // NumPy's max_header_size: a 40 KB header overflowed std::regex's stack.
  std::string big = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                    std::string(40000, ' ') + "2,), }";
  std::string bytes = std::string("\x93NUMPY\x02\x00", 8);
  uint32_t size = big.size();
  bytes.append(reinterpret_cast<const char *>(&size), 4);
  auto array = readNpy(dir.write("big.npy", bytes + big + "12345678"));
  ASSERT_FALSE(bool(array));
  std::string message = llvm::toString(array.takeError());
  EXPECT_NE(message.find("longer than 10000, NumPy's limit"), std::string::npos);
  EXPECT_LT(message.size(), 300u);
  // What NumPy writes with double quotes and no trailing comma still reads.
  EXPECT_EQ(error(R"({"descr": "<f4", "fortran_order": False, "shape": (1, 2)})",
                  std::string(8, '\0')),
            "");
}

} // namespace
