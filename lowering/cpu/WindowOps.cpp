//===- WindowOps.cpp - Window ops the CPU kernels take --------------------===//
#include "lowering/cpu/WindowOps.h"

#include "lowering/cpu/KernelBuilding.h"

using namespace mlir;

namespace peft {

/// Adds the coefficient of each dimension of the linear `expr` to
/// `coefficients`; false if it is not Σ dims · constants.
static bool linearCoefficients(AffineExpr expr, SmallVectorImpl<int64_t> &coefficients) {
  if (auto dim = dyn_cast<AffineDimExpr>(expr)) {
    coefficients[dim.getPosition()] += 1;
    return true;
  }
  auto binary = dyn_cast<AffineBinaryOpExpr>(expr);
  if (!binary)
    return false;
  if (binary.getKind() == AffineExprKind::Add)
    return linearCoefficients(binary.getLHS(), coefficients) &&
           linearCoefficients(binary.getRHS(), coefficients);
  auto dim = dyn_cast<AffineDimExpr>(binary.getLHS());
  auto factor = dyn_cast<AffineConstantExpr>(binary.getRHS());
  if (binary.getKind() != AffineExprKind::Mul || !dim || !factor)
    return false;
  coefficients[dim.getPosition()] += factor.getValue();
  return true;
}

std::optional<WindowGemm> matchWindowGemm(linalg::GenericOp op) {
  unsigned loops = op.getNumLoops();
  if (loops < 5 || !isF32MultiplyAccumulate(op))
    return std::nullopt;
  unsigned rank = loops - 4;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  for (unsigned d = 0; d < loops; ++d)
    if ((iterators[d] == utils::IteratorType::parallel) != (d < 3))
      return std::nullopt;
  MLIRContext *context = op.getContext();
  auto dim = [&](unsigned d) { return getAffineDimExpr(d, context); };
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  SmallVector<AffineExpr> weight = {dim(1), dim(3)};
  for (unsigned d = 0; d < rank; ++d)
    weight.push_back(dim(4 + d));
  if (maps[1] != AffineMap::get(loops, 0, weight, context) ||
      maps[2] != AffineMap::get(loops, 0, {dim(0), dim(1), dim(2)}, context) ||
      maps[0].getNumResults() != 3 || maps[0].getResult(0) != dim(0) ||
      maps[0].getResult(1) != dim(3))
    return std::nullopt;
  SmallVector<int64_t> steps(loops, 0);
  if (!linearCoefficients(maps[0].getResult(2), steps) || steps[2] != 1 || steps[0] || steps[1] ||
      steps[3])
    return std::nullopt;
  auto in = cast<ShapedType>(op.getDpsInputs()[0].getType());
  auto w = cast<ShapedType>(op.getDpsInputs()[1].getType());
  auto out = cast<ShapedType>(op.getDpsInits()[0].getType());
  if (!w.hasStaticShape() || in.isDynamicDim(1) || in.isDynamicDim(2) || out.isDynamicDim(1) ||
      out.isDynamicDim(2))
    return std::nullopt;
  WindowGemm gemm{in.getDimSize(1), out.getDimSize(1), out.getDimSize(2), in.getDimSize(2),
                  llvm::to_vector(w.getShape().drop_front(2)), {}};
  // Taps row-major: the last kernel dimension fastest.
  gemm.offsets = {0};
  for (unsigned d = 0; d < rank; ++d) {
    SmallVector<int64_t> next;
    for (int64_t base : gemm.offsets)
      for (int64_t k = 0; k < w.getDimSize(2 + d); ++k)
        next.push_back(base + k * steps[4 + d]);
    gemm.offsets = std::move(next);
  }
  // Every tap of every position must read inside the channel.
  if (gemm.positions - 1 + *llvm::max_element(gemm.offsets) >= gemm.length ||
      llvm::any_of(steps, [](int64_t s) { return s < 0; }))
    return std::nullopt;
  return gemm;
}

std::optional<WindowReduction> matchWindowReduction(linalg::GenericOp op) {
  unsigned loops = op.getNumLoops();
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 || loops < 4 || loops % 2)
    return std::nullopt;
  unsigned rank = (loops - 2) / 2;
  for (Value operand : {op.getDpsInputs()[0], op.getDpsInits()[0]})
    if (!getElementTypeOrSelf(operand.getType()).isF32())
      return std::nullopt;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  for (unsigned d = 0; d < loops; ++d)
    if ((iterators[d] == utils::IteratorType::parallel) != (d < 2 + rank))
      return std::nullopt;
  // The body: one maximumf or addf of the accumulator and the input.
  Block &body = op.getRegion().front();
  if (body.getOperations().size() != 2)
    return std::nullopt;
  Operation &combine = body.front();
  Value in = body.getArgument(0), acc = body.getArgument(2);
  if (!isa<arith::MaximumFOp, arith::AddFOp>(combine) ||
      !((combine.getOperand(0) == in && combine.getOperand(1) == acc) ||
        (combine.getOperand(0) == acc && combine.getOperand(1) == in)) ||
      body.getTerminator()->getOperand(0) != combine.getResult(0))
    return std::nullopt;
  MLIRContext *context = op.getContext();
  auto dim = [&](unsigned d) { return getAffineDimExpr(d, context); };
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  SmallVector<AffineExpr> window, out = {dim(0), dim(1)};
  for (unsigned d = 0; d < rank; ++d) {
    window.push_back(dim(2 + rank + d));
    out.push_back(dim(2 + d));
  }
  if (maps[1] != AffineMap::get(loops, 0, window, context) ||
      maps[2] != AffineMap::get(loops, 0, out, context) || maps[0].getNumResults() != 2 + rank ||
      maps[0].getResult(0) != dim(0) || maps[0].getResult(1) != dim(1))
    return std::nullopt;
  auto inType = cast<ShapedType>(op.getDpsInputs()[0].getType());
  auto outType = cast<ShapedType>(op.getDpsInits()[0].getType());
  auto windowType = cast<ShapedType>(op.getDpsInputs()[1].getType());
  if (!windowType.hasStaticShape())
    return std::nullopt;
  WindowReduction reduction{isa<arith::MaximumFOp>(combine), inType.getDimSize(1), {}, {}, {}, {}, {}};
  int64_t taps = 1;
  for (unsigned d = 0; d < rank; ++d) {
    SmallVector<int64_t> steps(loops, 0);
    if (!linearCoefficients(maps[0].getResult(2 + d), steps))
      return std::nullopt;
    for (unsigned e = 0; e < loops; ++e)
      if (steps[e] != 0 && e != 2 + d && e != 2 + rank + d)
        return std::nullopt;
    if (steps[2 + d] < 1 || steps[2 + rank + d] < 0)
      return std::nullopt;
    reduction.strides.push_back(steps[2 + d]);
    reduction.dilations.push_back(steps[2 + rank + d]);
    reduction.kernel.push_back(windowType.getDimSize(d));
    reduction.inSizes.push_back(inType.getDimSize(2 + d));
    reduction.outSizes.push_back(outType.getDimSize(2 + d));
    taps *= windowType.getDimSize(d);
  }
  if (ShapedType::isDynamic(reduction.channels) || outType.isDynamicDim(1) ||
      llvm::any_of(reduction.inSizes, ShapedType::isDynamic) ||
      llvm::any_of(reduction.outSizes, ShapedType::isDynamic) || taps > WindowReduction::kMaxTaps)
    return std::nullopt;
  // Every window inside the input.
  for (unsigned d = 0; d < rank; ++d)
    if ((reduction.outSizes[d] - 1) * reduction.strides[d] +
            (reduction.kernel[d] - 1) * reduction.dilations[d] >=
        reduction.inSizes[d])
      return std::nullopt;
  return reduction;
}

} // namespace peft
