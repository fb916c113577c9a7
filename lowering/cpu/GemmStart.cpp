//===- GemmStart.cpp - The CPU GEMM kernels' starts --------------------===//
#include "lowering/cpu/GemmStart.h"

#include "lowering/cpu/KernelBuilding.h"
#include "lowering/cpu/Passes.h"
#include "lowering/cpu/WindowOps.h"


using namespace mlir;

namespace peft {

bool startsGemmKernel(Operation *op) {
  if (op->getNumResults() != 1 || !op->getResult(0).hasOneUse())
    return false;
  OpOperand &use = *op->getResult(0).getUses().begin();
  auto gemm = dyn_cast<linalg::GenericOp>(use.getOwner());
  if (!gemm || !gemm.isDpsInit(&use))
    return false;
  // Panel GEMMs: out[M, N], a bias per column. Window GEMMs: out[N, O, P],
  // a bias per output channel.
  if (gemm->hasAttr(kPanelGemmAttr))
    return matchGemmStart(op, 2, 1).kind != GemmStart::Loaded;
  return matchWindowGemm(gemm) && matchGemmStart(op, 3, 1).kind != GemmStart::Loaded;
}

std::string startSuffix(GemmStart::Kind kind) {
  switch (kind) {
  case GemmStart::Loaded:
    return "";
  case GemmStart::Zeros:
    return "_from_zero";
  case GemmStart::Bias:
    return "_from_bias";
  }
  llvm_unreachable("unknown GEMM start");
}

} // namespace peft
