//===- CpuLowerPanelGemms.cpp - Panel GEMMs to register-blocked kernels -----===//
//
// The kernel of a panel GEMM, out[M, N] += a[M, K] · W[N, K]ᵀ with W packed in
// panels of `tile` output channels (PanelLayout), is generated here as scf +
// vector IR, once per (K, N, tile), over a run of panels [first, last):
//
//   for m0 in rows step mBlock:            // a[m0:, k0:] stays in L2
//     for k0 in 0..K step kBlock:          // a panel's K block stays in L1
//       for p in first..last:
//         for r in m0.. step microRows:
//           micro-kernel: microRows × tile accumulators in vector registers;
//           per k, tile / vectorWidth loads of the panel and one broadcast
//           per row, each multiplied into its accumulators (FMA)
//         the last rows: micro-kernels of 8, 4, 2 and 1 rows
//
// The call site hands [0, panels) to the runtime's threads (ParallelCall.h).
//===----------------------------------------------------------------------===//
#include "lowering/cpu/Passes.h"

#include "lowering/cpu/ParallelCall.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "llvm/ADT/StringMap.h"

namespace peft {
#define GEN_PASS_DEF_CPULOWERPANELGEMMS
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// Whether `type` is a static-width matrix whose rows are contiguous.
static bool hasContiguousRows(MemRefType type) {
  if (type.getRank() != 2 || ShapedType::isDynamic(type.getDimSize(1)))
    return false;
  SmallVector<int64_t> strides;
  int64_t offset;
  return succeeded(type.getStridesAndOffset(strides, offset)) && strides[1] == 1;
}

/// `memref<?xCOLSxf32, strided<[?, 1], offset: ?>>`: any rows of a matrix.
static MemRefType rowsType(MLIRContext *context, int64_t cols) {
  auto layout = StridedLayoutAttr::get(context, ShapedType::kDynamic, {ShapedType::kDynamic, 1});
  return MemRefType::get({ShapedType::kDynamic, cols}, Float32Type::get(context), layout);
}

/// Builds one kernel function's body.
class KernelBuilder {
public:
  KernelBuilder(OpBuilder &builder, Location loc, int64_t k, int64_t n, int64_t tile,
                int64_t microRows, int64_t vectorWidth, int64_t kBlock, int64_t mBlock)
      : b(builder), loc(loc), k(k), n(n), tile(tile), microRows(microRows),
        vectorWidth(vectorWidth), kBlock(std::min(kBlock, k)), mBlock(mBlock),
        vectorType(VectorType::get({vectorWidth}, b.getF32Type())) {}

  /// out += a · panels[firstPanel:lastPanel], for the columns of those panels.
  void build(Value lhs, Value panels, Value out, Value firstPanel, Value lastPanel) {
    a = lhs;
    w = panels;
    c = out;
    rows = memref::DimOp::create(b, loc, a, 0);
    int64_t fullPanels = n / tile;
    auto rowBlocks = scf::ForOp::create(b, loc, index(0), rows, index(mBlock));
    b.setInsertionPointToStart(rowBlocks.getBody());
    Value firstRow = rowBlocks.getInductionVar();
    Value blockEnd = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, firstRow, index(mBlock)), rows);
    auto kBlocks = scf::ForOp::create(b, loc, index(0), index(k), index(kBlock));
    b.setInsertionPointToStart(kBlocks.getBody());
    Value k0 = kBlocks.getInductionVar();
    Value kEnd = k % kBlock == 0
                     ? arith::AddIOp::create(b, loc, k0, index(kBlock)).getResult()
                     : arith::MinUIOp::create(
                           b, loc, arith::AddIOp::create(b, loc, k0, index(kBlock)), index(k))
                           .getResult();
    RowBlock block{firstRow, blockEnd, k0, kEnd};
    if (fullPanels > 0) {
      Value end = arith::MinUIOp::create(b, loc, lastPanel, index(fullPanels));
      auto loop = scf::ForOp::create(b, loc, firstPanel, end, index(1));
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(loop.getBody());
      panel(block, loop.getInductionVar(), /*validColumns=*/tile);
    }
    if (n % tile) {
      Value partialIncluded =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, lastPanel, index(fullPanels));
      auto branch = scf::IfOp::create(b, loc, partialIncluded, /*withElseRegion=*/false);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&branch.getThenRegion().front());
      panel(block, index(fullPanels), n % tile);
    }
    b.setInsertionPointAfter(rowBlocks);
  }

private:
  Value index(int64_t value) { return arith::ConstantIndexOp::create(b, loc, value); }

  /// Rows [firstRow, endRow) over the K block [k0, kEnd).
  struct RowBlock {
    Value firstRow, endRow, k0, kEnd;
  };

  /// The row block times the K block of panel `p`, whose first
  /// `validColumns` channels exist.
  void panel(const RowBlock &block, Value p, int64_t validColumns) {
    Value firstColumn = arith::MulIOp::create(b, loc, p, index(tile));
    Tile tileAt{p, firstColumn, block.k0, block.kEnd, validColumns};
    Value count = arith::SubIOp::create(b, loc, block.endRow, block.firstRow);
    Value fullRows = arith::AddIOp::create(
        b, loc, block.firstRow,
        arith::MulIOp::create(b, loc,
                              arith::DivUIOp::create(b, loc, count, index(microRows)),
                              index(microRows)));
    {
      auto rowLoop = scf::ForOp::create(b, loc, block.firstRow, fullRows, index(microRows));
      OpBuilder::InsertionGuard rowGuard(b);
      b.setInsertionPointToStart(rowLoop.getBody());
      microKernel(tileAt, rowLoop.getInductionVar(), microRows);
    }
    // The remaining rows (fewer than microRows) in blocks of 8, 4, 2 and 1.
    Value remaining = arith::SubIOp::create(b, loc, block.endRow, fullRows);
    Value firstRow = fullRows;
    for (int64_t rowsInBlock = 8; rowsInBlock >= 1; rowsInBlock /= 2) {
      if (rowsInBlock >= microRows)
        continue;
      Value bit = arith::AndIOp::create(b, loc, remaining, index(rowsInBlock));
      Value present = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, bit, index(0));
      auto branch = scf::IfOp::create(b, loc, present, /*withElseRegion=*/false);
      {
        OpBuilder::InsertionGuard ifGuard(b);
        b.setInsertionPointToStart(&branch.getThenRegion().front());
        microKernel(tileAt, firstRow, rowsInBlock);
      }
      firstRow = arith::AddIOp::create(b, loc, firstRow, bit);
    }
  }

  struct Tile {
    Value panel, firstColumn, k0, kEnd;
    int64_t validColumns;
  };

  /// Columns of vector `j` that exist in a panel of `validColumns`.
  int64_t columnsOf(int64_t j, int64_t validColumns) const {
    return std::clamp<int64_t>(validColumns - j * vectorWidth, 0, vectorWidth);
  }

  /// out[firstRow + i, tile columns] += a[.., k0:kEnd] · panel, i < count.
  void microKernel(const Tile &at, Value firstRow, int64_t count) {
    // A partial panel computes only the vectors that hold channels (LoRA's A
    // of rank 16 is one vector of a 48-channel panel).
    int64_t vectors = llvm::divideCeil(at.validColumns, vectorWidth);
    SmallVector<Value> rowIndex, columnIndex, masks;
    for (int64_t i = 0; i < count; ++i)
      rowIndex.push_back(arith::AddIOp::create(b, loc, firstRow, index(i)));
    for (int64_t j = 0; j < vectors; ++j) {
      columnIndex.push_back(arith::AddIOp::create(b, loc, at.firstColumn, index(j * vectorWidth)));
      int64_t columns = columnsOf(j, at.validColumns);
      masks.push_back(columns == vectorWidth
                          ? Value()
                          : vector::CreateMaskOp::create(
                                b, loc, VectorType::get({vectorWidth}, b.getI1Type()),
                                ValueRange{index(columns)}));
    }
    Value zero = arith::ConstantOp::create(b, loc, DenseElementsAttr::get(
                                                       vectorType, b.getF32FloatAttr(0)));
    SmallVector<Value> accumulators;
    for (int64_t i = 0; i < count; ++i)
      for (int64_t j = 0; j < vectors; ++j) {
        SmallVector<Value, 2> at2 = {rowIndex[i], columnIndex[j]};
        if (!masks[j])
          accumulators.push_back(vector::LoadOp::create(b, loc, vectorType, c, at2));
        else
          accumulators.push_back(
              vector::MaskedLoadOp::create(b, loc, vectorType, c, at2, masks[j], zero));
      }
    auto kLoop = scf::ForOp::create(
        b, loc, at.k0, at.kEnd, index(1), accumulators,
        [&](OpBuilder &nested, Location nestedLoc, Value kk, ValueRange sums) {
          SmallVector<Value> panelRow;
          for (int64_t j = 0; j < vectors; ++j)
            panelRow.push_back(vector::LoadOp::create(
                nested, nestedLoc, vectorType, w,
                ValueRange{at.panel, kk, arith::ConstantIndexOp::create(nested, nestedLoc,
                                                                        j * vectorWidth)}));
          SmallVector<Value> next;
          for (int64_t i = 0; i < count; ++i) {
            Value scalar = memref::LoadOp::create(nested, nestedLoc, a, ValueRange{rowIndex[i], kk});
            Value broadcast = vector::BroadcastOp::create(nested, nestedLoc, vectorType, scalar);
            for (int64_t j = 0; j < vectors; ++j)
              next.push_back(vector::FMAOp::create(nested, nestedLoc, broadcast, panelRow[j],
                                                   sums[i * vectors + j]));
          }
          scf::YieldOp::create(nested, nestedLoc, next);
        });
    for (int64_t i = 0; i < count; ++i)
      for (int64_t j = 0; j < vectors; ++j) {
        Value sum = kLoop.getResult(i * vectors + j);
        SmallVector<Value, 2> at2 = {rowIndex[i], columnIndex[j]};
        if (!masks[j])
          vector::StoreOp::create(b, loc, sum, c, at2);
        else
          vector::MaskedStoreOp::create(b, loc, c, at2, masks[j], sum);
      }
  }

  OpBuilder &b;
  Location loc;
  int64_t k, n, tile, microRows, vectorWidth, kBlock, mBlock;
  VectorType vectorType;
  Value a, w, c, rows;
};

struct CpuLowerPanelGemmsPass
    : peft::impl::CpuLowerPanelGemmsBase<CpuLowerPanelGemmsPass> {
  using CpuLowerPanelGemmsBase::CpuLowerPanelGemmsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (microRows < 1 || microRows > 16 || vectorWidth < 1 || kBlock < 1 || mBlock < 1) {
      module.emitError("peft-cpu-lower-panel-gemms: micro-rows must be in [1, 16], "
                       "vector-width, k-block and m-block positive");
      return signalPassFailure();
    }
    SmallVector<linalg::GenericOp> gemms;
    module.walk([&](linalg::GenericOp op) {
      if (op->hasAttr(kPanelGemmAttr) && op.hasPureBufferSemantics())
        gemms.push_back(op);
    });
    for (linalg::GenericOp op : gemms)
      if (failed(lower(module, op)))
        return signalPassFailure();
  }

  /// Replaces `op` by a call to its shape's kernel; one whose operands the
  /// kernel cannot address stays a generic (lowered to loops).
  LogicalResult lower(ModuleOp module, linalg::GenericOp op) {
    Value lhs = op.getDpsInputs()[0], panels = op.getDpsInputs()[1], out = op.getDpsInits()[0];
    auto lhsType = cast<MemRefType>(lhs.getType());
    auto panelsType = cast<MemRefType>(panels.getType());
    auto outType = cast<MemRefType>(out.getType());
    int64_t tile = panelsType.getDimSize(2);
    if (!hasContiguousRows(lhsType) || !hasContiguousRows(outType) ||
        !panelsType.hasStaticShape() || !panelsType.getLayout().isIdentity() ||
        tile % vectorWidth != 0)
      return success();
    int64_t k = lhsType.getDimSize(1), n = outType.getDimSize(1);
    func::FuncOp kernel = getOrCreateKernel(module, k, n, panelsType);
    OpBuilder builder(op);
    Location loc = op.getLoc();
    SmallVector<Value> captures = {
        memref::CastOp::create(builder, loc, rowsType(op.getContext(), k), lhs), panels,
        memref::CastOp::create(builder, loc, rowsType(op.getContext(), n), out)};
    // Threads take contiguous runs of panels.
    createParallelCall(builder, loc, kernel, captures,
                       arith::ConstantIndexOp::create(builder, loc, panelsType.getDimSize(0)));
    op.erase();
    return success();
  }

  func::FuncOp getOrCreateKernel(ModuleOp module, int64_t k, int64_t n, MemRefType panelsType) {
    std::string name = "peft_panel_gemm_" + std::to_string(k) + "x" + std::to_string(n) + "_" +
                       std::to_string(panelsType.getDimSize(2));
    if (auto existing = module.lookupSymbol<func::FuncOp>(name))
      return existing;
    MLIRContext *context = module.getContext();
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    Location loc = builder.getUnknownLoc();
    auto type = builder.getFunctionType({rowsType(context, k), panelsType, rowsType(context, n),
                                         builder.getIndexType(), builder.getIndexType()},
                                        {});
    auto kernel = func::FuncOp::create(builder, loc, name, type);
    kernel.setPrivate();
    Block *body = kernel.addEntryBlock();
    builder.setInsertionPointToStart(body);
    KernelBuilder(builder, loc, k, n, panelsType.getDimSize(2), microRows, vectorWidth, kBlock,
                  mBlock)
        .build(body->getArgument(0), body->getArgument(1), body->getArgument(2),
               body->getArgument(3), body->getArgument(4));
    func::ReturnOp::create(builder, loc);
    return kernel;
  }
};

} // namespace
