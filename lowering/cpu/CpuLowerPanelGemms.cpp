//===- CpuLowerPanelGemms.cpp - Panel GEMMs to register-blocked kernels -----===//
//
// The kernel of a panel GEMM, out[M, N] += a[M, K] · W[N, K]ᵀ with W packed in
// panels of `tile` output channels (PanelLayout), is generated here as scf +
// vector IR, once per (K, N, tile), over a run of panels [first, last):
//
//   for m0 in rows step mBlock:            // a[m0:, :] stays in L2
//     for p in first..last:                // out[m0:, the panel] stays in L1
//       for k0 in 0..K step kBlock:        // a panel's K block stays in L2
//         for r in m0.. step microRows:
//           micro-kernel: microRows × tile accumulators in vector registers,
//           loaded from out (or, in the first block, zeros or a bias:
//           GemmStart.h); per k, tile / vectorWidth loads of the panel and
//           one broadcast per row, each multiplied into its accumulators
//         the last rows: micro-kernels of 8, 4, 2 and 1 rows
//
// The call site hands [0, panels) to the runtime's threads (ParallelCall.h).
//===----------------------------------------------------------------------===//
#include "lowering/cpu/Passes.h"

#include "lowering/SlotGather.h"
#include "lowering/cpu/Epilogue.h"
#include "lowering/cpu/GemmStart.h"
#include "lowering/cpu/KernelBuilding.h"
#include "lowering/cpu/ParallelCall.h"


namespace peft {
#define GEN_PASS_DEF_CPULOWERPANELGEMMS
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// Whether `type` is a static-width matrix whose rows are contiguous.
static bool hasContiguousRows(MemRefType type) {
  return type.getRank() == 2 && !ShapedType::isDynamic(type.getDimSize(1)) &&
         hasUnitInnerStride(type);
}

/// `memref<?xCOLSxf32, strided<[?, 1], offset: ?>>`: any rows of a matrix.
static MemRefType rowsType(MLIRContext *context, int64_t cols) {
  auto layout = StridedLayoutAttr::get(context, ShapedType::kDynamic, {ShapedType::kDynamic, 1});
  return MemRefType::get({ShapedType::kDynamic, cols}, Float32Type::get(context), layout);
}

/// `memref<COLSxf32, strided<[1], offset: ?>>`: a vector along the columns.
static MemRefType columnsType(MLIRContext *context, int64_t cols) {
  return MemRefType::get({cols}, Float32Type::get(context),
                         StridedLayoutAttr::get(context, ShapedType::kDynamic, {1}));
}

/// How a kernel reads the right-hand side B[K, N].
enum class RhsLayout {
  Panels, ///< Packed: [ceil(N / tile), K, tile], zero-padded (weights).
  Rows,   ///< As it is: [K, N] with contiguous rows (activations).
};

/// Builds one kernel function's body. K and N may be dynamic.
class KernelBuilder {
public:
  KernelBuilder(OpBuilder &builder, Location loc, int64_t k, int64_t n, int64_t tile,
                RhsLayout layout, int64_t microRows, int64_t vectorWidth, int64_t kBlock,
                int64_t mBlock)
      : b(builder), loc(loc), k(k), n(n), tile(tile), layout(layout), microRows(microRows),
        vectorWidth(vectorWidth),
        kBlock(ShapedType::isDynamic(k) ? kBlock : std::min(kBlock, k)), mBlock(mBlock),
        vectorType(VectorType::get({vectorWidth}, b.getF32Type())) {}

  /// Also out += s · tailPanels over the `rank` columns of s (an unmerged
  /// LoRA's S·Bᵀ, B packed in the same panels as the weight): in the last K
  /// block, before the accumulators are stored.
  void addLowRankTail(Value s, Value tailPanels, int64_t rank) {
    lowRank = s;
    lowRankPanels = tailPanels;
    this->rank = rank;
  }

  /// Sums start from zeros or `bias` ([N]) in the first K block instead of
  /// out's values (GemmStart).
  void startFrom(GemmStart::Kind kind, Value bias) {
    start = kind;
    startBias = bias;
  }

  /// Also `epilogue` on the final sums, written to `target` ([M, N] rows)
  /// instead of out; `operands` are the kernel's values of its rows and
  /// columns inputs, in order.
  void addEpilogue(linalg::GenericOp op, ArrayRef<EpilogueInput> kinds, Value target,
                   ValueRange operands) {
    epilogue = op;
    epilogueKinds.assign(kinds.begin(), kinds.end());
    epilogueTarget = target;
    epilogueOperands.assign(operands.begin(), operands.end());
  }

  /// out += a · rhs, for the columns of panels [firstPanel, lastPanel).
  void build(Value lhs, Value rhs, Value out, Value firstPanel, Value lastPanel) {
    a = lhs;
    w = rhs;
    c = out;
    rows = memref::DimOp::create(b, loc, a, 0);
    Value kSize = ShapedType::isDynamic(k) ? memref::DimOp::create(b, loc, a, 1).getResult()
                                           : index(k);
    kTotal = kSize;
    auto rowBlocks = scf::ForOp::create(b, loc, index(0), rows, index(mBlock));
    b.setInsertionPointToStart(rowBlocks.getBody());
    Value firstRow = rowBlocks.getInductionVar();
    Value blockEnd = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, firstRow, index(mBlock)), rows);
    RowBlock block{firstRow, blockEnd};
    if (!ShapedType::isDynamic(n)) {
      int64_t fullPanels = n / tile;
      if (fullPanels > 0)
        panels(block, firstPanel, arith::MinUIOp::create(b, loc, lastPanel, index(fullPanels)));
      if (n % tile)
        lastPanelIf(block, lastPanel, index(fullPanels), Columns{n % tile, {}});
    } else {
      Value nSize = memref::DimOp::create(b, loc, c, 1);
      Value fullPanels = arith::DivUIOp::create(b, loc, nSize, index(tile));
      panels(block, firstPanel, arith::MinUIOp::create(b, loc, lastPanel, fullPanels));
      Value valid = arith::RemUIOp::create(b, loc, nSize, index(tile));
      lastPanelIf(block, lastPanel, fullPanels, Columns{0, valid});
    }
    b.setInsertionPointAfter(rowBlocks);
  }

private:
  Value index(int64_t value) { return arith::ConstantIndexOp::create(b, loc, value); }

  /// Rows [firstRow, endRow).
  struct RowBlock {
    Value firstRow, endRow;
  };

  /// The channels of a panel that exist: all of them (`count` = tile), a
  /// static part, or `dynamicCount` when N is known at run time only, in
  /// the first `vectors` vectors of the panel (0: all).
  struct Columns {
    int64_t count = 0;
    Value dynamicCount;
    int64_t vectors = 0;
  };

  /// The full panels [first, last).
  void panels(const RowBlock &block, Value first, Value last) {
    auto loop = scf::ForOp::create(b, loc, first, last, index(1));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    panel(block, loop.getInductionVar(), Columns{tile, {}});
  }

  /// The partial panel `p`, if the run of panels ends after it.
  void lastPanelIf(const RowBlock &block, Value lastPanel, Value p, Columns columns) {
    Value included = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, lastPanel, p);
    if (columns.dynamicCount)
      included = arith::AndIOp::create(
          b, loc, included,
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, columns.dynamicCount,
                                index(0)));
    auto branch = scf::IfOp::create(b, loc, included, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&branch.getThenRegion().front());
    if (!columns.dynamicCount) {
      panel(block, p, columns);
      return;
    }
    // A count known at run time computes only the vectors that hold
    // channels too: a micro-kernel per vector count (a shrink to rank 16
    // is one vector of a 48-wide panel, not three masked ones).
    for (int64_t vectors = 1; vectors < tile / vectorWidth; ++vectors) {
      Value fits = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, columns.dynamicCount,
                                         index(vectors * vectorWidth));
      auto fewer = scf::IfOp::create(b, loc, fits, /*withElseRegion=*/true);
      b.setInsertionPointToStart(&fewer.getThenRegion().front());
      panel(block, p, Columns{0, columns.dynamicCount, vectors});
      b.setInsertionPointToStart(&fewer.getElseRegion().front());
    }
    panel(block, p, columns);
  }

  /// The row block times panel `p`, a K block at a time: the panel's sums
  /// stay in L1 from one block to the next.
  void panel(const RowBlock &block, Value p, Columns columns) {
    Value firstColumn = arith::MulIOp::create(b, loc, p, index(tile));
    auto kBlocks = scf::ForOp::create(b, loc, index(0), kTotal, index(kBlock));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(kBlocks.getBody());
    Value k0 = kBlocks.getInductionVar();
    Value kEnd = arith::AddIOp::create(b, loc, k0, index(kBlock));
    if (ShapedType::isDynamic(k) || k % kBlock)
      kEnd = arith::MinUIOp::create(b, loc, kEnd, kTotal);
    Tile tileAt{p, firstColumn, k0, kEnd, columns};
    prefetchPanelAhead(block, firstColumn, k0, kEnd);
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

  /// Asks for the lines the micro-kernels of the panel `kPanelsAhead`
  /// further start on: B's rows as they are (a slot's Bᵀ in an expansion:
  /// one line on each of K rows far apart) and out's rows where the sums
  /// start from them. No prefetcher follows a line per row across a hundred
  /// rows, and with a short K every tile waited on memory (perf, LLaMA's
  /// multi-LoRA expansions into 2816 columns: 38 % fewer samples at 4
  /// panels ahead; at 1 ahead the tiles' first loads still stalled). The
  /// column is clamped to the matrix.
  void prefetchPanelAhead(const RowBlock &block, Value firstColumn, Value k0, Value kEnd) {
    // A single panel (a shrink to its rank) has none ahead.
    if (!ShapedType::isDynamic(n) && n <= tile)
      return;
    bool rhsRows = layout == RhsLayout::Rows && !ShapedType::isDynamic(n);
    bool outRows = start == GemmStart::Loaded;
    if (!rhsRows && !outRows)
      return;
    Value lastColumn = ShapedType::isDynamic(n)
                           ? arith::SubIOp::create(b, loc, memref::DimOp::create(b, loc, c, 1),
                                                   index(1))
                                 .getResult()
                           : index(n - 1);
    Value ahead = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, firstColumn, index(kPanelsAhead * tile)),
        lastColumn);
    auto prefetchRows = [&](Value memref, Value first, Value end, bool write) {
      scf::ForOp::create(b, loc, first, end, index(1), ValueRange{},
                         [&](OpBuilder &nested, Location nestedLoc, Value row, ValueRange) {
                           prefetchLine(nested, nestedLoc, memref, {row, ahead}, write);
                           scf::YieldOp::create(nested, nestedLoc);
                         });
    };
    if (rhsRows)
      prefetchRows(w, k0, kEnd, /*write=*/false);
    if (outRows)
      prefetchRows(c, block.firstRow, block.endRow, /*write=*/true);
  }
  static constexpr int64_t kPanelsAhead = 4;

  /// Asks for the line of `memref` at `indices`, to be kept in every cache.
  static void prefetchLine(OpBuilder &builder, Location at, Value memref, ValueRange indices,
                           bool write) {
    memref::PrefetchOp::create(builder, at, memref, indices, write, /*localityHint=*/3,
                               /*isDataCache=*/true);
  }

  /// A micro-kernel reading B's rows as they are over a long K (a shrink:
  /// a slot's Aᵀ [K, rank], a line per row, read from memory once per run)
  /// asks for the row `kRowsAhead` further at each step: the loads of B
  /// waited on memory (perf, BERT's shrinks, 40 % of their samples on the
  /// instruction after them), and no prefetcher runs that far ahead.
  static constexpr int64_t kRowsAhead = 32;
  static constexpr int64_t kFloatsPerLine = 16;
  bool prefetchesRowsAhead() const {
    return layout == RhsLayout::Rows && !ShapedType::isDynamic(k) && k > kRowsAhead;
  }

  struct Tile {
    Value panel, firstColumn, k0, kEnd;
    Columns columns;
  };

  /// The vectors of a panel's row that hold channels, and for each a mask
  /// (null where every lane is a channel). A dynamic count masks each of
  /// the vectors it may fill:
  /// vector.create_mask makes a count past the vector all-true and one
  /// below 1 all-false.
  void columnMasks(const Columns &columns, SmallVector<Value> &masks) {
    auto maskType = VectorType::get({vectorWidth}, b.getI1Type());
    if (columns.dynamicCount) {
      for (int64_t j = 0, e = columns.vectors ? columns.vectors : tile / vectorWidth; j < e; ++j)
        masks.push_back(vector::CreateMaskOp::create(
            b, loc, maskType,
            ValueRange{arith::SubIOp::create(b, loc, columns.dynamicCount,
                                             index(j * vectorWidth))}));
      return;
    }
    // A partial panel computes only the vectors that hold channels (LoRA's A
    // of rank 16 is one vector of a 48-channel panel).
    for (int64_t j = 0; j < llvm::divideCeil(columns.count, vectorWidth); ++j) {
      int64_t lanes = std::clamp<int64_t>(columns.count - j * vectorWidth, 0, vectorWidth);
      masks.push_back(lanes == vectorWidth ? Value()
                                           : vector::CreateMaskOp::create(
                                                 b, loc, maskType, ValueRange{index(lanes)}));
    }
  }

  /// out[firstRow + i, the panel's columns] += a[.., k0:kEnd] · rhs, i < count.
  void microKernel(const Tile &at, Value firstRow, int64_t count) {
    SmallVector<Value> masks;
    columnMasks(at.columns, masks);
    int64_t vectors = masks.size();
    SmallVector<Value> rowIndex, columnIndex;
    for (int64_t i = 0; i < count; ++i)
      rowIndex.push_back(arith::AddIOp::create(b, loc, firstRow, index(i)));
    for (int64_t j = 0; j < vectors; ++j)
      columnIndex.push_back(arith::AddIOp::create(b, loc, at.firstColumn, index(j * vectorWidth)));
    auto load = [&](OpBuilder &builder, Location at, Value memref, ValueRange indices,
                    Value mask) { return loadVector(builder, at, vectorType, memref, indices, mask); };
    auto loadAccumulators = [&] {
      SmallVector<Value> loaded;
      for (int64_t i = 0; i < count; ++i)
        for (int64_t j = 0; j < vectors; ++j)
          loaded.push_back(load(b, loc, c, {rowIndex[i], columnIndex[j]}, masks[j]));
      return loaded;
    };
    SmallVector<Value> accumulators;
    if (start == GemmStart::Loaded) {
      accumulators = loadAccumulators();
    } else {
      // The first K block starts from the bias or zeros, the others from
      // what the one before stored.
      Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, at.k0, index(0));
      auto branch = scf::IfOp::create(b, loc, SmallVector<Type>(count * vectors, vectorType),
                                      first, /*withElseRegion=*/true);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&branch.getThenRegion().front());
      SmallVector<Value> row;
      for (int64_t j = 0; j < vectors; ++j)
        row.push_back(start == GemmStart::Bias
                          ? load(b, loc, startBias, {columnIndex[j]}, masks[j])
                          : arith::ConstantOp::create(
                                b, loc, vectorType,
                                DenseElementsAttr::get(vectorType, b.getF32FloatAttr(0))));
      SmallVector<Value> initial;
      for (int64_t i = 0; i < count; ++i)
        initial.append(row);
      scf::YieldOp::create(b, loc, initial);
      b.setInsertionPointToStart(&branch.getElseRegion().front());
      scf::YieldOp::create(b, loc, loadAccumulators());
      accumulators.assign(branch.getResults().begin(), branch.getResults().end());
    }
    auto kLoop = scf::ForOp::create(
        b, loc, at.k0, at.kEnd, index(1), accumulators,
        [&](OpBuilder &nested, Location nestedLoc, Value kk, ValueRange sums) {
          if (prefetchesRowsAhead()) {
            Value ahead = arith::MinUIOp::create(
                nested, nestedLoc,
                arith::AddIOp::create(nested, nestedLoc, kk,
                                      arith::ConstantIndexOp::create(nested, nestedLoc, kRowsAhead)),
                arith::ConstantIndexOp::create(nested, nestedLoc, k - 1));
            for (int64_t j = 0; j < vectors; ++j)
              if (j * vectorWidth % kFloatsPerLine == 0) // One per line.
                prefetchLine(nested, nestedLoc, w, {ahead, columnIndex[j]}, /*write=*/false);
          }
          SmallVector<Value> rhsRow;
          for (int64_t j = 0; j < vectors; ++j) {
            if (layout == RhsLayout::Panels) // Padded: no mask needed.
              rhsRow.push_back(load(nested, nestedLoc, w,
                                    {at.panel, kk,
                                     arith::ConstantIndexOp::create(nested, nestedLoc,
                                                                    j * vectorWidth)},
                                    Value()));
            else
              rhsRow.push_back(load(nested, nestedLoc, w, {kk, columnIndex[j]}, masks[j]));
          }
          SmallVector<Value> next;
          for (int64_t i = 0; i < count; ++i) {
            Value scalar = memref::LoadOp::create(nested, nestedLoc, a, ValueRange{rowIndex[i], kk});
            Value broadcast = vector::BroadcastOp::create(nested, nestedLoc, vectorType, scalar);
            for (int64_t j = 0; j < vectors; ++j)
              next.push_back(vector::FMAOp::create(nested, nestedLoc, broadcast, rhsRow[j],
                                                   sums[i * vectors + j]));
          }
          scf::YieldOp::create(nested, nestedLoc, next);
        });
    ValueRange sums = kLoop.getResults();
    if (lowRank) {
      // After the last K block, the low-rank term into the same registers.
      Value last = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, at.kEnd, kTotal);
      auto tail = scf::IfOp::create(b, loc, sums.getTypes(), last, /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(&tail.getThenRegion().front());
        auto rankLoop = scf::ForOp::create(
            b, loc, index(0), index(rank), index(1), sums,
            [&](OpBuilder &nested, Location nestedLoc, Value j, ValueRange partial) {
              SmallVector<Value> panelRow;
              for (int64_t v = 0; v < vectors; ++v)
                panelRow.push_back(vector::LoadOp::create(
                    nested, nestedLoc, vectorType, lowRankPanels,
                    ValueRange{at.panel, j,
                               arith::ConstantIndexOp::create(nested, nestedLoc,
                                                              v * vectorWidth)}));
              SmallVector<Value> next;
              for (int64_t i = 0; i < count; ++i) {
                Value scalar =
                    memref::LoadOp::create(nested, nestedLoc, lowRank, ValueRange{rowIndex[i], j});
                Value broadcast =
                    vector::BroadcastOp::create(nested, nestedLoc, vectorType, scalar);
                for (int64_t v = 0; v < vectors; ++v)
                  next.push_back(vector::FMAOp::create(nested, nestedLoc, broadcast, panelRow[v],
                                                       partial[i * vectors + v]));
              }
              scf::YieldOp::create(nested, nestedLoc, next);
            });
        scf::YieldOp::create(b, loc, rankLoop.getResults());
        b.setInsertionPointToStart(&tail.getElseRegion().front());
        scf::YieldOp::create(b, loc, sums);
      }
      sums = tail.getResults();
    }
    auto storeSums = [&] {
      for (int64_t i = 0; i < count; ++i)
        for (int64_t j = 0; j < vectors; ++j)
          storeVector(b, loc, sums[i * vectors + j], c, {rowIndex[i], columnIndex[j]}, masks[j]);
    };
    if (!epilogue) {
      storeSums();
      return;
    }
    // After the last K block the epilogue's result goes to its target; the
    // sums of other blocks to out, for the next.
    Value last = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, at.kEnd, kTotal);
    auto branch = scf::IfOp::create(b, loc, last, /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&branch.getElseRegion().front());
    storeSums();
    b.setInsertionPointToStart(&branch.getThenRegion().front());
    for (int64_t i = 0; i < count; ++i)
      for (int64_t j = 0; j < vectors; ++j) {
        SmallVector<Value> inputs;
        auto operand = epilogueOperands.begin();
        for (EpilogueInput kind : epilogueKinds) {
          if (kind == EpilogueInput::Accumulator)
            inputs.push_back(sums[i * vectors + j]);
          else if (kind == EpilogueInput::Rows)
            inputs.push_back(loadVector(b, loc, vectorType, *operand++,
                                        {rowIndex[i], columnIndex[j]}, masks[j]));
          else
            inputs.push_back(
                loadVector(b, loc, vectorType, *operand++, {columnIndex[j]}, masks[j]));
        }
        Value result = emitEpilogue(b, loc, epilogue, inputs, vectorWidth);
        storeVector(b, loc, result, epilogueTarget, {rowIndex[i], columnIndex[j]}, masks[j]);
      }
  }

  OpBuilder &b;
  Location loc;
  int64_t k, n, tile;
  RhsLayout layout;
  int64_t microRows, vectorWidth, kBlock, mBlock;
  VectorType vectorType;
  Value a, w, c, rows, kTotal;
  GemmStart::Kind start = GemmStart::Loaded;
  Value startBias;
  Value lowRank, lowRankPanels; ///< The optional low-rank tail.
  int64_t rank = 0;
  linalg::GenericOp epilogue; ///< The optional epilogue.
  SmallVector<EpilogueInput> epilogueKinds;
  Value epilogueTarget;
  SmallVector<Value> epilogueOperands;
};

/// Whether `op` computes out[..., i, j] += lhs[..., i, k] · rhs[..., k, j] in
/// f32 over `batch` leading dimensions shared by all three (attention's
/// scores and context).
static bool isBatchedGemm(linalg::GenericOp op, unsigned &batch) {
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 || op.getNumLoops() < 4)
    return false;
  batch = op.getNumLoops() - 3;
  MLIRContext *context = op.getContext();
  SmallVector<AffineExpr> dims;
  for (unsigned d = 0; d < op.getNumLoops(); ++d)
    dims.push_back(getAffineDimExpr(d, context));
  auto map = [&](AffineExpr x, AffineExpr y) {
    SmallVector<AffineExpr> results(dims.begin(), dims.begin() + batch);
    results.append({x, y});
    return AffineMap::get(op.getNumLoops(), 0, results, context);
  };
  AffineExpr i = dims[batch], j = dims[batch + 1], k = dims[batch + 2];
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps[0] != map(i, k) || maps[1] != map(k, j) || maps[2] != map(i, j))
    return false;
  return isF32MultiplyAccumulate(op);
}

struct CpuLowerPanelGemmsPass
    : peft::impl::CpuLowerPanelGemmsBase<CpuLowerPanelGemmsPass> {
  using CpuLowerPanelGemmsBase::CpuLowerPanelGemmsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (microRows < 1 || microRows > 16 || vectorWidth < 1 || kBlock < 1 || mBlock < 1 ||
        rowTile < vectorWidth || rowTile % vectorWidth) {
      module.emitError("peft-cpu-lower-panel-gemms: micro-rows must be in [1, 16], "
                       "vector-width, k-block and m-block positive, row-tile a multiple "
                       "of vector-width");
      return signalPassFailure();
    }
    SmallVector<linalg::GenericOp> gemms;
    module.walk([&](linalg::GenericOp op) {
      if (op.hasPureBufferSemantics())
        gemms.push_back(op);
    });
    // An unmerged LoRA's S·Bᵀ accumulating into its layer's GEMM: one kernel.
    // (Ops a kernel takes in, epilogues too, go into `erased`.)
    erased.clear();
    for (linalg::GenericOp op : gemms)
      if (!erased.contains(op) && op->hasAttr(kPanelGemmAttr))
        if (linalg::GenericOp base = lowRankBase(op))
          lowerPanelKernel(module, base, op);
    for (linalg::GenericOp op : gemms) {
      if (erased.contains(op))
        continue;
      unsigned batch;
      if (op->hasAttr(kPanelGemmAttr))
        lowerPanelKernel(module, op, {});
      else if (isBatchedGemm(op, batch))
        lowerBatchedGemm(module, op, batch);
    }
  }

  /// For a panel GEMM `tail` of a low rank (K at most `kMaxRank`), the panel
  /// GEMM before it in its block that writes the same output in the same
  /// panels, when the ops between them neither touch that output nor write
  /// the base's activations (so the base can run at the tail): a layer and
  /// its unmerged LoRA's B. Null when there is none.
  static constexpr int64_t kMaxRank = 256;
  static linalg::GenericOp lowRankBase(linalg::GenericOp tail) {
    Value out = tail.getDpsInits()[0];
    auto tailPanels = cast<MemRefType>(tail.getDpsInputs()[1].getType());
    if (tailPanels.getRank() != 3 || tailPanels.getDimSize(1) > kMaxRank)
      return {};
    llvm::SmallPtrSet<Value, 8> outAliases = aliasesOf(out);
    SmallVector<Operation *> between;
    for (Operation *op = tail->getPrevNode(); op; op = op->getPrevNode()) {
      auto base = dyn_cast<linalg::GenericOp>(op);
      if (!base || !base->hasAttr(kPanelGemmAttr) || !base.hasPureBufferSemantics() ||
          base.getDpsInits()[0] != out) {
        between.push_back(op);
        continue;
      }
      auto panels = cast<MemRefType>(base.getDpsInputs()[1].getType());
      if (panels.getDimSize(0) != tailPanels.getDimSize(0) ||
          panels.getDimSize(2) != tailPanels.getDimSize(2))
        return {};
      llvm::SmallPtrSet<Value, 8> lhsAliases = aliasesOf(base.getDpsInputs()[0]);
      for (Operation *middle : between)
        if (interferes(middle, outAliases, lhsAliases))
          return {};
      return base;
    }
    return {};
  }

  /// `value` ([..., N], unit inner stride) as rows `[?, N]`, or null.
  static Value asRows(OpBuilder &builder, Location loc, Value value, int64_t n) {
    auto type = cast<MemRefType>(value.getType());
    if (type.getShape().back() != n || !hasUnitInnerStride(type))
      return {};
    if (type.getRank() > 2) {
      SmallVector<ReassociationIndices> rows = {
          llvm::to_vector(llvm::seq<int64_t>(0, type.getRank() - 1)), {type.getRank() - 1}};
      if (!memref::CollapseShapeOp::isGuaranteedCollapsible(type, rows))
        return {};
      value = memref::CollapseShapeOp::create(builder, loc, value, rows);
    } else if (type.getRank() != 2) {
      return {};
    }
    return memref::CastOp::create(builder, loc, rowsType(builder.getContext(), n), value);
  }

  /// The kernel operands of `found`'s target and rows and columns inputs, at
  /// the builder's point; false (values made are left for the folder) when
  /// one cannot be read as rows or columns.
  static bool epilogueCaptures(OpBuilder &builder, Location loc, FoundEpilogue found,
                               int64_t n, SmallVectorImpl<Value> &captures) {
    Value target = asRows(builder, loc, found.op.getDpsInits()[0], n);
    if (!target)
      return false;
    captures.push_back(target);
    for (auto [kind, input] : llvm::zip(found.kinds, found.op.getDpsInputs())) {
      if (kind == EpilogueInput::Accumulator)
        continue;
      Value value = kind == EpilogueInput::Rows ? asRows(builder, loc, input, n) : Value();
      if (kind == EpilogueInput::Columns) {
        auto type = cast<MemRefType>(input.getType());
        if (type.getRank() != 1 || type.getDimSize(0) != n || !hasUnitInnerStride(type))
          return false;
        value = memref::CastOp::create(builder, loc, columnsType(builder.getContext(), n), input);
      }
      if (!value)
        return false;
      captures.push_back(value);
    }
    return true;
  }

  /// Replaces the panel GEMM `base` by one call of a kernel, with `tail` (if
  /// set: an unmerged LoRA's s·Bᵀ into the same output, added in the base's
  /// registers, KernelBuilder::addLowRankTail) and the map that reads their
  /// result as the epilogue when there is one; false, changing nothing, when
  /// the kernel cannot address the operands (the GEMMs stay generics,
  /// lowered to loops).
  bool lowerPanelKernel(ModuleOp module, linalg::GenericOp base, linalg::GenericOp tail) {
    MLIRContext *context = module.getContext();
    Value lhs = base.getDpsInputs()[0], panels = base.getDpsInputs()[1];
    Value out = base.getDpsInits()[0];
    auto panelsType = cast<MemRefType>(panels.getType());
    int64_t tile = panelsType.getDimSize(2);
    if (!hasContiguousRows(cast<MemRefType>(lhs.getType())) ||
        !hasContiguousRows(cast<MemRefType>(out.getType())) || !panelsType.hasStaticShape() ||
        !panelsType.getLayout().isIdentity() || tile % vectorWidth != 0)
      return false;
    int64_t k = cast<MemRefType>(lhs.getType()).getDimSize(1);
    int64_t n = cast<MemRefType>(out.getType()).getDimSize(1);
    std::string name = "peft_panel_gemm_" + std::to_string(k) + "x" + std::to_string(n) + "_" +
                       std::to_string(tile);
    Value low, tailPanels;
    int64_t rank = 0;
    if (tail) {
      low = tail.getDpsInputs()[0];
      tailPanels = tail.getDpsInputs()[1];
      auto lowType = cast<MemRefType>(low.getType());
      auto tailType = cast<MemRefType>(tailPanels.getType());
      rank = tailType.getDimSize(1);
      if (!hasContiguousRows(lowType) || !tailType.hasStaticShape() ||
          !tailType.getLayout().isIdentity() || lowType.getDimSize(1) != rank)
        return false;
      name += "_lowrank" + std::to_string(rank);
    }
    // The op that starts out, if the kernel can do its work: a bias is read
    // as columns.
    Operation *starter = startOf(base, out);
    GemmStart start = matchGemmStart(starter, 2, 1);
    if (start.kind == GemmStart::Bias) {
      auto biasType = dyn_cast<MemRefType>(start.bias.getType());
      if (!biasType || biasType.getRank() != 1 || biasType.getDimSize(0) != n ||
          !hasUnitInnerStride(biasType))
        start = {};
    }
    name += startSuffix(start.kind);
    Operation *last = tail ? tail.getOperation() : base.getOperation();
    SmallVector<Value> gemmInputs = {lhs};
    if (tail)
      gemmInputs.push_back(low);
    SmallVector<Operation *> gemms = {base};
    if (tail)
      gemms.push_back(tail);
    std::optional<FoundEpilogue> epilogue = findEpilogue(gemms, out, gemmInputs);
    SmallVector<Value> extra;
    if (epilogue) {
      OpBuilder atEpilogue(epilogue->op);
      if (!epilogueCaptures(atEpilogue, base.getLoc(), *epilogue, n, extra))
        epilogue.reset();
      else
        name += "_epilogue_" + epilogueKey(epilogue->op, epilogue->kinds);
    }
    // At the last op: what the tail and the epilogue read (S, the epilogue's
    // inputs) is computed by then.
    OpBuilder builder(epilogue ? epilogue->op.getOperation() : last);
    Location loc = base.getLoc();
    SmallVector<Value> captures = {memref::CastOp::create(builder, loc, rowsType(context, k), lhs),
                                   panels};
    if (tail)
      captures.append({memref::CastOp::create(builder, loc, rowsType(context, rank), low),
                       tailPanels});
    captures.push_back(memref::CastOp::create(builder, loc, rowsType(context, n), out));
    if (start.kind == GemmStart::Bias)
      captures.push_back(memref::CastOp::create(builder, loc, columnsType(context, n), start.bias));
    captures.append(extra);
    SmallVector<Type> types = llvm::to_vector(ValueRange(captures).getTypes());
    types.append(2, builder.getIndexType());
    func::FuncOp kernel =
        getOrCreateKernelFunction(module, name, types, [&](OpBuilder &b, Block *body) {
          KernelBuilder kernelBuilder(b, b.getUnknownLoc(), k, n, tile, RhsLayout::Panels,
                                      microRows, vectorWidth, kBlock, mBlock);
          unsigned next = 2;
          if (tail) {
            kernelBuilder.addLowRankTail(body->getArgument(2), body->getArgument(3), rank);
            next = 4;
          }
          Value c = body->getArgument(next++);
          kernelBuilder.startFrom(start.kind, start.kind == GemmStart::Bias
                                                  ? body->getArgument(next++)
                                                  : Value());
          if (epilogue)
            kernelBuilder.addEpilogue(epilogue->op, epilogue->kinds, body->getArgument(next),
                                      body->getArguments().slice(next + 1, extra.size() - 1));
          kernelBuilder.build(body->getArgument(0), body->getArgument(1), c,
                              body->getArgument(captures.size()),
                              body->getArgument(captures.size() + 1));
        });
    // Threads take contiguous runs of panels.
    createParallelCall(builder, loc, kernel, captures,
                       arith::ConstantIndexOp::create(builder, loc, panelsType.getDimSize(0)));
    for (Operation *done : {epilogue ? epilogue->op.getOperation() : nullptr,
                            tail ? tail.getOperation() : nullptr, base.getOperation(),
                            start.kind != GemmStart::Loaded ? starter : nullptr})
      if (done) {
        erased.insert(done);
        done->erase();
      }
    return true;
  }

  /// `operands` cast to fully dynamic strides, as the kernels take them.
  static SmallVector<Value> asKernelArguments(OpBuilder &builder, Location loc,
                                              ValueRange operands) {
    SmallVector<Value> arguments;
    for (Value operand : operands)
      arguments.push_back(memref::CastOp::create(
          builder, loc, withDynamicStrides(cast<MemRefType>(operand.getType())), operand));
    return arguments;
  }

  /// A batched GEMM whose right operand is each row's slot of a table: the
  /// rows run through the kernel that reads B as it is, B read in the table
  /// at the row's slot (no copy), slot by slot, rows of slot -1 skipped, and
  /// consecutive rows of one slot run as one GEMM (SGMV's segments: a batch sorted by
  /// adapter runs one GEMM per adapter). With the slots' ranks, each GEMM
  /// runs over its slot's rank, not the tables' capacity. The gather goes.
  void lowerSlotGemm(ModuleOp module, linalg::GenericOp op, const SlotGather &gather) {
    SmallVector<Value> operands = {op.getDpsInputs()[0], gather.table, op.getDpsInits()[0]};
    Value index = gather.index;
    for (Value operand : operands)
      if (!hasUnitInnerStride(cast<MemRefType>(operand.getType())))
        return lowerBatchedGemm(module, op, 1, /*slotGathers=*/false);
    int64_t rankDim = gather.rankDim;
    Value ranks = gather.ranks;
    auto lhsType = cast<MemRefType>(operands[0].getType());
    auto outType = cast<MemRefType>(operands[2].getType());
    int64_t k = lhsType.getShape().back(), n = outType.getShape().back();
    // Over a slot's rank, the shrink's N or the expansion's K is the rank.
    if (rankDim == 2)
      n = ShapedType::kDynamic;
    if (rankDim == 1)
      k = ShapedType::kDynamic;
    func::FuncOp kernel = getOrCreateRowKernel(module, k, n);
    OpBuilder builder(op);
    Location loc = op.getLoc();
    operands.push_back(index);
    if (ranks)
      operands.push_back(ranks);
    SmallVector<Value> captures = asKernelArguments(builder, loc, operands);
    func::FuncOp slotKernel = getOrCreateSlotKernel(module, kernel, captures, rankDim);
    createParallelCall(builder, loc, slotKernel, captures,
                       memref::DimOp::create(builder, loc, operands[2], 0));
    erased.insert(gather.op);
    op.erase();
    eraseSlotGather(gather);
  }

  /// index peft_slot_runs(index, first, last, mergeable, runs)
  /// (runtime/cpu/model_support.c): the runs of a slot GEMM's batch elements
  /// in slot order.
  static func::FuncOp getOrDeclareSlotRuns(ModuleOp module, MemRefType indexType,
                                           MemRefType runsType) {
    constexpr llvm::StringLiteral name = "peft_slot_runs";
    if (auto existing = module.lookupSymbol<func::FuncOp>(name))
      return existing;
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    Type index = builder.getIndexType();
    auto declaration = func::FuncOp::create(
        builder, module.getLoc(), name,
        builder.getFunctionType({indexType, index, index, index, runsType}, {index}));
    declaration.setPrivate();
    return declaration;
  }

  /// KERNEL_slots(lhs [B, M, K], table [S, K, N], out [B, M, N], index [B],
  /// [ranks [S],] first, last): over elements [first, last) of the batch,
  /// slot by slot (each slot's elements one after another, wherever they
  /// are in the batch), each run of consecutive elements with one slot
  /// s >= 0 is one GEMM of its rows by table[s] (a run is one element where
  /// the rows of consecutive elements are not contiguous). With ranks, along `rankDim`
  /// of the table (2: N, the shrink; 1: K, the expansion) only the slot's
  /// rank is read, and a slot of rank 0 runs nothing.
  func::FuncOp getOrCreateSlotKernel(ModuleOp module, func::FuncOp kernel, ValueRange operands,
                                     int64_t rankDim) {
    SmallVector<Type> types = llvm::to_vector(operands.getTypes());
    std::string name = (kernel.getName() + "_slots").str();
    if (rankDim)
      name += "_ranked" + std::to_string(rankDim);
    for (Type type : types)
      for (int64_t size : cast<MemRefType>(type).getShape().drop_back())
        name += "_" + (ShapedType::isDynamic(size) ? std::string("d") : std::to_string(size));
    if (auto existing = module.lookupSymbol<func::FuncOp>(name))
      return existing;
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    Location loc = builder.getUnknownLoc();
    Type indexType = builder.getIndexType();
    types.append({indexType, indexType});
    auto function = func::FuncOp::create(builder, loc, name, builder.getFunctionType(types, {}));
    function.setPrivate();
    Block *body = function.addEntryBlock();
    builder.setInsertionPointToStart(body);
    unsigned arguments = body->getNumArguments();
    Value lhs = body->getArgument(0), table = body->getArgument(1), out = body->getArgument(2),
          index = body->getArgument(3), first = body->getArgument(arguments - 2),
          last = body->getArgument(arguments - 1);
    Value ranks = rankDim ? body->getArgument(4) : Value();
    auto constant = [&](int64_t value) { return arith::ConstantIndexOp::create(builder, loc, value); };
    Value zero = constant(0), one = constant(1);
    // Offsets and strides, to view rows of consecutive elements as one matrix.
    auto lhsMeta = memref::ExtractStridedMetadataOp::create(builder, loc, lhs);
    auto tableMeta = memref::ExtractStridedMetadataOp::create(builder, loc, table);
    auto outMeta = memref::ExtractStridedMetadataOp::create(builder, loc, out);
    Value rows = memref::DimOp::create(builder, loc, lhs, 1);
    auto contiguous = [&](memref::ExtractStridedMetadataOp meta) {
      return arith::CmpIOp::create(
          builder, loc, arith::CmpIPredicate::eq, meta.getStrides()[0],
          arith::MulIOp::create(builder, loc, rows, meta.getStrides()[1]));
    };
    Value mergeable = arith::AndIOp::create(builder, loc, contiguous(lhsMeta), contiguous(outMeta));
    auto panelsOf = [&](OpBuilder &b, Value columns) {
      return arith::DivUIOp::create(
                 b, loc, arith::AddIOp::create(b, loc, columns, constant(rowTile - 1)),
                 constant(rowTile))
          .getResult();
    };
    auto kernelTypes = kernel.getFunctionType().getInputs();
    // A kernel operand's size `d`: static as its type has it, else `value`.
    auto sizeOf = [&](Type type, unsigned d, Value value) -> OpFoldResult {
      int64_t size = cast<MemRefType>(type).getDimSize(d);
      return ShapedType::isDynamic(size) ? OpFoldResult(value) : builder.getIndexAttr(size);
    };
    // A matrix of `count` elements' rows from `element` on, `columns` wide
    // (offset and row stride from the metadata).
    auto view = [&](OpBuilder &b, memref::ExtractStridedMetadataOp meta, Value element,
                    Value count, Value columns, Type type) {
      Value offset = arith::AddIOp::create(
          b, loc, meta.getOffset(), arith::MulIOp::create(b, loc, element, meta.getStrides()[0]));
      Value size = arith::MulIOp::create(b, loc, count, meta.getSizes()[1]);
      return memref::ReinterpretCastOp::create(
                 b, loc, cast<MemRefType>(type), meta.getBaseBuffer(), OpFoldResult(offset),
                 ArrayRef<OpFoldResult>{size, sizeOf(type, 1, columns)},
                 ArrayRef<OpFoldResult>{meta.getStrides()[1], b.getIndexAttr(1)})
          .getResult();
    };
    // The runs (first element, count) to compute, by slot (peft_slot_runs).
    Value elements = arith::SubIOp::create(builder, loc, last, first);
    auto runsType = MemRefType::get({ShapedType::kDynamic}, builder.getI64Type());
    Value runs = memref::AllocOp::create(builder, loc, runsType,
                                         ValueRange{arith::MulIOp::create(builder, loc, elements,
                                                                          constant(4))});
    Value mergeableIndex = arith::IndexCastOp::create(
        builder, loc, indexType, arith::ExtUIOp::create(builder, loc, builder.getI64Type(), mergeable));
    auto anyIndexType = MemRefType::get(
        {ShapedType::kDynamic}, builder.getI64Type(),
        StridedLayoutAttr::get(builder.getContext(), ShapedType::kDynamic, {ShapedType::kDynamic}));
    func::FuncOp slotRuns = getOrDeclareSlotRuns(module, anyIndexType, runsType);
    Value anyIndex = memref::CastOp::create(builder, loc, anyIndexType, index);
    Value found = func::CallOp::create(builder, loc, slotRuns,
                                       ValueRange{anyIndex, first, last, mergeableIndex, runs})
                      .getResult(0);
    auto eachRun = scf::ForOp::create(builder, loc, zero, found, one);
    {
      OpBuilder::InsertionGuard guard(builder);
      builder.setInsertionPointToStart(eachRun.getBody());
      Value pair = arith::MulIOp::create(builder, loc, eachRun.getInductionVar(), constant(2));
      auto asIndex = [&](Value value) {
        return arith::IndexCastOp::create(builder, loc, indexType, value).getResult();
      };
      Value start = asIndex(memref::LoadOp::create(builder, loc, runs, ValueRange{pair}));
      Value count = asIndex(memref::LoadOp::create(
          builder, loc, runs, ValueRange{arith::AddIOp::create(builder, loc, pair, one)}));
      Value slot = asIndex(memref::LoadOp::create(builder, loc, index, ValueRange{start}));
      // The table's K and N, or the slot's rank in place of one.
      Value tableK = tableMeta.getSizes()[1], tableN = tableMeta.getSizes()[2];
      if (rankDim) {
        Value rank = asIndex(arith::FPToSIOp::create(
            builder, loc, builder.getI64Type(),
            memref::LoadOp::create(builder, loc, ranks, ValueRange{slot})));
        (rankDim == 2 ? tableN : tableK) = rank;
        // A slot of rank 0 on this layer computes nothing.
        auto some = scf::IfOp::create(
            builder, loc, arith::CmpIOp::create(builder, loc, arith::CmpIPredicate::ugt, rank, zero),
            /*withElseRegion=*/false);
        builder.setInsertionPointToStart(&some.getThenRegion().front());
      }
      Value matrixB = memref::ReinterpretCastOp::create(
          builder, loc, cast<MemRefType>(kernelTypes[1]), tableMeta.getBaseBuffer(),
          OpFoldResult(arith::AddIOp::create(
              builder, loc, tableMeta.getOffset(),
              arith::MulIOp::create(builder, loc, slot, tableMeta.getStrides()[0]))),
          ArrayRef<OpFoldResult>{sizeOf(kernelTypes[1], 0, tableK),
                                 sizeOf(kernelTypes[1], 1, tableN)},
          ArrayRef<OpFoldResult>{tableMeta.getStrides()[1], builder.getIndexAttr(1)});
      func::CallOp::create(builder, loc, kernel,
                           ValueRange{view(builder, lhsMeta, start, count, tableK, kernelTypes[0]),
                                      matrixB,
                                      view(builder, outMeta, start, count, tableN, kernelTypes[2]),
                                      zero, panelsOf(builder, tableN)});
    }
    memref::DeallocOp::create(builder, loc, runs);
    func::ReturnOp::create(builder, loc);
    return function;
  }

  /// Replaces a batched GEMM by a call that runs the matrices of its batch on
  /// the runtime's threads, each through the kernel that reads B as it is
  /// (B each row's slot of a table: lowerSlotGemm).
  void lowerBatchedGemm(ModuleOp module, linalg::GenericOp op, unsigned batch,
                        bool slotGathers = true) {
    if (slotGathers && batch == 1)
      if (std::optional<SlotGather> gather = slotGatherOf(op, op.getDpsInputs()[1]))
        return lowerSlotGemm(module, op, *gather);
    SmallVector<Value> operands = {op.getDpsInputs()[0], op.getDpsInputs()[1],
                                   op.getDpsInits()[0]};
    for (Value operand : operands)
      if (!hasUnitInnerStride(cast<MemRefType>(operand.getType())))
        return;
    auto lhsType = cast<MemRefType>(operands[0].getType());
    auto outType = cast<MemRefType>(operands[2].getType());
    int64_t k = lhsType.getShape().back(), n = outType.getShape().back();
    func::FuncOp kernel = getOrCreateRowKernel(module, k, n);
    OpBuilder builder(op);
    Location loc = op.getLoc();
    SmallVector<Value> captures = asKernelArguments(builder, loc, operands);
    func::FuncOp batchKernel = getOrCreateBatchKernel(module, kernel, captures, batch);
    Value count = arith::ConstantIndexOp::create(builder, loc, 1);
    for (unsigned d = 0; d < batch; ++d)
      count = arith::MulIOp::create(builder, loc, count,
                                    memref::DimOp::create(builder, loc, operands[2], d));
    createParallelCall(builder, loc, batchKernel, captures, count);
    op.erase();
  }

  /// KERNEL_batch(lhs, rhs, out, first, last): the kernel on matrices
  /// [first, last) of the batch, every panel each.
  func::FuncOp getOrCreateBatchKernel(ModuleOp module, func::FuncOp kernel, ValueRange operands,
                                      unsigned batch) {
    SmallVector<Type> types = llvm::to_vector(operands.getTypes());
    std::string name = (kernel.getName() + "_batch").str();
    for (Type type : types)
      for (int64_t size : cast<MemRefType>(type).getShape().drop_back(2))
        name += "_" + (ShapedType::isDynamic(size) ? std::string("d") : std::to_string(size));
    if (auto existing = module.lookupSymbol<func::FuncOp>(name))
      return existing;
    OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
    Location loc = builder.getUnknownLoc();
    types.append({builder.getIndexType(), builder.getIndexType()});
    auto function = func::FuncOp::create(builder, loc, name, builder.getFunctionType(types, {}));
    function.setPrivate();
    Block *body = function.addEntryBlock();
    builder.setInsertionPointToStart(body);
    Value lhs = body->getArgument(0), rhs = body->getArgument(1), out = body->getArgument(2);
    auto loop = scf::ForOp::create(builder, loc, body->getArgument(3), body->getArgument(4),
                                   arith::ConstantIndexOp::create(builder, loc, 1));
    builder.setInsertionPointToStart(loop.getBody());
    // The batch position, innermost dimension fastest.
    SmallVector<Value> position(batch);
    Value rest = loop.getInductionVar();
    for (unsigned d = batch; d-- > 0;) {
      Value size = memref::DimOp::create(builder, loc, out, d);
      position[d] = arith::RemUIOp::create(builder, loc, rest, size);
      rest = arith::DivUIOp::create(builder, loc, rest, size);
    }
    SmallVector<Value> matrices, batched = {lhs, rhs, out};
    for (auto [operand, kernelType] :
         llvm::zip(batched, kernel.getFunctionType().getInputs().take_front(3))) {
      auto type = cast<MemRefType>(operand.getType());
      SmallVector<OpFoldResult> offsets(position.begin(), position.end()), sizes, strides;
      offsets.append({builder.getIndexAttr(0), builder.getIndexAttr(0)});
      sizes.assign(batch, builder.getIndexAttr(1));
      for (unsigned d = batch; d < batch + 2; ++d)
        sizes.push_back(memref::getMixedSize(builder, loc, operand, d));
      strides.assign(batch + 2, builder.getIndexAttr(1));
      auto matrixType = memref::SubViewOp::inferRankReducedResultType(
          {type.getDimSize(batch), type.getDimSize(batch + 1)}, type, offsets, sizes, strides);
      Value matrix = memref::SubViewOp::create(builder, loc, cast<MemRefType>(matrixType), operand,
                                               offsets, sizes, strides);
      matrices.push_back(memref::CastOp::create(builder, loc, kernelType, matrix));
    }
    Value columns = memref::DimOp::create(builder, loc, out, batch + 1);
    Value tile = arith::ConstantIndexOp::create(builder, loc, rowTile);
    Value panels = arith::DivUIOp::create(
        builder, loc,
        arith::AddIOp::create(builder, loc, columns,
                              arith::ConstantIndexOp::create(builder, loc, rowTile - 1)),
        tile);
    matrices.append({arith::ConstantIndexOp::create(builder, loc, 0), panels});
    func::CallOp::create(builder, loc, kernel, matrices);
    builder.setInsertionPointAfter(loop);
    func::ReturnOp::create(builder, loc);
    return function;
  }

  /// The ops lowered into kernels so far (whose pointers may be stale).
  llvm::DenseSet<Operation *> erased;

  /// The kernel that reads B's rows as they are (batched GEMMs), K and N
  /// static or not.
  func::FuncOp getOrCreateRowKernel(ModuleOp module, int64_t k, int64_t n) {
    auto size = [](int64_t value) {
      return ShapedType::isDynamic(value) ? std::string("d") : std::to_string(value);
    };
    std::string name = "peft_row_gemm_" + size(k) + "x" + size(n) + "_" + std::to_string(rowTile);
    MLIRContext *context = module.getContext();
    Type index = IndexType::get(context);
    return getOrCreateKernelFunction(
        module, name,
        {rowsType(context, k), rowsType(context, n), rowsType(context, n), index, index},
        [&](OpBuilder &builder, Block *body) {
          KernelBuilder(builder, builder.getUnknownLoc(), k, n, rowTile, RhsLayout::Rows,
                        microRows, vectorWidth, kBlock, mBlock)
              .build(body->getArgument(0), body->getArgument(1), body->getArgument(2),
                     body->getArgument(3), body->getArgument(4));
        });
  }
};

} // namespace
