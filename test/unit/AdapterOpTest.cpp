//===- AdapterOpTest.cpp - What each adapter op says it is -----------------===//
//
// Every adapter op answers peft::AdapterOp: the method as PEFT names it, its
// rank and scale, what it adapts, and which operands are its own tensors.
//===----------------------------------------------------------------------===//
#include "dialects/peft/PeftDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

namespace {

constexpr const char *kAdapters = R"mlir(
func.func @adapters(%x: tensor<2x4xf32>, %base: tensor<2x3xf32>, %x8: tensor<2x8xf32>,
                    %base4: tensor<2x4xf32>, %h: tensor<?x8x32xf32>, %g: tensor<32xf32>,
                    %d: tensor<4x32xf32>, %u: tensor<32x2xf32>, %k: tensor<?x17x32xf32>) {
  %a = peft.weight "lora_A" = dense<1.0> : tensor<2x4xf32>
  %b = peft.weight "lora_B" = dense<1.0> : tensor<3x2xf32>
  %lora = peft.lora "first" %x, %base, %a, %b {scale = 2.0 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  %w = peft.weight "fc.weight" = dense<1.0> : tensor<3x4xf32>
  %m = peft.weight "magnitude" = dense<1.0> : tensor<3xf32>
  %dora = peft.dora "second" %x, %lora, %w, %a, %b, %m {scale = 0.5 : f32} : (tensor<2x4xf32>, tensor<2x3xf32>, tensor<3x4xf32>, tensor<2x4xf32>, tensor<3x2xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %w1a = peft.weight "hada_w1_a" = dense<1.0> : tensor<4x2xf32>
  %w1b = peft.weight "hada_w1_b" = dense<1.0> : tensor<2x8xf32>
  %p = peft.factor_product %w1a, %w1b : (tensor<4x2xf32>, tensor<2x8xf32>) -> tensor<4x8xf32>
  %loha = peft.loha_delta %p, %p {scale = 3.0 : f32} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %delta = peft.add_delta "third" %x8, %base4, %loha : (tensor<2x8xf32>, tensor<2x4xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  %l = peft.weight "ia3_l" = dense<2.0> : tensor<32x1xf32>
  %ia3 = peft.ia3 "fourth" %h, %l : (tensor<?x8x32xf32>, tensor<32x1xf32>) -> tensor<?x8x32xf32>
  %ssf = peft.ssf "fifth" %ia3, %g, %g {channel_dim = 2 : i64} : (tensor<?x8x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
  %bottleneck = peft.bottleneck "sixth" %ssf, %d, %u {activation = "identity", groups = 2 : i64, scale = 1.5 : f32} : (tensor<?x8x32xf32>, tensor<4x32xf32>, tensor<32x2xf32>) -> tensor<?x8x32xf32>
  %shift = peft.head_shift "seventh" %k {fold = 1 : i64, frames = 4 : i64, heads = 4 : i64} : (tensor<?x17x32xf32>) -> tensor<?x17x32xf32>
  return
}
)mlir";

struct Expected {
  const char *name, *method;
  int64_t rank;
  double scale;
  bool mapsValue;
  unsigned adaptedOperand, ownOperands;
};

TEST(AdapterOp, EveryAdapterSaysWhatItIs) {
  mlir::MLIRContext context;
  context.loadDialect<peft::PeftDialect, mlir::func::FuncDialect>();
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(kAdapters, &context);
  ASSERT_TRUE(module);
  const Expected expected[] = {
      {"first", "LoRA", 2, 2.0, false, 1, 2},   {"second", "DoRA", 2, 0.5, false, 1, 3},
      {"third", "LoHa", 2, 3.0, false, 1, 1},   {"fourth", "IA3", 0, 1.0, true, 0, 1},
      {"fifth", "SSF", 0, 1.0, true, 0, 2},     {"sixth", "linear", 4, 1.5, true, 0, 2},
      {"seventh", "STDHA", 0, 1.0, true, 0, 0},
  };
  size_t seen = 0;
  module->walk([&](peft::AdapterOp op) {
    ASSERT_LT(seen, std::size(expected));
    const Expected &want = expected[seen++];
    EXPECT_EQ(op.getAdapterName(), want.name);
    EXPECT_EQ(op.getMethod(), want.method) << want.name;
    EXPECT_EQ(op.getAdapterRank(), want.rank) << want.name;
    EXPECT_DOUBLE_EQ(op.getAdapterScale(), want.scale) << want.name;
    EXPECT_EQ(op.mapsValue(), want.mapsValue) << want.name;
    EXPECT_EQ(op.getAdapted(), op->getOperand(want.adaptedOperand)) << want.name;
    EXPECT_EQ(op.getOwnOperands().size(), want.ownOperands) << want.name;
  });
  EXPECT_EQ(seen, std::size(expected));
  // DoRA's own tensors are A, B and the magnitude, not the layer's weight.
  module->walk([&](peft::DoraOp dora) {
    auto own = llvm::cast<peft::AdapterOp>(dora.getOperation()).getOwnOperands();
    EXPECT_EQ(own.front().get(), dora.getLoraA());
    EXPECT_EQ(own.back().get(), dora.getMagnitude());
  });
  // Ops that are not adapters do not answer.
  module->walk([&](peft::WeightOp weight) {
    EXPECT_FALSE(llvm::isa<peft::AdapterOp>(weight.getOperation()));
  });
}

} // namespace
