//===- CpuLowerWindowReductions.cpp - Pooling windows in vectors ------------===//
//
// The kernel of a pooling window's reduction (WindowOps.h), generated once
// per shape, over a run [first, last) of output rows (n, c, y... but the
// last spatial dimension):
//
//   for row in first..last:
//     for x0 in 0.. step vectorWidth:        // while a vector's reads stay in the row
//       acc = out[row, x0:x0+vw]
//       per tap: acc = acc max / + in[window row, x0·s + k·dil : ... step s]
//         (stride 1: one load; stride s: s·vw consecutive elements, every
//         s-th taken by a shuffle)
//     the rest of the row: scalar
//
// The taps are visited in the generic's order, so results are the loops'.
//===----------------------------------------------------------------------===//
#include "lowering/cpu/Passes.h"

#include "lowering/cpu/KernelBuilding.h"
#include "lowering/cpu/ParallelCall.h"
#include "lowering/cpu/WindowOps.h"

namespace peft {
#define GEN_PASS_DEF_CPULOWERWINDOWREDUCTIONS
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// Builds one kernel's body: (in [N, C, in...], out [N, C, out...], first, last).
class ReductionKernelBuilder {
public:
  ReductionKernelBuilder(OpBuilder &builder, Location loc, const WindowReduction &shape,
                         int64_t vectorWidth)
      : b(builder), loc(loc), shape(shape), rank(shape.kernel.size()), vectorWidth(vectorWidth) {
    // Each tap's offsets, row-major over the kernel.
    taps = {{}};
    for (int64_t d = 0; d < rank; ++d) {
      SmallVector<SmallVector<int64_t>, 0> next;
      for (const SmallVector<int64_t> &tap : taps)
        for (int64_t k = 0; k < shape.kernel[d]; ++k) {
          next.push_back(tap);
          next.back().push_back(k * shape.dilations[d]);
        }
      taps = std::move(next);
    }
  }

  void build(Value input, Value output, Value first, Value last) {
    in = input;
    out = output;
    auto rows = scf::ForOp::create(b, loc, first, last, index(1));
    b.setInsertionPointToStart(rows.getBody());
    // The row's position, the innermost outer dimension fastest.
    SmallVector<Value> position(rank - 1);
    Value rest = rows.getInductionVar();
    for (int64_t d = rank - 1; d-- > 0;) {
      position[d] = arith::RemUIOp::create(b, loc, rest, index(shape.outSizes[d]));
      rest = arith::DivUIOp::create(b, loc, rest, index(shape.outSizes[d]));
    }
    channel = arith::RemUIOp::create(b, loc, rest, index(shape.channels));
    image = arith::DivUIOp::create(b, loc, rest, index(shape.channels));
    for (int64_t d = 0; d + 1 < rank; ++d) {
      outRow.push_back(position[d]);
      inRow.push_back(arith::MulIOp::create(b, loc, position[d], index(shape.strides[d])));
    }
    // Vectors whose widest read, s·vw elements from x0·s + the last tap,
    // stays in the input row.
    int64_t s = shape.strides.back(), width = shape.inSizes.back();
    int64_t reach = (shape.kernel.back() - 1) * shape.dilations.back() + s * vectorWidth;
    int64_t vectors = width < reach ? 0 : std::min(shape.outSizes.back() / vectorWidth,
                                                   (width - reach) / (s * vectorWidth) + 1);
    if (vectors > 0) {
      auto columns = scf::ForOp::create(b, loc, index(0), index(vectors * vectorWidth),
                                        index(vectorWidth));
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(columns.getBody());
      reduceAt(columns.getInductionVar(), vectorWidth);
    }
    if (vectors * vectorWidth < shape.outSizes.back()) {
      auto columns = scf::ForOp::create(b, loc, index(vectors * vectorWidth),
                                        index(shape.outSizes.back()), index(1));
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(columns.getBody());
      reduceAt(columns.getInductionVar(), 1);
    }
    b.setInsertionPointAfter(rows);
  }

private:
  Value index(int64_t value) { return arith::ConstantIndexOp::create(b, loc, value); }

  Value combine(Value acc, Value value) {
    if (shape.isMax)
      return arith::MaximumFOp::create(b, loc, acc, value);
    return arith::AddFOp::create(b, loc, acc, value);
  }

  /// out[row, x0 : x0 + lanes] over every tap; one lane is scalar.
  void reduceAt(Value x0, int64_t lanes) {
    SmallVector<Value> outIndices = {image, channel};
    llvm::append_range(outIndices, outRow);
    outIndices.push_back(x0);
    int64_t s = shape.strides.back();
    auto vectorOf = [&](int64_t width) { return VectorType::get({width}, b.getF32Type()); };
    Value acc = lanes == 1 ? memref::LoadOp::create(b, loc, out, outIndices).getResult()
                           : vector::LoadOp::create(b, loc, vectorOf(lanes), out, outIndices)
                                 .getResult();
    Value column = arith::MulIOp::create(b, loc, x0, index(s));
    SmallVector<int64_t> every;
    for (int64_t lane = 0; lane < lanes; ++lane)
      every.push_back(lane * s);
    for (const SmallVector<int64_t> &tap : taps) {
      SmallVector<Value> indices = {image, channel};
      for (int64_t d = 0; d + 1 < rank; ++d)
        indices.push_back(arith::AddIOp::create(b, loc, inRow[d], index(tap[d])));
      indices.push_back(arith::AddIOp::create(b, loc, column, index(tap.back())));
      Value value;
      if (lanes == 1) {
        value = memref::LoadOp::create(b, loc, in, indices);
      } else if (s == 1) {
        value = vector::LoadOp::create(b, loc, vectorOf(lanes), in, indices);
      } else {
        Value wide = vector::LoadOp::create(b, loc, vectorOf(lanes * s), in, indices);
        value = vector::ShuffleOp::create(b, loc, wide, wide, every);
      }
      acc = combine(acc, value);
    }
    if (lanes == 1)
      memref::StoreOp::create(b, loc, acc, out, outIndices);
    else
      vector::StoreOp::create(b, loc, acc, out, outIndices);
  }

  OpBuilder &b;
  Location loc;
  const WindowReduction &shape;
  int64_t rank, vectorWidth;
  SmallVector<SmallVector<int64_t>, 0> taps;
  Value in, out, image, channel;
  SmallVector<Value> inRow, outRow;
};

struct CpuLowerWindowReductionsPass
    : peft::impl::CpuLowerWindowReductionsBase<CpuLowerWindowReductionsPass> {
  using CpuLowerWindowReductionsBase::CpuLowerWindowReductionsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (vectorWidth < 1) {
      module.emitError("peft-cpu-lower-window-reductions: vector-width must be positive");
      return signalPassFailure();
    }
    std::vector<std::pair<linalg::GenericOp, WindowReduction>> reductions;
    module.walk([&](linalg::GenericOp op) {
      if (op.hasPureBufferSemantics())
        if (std::optional<WindowReduction> reduction = matchWindowReduction(op))
          reductions.emplace_back(op, *reduction);
    });
    for (auto &[op, reduction] : reductions)
      lower(module, op, reduction);
  }

  void lower(ModuleOp module, linalg::GenericOp op, const WindowReduction &reduction) {
    Value in = op.getDpsInputs()[0], out = op.getDpsInits()[0];
    auto inType = cast<MemRefType>(in.getType()), outType = cast<MemRefType>(out.getType());
    if (!hasUnitInnerStride(inType) || !hasUnitInnerStride(outType))
      return;
    OpBuilder builder(op);
    Location loc = op.getLoc();
    SmallVector<Value> captures = {
        memref::CastOp::create(builder, loc, withDynamicStrides(inType), in),
        memref::CastOp::create(builder, loc, withDynamicStrides(outType), out)};
    func::FuncOp kernel = getOrCreateKernel(module, reduction, captures);
    Value rows = memref::DimOp::create(builder, loc, out, 0);
    int64_t perImage = reduction.channels;
    for (int64_t size : ArrayRef<int64_t>(reduction.outSizes).drop_back())
      perImage *= size;
    rows = arith::MulIOp::create(builder, loc, rows,
                                 arith::ConstantIndexOp::create(builder, loc, perImage));
    createParallelCall(builder, loc, kernel, captures, rows);
    op.erase();
  }

  func::FuncOp getOrCreateKernel(ModuleOp module, const WindowReduction &reduction,
                                 ValueRange operands) {
    auto join = [](ArrayRef<int64_t> values) {
      std::string text;
      for (int64_t value : values)
        text += (text.empty() ? "" : "x") + std::to_string(value);
      return text;
    };
    std::string name = std::string(reduction.isMax ? "peft_max_pool_" : "peft_sum_pool_") +
                       std::to_string(reduction.channels) + "_" + join(reduction.inSizes) +
                       "_to_" + join(reduction.outSizes) + "_k" + join(reduction.kernel) + "_s" +
                       join(reduction.strides) + "_d" + join(reduction.dilations);
    SmallVector<Type> types = llvm::to_vector(operands.getTypes());
    types.append(2, IndexType::get(module.getContext()));
    return getOrCreateKernelFunction(module, name, types, [&](OpBuilder &builder, Block *body) {
      ReductionKernelBuilder(builder, builder.getUnknownLoc(), reduction, vectorWidth)
          .build(body->getArgument(0), body->getArgument(1), body->getArgument(2),
                 body->getArgument(3));
    });
  }
};

} // namespace
