//===- CpuLowerWindowGemms.cpp - Convolutions read through a window ---------===//
//
// The kernel of a window GEMM (WindowOps.h), generated as scf + vector IR
// once per shape, over a run [first, last) of work units, each one image's
// panel of `tile` consecutive positions:
//
//   for unit in first..last:                  // image n, positions p0..p0+tile
//     for c0 in 0..C step channelBlock:       // the window's rows stay in L1
//       for o0 in 0..O step microRows:
//         micro-kernel: microRows × tile accumulators in vector registers;
//         per channel and tap, tile / vectorWidth loads of the input at the
//         tap's offset and one broadcast of the weight per row, FMAs
//       the last rows: micro-kernels of 8, 4, 2 and 1 rows
//
// The output is the NCHW image itself (at the padded pitch): nothing is
// copied into columns and nothing transposed back. A panel past the last
// position masks its loads and stores.
//===----------------------------------------------------------------------===//
#include "lowering/cpu/Passes.h"

#include "lowering/cpu/GemmStart.h"
#include "lowering/cpu/KernelBuilding.h"
#include "lowering/cpu/ParallelCall.h"
#include "lowering/cpu/WindowOps.h"

namespace peft {
#define GEN_PASS_DEF_CPULOWERWINDOWGEMMS
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// Builds one kernel's body: (in [N, C, L], w [O, C, k...], out [N, O, P],
/// first, last).
class WindowKernelBuilder {
public:
  WindowKernelBuilder(OpBuilder &builder, Location loc, const WindowGemm &shape,
                      GemmStart::Kind start, int64_t tile, int64_t microRows,
                      int64_t vectorWidth, int64_t channelBlock)
      : b(builder), loc(loc), shape(shape), start(start), tile(tile), microRows(microRows),
        vectorWidth(vectorWidth), channelBlock(std::min(channelBlock, shape.channels)),
        vectorType(VectorType::get({vectorWidth}, builder.getF32Type())) {}

  /// `biasVector`: the [O] bias when the output starts from it.
  void build(Value input, Value weight, Value output, Value biasVector, Value first, Value last) {
    in = input;
    w = weight;
    out = output;
    bias = biasVector;
    int64_t panels = llvm::divideCeil(shape.positions, tile);
    int64_t fullPanels = shape.positions / tile, rest = shape.positions % tile;
    auto units = scf::ForOp::create(b, loc, first, last, index(1));
    b.setInsertionPointToStart(units.getBody());
    Value unit = units.getInductionVar();
    Value image = arith::DivUIOp::create(b, loc, unit, index(panels));
    Value panel = arith::RemUIOp::create(b, loc, unit, index(panels));
    Value p0 = arith::MulIOp::create(b, loc, panel, index(tile));
    if (rest == 0) {
      panelBody(image, p0, tile);
    } else {
      Value full = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, panel,
                                         index(fullPanels));
      auto branch = scf::IfOp::create(b, loc, full, /*withElseRegion=*/true);
      b.setInsertionPointToStart(&branch.getThenRegion().front());
      panelBody(image, p0, tile);
      b.setInsertionPointToStart(&branch.getElseRegion().front());
      panelBody(image, p0, rest);
    }
    b.setInsertionPointAfter(units);
  }

private:
  Value index(int64_t value) { return arith::ConstantIndexOp::create(b, loc, value); }

  /// The panel's `count` positions from p0, every output channel.
  void panelBody(Value image, Value p0, int64_t count) {
    OpBuilder::InsertionGuard guard(b);
    SmallVector<Value> masks;
    auto maskType = VectorType::get({vectorWidth}, b.getI1Type());
    for (int64_t j = 0; j < llvm::divideCeil(count, vectorWidth); ++j) {
      int64_t lanes = std::min(count - j * vectorWidth, vectorWidth);
      masks.push_back(lanes == vectorWidth
                          ? Value()
                          : vector::CreateMaskOp::create(b, loc, maskType, ValueRange{index(lanes)})
                                .getResult());
    }
    auto blocks = scf::ForOp::create(b, loc, index(0), index(shape.channels), index(channelBlock));
    b.setInsertionPointToStart(blocks.getBody());
    Value c0 = blocks.getInductionVar();
    Value cEnd = arith::AddIOp::create(b, loc, c0, index(channelBlock));
    if (shape.channels % channelBlock)
      cEnd = arith::MinUIOp::create(b, loc, cEnd, index(shape.channels));
    int64_t fullRows = shape.outChannels / microRows * microRows;
    if (fullRows > 0) {
      auto rows = scf::ForOp::create(b, loc, index(0), index(fullRows), index(microRows));
      OpBuilder::InsertionGuard rowGuard(b);
      b.setInsertionPointToStart(rows.getBody());
      microKernel(image, p0, c0, cEnd, rows.getInductionVar(), microRows, masks);
    }
    int64_t row = fullRows;
    for (int64_t count = 8; count >= 1; count /= 2)
      if (count < microRows && (shape.outChannels - fullRows) & count) {
        microKernel(image, p0, c0, cEnd, index(row), count, masks);
        row += count;
      }
  }

  /// out[image, o0 + i, panel] += Σ_{c0 ≤ c < cEnd, taps} w · in, i < rows.
  void microKernel(Value image, Value p0, Value c0, Value cEnd, Value o0, int64_t rows,
                   ArrayRef<Value> masks) {
    int64_t vectors = masks.size();
    Value zero = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vectorType, b.getF32FloatAttr(0)));
    auto load = [&](OpBuilder &builder, Value memref, ValueRange indices, Value mask) {
      return loadVector(builder, loc, vectorType, memref, indices, mask);
    };
    SmallVector<Value> rowIndex, columnIndex;
    for (int64_t i = 0; i < rows; ++i)
      rowIndex.push_back(arith::AddIOp::create(b, loc, o0, index(i)));
    for (int64_t j = 0; j < vectors; ++j)
      columnIndex.push_back(arith::AddIOp::create(b, loc, p0, index(j * vectorWidth)));
    // The first channel block starts from the bias or zeros, unless the
    // output is where the sums start.
    auto loadAccumulators = [&](OpBuilder &builder) {
      SmallVector<Value> loaded;
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < vectors; ++j)
          loaded.push_back(load(builder, out, {image, rowIndex[i], columnIndex[j]}, masks[j]));
      return loaded;
    };
    SmallVector<Value> accumulators;
    if (start == GemmStart::Loaded) {
      accumulators = loadAccumulators(b);
    } else {
      SmallVector<Type> types(rows * vectors, vectorType);
      Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, c0, index(0));
      auto branch = scf::IfOp::create(b, loc, types, first, /*withElseRegion=*/true);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&branch.getThenRegion().front());
      SmallVector<Value> initial;
      for (int64_t i = 0; i < rows; ++i) {
        Value row = zero;
        if (start == GemmStart::Bias)
          row = vector::BroadcastOp::create(
              b, loc, vectorType, memref::LoadOp::create(b, loc, bias, ValueRange{rowIndex[i]}));
        initial.append(vectors, row);
      }
      scf::YieldOp::create(b, loc, initial);
      b.setInsertionPointToStart(&branch.getElseRegion().front());
      scf::YieldOp::create(b, loc, loadAccumulators(b));
      accumulators.assign(branch.getResults().begin(), branch.getResults().end());
    }
    auto channels = scf::ForOp::create(
        b, loc, c0, cEnd, index(1), accumulators,
        [&](OpBuilder &nested, Location, Value c, ValueRange sums) {
          SmallVector<Value> next(sums.begin(), sums.end());
          auto constant = [&](int64_t value) {
            return arith::ConstantIndexOp::create(nested, loc, value);
          };
          for (auto [t, offset] : llvm::enumerate(shape.offsets)) {
            SmallVector<Value> window;
            for (int64_t j = 0; j < vectors; ++j) {
              Value position = arith::AddIOp::create(nested, loc, columnIndex[j], constant(offset));
              window.push_back(load(nested, in, {image, c, position}, masks[j]));
            }
            // The tap's position in the kernel, row-major.
            SmallVector<Value> weightIndex = {Value(), c};
            for (int64_t d = shape.kernel.size(), rest = t; d-- > 0; rest /= shape.kernel[d])
              weightIndex.insert(weightIndex.begin() + 2, constant(rest % shape.kernel[d]));
            for (int64_t i = 0; i < rows; ++i) {
              weightIndex[0] = rowIndex[i];
              Value scalar = memref::LoadOp::create(nested, loc, w, weightIndex);
              Value broadcast = vector::BroadcastOp::create(nested, loc, vectorType, scalar);
              for (int64_t j = 0; j < vectors; ++j)
                next[i * vectors + j] = vector::FMAOp::create(nested, loc, broadcast, window[j],
                                                              next[i * vectors + j]);
            }
          }
          scf::YieldOp::create(nested, loc, next);
        });
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < vectors; ++j)
        storeVector(b, loc, channels.getResult(i * vectors + j), out,
                    {image, rowIndex[i], columnIndex[j]}, masks[j]);
  }

  OpBuilder &b;
  Location loc;
  const WindowGemm &shape;
  GemmStart::Kind start;
  int64_t tile, microRows, vectorWidth, channelBlock;
  VectorType vectorType;
  Value in, w, out, bias;
};

struct CpuLowerWindowGemmsPass
    : peft::impl::CpuLowerWindowGemmsBase<CpuLowerWindowGemmsPass> {
  using CpuLowerWindowGemmsBase::CpuLowerWindowGemmsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (microRows < 1 || microRows > 16 || vectorWidth < 1 || tile < vectorWidth ||
        tile % vectorWidth || kBlock < 1) {
      module.emitError("peft-cpu-lower-window-gemms: micro-rows must be in [1, 16], "
                       "vector-width and k-block positive, tile a multiple of vector-width");
      return signalPassFailure();
    }
    SmallVector<std::pair<linalg::GenericOp, WindowGemm>> gemms;
    module.walk([&](linalg::GenericOp op) {
      if (op.hasPureBufferSemantics())
        if (std::optional<WindowGemm> gemm = matchWindowGemm(op))
          gemms.emplace_back(op, *gemm);
    });
    for (auto &[op, gemm] : gemms)
      lower(module, op, gemm);
  }

  /// Replaces `op` by a call of its shape's kernel over (image, panel)
  /// units on the threads; one whose operands the kernel cannot address
  /// stays a generic (lowered to loops).
  void lower(ModuleOp module, linalg::GenericOp op, const WindowGemm &gemm) {
    Value in = op.getDpsInputs()[0], weight = op.getDpsInputs()[1], out = op.getDpsInits()[0];
    auto inType = cast<MemRefType>(in.getType()), outType = cast<MemRefType>(out.getType());
    auto weightType = cast<MemRefType>(weight.getType());
    if (!hasUnitInnerStride(inType) || !hasUnitInnerStride(outType))
      return;
    int64_t taps = gemm.offsets.size();
    // The op that starts the output, if the kernel can do its work.
    Operation *starter = startOf(op, out);
    GemmStart start = matchGemmStart(starter, 3, 1);
    OpBuilder builder(op);
    Location loc = op.getLoc();
    // The weight is read one element at a time: any strides (a phase's taps).
    SmallVector<int64_t> anyStrides(weightType.getRank(), ShapedType::kDynamic);
    auto weightView = MemRefType::get(
        weightType.getShape(), weightType.getElementType(),
        StridedLayoutAttr::get(op.getContext(), ShapedType::kDynamic, anyStrides));
    SmallVector<Value> captures = {
        memref::CastOp::create(builder, loc, withDynamicStrides(inType), in),
        memref::CastOp::create(builder, loc, weightView, weight),
        memref::CastOp::create(builder, loc, withDynamicStrides(outType), out)};
    if (start.kind == GemmStart::Bias) {
      auto biasType = dyn_cast<MemRefType>(start.bias.getType());
      if (!biasType || biasType.getRank() != 1)
        start = {};
      else
        captures.push_back(memref::CastOp::create(
            builder, loc,
            MemRefType::get(biasType.getShape(), biasType.getElementType(),
                            StridedLayoutAttr::get(op.getContext(), ShapedType::kDynamic,
                                                   {ShapedType::kDynamic})),
            start.bias));
    }
    if (start.kind != GemmStart::Loaded)
      starter->erase();
    func::FuncOp kernel = getOrCreateKernel(module, gemm, start.kind, captures, taps);
    int64_t panels = llvm::divideCeil(gemm.positions, tile.getValue());
    Value units = arith::MulIOp::create(builder, loc, memref::DimOp::create(builder, loc, out, 0),
                                        arith::ConstantIndexOp::create(builder, loc, panels));
    createParallelCall(builder, loc, kernel, captures, units);
    op.erase();
  }

  func::FuncOp getOrCreateKernel(ModuleOp module, const WindowGemm &gemm,
                                 GemmStart::Kind start, ValueRange operands, int64_t taps) {
    std::string name = "peft_window_gemm_" + std::to_string(gemm.channels) + "x" +
                       std::to_string(gemm.outChannels) + "x" + std::to_string(gemm.positions) +
                       "_l" + std::to_string(gemm.length) + "_taps";
    for (int64_t offset : gemm.offsets)
      name += "_" + std::to_string(offset);
    name += startSuffix(start);
    SmallVector<Type> types = llvm::to_vector(operands.getTypes());
    types.append(2, IndexType::get(module.getContext()));
    bool withBias = start == GemmStart::Bias;
    return getOrCreateKernelFunction(module, name, types, [&](OpBuilder &builder, Block *body) {
      WindowKernelBuilder(builder, builder.getUnknownLoc(), gemm, start, tile, microRows,
                          vectorWidth, std::max<int64_t>(1, kBlock / taps))
          .build(body->getArgument(0), body->getArgument(1), body->getArgument(2),
                 withBias ? body->getArgument(3) : Value(), body->getArgument(withBias ? 4 : 3),
                 body->getArgument(withBias ? 5 : 4));
    });
  }
};

} // namespace
