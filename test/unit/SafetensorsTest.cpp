//===- SafetensorsTest.cpp - The safetensors reader's validation ------------===//
#include "support/Safetensors.h"

#include "TempDir.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace peft;
using peft::testing::TempDir;

namespace {

/// A safetensors file made of `header` (JSON, unpadded) and `data` bytes.
std::string makeFile(const std::string &header, const std::string &data,
                     int64_t declaredSize = -1) {
  uint64_t size = declaredSize >= 0 ? declaredSize : header.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &size, 8);
  return bytes + header + data;
}

std::string floats(std::initializer_list<float> values) {
  return std::string(reinterpret_cast<const char *>(values.begin()), values.size() * 4);
}

std::string openError(const TempDir &dir, const std::string &contents) {
  auto file = SafetensorsFile::open(dir.write("t.safetensors", contents));
  if (file)
    return "";
  return llvm::toString(file.takeError());
}

TEST(Safetensors, ReadsTensorsAndMetadata) {
  TempDir dir;
  std::string header = R"({"__metadata__":{"format":"pt"},)"
                       R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F16","shape":[1],"data_offsets":[8,10]}})";
  std::string half("\x00\x3c", 2); // 1.0 in F16
  auto file = SafetensorsFile::open(dir.write("t.safetensors",
                                              makeFile(header, floats({1.5f, -2}) + half)));
  ASSERT_TRUE(static_cast<bool>(file)) << llvm::toString(file.takeError());
  const TensorView *a = (*file)->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, std::vector<int64_t>{2});
  EXPECT_EQ(a->toFloat32(), (std::vector<float>{1.5f, -2}));
  EXPECT_EQ((*file)->find("b")->toFloat32(), std::vector<float>{1.0f});
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  EXPECT_EQ((*file)->find("missing"), nullptr);
}

TEST(Safetensors, WritableMappingNeverChangesTheFile) {
  // 32 KiB of data: large enough that LLVM maps the file rather than reads it.
  TempDir dir;
  std::string header = R"({"t":{"dtype":"F32","shape":[8192],"data_offsets":[0,32768]}})";
  header += std::string(-header.size() % 8, ' '); // Aligned data, as writers pad it.
  std::string path = dir.write("t.safetensors", makeFile(header, std::string(32768, '\0')));
  auto writable = SafetensorsFile::open(path, /*writable=*/true);
  ASSERT_TRUE(static_cast<bool>(writable)) << llvm::toString(writable.takeError());
  const TensorView *t = (*writable)->find("t");
  auto *data = static_cast<float *>((*writable)->writableBytes(t->data, t->byteSize));
  ASSERT_NE(data, nullptr);
  data[5000] = 2.5f;
  EXPECT_EQ(t->toFloat32()[5000], 2.5f);
  // Past the mapping, or a read-only one: nothing to write.
  EXPECT_EQ((*writable)->writableBytes(t->data, t->byteSize + 1), nullptr);
  float elsewhere = 0;
  EXPECT_EQ((*writable)->writableBytes(&elsewhere, 4), nullptr);
  auto readOnly = SafetensorsFile::open(path);
  ASSERT_TRUE(static_cast<bool>(readOnly)) << llvm::toString(readOnly.takeError());
  const TensorView *again = (*readOnly)->find("t");
  EXPECT_EQ((*readOnly)->writableBytes(again->data, again->byteSize), nullptr);
  EXPECT_EQ(again->toFloat32()[5000], 0.0f); // The file is as written.
}

TEST(Safetensors, AcceptsEmptyAndScalarTensors) {
  TempDir dir;
  std::string header = R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},)"
                       R"("s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  auto file = SafetensorsFile::open(dir.write("t.safetensors", makeFile(header, floats({7}))));
  ASSERT_TRUE(static_cast<bool>(file)) << llvm::toString(file.takeError());
  EXPECT_EQ((*file)->find("s")->toFloat32(), std::vector<float>{7});
  EXPECT_EQ((*file)->find("e")->numElements(), 0);
}

TEST(Safetensors, ConvertsBf16) {
  TempDir dir;
  std::string header = R"({"x":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})";
  std::string bf16("\xc0\x3f", 2); // 1.5 in BF16
  auto file = SafetensorsFile::open(dir.write("t.safetensors", makeFile(header, bf16)));
  ASSERT_TRUE(static_cast<bool>(file));
  EXPECT_EQ((*file)->find("x")->toFloat32(), std::vector<float>{1.5f});
}

TEST(Safetensors, RejectsMalformedFiles) {
  TempDir dir;
  std::string one = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  EXPECT_NE(openError(dir, "abc").find("too short"), std::string::npos);
  EXPECT_NE(openError(dir, makeFile(one, floats({1}), 200000000)).find("exceeds the limit"),
            std::string::npos);
  EXPECT_NE(openError(dir, makeFile(one, floats({1}), 1000)).find("runs past the end"),
            std::string::npos);
  EXPECT_NE(openError(dir, makeFile("[1]", "")).find("does not start with '{'"),
            std::string::npos);
  EXPECT_NE(openError(dir, makeFile("{oops", "")).find("not a JSON object"), std::string::npos);
  // Data shorter than the header says: the tensors no longer tile the buffer.
  EXPECT_NE(openError(dir, makeFile(one, floats({1, 2}))).find("cover 4 bytes"),
            std::string::npos);
}

TEST(Safetensors, RejectsInconsistentEntries) {
  TempDir dir;
  auto error = [&](const std::string &header, const std::string &data) {
    return openError(dir, makeFile(header, data));
  };
  EXPECT_NE(error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", floats({1}))
                .find("tensor 'a': holds 4 bytes, but F32 [2] needs 8"),
            std::string::npos);
  EXPECT_NE(error(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", floats({1}))
                .find("unknown dtype 'Q7'"),
            std::string::npos);
  EXPECT_NE(error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", floats({1, 2}))
                .find("tensor 'a' starts at byte 4, expected 0"),
            std::string::npos);
  // Overlapping tensors.
  EXPECT_NE(error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  floats({1, 2}))
                .find("must tile"),
            std::string::npos);
  EXPECT_NE(error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                  R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  floats({1, 2}))
                .find("'a' appears twice"),
            std::string::npos);
  EXPECT_NE(error(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", floats({1}))
                .find("not a non-negative integer"),
            std::string::npos);
  // [2^62, 4] F32 is 2^66 bytes: its size wrapped to 0 and matched [0, 0].
  EXPECT_NE(error(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})",
                  "")
                .find("shape holds the size 4611686018427387904, which is too large"),
            std::string::npos);
  EXPECT_NE(error(R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],)"
                  R"("data_offsets":[0,0]}})",
                  "")
                .find("shape [1099511627776, 1099511627776] is too large"),
            std::string::npos);
  EXPECT_NE(error(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})",
                  "")
                .find("is too large"),
            std::string::npos);
}

TEST(Safetensors, WriteThenReadRoundTrips) {
  TempDir dir;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  int64_t b = 42;
  std::map<std::string, TensorView> tensors = {
      {"a", {DType::F32, {2, 3}, reinterpret_cast<const uint8_t *>(a.data()), 24}},
      {"b", {DType::I64, {}, reinterpret_cast<const uint8_t *>(&b), 8}}};
  std::string path = dir.file("out.safetensors");
  ASSERT_FALSE(static_cast<bool>(writeSafetensors(path, tensors)));
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(static_cast<bool>(file)) << llvm::toString(file.takeError());
  EXPECT_EQ((*file)->find("a")->toFloat32(), a);
  EXPECT_EQ((*file)->find("a")->shape, (std::vector<int64_t>{2, 3}));
  int64_t readBack;
  std::memcpy(&readBack, (*file)->find("b")->data, 8);
  EXPECT_EQ(readBack, 42);
}

} // namespace
