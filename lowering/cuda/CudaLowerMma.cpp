//===- CudaLowerMma.cpp - bf16 mma.sync to NVVM ----------------------------===//
//
// Upstream's nvgpu-to-nvvm lowering deduces no PTX type for bf16 operands of
// nvgpu.mma.sync (it knows f16, tf32, f64 and the integers), while NVVM's
// mma.sync and PTX have m16n8k16 bf16 with f32 accumulators since sm_80.
// This pass lowers those directly; the f16 ones stay for the upstream pass.
//===----------------------------------------------------------------------===//
#include "lowering/cuda/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace peft {
#define GEN_PASS_DEF_CUDALOWERMMA
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

/// The 32-bit registers of a fragment of bf16 pairs (vector<Rx2xbf16>): row
/// r is register r, its element 0 in the low half.
static SmallVector<Value> registersOf(OpBuilder &b, Location loc, Value fragment) {
  SmallVector<Value> registers;
  auto word = VectorType::get({1}, b.getI32Type());
  for (int64_t r = 0; r < cast<VectorType>(fragment.getType()).getDimSize(0); ++r) {
    Value pair = vector::ExtractOp::create(b, loc, fragment, ArrayRef<int64_t>{r});
    Value bits = vector::BitCastOp::create(b, loc, word, pair);
    registers.push_back(vector::ExtractOp::create(b, loc, bits, ArrayRef<int64_t>{0}));
  }
  return registers;
}

static LogicalResult lowerBf16Mma(nvgpu::MmaSyncOp mma) {
  auto aType = cast<VectorType>(mma.getMatrixA().getType());
  auto cType = cast<VectorType>(mma.getMatrixC().getType());
  if (!aType.getElementType().isBF16())
    return success();
  SmallVector<int64_t> shape = llvm::to_vector(mma.getMmaShapeAsArray());
  if (shape != ArrayRef<int64_t>{16, 8, 16} || !cType.getElementType().isF32())
    return mma.emitError("peft-cuda-lower-mma: bf16 mma.sync must be m16n8k16 into f32");
  OpBuilder b(mma);
  Location loc = mma.getLoc();
  SmallVector<Value> sums;
  for (int64_t r = 0; r < cType.getDimSize(0); ++r)
    for (int64_t e = 0; e < cType.getDimSize(1); ++e)
      sums.push_back(vector::ExtractOp::create(b, loc, mma.getMatrixC(), ArrayRef<int64_t>{r, e}));
  Type f32 = b.getF32Type();
  auto resultType = LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  SmallVector<Value> a = registersOf(b, loc, mma.getMatrixA());
  SmallVector<Value> bRegisters = registersOf(b, loc, mma.getMatrixB());
  auto product = NVVM::MmaOp::create(
      b, loc, resultType, a, bRegisters, sums, shape, /*b1Op=*/std::nullopt,
      /*intOverflow=*/std::nullopt,
      std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16, NVVM::MMATypes::bf16},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row, NVVM::MMALayout::col});
  SmallVector<Value> results;
  for (int64_t i = 0; i < 4; ++i)
    results.push_back(LLVM::ExtractValueOp::create(b, loc, product, ArrayRef<int64_t>{i}));
  mma.replaceAllUsesWith(vector::FromElementsOp::create(b, loc, cType, results).getResult());
  mma.erase();
  return success();
}

struct CudaLowerMmaPass : peft::impl::CudaLowerMmaBase<CudaLowerMmaPass> {
  void runOnOperation() override {
    WalkResult result = getOperation().walk([](nvgpu::MmaSyncOp mma) {
      return failed(lowerBf16Mma(mma)) ? WalkResult::interrupt() : WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
