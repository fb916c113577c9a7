//===- CudaLaunchGemms.cpp - Contractions as tiled shared-memory kernels ---===//
//
// Each multiply-accumulate into f32 whose loops split into batch, M, N and K
// (GEMMs, the LoRA shrink and expansion, attention's batched products, and
// convolutions as implicit GEMMs: M the output positions, K the input
// channels and window, A read through its affine map) becomes one launch of
// a tiled kernel; the loop-per-element kernels of peft-cuda-launch-kernels
// would read each operand element M or N times from global memory.
//
// M, N and K are each their loops linearized (last fastest). Block (bx, by,
// bz): the tile of C at (by·tileM, bx·tileN) of batch bz. Each K step the
// block stages A's tileM x depth and B's depth x tileN in shared memory, each
// thread loading elements of each, neighbouring threads neighbouring
// addresses along the operand's fastest dimension; elements outside the
// operands are zeros, so the compute needs no guards. S stages: while the
// block computes step s, steps s + 1 to s + S - 1 arrive in the others (by
// cp.async where the operand allows), so the loads' latency hides behind
// S - 1 steps of arithmetic; one barrier per step. How a block computes
// depends on the operands:
//
// - f32: 64 x 64 tiles, 256 threads, three stages, K steps of 16 staged
//   k-major (rows padded by one against bank conflicts); thread t
//   accumulates rows t/16 + 16i and columns t%16 + 16j (i, j < 4) with FMAs,
//   so that a warp's loads from shared memory hit distinct banks and its
//   stores to C are contiguous.
// - f16 or bf16: tensor cores. 64 x 64 tiles, four warps of 32 x 32 and
//   three stages; or, for C large enough to fill the GPU with them, 128 x
//   128 tiles, eight warps of 64 x 32 and four stages (80 KiB, dynamic
//   shared memory: peft-cuda-dynamic-shared-memory). K steps of 32 staged
//   row-major (a row of A, or of B's N, holds its K), rows of 40 halves so
//   that ldmatrix's eight 16-byte rows fall in distinct banks. Per 16 of K a
//   warp loads its fragments with ldmatrix (x4: an m16 tile of A, two n8
//   tiles of B) and issues an mma.sync m16n8k16 per pair, accumulating in
//   f32.
//===----------------------------------------------------------------------===//
#include "lowering/cuda/Passes.h"

#include "lowering/BufferUses.h"
#include "lowering/Epilogue.h"
#include "lowering/GemmStart.h"
#include "lowering/SlotGather.h"

#include "mlir/Dialect/Affine/Utils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace peft {
#define GEN_PASS_DEF_CUDALAUNCHGEMMS
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;
using peft::aliasesOf;
using peft::interferes;
using peft::rootOf;

namespace {

/// How a kernel covers C and how deep it pipelines K.
struct KernelShape {
  int64_t tileM, tileN;         ///< Rows and columns of C per block.
  int64_t warpTileM, warpTileN; ///< Tensor cores: rows and columns of C per warp.
  /// K steps in shared memory: the one computed and `stages - 1` arriving,
  /// so that a load has that many steps' arithmetic to land behind.
  int64_t stages;

  int64_t warps() const { return (tileM / warpTileM) * (tileN / warpTileN); }
};

/// FMAs on f32: a 16 x 16 grid of threads, each a 4 x 4 block of C.
namespace simt {
constexpr KernelShape kShape = {64, 64, 64, 64, 3};
constexpr int64_t kDepth = 16; ///< K per shared-memory step.
constexpr int64_t kThreadsPerSide = 16;
constexpr int64_t kThreads = kThreadsPerSide * kThreadsPerSide;
constexpr int64_t kPerThread = kShape.tileM / kThreadsPerSide; ///< Rows (and columns) per thread.
constexpr int64_t kPadded = kShape.tileM + 1;                  ///< A staged row, padded.
} // namespace simt

/// Tensor cores on f16 or bf16: mma.sync m16n8k16, f32 accumulators.
namespace mma {
/// Four warps of 32 x 32, three stages (30 KiB of shared memory): many
/// blocks, for the GEMMs of a model's layers.
constexpr KernelShape kSmall = {64, 64, 32, 32, 3};
/// Eight warps of 64 x 32, four stages (80 KiB: dynamic shared memory, past
/// the 48 KiB a kernel may have without opting in): half the loads from
/// global memory per multiply of kSmall, for GEMMs large enough to fill the
/// GPU with them.
constexpr KernelShape kLarge = {128, 128, 64, 32, 4};
/// kLarge where C has at least this many of its tiles: two blocks for each
/// SM of the largest GPUs we target (132 on an H100), so that the larger
/// tiles leave no SM idle. A guess until measured on a GPU.
constexpr int64_t kLargeMinBlocks = 256;
constexpr int64_t kWarpSize = 32;
constexpr int64_t kM = 16, kN = 8, kK = 16; ///< One mma.sync.
constexpr int64_t kDepth = 2 * kK; ///< K per shared-memory step.
/// A staged row of K (A's, or B's stored [N, K]): 80 bytes, so ldmatrix's
/// rows are 16-byte aligned and eight consecutive ones start in distinct
/// groups of four banks.
constexpr int64_t kRow = kDepth + 8;
/// Padding of a staged row of N (B's stored [K, N], read by ldmatrix
/// transposed), for the same reasons: 144 or 272 bytes.
constexpr int64_t kRowOfNPadding = 8;
} // namespace mma

/// A contraction the kernel computes: C[batch, M, N] += A[batch, M, K] ·
/// B[batch, K, N] accumulated in f32 (A and B f32, f16 or bf16), C indexed by
/// a projection of the loops, A and B by any affine maps of theirs.
struct Contraction {
  linalg::LinalgOp op;
  /// The loops of each role: batch, M and N in C's order, K in the order B
  /// (the second input) is laid out, so that its last is B's fastest.
  SmallVector<unsigned, 2> batch, m, n, k;

  Value c() { return op.getDpsInitOperand(0)->get(); }
  AffineMap cMap() { return op.getMatchingIndexingMap(op.getDpsInitOperand(0)); }
  /// What each dimension of C is: 0 batch, 1 M, 2 N.
  SmallVector<int> cRoles() {
    SmallVector<int> roles;
    AffineMap map = cMap();
    for (unsigned r = 0; r < map.getNumResults(); ++r) {
      unsigned d = map.getDimPosition(r);
      roles.push_back(llvm::is_contained(m, d) ? 1 : llvm::is_contained(n, d) ? 2 : 0);
    }
    return roles;
  }
};

/// Whether `op`'s body is out + a · b, a and b its inputs (or them widened).
static bool isMultiplyAccumulate(linalg::LinalgOp op) {
  Block *body = op.getBlock();
  if (body->getOperations().size() > 5)
    return false;
  auto add = body->getTerminator()->getOperand(0).getDefiningOp<arith::AddFOp>();
  Value out = body->getArgument(2);
  if (!add || !out.hasOneUse())
    return false;
  Value product = add.getLhs() == out ? add.getRhs() : add.getRhs() == out ? add.getLhs() : Value();
  auto mul = product ? product.getDefiningOp<arith::MulFOp>() : arith::MulFOp();
  if (!mul)
    return false;
  auto source = [](Value v) {
    auto widened = v.getDefiningOp<arith::ExtFOp>();
    return widened ? widened.getIn() : v;
  };
  Value x = source(mul.getLhs()), y = source(mul.getRhs());
  Value a = body->getArgument(0), b = body->getArgument(1);
  return (x == a && y == b) || (x == b && y == a);
}

static std::optional<Contraction> matchContraction(linalg::LinalgOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1)
    return std::nullopt;
  // f32 accumulation; the operands f32 or half types, widened when staged.
  if (!getElementTypeOrSelf(op.getDpsInitOperand(0)->get().getType()).isF32())
    return std::nullopt;
  for (OpOperand *input : op.getDpsInputOperands())
    if (!isa<Float32Type, Float16Type, BFloat16Type>(getElementTypeOrSelf(input->get().getType())))
      return std::nullopt;
  if (!isMultiplyAccumulate(op))
    return std::nullopt;
  AffineMap aMap = op.getMatchingIndexingMap(op.getDpsInputOperand(0));
  AffineMap bMap = op.getMatchingIndexingMap(op.getDpsInputOperand(1));
  AffineMap cMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  if (!cMap.isProjectedPermutation() || aMap.getNumSymbols() || bMap.getNumSymbols())
    return std::nullopt;
  Contraction gemm{op, {}, {}, {}, {}};
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  for (unsigned r = 0; r < cMap.getNumResults(); ++r) {
    unsigned d = cMap.getDimPosition(r);
    bool inA = aMap.isFunctionOfDim(d), inB = bMap.isFunctionOfDim(d);
    if (inA && inB)
      gemm.batch.push_back(d);
    else if (inA)
      gemm.m.push_back(d);
    else if (inB)
      gemm.n.push_back(d);
    else
      return std::nullopt; // C broadcast along a loop: not a product.
  }
  // K: every reduction loop, read by both; in the order of B's results.
  SmallVector<std::pair<unsigned, unsigned>> kByPosition;
  for (unsigned d = 0; d < op.getNumLoops(); ++d) {
    if (iterators[d] != utils::IteratorType::reduction)
      continue;
    if (!aMap.isFunctionOfDim(d) || !bMap.isFunctionOfDim(d))
      return std::nullopt;
    unsigned last = 0;
    for (unsigned r = 0; r < bMap.getNumResults(); ++r)
      if (bMap.getResult(r).isFunctionOfDim(d))
        last = r;
    kByPosition.push_back({last, d});
  }
  llvm::stable_sort(kByPosition, [](auto x, auto y) { return x.first < y.first; });
  for (auto [position, d] : kByPosition)
    gemm.k.push_back(d);
  if (gemm.m.empty() || gemm.n.empty() || gemm.k.empty() ||
      gemm.batch.size() + gemm.m.size() + gemm.n.size() + gemm.k.size() != op.getNumLoops())
    return std::nullopt;
  return gemm;
}

/// The contractions after `first` in its block that add to the same C, the
/// same way, where the kernel can run at the last of them: nothing between
/// touches C or writes what an earlier one reads. A layer and its unmerged
/// LoRA's expansion (x·W, then (x·A)·B into the same output) are one kernel,
/// the low-rank product a few more K steps of the layer's tiles.
static SmallVector<Contraction> productsInto(Contraction first,
                                             llvm::DenseSet<Operation *> &grouped) {
  SmallVector<Contraction> products = {first};
  llvm::SmallPtrSet<Value, 8> touched = aliasesOf(rootOf(first.c())), read;
  auto readAll = [&](Contraction &product) {
    for (Value input : product.op.getDpsInputs())
      read.insert_range(aliasesOf(rootOf(input)));
  };
  readAll(first);
  SmallVector<int> roles = first.cRoles();
  for (Operation *op = first.op->getNextNode(); op; op = op->getNextNode()) {
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
      std::optional<Contraction> next = matchContraction(linalgOp);
      if (next && next->c() == first.c() && next->cRoles() == roles) {
        products.push_back(*next);
        grouped.insert(op);
        readAll(*next);
        continue;
      }
    }
    if (interferes(op, touched, read))
      break;
  }
  return products;
}

/// The half type both operands of every product are, if any: what the
/// tensor cores multiply.
static Type commonHalfType(MutableArrayRef<Contraction> products) {
  Type common;
  for (Contraction &product : products)
    for (Value input : product.op.getDpsInputs()) {
      Type element = getElementTypeOrSelf(input.getType());
      if (!isa<Float16Type, BFloat16Type>(element) || (common && element != common))
        return Type();
      common = element;
    }
  return common;
}

/// Builds the launch of the products into one C at the last of them, in
/// place of them all.
class GemmKernelBuilder {
public:
  /// `tensorCores`: products of f16 or bf16 run on them; `asyncCopies`: f32
  /// operands are staged with cp.async.
  /// `tile`: 64 or 128 for tensor cores, or 0 to choose by C's size.
  GemmKernelBuilder(SmallVector<Contraction> group, bool tensorCores, bool asyncCopies,
                    int64_t tile)
      : products(std::move(group)),
        b(products.back().op.getLoc(), products.back().op.getOperation()),
        asyncCopies(asyncCopies), tile(tile) {
    if (tensorCores)
      half = commonHalfType(products);
  }

  void build() {
    findStart();
    findEpilogue();
    findSlotReads();
    if (epilogue) // Where its inputs are all computed.
      b.setInsertionPoint(epilogue->op);
    for (Contraction &product : products) {
      SmallVector<Value> &loopSizes = sizes.emplace_back();
      for (Range range : product.op.createLoopRanges(b, b.getLoc()))
        loopSizes.push_back(getValueOrCreateConstantIndexOp(b, b.getLoc(), range.size));
      kSize.push_back(linearSize(loopSizes, product.k));
    }
    // The grid from the first product; the others add to the same C.
    Contraction &first = products.front();
    rows = linearSize(sizes[0], first.m);
    columns = linearSize(sizes[0], first.n);
    if (epilogue) {
      for (int64_t d = 0; d < cast<MemRefType>(first.c().getType()).getRank(); ++d)
        cSizes.push_back(memref::DimOp::create(b, first.c(), d));
      Value target = epilogue->op.getDpsInits()[0];
      for (int64_t d = 0; d < cast<MemRefType>(target.getType()).getRank(); ++d)
        targetSizes.push_back(memref::DimOp::create(b, target, d));
    }
    batches = linearSize(sizes[0], first.batch);
    bRowPerK = half && llvm::any_of(products, [](Contraction &product) {
                 OpOperand *operand = product.op.getDpsInputOperand(1);
                 return !product.op.getMatchingIndexingMap(operand).getResults().back()
                             .isFunctionOfDim(product.k.back());
               });
    if (!half) {
      launchIn(simt::kShape);
    } else if (tile) {
      launchIn(tile == mma::kLarge.tileM ? mma::kLarge : mma::kSmall);
    } else if (std::optional<bool> large = largeTilesKnown()) {
      launchIn(*large ? mma::kLarge : mma::kSmall);
    } else {
      // Sizes known only at run time: both kernels, the one for them chosen.
      auto choice = scf::IfOp::create(b, largeTilesFit(), /*withElseRegion=*/true);
      b.setInsertionPointToStart(&choice.getThenRegion().front());
      launchIn(mma::kLarge);
      b.setInsertionPointToStart(&choice.getElseRegion().front());
      launchIn(mma::kSmall);
    }
    if (start.kind != peft::GemmStart::Loaded)
      starter->erase(); // The kernel writes all of C from it.
    for (Contraction &product : products)
      product.op->erase();
    for (std::optional<peft::SlotGather> &slots : slotReads)
      if (slots)
        peft::eraseSlotGather(*slots);
    if (epilogue)
      epilogue->op->erase();
  }

private:
  /// The launch of the kernel in `kernelShape` where it covers C, at the
  /// builder's insertion point (left unchanged).
  void launchIn(KernelShape kernelShape) {
    OpBuilder::InsertionGuard guard(b);
    shape = kernelShape;
    Value columnBlocks = arith::CeilDivUIOp::create(b, columns, constant(shape.tileN));
    Value rowBlocks = arith::CeilDivUIOp::create(b, rows, constant(shape.tileM));
    // CUDA refuses an empty grid; C is unchanged when there is nothing to add.
    Value blocks = arith::MulIOp::create(
        b, arith::MulIOp::create(b, columnBlocks, rowBlocks), batches);
    Value any = arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, blocks, constant(0));
    auto nonEmpty = scf::IfOp::create(b, any, /*withElseRegion=*/false);
    b.setInsertionPointToStart(&nonEmpty.getThenRegion().front());

    MLIRContext *context = b.getContext();
    auto workgroup = gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup);
    auto priv = gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Private);
    // SIMT: [stage][k][outer] of f32. Tensor cores: A [stage][m][k] of the
    // half type, B [stage][n][k] or, when some product's B has N fastest (a
    // weight stored [K, N]), [stage][k][n].
    int64_t stages = shape.stages;
    auto stagedA =
        half ? MemRefType::get({stages, shape.tileM, mma::kRow}, half, nullptr, workgroup)
             : MemRefType::get({stages, simt::kDepth, simt::kPadded}, b.getF32Type(), nullptr,
                               workgroup);
    auto stagedB =
        !half      ? stagedA
        : bRowPerK ? MemRefType::get({stages, mma::kDepth, shape.tileN + mma::kRowOfNPadding},
                                     half, nullptr, workgroup)
                   : MemRefType::get({stages, shape.tileN, mma::kRow}, half, nullptr, workgroup);
    int64_t perThread = half ? mmaTilesM() * mmaTilesN() * 4 : simt::kPerThread * simt::kPerThread;
    auto accumulators = MemRefType::get({perThread}, b.getF32Type(), nullptr, priv);
    Value one = constant(1);
    auto launch = gpu::LaunchOp::create(
        b, columnBlocks, rowBlocks, batches, constant(threads()), one, one,
        /*dynamicSharedMemorySize=*/nullptr, /*asyncTokenType=*/nullptr, ValueRange{},
        TypeRange{stagedA, stagedB}, TypeRange{accumulators});
    b.setInsertionPointToStart(&launch.getBody().front());
    gpu::TerminatorOp terminator = gpu::TerminatorOp::create(b);
    b.setInsertionPoint(terminator);
    buildBody(launch);
  }

  /// Whether C takes mma::kLarge, where its sizes say at compile time.
  std::optional<bool> largeTilesKnown() {
    std::optional<int64_t> m = getConstantIntValue(rows), n = getConstantIntValue(columns),
                           count = getConstantIntValue(batches);
    if (!m || !n || !count)
      return std::nullopt;
    return llvm::divideCeil(*m, mma::kLarge.tileM) * llvm::divideCeil(*n, mma::kLarge.tileN) *
               *count >=
           mma::kLargeMinBlocks;
  }
  /// Whether C takes mma::kLarge, computed at run time.
  Value largeTilesFit() {
    Value tiles = arith::MulIOp::create(
        b,
        arith::MulIOp::create(b, arith::CeilDivUIOp::create(b, rows, constant(mma::kLarge.tileM)),
                              arith::CeilDivUIOp::create(b, columns,
                                                         constant(mma::kLarge.tileN))),
        batches);
    return arith::CmpIOp::create(b, arith::CmpIPredicate::uge, tiles,
                                 constant(mma::kLargeMinBlocks));
  }

  Value constant(int64_t value) { return arith::ConstantIndexOp::create(b, value); }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value add(Value x, int64_t y) { return y ? add(x, constant(y)) : x; }
  Value mul(Value x, int64_t y) { return arith::MulIOp::create(b, x, constant(y)); }
  Value div(Value x, int64_t y) { return arith::DivUIOp::create(b, x, constant(y)); }
  Value rem(Value x, int64_t y) { return arith::RemUIOp::create(b, x, constant(y)); }
  int64_t depth() const { return half ? mma::kDepth : simt::kDepth; }
  int64_t threads() const { return half ? shape.warps() * mma::kWarpSize : simt::kThreads; }
  /// Tensor cores: mma.sync tiles along a warp's rows and columns.
  int64_t mmaTilesM() const { return shape.warpTileM / mma::kM; }
  int64_t mmaTilesN() const { return shape.warpTileN / mma::kN; }

  /// Where C's sums start: the op that writes C just before the first
  /// product, when it writes zeros or a bias along C's one N loop, is taken
  /// over by the kernel (C written once, not filled and then read back).
  void findStart() {
    Contraction &first = products.front();
    AffineMap cMap = first.cMap();
    if (first.n.size() != 1)
      return;
    starter = peft::startOf(first.op, first.c());
    if (!starter)
      return;
    unsigned channel = *cMap.getResultPosition(getAffineDimExpr(first.n.front(), b.getContext()));
    start = peft::matchGemmStart(starter, cMap.getNumResults(), channel, /*widenedBias=*/true);
  }

  /// The map that alone reads C after the products, run as the kernel's
  /// epilogue: the kernel writes its result instead of C. Its element is
  /// found from C's linear index, so C must be a contiguous buffer of the
  /// kernel's own (an allocation) that the map reads reshaped at most.
  void findEpilogue() {
    SmallVector<Operation *> ops;
    SmallVector<Value> inputs;
    for (Contraction &product : products) {
      ops.push_back(product.op);
      llvm::append_range(inputs, product.op.getDpsInputs());
    }
    Value c = products.front().c();
    epilogue = peft::findEpilogue(ops, c, inputs, peft::EpilogueTypes::Floats);
    if (!epilogue)
      return;
    auto kind = llvm::find(epilogue->kinds, peft::EpilogueInput::Accumulator);
    Value read = epilogue->op.getDpsInputs()[kind - epilogue->kinds.begin()];
    while (read != c) {
      if (auto expand = read.getDefiningOp<memref::ExpandShapeOp>())
        read = expand.getSrc();
      else if (auto collapse = read.getDefiningOp<memref::CollapseShapeOp>())
        read = collapse.getSrc();
      else if (auto cast = read.getDefiningOp<memref::CastOp>())
        read = cast.getSource();
      else
        return epilogue.reset();
    }
    if (!cast<MemRefType>(c.getType()).getLayout().isIdentity() ||
        !isa_and_nonnull<memref::AllocOp>(peft::rootOf(c).getDefiningOp()))
      epilogue.reset();
  }

  /// Each product whose B is its batch elements' adapter slots selected
  /// from a table (peft.multi_lora's lowering) reads the table at the
  /// element's slot instead, and the selection goes: no copy. Each block
  /// then runs K over its slot's rank where K is the rank (the expansion),
  /// and no K at all for an element without an adapter (index -1: its
  /// update is scaled by 0, so C keeps its start).
  void findSlotReads() {
    for (Contraction &product : products) {
      std::optional<peft::SlotGather> &slots = slotReads.emplace_back();
      OpOperand *operand = product.op.getDpsInputOperand(1);
      AffineMap map = product.op.getMatchingIndexingMap(operand);
      if (product.batch.size() != 1 || map.getNumResults() != 3 ||
          map.getResult(0) != getAffineDimExpr(product.batch.front(), b.getContext()))
        continue;
      slots = peft::slotGatherOf(product.op, operand->get());
    }
  }

  /// Per block: each product's K (linearized), its slot's rank where that
  /// bounds it and 0 for an element without a slot (findSlotReads), and the
  /// slot its B is read at.
  void boundSlotReads() {
    kBound.assign(kSize.begin(), kSize.end());
    slotOf.assign(products.size(), Value());
    for (auto [p, slots] : llvm::enumerate(slotReads)) {
      if (!slots)
        continue;
      Value raw = memref::LoadOp::create(b, slots->index,
                                         ValueRange{indexOf[p][products[p].batch.front()]});
      Value none = arith::CmpIOp::create(b, arith::CmpIPredicate::slt, raw,
                                         arith::ConstantIntOp::create(b, raw.getType(), 0));
      slotOf[p] = arith::MaxSIOp::create(
          b, arith::IndexCastOp::create(b, b.getIndexType(), raw), constant(0));
      Value bound = kSize[p];
      if (slots->ranks && slots->rankDim == 1) {
        Value rank = memref::LoadOp::create(b, slots->ranks, ValueRange{slotOf[p]});
        bound = arith::MinUIOp::create(
            b, bound,
            arith::IndexCastOp::create(b, b.getIndexType(),
                                       arith::FPToSIOp::create(b, b.getI64Type(), rank)));
      }
      kBound[p] = arith::SelectOp::create(b, none, constant(0), bound);
    }
  }

  /// Product `p`'s `operand` and its indices at `map` from the loop indices
  /// set: its B read in its slot table at the block's slot (findSlotReads).
  std::pair<Value, SmallVector<Value>> readAt(size_t p, Value operand, AffineMap map) {
    SmallVector<Value> indices = indicesOf(p, map);
    if (slotReads[p] && operand == products[p].op.getDpsInputs()[1]) {
      indices[0] = slotOf[p];
      return {slotReads[p]->table, indices};
    }
    return {operand, indices};
  }

  /// Stores `sum`, C's element at `indices`, through the epilogue: its
  /// element the one at C's linear index, its inputs read there (rows) or at
  /// its last index (columns), its body applied, its output written.
  void storeThroughEpilogue(ArrayRef<Value> indices, Value sum) {
    Value linear = constant(0);
    for (auto [index, size] : llvm::zip(indices, cSizes))
      linear = add(arith::MulIOp::create(b, linear, size), index);
    SmallVector<Value> at(targetSizes.size());
    for (size_t d = at.size(); d-- > 1;) {
      at[d] = arith::RemUIOp::create(b, linear, targetSizes[d]);
      linear = arith::DivUIOp::create(b, linear, targetSizes[d]);
    }
    at[0] = linear;
    linalg::GenericOp map = epilogue->op;
    Block &body = map.getRegion().front();
    IRMapping mapping;
    for (auto [kind, input, argument] :
         llvm::zip(epilogue->kinds, map.getDpsInputs(), body.getArguments())) {
      Value value = sum;
      if (kind == peft::EpilogueInput::Rows)
        value = memref::LoadOp::create(b, input, at);
      else if (kind == peft::EpilogueInput::Columns)
        value = memref::LoadOp::create(b, input, ValueRange{at.back()});
      mapping.map(argument, value);
    }
    for (Operation &op : body.without_terminator())
      b.clone(op, mapping);
    memref::StoreOp::create(b, mapping.lookupOrDefault(body.getTerminator()->getOperand(0)),
                            map.getDpsInits()[0], at);
  }

  /// The product of the trip counts of `loops`.
  Value linearSize(ArrayRef<Value> loopSizes, ArrayRef<unsigned> loops) {
    Value size = constant(1);
    for (unsigned d : loops)
      size = arith::MulIOp::create(b, size, loopSizes[d]);
    return size;
  }

  /// Sets product `p`'s indices of `loops` from their linear index `linear`
  /// (the last loop fastest).
  void delinearize(size_t p, Value linear, ArrayRef<unsigned> loops) {
    for (size_t i = loops.size(); i-- > 0;) {
      if (i == 0) {
        indexOf[p][loops[0]] = linear;
        break;
      }
      indexOf[p][loops[i]] = arith::RemUIOp::create(b, linear, sizes[p][loops[i]]);
      linear = arith::DivUIOp::create(b, linear, sizes[p][loops[i]]);
    }
  }

  /// An element of C a thread holds: its row and column in the tile, and
  /// its slot among the thread's accumulators.
  struct Held {
    Value row, column;
    int64_t slot;
  };

  void buildBody(gpu::LaunchOp launch) {
    Value thread = launch.getThreadIds().x;
    gpu::KernelDim3 blockIds = launch.getBlockIds();
    Value rowBase = mul(blockIds.y, shape.tileM);
    Value columnBase = mul(blockIds.x, shape.tileN);
    // The batch indices of the block, by C's dimension, the last fastest;
    // each product's batch loops take them through its map of C.
    Contraction &first = products.front();
    AffineMap firstC = first.cMap();
    SmallVector<Value> batchOfC(firstC.getNumResults());
    Value rest = blockIds.z;
    for (int64_t r = firstC.getNumResults() - 1; r >= 0; --r) {
      unsigned d = firstC.getDimPosition(r);
      if (!llvm::is_contained(first.batch, d))
        continue;
      batchOfC[r] = arith::RemUIOp::create(b, rest, sizes[0][d]);
      rest = arith::DivUIOp::create(b, rest, sizes[0][d]);
    }
    // Nothing from the other kernel, if any.
    indexOf.assign(products.size(), llvm::DenseMap<unsigned, Value>());
    for (auto [p, product] : llvm::enumerate(products)) {
      AffineMap map = product.cMap();
      for (unsigned r = 0; r < map.getNumResults(); ++r)
        if (batchOfC[r])
          indexOf[p][map.getDimPosition(r)] = batchOfC[r];
    }
    boundSlotReads();
    // Where the thread is in the tile (FMAs), or in its warp and where its
    // warp is (tensor cores).
    if (half) {
      lane = rem(thread, mma::kWarpSize);
      Value warp = div(thread, mma::kWarpSize);
      int64_t warpsPerRow = shape.tileN / shape.warpTileN;
      warpRow = mul(div(warp, warpsPerRow), shape.warpTileM);
      warpColumn = mul(rem(warp, warpsPerRow), shape.warpTileN);
    } else {
      threadRow = div(thread, simt::kThreadsPerSide);
      threadColumn = rem(thread, simt::kThreadsPerSide);
    }
    Value stagedA = launch.getWorkgroupAttributions()[0];
    Value stagedB = launch.getWorkgroupAttributions()[1];
    Value acc = launch.getPrivateAttributions()[0];
    int64_t perThread = cast<MemRefType>(acc.getType()).getNumElements();

    Value zero = arith::ConstantFloatOp::create(b, b.getF32Type(), APFloat(0.0f));
    for (int64_t i = 0; i < perThread; ++i)
      memref::StoreOp::create(b, zero, acc, constant(i));

    for (auto [p, product] : llvm::enumerate(products)) {
      linalg::LinalgOp op = product.op;
      OpOperand *a = op.getDpsInputOperand(0), *bOperand = op.getDpsInputOperand(1);
      // Step s computes stage s % S while steps s + 1 to s + S - 1 arrive in
      // the others (asynchronous copies; prefetches past K are all zeros).
      int64_t stages = shape.stages;
      auto stageBoth = [&](Value step) -> Value {
        Value k0 = mul(step, depth());
        Value buffer = rem(step, stages);
        SmallVector<Value> copies;
        stage(p, a->get(), op.getMatchingIndexingMap(a), product.m, rows, rowBase, k0, thread,
              stagedA, /*rowPerK=*/!half, buffer, shape.tileM, copies);
        stage(p, bOperand->get(), op.getMatchingIndexingMap(bOperand), product.n, columns,
              columnBase, k0, thread, stagedB, /*rowPerK=*/!half || bRowPerK, buffer,
              shape.tileN, copies);
        if (copies.empty())
          return Value();
        return nvgpu::DeviceAsyncCreateGroupOp::create(
                   b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), copies)
            .getResult();
      };
      Value stepCount = arith::CeilDivUIOp::create(b, kBound[p], constant(depth()));
      Value group;
      for (int64_t s = 0; s + 1 < stages; ++s)
        group = stageBoth(constant(s));
      bool async = bool(group);
      auto steps = scf::ForOp::create(b, constant(0), stepCount, constant(1));
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(steps.getBody()->getTerminator());
      Value step = steps.getInductionVar();
      if (async) // Step s's copies are in: the S - 2 later steps' may be pending.
        nvgpu::DeviceAsyncWaitOp::create(b, group, b.getI32IntegerAttr(stages - 2));
      // Every thread's copies of step s are visible, and every thread is done
      // with step s - 1, whose stage step s + S - 1 overwrites.
      gpu::BarrierOp::create(b);
      stageBoth(add(step, stages - 1));
      Value buffer = rem(step, stages);
      if (half)
        multiplyOnTensorCores(stagedA, stagedB, buffer, acc);
      else
        multiplyWithFmas(stagedA, stagedB, buffer, acc);
      b.setInsertionPointAfter(steps);
      if (async) // The last prefetches (zeros) land before the kernel ends.
        nvgpu::DeviceAsyncWaitOp::create(b, group, b.getI32IntegerAttr(0));
      if (p + 1 < products.size()) // The next product's first steps overwrite the stages.
        gpu::BarrierOp::create(b);
    }

    // C = its start + the accumulators, inside C.
    Value c = first.c();
    for (Held held : half ? heldOnTensorCores() : heldWithFmas()) {
      Value row = add(rowBase, held.row);
      Value column = add(columnBase, held.column);
      Value inside = arith::AndIOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, row, rows),
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, column, columns));
      auto guard = scf::IfOp::create(b, inside, /*withElseRegion=*/false);
      OpBuilder::InsertionGuard insideGuard(b);
      b.setInsertionPointToStart(&guard.getThenRegion().front());
      delinearize(0, row, first.m);
      delinearize(0, column, first.n);
      SmallVector<Value> indices = indicesOf(0, first.cMap());
      Value sum = memref::LoadOp::create(b, acc, constant(held.slot));
      if (start.kind == peft::GemmStart::Loaded) {
        sum = arith::AddFOp::create(b, memref::LoadOp::create(b, c, indices), sum);
      } else if (start.kind == peft::GemmStart::Bias) {
        Value bias =
            memref::LoadOp::create(b, start.bias, ValueRange{indexOf[0][first.n.front()]});
        if (!bias.getType().isF32())
          bias = arith::ExtFOp::create(b, b.getF32Type(), bias);
        sum = arith::AddFOp::create(b, bias, sum);
      }
      if (epilogue)
        storeThroughEpilogue(indices, sum);
      else
        memref::StoreOp::create(b, sum, c, indices);
    }
  }

  /// One K step with FMAs: each thread's 4 x 4 block of C, rows and columns
  /// 16 apart, from the staged [k][row] and [k][column].
  void multiplyWithFmas(Value stagedA, Value stagedB, Value buffer, Value acc) {
    using namespace simt;
    auto inner = scf::ForOp::create(b, constant(0), constant(kDepth), constant(1));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(inner.getBody()->getTerminator());
    Value kk = inner.getInductionVar();
    SmallVector<Value> as, bs;
    for (int64_t i = 0; i < kPerThread; ++i) {
      as.push_back(memref::LoadOp::create(
          b, stagedA, ValueRange{buffer, kk, add(threadRow, i * kThreadsPerSide)}));
      bs.push_back(memref::LoadOp::create(
          b, stagedB, ValueRange{buffer, kk, add(threadColumn, i * kThreadsPerSide)}));
    }
    for (int64_t i = 0; i < kPerThread; ++i)
      for (int64_t j = 0; j < kPerThread; ++j) {
        Value slot = constant(i * kPerThread + j);
        Value sum = memref::LoadOp::create(b, acc, slot);
        sum = math::FmaOp::create(b, as[i], bs[j], sum);
        memref::StoreOp::create(b, sum, acc, slot);
      }
  }

  SmallVector<Held> heldWithFmas() {
    using namespace simt;
    SmallVector<Held> held;
    for (int64_t i = 0; i < kPerThread; ++i)
      for (int64_t j = 0; j < kPerThread; ++j)
        held.push_back({add(threadRow, i * kThreadsPerSide),
                        add(threadColumn, j * kThreadsPerSide), i * kPerThread + j});
    return held;
  }

  /// One K step on tensor cores: per 16 of K, each warp's fragments of A
  /// (its rows + 16i) and of B (its columns + 8j) by ldmatrix from the
  /// staged [row][k] and [column][k], and an mma.sync per (i, j) into the
  /// accumulators, four per (i, j) as mma.sync's C fragment lays them out.
  void multiplyOnTensorCores(Value stagedA, Value stagedB, Value buffer, Value acc) {
    using namespace mma;
    int64_t kMTiles = mmaTilesM(), kNTiles = mmaTilesN();
    auto fragmentType = [&](int64_t rows) { return VectorType::get({rows, 2}, half); };
    // ldmatrix x4: lanes 8q to 8q + 7 give the rows of 8 x 8 matrix q.
    Value laneRow16 = rem(lane, 16), laneHalf = div(lane, 16);
    Value laneRow8 = rem(lane, 8), laneQuarterOdd = rem(div(lane, 8), 2);
    for (int64_t k0 = 0; k0 < kDepth; k0 += kK) {
      // A: matrices (rows 0-7, k 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15).
      SmallVector<Value> as, bs;
      for (int64_t i = 0; i < kMTiles; ++i) {
        Value row = add(add(warpRow, i * kM), laneRow16);
        Value k = add(mul(laneHalf, 8), k0);
        as.push_back(nvgpu::LdMatrixOp::create(b, fragmentType(4), stagedA,
                                               ValueRange{buffer, row, k},
                                               /*transpose=*/false, /*numTiles=*/4));
      }
      // B: two n8 tiles per ldmatrix, (k 0-7, k 8-15) of each; from rows of
      // N transposed (an 8 x 8 matrix's rows are then k).
      for (int64_t j = 0; j < kNTiles; j += 2) {
        Value tileColumn = add(add(warpColumn, j * kN), mul(laneHalf, 8));
        Value firstK = add(mul(laneQuarterOdd, 8), k0);
        SmallVector<Value> at =
            bRowPerK ? SmallVector<Value>{buffer, add(firstK, laneRow8), tileColumn}
                     : SmallVector<Value>{buffer, add(tileColumn, laneRow8), firstK};
        Value both = nvgpu::LdMatrixOp::create(b, fragmentType(4), stagedB, at,
                                               /*transpose=*/bRowPerK, /*numTiles=*/4);
        // Each tile's two registers, rows of the fragment moved whole.
        for (int64_t q = 0; q < 2; ++q) {
          Value fragment = arith::ConstantOp::create(b, b.getZeroAttr(fragmentType(2)));
          for (int64_t r = 0; r < 2; ++r)
            fragment = vector::InsertOp::create(
                b, vector::ExtractOp::create(b, both, ArrayRef<int64_t>{2 * q + r}), fragment,
                ArrayRef<int64_t>{r});
          bs.push_back(fragment);
        }
      }
      auto cType = VectorType::get({2, 2}, b.getF32Type());
      for (int64_t i = 0; i < kMTiles; ++i)
        for (int64_t j = 0; j < kNTiles; ++j) {
          int64_t slot = (i * kNTiles + j) * 4;
          SmallVector<Value> sums;
          for (int64_t e = 0; e < 4; ++e)
            sums.push_back(memref::LoadOp::create(b, acc, constant(slot + e)));
          Value c = vector::FromElementsOp::create(b, cType, sums);
          Value d = nvgpu::MmaSyncOp::create(b, as[i], bs[j], c,
                                             ArrayRef<int64_t>{kM, kN, kK});
          for (int64_t e = 0; e < 4; ++e)
            memref::StoreOp::create(
                b, vector::ExtractOp::create(b, d, ArrayRef<int64_t>{e / 2, e % 2}), acc,
                constant(slot + e));
        }
    }
  }

  /// mma.sync's C fragment: lane l of the warp holds rows l/4 and l/4 + 8,
  /// columns 2·(l%4) and 2·(l%4) + 1, of each m16 x n8 tile.
  SmallVector<Held> heldOnTensorCores() {
    using namespace mma;
    int64_t kMTiles = mmaTilesM(), kNTiles = mmaTilesN();
    Value group = div(lane, 4), pair = mul(rem(lane, 4), 2);
    SmallVector<Held> held;
    for (int64_t i = 0; i < kMTiles; ++i)
      for (int64_t j = 0; j < kNTiles; ++j)
        for (int64_t e = 0; e < 4; ++e)
          held.push_back({add(add(warpRow, i * kM + 8 * (e / 2)), group),
                          add(add(warpColumn, j * kN + e % 2), pair), (i * kNTiles + j) * 4 + e});
    return held;
  }

  /// Stages product `p`'s `operand` for K step `k0` into stage `buffer` of
  /// `staged`: `tile` of its `outer` loops (M of A, N of B; `outerSize`
  /// linearized) from `base`, zeros outside it; [stage][k][outer] (`rowPerK`) or
  /// [stage][outer][k], of f32 for FMAs, of the half type for tensor cores.
  /// An f32 operand with contiguous rows is copied asynchronously (a copy of
  /// 4 bytes, or of none and a zero, per element: its tokens join `copies`),
  /// a half-type one read in rows of 16-byte chunks along the staged rows in
  /// chunks; others are loaded (a half type widened for FMAs) and stored.
  void stage(size_t p, Value operand, AffineMap map, ArrayRef<unsigned> outer, Value outerSize,
             Value base, Value k0, Value thread, Value staged, bool rowPerK, Value buffer,
             int64_t tile, SmallVectorImpl<Value> &copies) {
    ArrayRef<unsigned> kLoops = products[p].k;
    if (half && asyncCopies && inRowsOfChunks(operand, map, rowPerK ? outer : kLoops)) {
      stageChunks(p, operand, map, outer, outerSize, base, k0, thread, staged, rowPerK, buffer,
                  tile, copies);
      return;
    }
    // Neighbouring threads along the operand's fastest dimension.
    bool kFastest = map.getResults().back().isFunctionOfDim(kLoops.back());
    bool async = asyncCopies && getElementTypeOrSelf(operand.getType()).isF32() &&
                 unitInnerStride(operand);
    Type stagedType = cast<MemRefType>(staged.getType()).getElementType();
    Value zero = arith::ConstantOp::create(b, b.getZeroAttr(stagedType));
    for (int64_t r = 0; r < tile * depth() / threads(); ++r) {
      Value element = add(thread, r * threads());
      int64_t fast = kFastest ? depth() : tile;
      Value inner = rem(element, fast);
      Value across = div(element, fast);
      Value kk = kFastest ? inner : across, o = kFastest ? across : inner;
      Value k = add(k0, kk);
      Value position = add(base, o);
      SmallVector<Value> at = rowPerK ? SmallVector<Value>{buffer, kk, o}
                                      : SmallVector<Value>{buffer, o, kk};
      Value inside = arith::AndIOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, k, kBound[p]),
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, position, outerSize));
      if (async) {
        // Outside, the address of the first element (read for no bytes).
        Value origin = constant(0);
        delinearize(p, arith::SelectOp::create(b, inside, k, origin), kLoops);
        delinearize(p, arith::SelectOp::create(b, inside, position, origin), outer);
        Value bytes = arith::SelectOp::create(b, inside, constant(1), origin);
        auto [source, indices] = readAt(p, operand, map);
        copies.push_back(nvgpu::DeviceAsyncCopyOp::create(
            b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), staged, at, source, indices,
            b.getIndexAttr(1), bytes, /*bypassL1=*/nullptr));
        continue;
      }
      auto load = scf::IfOp::create(b, TypeRange{stagedType}, inside, /*withElse=*/true);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(&load.getThenRegion().front());
        delinearize(p, k, kLoops);
        delinearize(p, position, outer);
        auto [source, indices] = readAt(p, operand, map);
        Value value = memref::LoadOp::create(b, source, indices);
        if (value.getType() != stagedType)
          value = arith::ExtFOp::create(b, stagedType, value);
        scf::YieldOp::create(b, ValueRange{value});
        b.setInsertionPointToStart(&load.getElseRegion().front());
        scf::YieldOp::create(b, ValueRange{zero});
      }
      memref::StoreOp::create(b, load.getResult(0), staged, at);
    }
  }

  /// Elements of a half type in one 16-byte asynchronous copy.
  static constexpr int64_t kChunk = 8;

  /// Whether a half-type `operand` is read in rows of whole 16-byte chunks
  /// along `loops`: its last index is their one loop, contiguous, its rows
  /// (and offset) a multiple of a chunk long, so that each chunk of 8
  /// elements lies in one row at a 16-byte aligned address (buffers are at
  /// least that aligned).
  static bool inRowsOfChunks(Value operand, AffineMap map, ArrayRef<unsigned> loops) {
    auto type = cast<MemRefType>(operand.getType());
    SmallVector<int64_t> strides;
    int64_t offset;
    auto last = dyn_cast<AffineDimExpr>(map.getResults().back());
    if (loops.size() != 1 || !last || last.getPosition() != loops.front() ||
        type.getRank() < 2 || ShapedType::isDynamic(type.getShape().back()) ||
        type.getShape().back() % kChunk || failed(type.getStridesAndOffset(strides, offset)) ||
        strides.back() != 1 || ShapedType::isDynamic(offset) || offset % kChunk)
      return false;
    return llvm::all_of(ArrayRef<int64_t>(strides).drop_back(), [](int64_t stride) {
      return !ShapedType::isDynamic(stride) && stride % kChunk == 0;
    });
  }

  /// Stages a half-type operand in rows of chunks (inRowsOfChunks) into
  /// [stage][outer][k], or [stage][k][outer] (`rowPerK`), `tile` of outer: a 16-byte
  /// asynchronous copy per chunk, neighbouring threads neighbouring chunks of
  /// a row; a chunk outside the operand (past its rows, its columns or K,
  /// the chunked one a multiple of a chunk) copies nothing and zeros.
  void stageChunks(size_t p, Value operand, AffineMap map, ArrayRef<unsigned> outer,
                   Value outerSize, Value base, Value k0, Value thread, Value staged,
                   bool rowPerK, Value buffer, int64_t tile, SmallVectorImpl<Value> &copies) {
    int64_t perRow = (rowPerK ? tile : depth()) / kChunk;
    for (int64_t r = 0; r < tile * depth() / (kChunk * threads()); ++r) {
      Value chunk = add(thread, r * threads());
      Value along = mul(rem(chunk, perRow), kChunk), across = div(chunk, perRow);
      Value kk = rowPerK ? across : along, o = rowPerK ? along : across;
      Value k = add(k0, kk);
      Value position = add(base, o);
      Value inside = arith::AndIOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::ult, k, kBound[p]),
          arith::CmpIOp::create(b, arith::CmpIPredicate::ult, position, outerSize));
      Value origin = constant(0);
      delinearize(p, arith::SelectOp::create(b, inside, k, origin), products[p].k);
      delinearize(p, arith::SelectOp::create(b, inside, position, origin), outer);
      Value elements = arith::SelectOp::create(b, inside, constant(kChunk), origin);
      SmallVector<Value> at = rowPerK ? SmallVector<Value>{buffer, kk, o}
                                      : SmallVector<Value>{buffer, o, kk};
      auto [source, indices] = readAt(p, operand, map);
      copies.push_back(nvgpu::DeviceAsyncCopyOp::create(
          b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), staged, at, source, indices,
          b.getIndexAttr(kChunk), elements, /*bypassL1=*/b.getUnitAttr()));
    }
  }

  /// Whether `operand`'s innermost dimension is contiguous (what an
  /// asynchronous copy reads from).
  static bool unitInnerStride(Value operand) {
    auto type = cast<MemRefType>(operand.getType());
    SmallVector<int64_t> strides;
    int64_t offset;
    return type.getRank() > 0 && succeeded(type.getStridesAndOffset(strides, offset)) &&
           strides.back() == 1;
  }

  /// The indices of product `p`'s operand indexed by `map`, from its loop
  /// indices set: each of the map's results evaluated.
  SmallVector<Value> indicesOf(size_t p, AffineMap map) {
    SmallVector<Value> dims(map.getNumDims());
    for (unsigned d = 0; d < map.getNumDims(); ++d)
      dims[d] = map.isFunctionOfDim(d) ? indexOf[p].lookup(d) : Value();
    SmallVector<Value> indices;
    for (AffineExpr result : map.getResults()) {
      if (auto dim = dyn_cast<AffineDimExpr>(result))
        indices.push_back(dims[dim.getPosition()]);
      else
        indices.push_back(affine::expandAffineExpr(b, b.getLoc(), result, dims, {}));
    }
    return indices;
  }

  SmallVector<Contraction> products;
  ImplicitLocOpBuilder b;
  bool asyncCopies;
  int64_t tile;
  Type half; ///< f16 or bf16 when the products run on tensor cores.
  Operation *starter = nullptr; ///< Writes C's start; taken over unless Loaded.
  peft::GemmStart start;
  std::optional<peft::FoundEpilogue> epilogue; ///< Written instead of C.
  SmallVector<Value> cSizes, targetSizes; ///< C's and the epilogue's output's sizes.
  SmallVector<SmallVector<Value>> sizes; ///< Each product's loops' trip counts.
  SmallVector<Value> kSize;              ///< Each product's K, linearized.
  SmallVector<Value> kBound;             ///< In the kernel: K where the block is.
  /// Each product's B as its slots in a table, if it is (findSlotReads).
  SmallVector<std::optional<peft::SlotGather>> slotReads;
  SmallVector<Value> slotOf;             ///< In the kernel: the block's slot, by product.
  Value rows, columns;                   ///< C's M and N, linearized.
  Value batches;                         ///< C's batch, linearized.
  KernelShape shape;                     ///< The kernel's being built.
  Value threadRow, threadColumn;         ///< FMAs: the thread's first row and column.
  Value lane, warpRow, warpColumn;       ///< Tensor cores: the lane, the warp's corner.
  bool bRowPerK = false;                 ///< Tensor cores: B staged [k][n].
  /// Each product's loop indices where the kernel is.
  SmallVector<llvm::DenseMap<unsigned, Value>> indexOf;
};

struct CudaLaunchGemmsPass : peft::impl::CudaLaunchGemmsBase<CudaLaunchGemmsPass> {
  using CudaLaunchGemmsBase::CudaLaunchGemmsBase;
  void runOnOperation() override {
    if (tile != 0 && tile != mma::kSmall.tileM && tile != mma::kLarge.tileM) {
      getOperation().emitError("peft-cuda-launch-gemms: tile must be 0, 64 or 128, not ")
          << static_cast<int64_t>(tile);
      return signalPassFailure();
    }
    SmallVector<SmallVector<Contraction>> kernels;
    llvm::DenseSet<Operation *> grouped;
    getOperation().walk([&](linalg::LinalgOp op) {
      if (grouped.contains(op))
        return;
      if (std::optional<Contraction> first = matchContraction(op))
        kernels.push_back(productsInto(*first, grouped));
    });
    for (SmallVector<Contraction> &products : kernels)
      GemmKernelBuilder(std::move(products), tensorCores, asyncCopies, tile).build();
  }
};

} // namespace
