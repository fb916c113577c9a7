//===- CudaEmulateLaunches.cpp - Kernels as loops on the host ---------------===//
//
// A block's threads run one after another, so a barrier splits the kernel
// into phases, each a loop over the threads (Passes.td). Between phases a
// thread keeps nothing but memory: a value a later phase uses is recomputed
// there from its operands (the index arithmetic kernels share between
// phases), or, when memory has a part in it, kept in private memory. A warp's
// collective ops (ldmatrix, mma.sync, shuffles) become barriers around an
// exchange through shared memory: each lane computes its part from its warp's
// operands, as the hardware lays fragments out.
//===----------------------------------------------------------------------===//
#include "lowering/cuda/Passes.h"

#include "lowering/BufferUses.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"

namespace peft {
#define GEN_PASS_DEF_CUDAEMULATELAUNCHES
#include "lowering/cuda/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

static bool containsBarrier(Operation *op) {
  return op->walk([](gpu::BarrierOp) { return WalkResult::interrupt(); }).wasInterrupted();
}

/// Emulates one launch: the blocks as loops, in each the phases between
/// barriers as loops over the threads.
class LaunchEmulator {
public:
  explicit LaunchEmulator(gpu::LaunchOp launch) : launch(launch), b(launch) {}

  LogicalResult emulate() {
    Location loc = launch.getLoc();
    zero = arith::ConstantIndexOp::create(b, loc, 0);
    one = arith::ConstantIndexOp::create(b, loc, 1);
    grid = launch.getGridSizeOperandValues();
    block = launch.getBlockSizeOperandValues();
    gpu::KernelDim3 gridArgs = launch.getGridSize(), blockArgs = launch.getBlockSize();
    IRMapping uniform;
    for (auto [arg, value] : llvm::zip(SmallVector<Value>{gridArgs.x, gridArgs.y, gridArgs.z,
                                                         blockArgs.x, blockArgs.y, blockArgs.z},
                                       SmallVector<Value>{grid.x, grid.y, grid.z, block.x,
                                                          block.y, block.z}))
      uniform.map(arg, value);
    if (failed(warpOpsThroughSharedMemory()))
      return failure();
    carriedInPrivateMemory();
    crossingInPrivateMemory();
    if (failed(hostAttributions(uniform)))
      return failure();
    gpu::KernelDim3 blockIds = launch.getBlockIds();
    for (auto [id, size] : SmallVector<std::pair<Value, Value>>{
             {blockIds.z, grid.z}, {blockIds.y, grid.y}, {blockIds.x, grid.x}}) {
      auto loop = scf::ForOp::create(b, loc, zero, size, one);
      uniform.map(id, loop.getInductionVar());
      b.setInsertionPoint(loop.getBody()->getTerminator());
    }
    Block &body = launch.getBody().front();
    if (failed(emitPhases(body.begin(), std::prev(body.end()), uniform)))
      return failure();
    b.setInsertionPointAfter(launch);
    for (Value buffer : hostBuffers)
      memref::DeallocOp::create(b, loc, buffer);
    launch.erase();
    return success();
  }

private:
  /// A private slot of `type` for one value of each thread.
  Value privateSlot(Type type, Location loc) {
    return launch.addPrivateAttribution(
        MemRefType::get({1}, type, nullptr,
                        gpu::AddressSpaceAttr::get(type.getContext(), gpu::AddressSpace::Private)),
        loc);
  }

  /// Values a loop holding barriers carries (a thread's accumulators) kept in
  /// private memory instead, so that they cross the barriers: stored before
  /// the loop and at the end of each step, loaded where each is used (so in
  /// each phase that uses it) and after the loop.
  void carriedInPrivateMemory() {
    SmallVector<scf::ForOp> loops;
    launch.getBody().walk([&](scf::ForOp loop) {
      if (!loop.getInitArgs().empty() && containsBarrier(loop))
        loops.push_back(loop);
    });
    for (scf::ForOp loop : loops) {
      Location loc = loop.getLoc();
      OpBuilder b(loop);
      Value zero = arith::ConstantIndexOp::create(b, loc, 0);
      SmallVector<Value> slots;
      for (Value init : loop.getInitArgs()) {
        slots.push_back(privateSlot(init.getType(), loc));
        memref::StoreOp::create(b, loc, init, slots.back(), zero);
      }
      auto plain = scf::ForOp::create(b, loc, loop.getLowerBound(), loop.getUpperBound(),
                                      loop.getStep());
      Block *body = loop.getBody();
      Operation *yield = body->getTerminator();
      for (auto [arg, yielded, slot] :
           llvm::zip(loop.getRegionIterArgs(), yield->getOperands(), slots)) {
        if (yielded == arg)
          continue; // Unchanged: already in its slot.
        // Each use reads the slot; the step's new value is stored once
        // nothing after it needs the old one (and it exists).
        Operation *last = nullptr;
        if (Operation *def = yielded.getDefiningOp(); def && loop->isProperAncestor(def))
          last = body->findAncestorOpInBlock(*def);
        for (OpOperand &use : llvm::make_early_inc_range(arg.getUses())) {
          if (use.getOwner() == yield)
            continue;
          OpBuilder at(use.getOwner());
          use.set(memref::LoadOp::create(at, loc, slot,
                                         arith::ConstantIndexOp::create(at, loc, 0).getResult()));
          Operation *user = body->findAncestorOpInBlock(*use.getOwner());
          if (!last || last->isBeforeInBlock(user))
            last = user;
        }
        OpBuilder at = last ? OpBuilder(body, std::next(last->getIterator()))
                            : OpBuilder::atBlockBegin(body);
        memref::StoreOp::create(at, loc, yielded, slot,
                                arith::ConstantIndexOp::create(at, loc, 0).getResult());
      }
      OpBuilder inside = OpBuilder::atBlockBegin(plain.getBody());
      IRMapping mapping;
      mapping.map(loop.getInductionVar(), plain.getInductionVar());
      for (Operation &op : body->without_terminator())
        inside.clone(op, mapping);
      b.setInsertionPointAfter(plain);
      for (auto [result, slot] : llvm::zip(loop.getResults(), slots))
        result.replaceAllUsesWith(memref::LoadOp::create(b, loc, slot, zero).getResult());
      loop.erase();
    }
  }

  /// Whether `value` can be recomputed in any phase: defined outside the
  /// kernel, one of its ids or sizes, or computed without memory from such.
  bool recomputable(Value value) {
    if (!launch.getBody().isAncestor(value.getParentRegion()) || isa<BlockArgument>(value))
      return true;
    auto [known, inserted] = recomputes.try_emplace(value, false);
    if (!inserted)
      return known->second;
    Operation *def = value.getDefiningOp();
    bool result = def->getNumRegions() == 0 && (isMemoryEffectFree(def) || readsConstant(def)) &&
                  llvm::all_of(def->getOperands(), [&](Value v) { return recomputable(v); });
    recomputes[value] = result;
    return result;
  }

  /// Whether `def` loads from a buffer of the host's that nothing in the
  /// kernel writes (an adapter's slot index or rank): it reads the same in
  /// every phase, so it is recomputed like arithmetic, also in a loop bound.
  bool readsConstant(Operation *def) {
    auto load = dyn_cast<memref::LoadOp>(def);
    if (!load || launch.getBody().isAncestor(load.getMemRef().getParentRegion()))
      return false;
    auto [known, inserted] = constantBuffers.try_emplace(load.getMemRef(), false);
    if (!inserted)
      return known->second;
    llvm::SmallPtrSet<Value, 8> aliases = peft::aliasesOf(peft::rootOf(load.getMemRef())), none;
    bool written = llvm::any_of(launch.getBody().front(), [&](Operation &op) {
      return peft::interferes(&op, none, aliases);
    });
    constantBuffers[load.getMemRef()] = !written;
    return !written;
  }

  /// Values memory has a part in that a later phase uses (a fragment loaded
  /// before a barrier, a sum read before one) kept in private memory: stored
  /// where defined, loaded just before each use past a barrier.
  void crossingInPrivateMemory() {
    SmallVector<Operation *> defs;
    launch.getBody().walk([&](Operation *op) {
      if (op->getNumResults() && !isa<gpu::LaunchOp>(op))
        defs.push_back(op);
    });
    for (Operation *def : defs)
      for (Value value : def->getResults()) {
        if (recomputable(value))
          continue;
        SmallVector<OpOperand *> crossing;
        for (OpOperand &use : value.getUses())
          if (barrierBetween(def, use.getOwner()))
            crossing.push_back(&use);
        if (crossing.empty())
          continue;
        Location loc = def->getLoc();
        Value slot = privateSlot(value.getType(), loc);
        OpBuilder after(def->getBlock(), std::next(def->getIterator()));
        memref::StoreOp::create(after, loc, value, slot,
                                arith::ConstantIndexOp::create(after, loc, 0).getResult());
        for (OpOperand *use : crossing) {
          OpBuilder at(use->getOwner());
          use->set(memref::LoadOp::create(at, loc, slot,
                                          arith::ConstantIndexOp::create(at, loc, 0).getResult()));
        }
      }
  }

  /// Whether a barrier may run between `def` and its user `user`: an op
  /// after `def` in its block, up to the one holding `user`, holds one.
  static bool barrierBetween(Operation *def, Operation *user) {
    Operation *holder = def->getBlock()->findAncestorOpInBlock(*user);
    if (!holder)
      return true;
    for (Operation *op = def->getNextNode(); op; op = op->getNextNode()) {
      if (containsBarrier(op))
        return true;
      if (op == holder)
        return false;
    }
    return false;
  }

  /// ldmatrix, mma.sync and shuffles, which a warp's lanes execute together, as an
  /// exchange: each lane stores its operands in shared memory (a row of a
  /// scratch buffer per thread), a barrier, each lane computes its part of
  /// the result from its warp's rows, a barrier before the scratch is reused.
  LogicalResult warpOpsThroughSharedMemory() {
    SmallVector<Operation *> ops;
    launch.getBody().walk([&](Operation *op) {
      if (isa<nvgpu::LdMatrixOp, nvgpu::MmaSyncOp, gpu::ShuffleOp>(op))
        ops.push_back(op);
    });
    if (ops.empty())
      return success();
    int64_t threads = 1;
    for (Value size : {block.x, block.y, block.z}) {
      std::optional<int64_t> count = getConstantIntValue(size);
      if (!count)
        return ops.front()->emitError("peft-cuda-emulate-launches: warp operations need a "
                                      "block of a constant size");
      threads *= *count;
    }
    if (threads % kWarpSize)
      return ops.front()->emitError("peft-cuda-emulate-launches: warp operations need whole "
                                    "warps in a block");
    for (Operation *op : ops) {
      ImplicitLocOpBuilder at(op->getLoc(), op);
      LogicalResult done = success();
      if (auto load = dyn_cast<nvgpu::LdMatrixOp>(op))
        done = emulateLdMatrix(at, load, threads);
      else if (auto shuffle = dyn_cast<gpu::ShuffleOp>(op))
        done = emulateShuffle(at, shuffle, threads);
      else
        done = emulateMmaSync(at, cast<nvgpu::MmaSyncOp>(op), threads);
      if (failed(done))
        return failure();
    }
    return success();
  }

  /// A workgroup buffer of `width` elements of `type` per thread, one per
  /// shape and type in the launch.
  Value scratch(Type type, int64_t width, int64_t threads) {
    auto memrefType =
        MemRefType::get({threads, width}, type, nullptr,
                        gpu::AddressSpaceAttr::get(type.getContext(),
                                                   gpu::AddressSpace::Workgroup));
    Value &buffer = scratches[memrefType];
    if (!buffer)
      buffer = launch.addWorkgroupAttribution(memrefType, launch.getLoc());
    return buffer;
  }

  /// The linear id of the thread and its lane's: (thread, lane, the warp's
  /// first thread).
  std::tuple<Value, Value, Value> threadAndLane(ImplicitLocOpBuilder &b) {
    gpu::KernelDim3 ids = launch.getThreadIds(), sizes = launch.getBlockSize();
    Value thread = arith::AddIOp::create(
        b, ids.x,
        arith::MulIOp::create(
            b, sizes.x,
            arith::AddIOp::create(b, ids.y, arith::MulIOp::create(b, sizes.y, ids.z))));
    Value lane = arith::RemUIOp::create(b, thread, index(b, kWarpSize));
    return {thread, lane, arith::SubIOp::create(b, thread, lane)};
  }

  static Value index(ImplicitLocOpBuilder &b, int64_t value) {
    return arith::ConstantIndexOp::create(b, value);
  }

  /// gpu.shuffle over the whole warp (width 32): lane l reads the value of
  /// lane l ^ offset (xor), l + offset (down), l − offset (up) or offset
  /// (idx); outside the warp it keeps its own and is not valid.
  LogicalResult emulateShuffle(ImplicitLocOpBuilder &b, gpu::ShuffleOp shuffle, int64_t threads) {
    std::optional<int64_t> width = getConstantIntValue(shuffle.getWidth());
    if (!width || *width != kWarpSize)
      return shuffle.emitError("peft-cuda-emulate-launches: only shuffles over whole warps "
                               "(width 32) run on the host");
    auto [thread, lane, warp] = threadAndLane(b);
    Value value = shuffle.getValue();
    Value buffer = scratch(value.getType(), 1, threads);
    memref::StoreOp::create(b, value, buffer, ValueRange{thread, index(b, 0)});
    gpu::BarrierOp::create(b);
    Value offset = arith::IndexCastUIOp::create(b, b.getIndexType(), shuffle.getOffset());
    Value source;
    switch (shuffle.getMode()) {
    case gpu::ShuffleMode::XOR: source = arith::XOrIOp::create(b, lane, offset); break;
    case gpu::ShuffleMode::DOWN: source = arith::AddIOp::create(b, lane, offset); break;
    case gpu::ShuffleMode::UP: source = arith::SubIOp::create(b, lane, offset); break;
    case gpu::ShuffleMode::IDX: source = offset; break;
    }
    // (up's lane − offset wraps below 0 to a large index: out of the warp.)
    Value valid = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, source, index(b, kWarpSize));
    Value from = arith::SelectOp::create(b, valid, arith::AddIOp::create(b, warp, source), thread);
    Value result = memref::LoadOp::create(b, buffer, ValueRange{from, index(b, 0)});
    gpu::BarrierOp::create(b);
    shuffle.getShuffleResult().replaceAllUsesWith(result);
    shuffle.getValid().replaceAllUsesWith(valid);
    shuffle.erase();
    return success();
  }

  /// ldmatrix: lanes 8q to 8q + 7 give the addresses of the rows of 8 x 8
  /// matrix q; lane l receives, of each, elements 2·(l%4) and 2·(l%4) + 1
  /// of row l/4 (transposed: row 2·(l%4) + e's element l/4).
  LogicalResult emulateLdMatrix(ImplicitLocOpBuilder &b, nvgpu::LdMatrixOp load,
                                int64_t threads) {
    auto [thread, lane, warp] = threadAndLane(b);
    ValueRange indices = load.getIndices();
    Value addresses = scratch(b.getIndexType(), indices.size(), threads);
    for (auto [r, i] : llvm::enumerate(indices))
      memref::StoreOp::create(b, i, addresses, ValueRange{thread, index(b, r)});
    gpu::BarrierOp::create(b);
    Value quad = arith::DivUIOp::create(b, lane, index(b, 4));
    Value pair = arith::MulIOp::create(b, arith::RemUIOp::create(b, lane, index(b, 4)),
                                       index(b, 2));
    SmallVector<Value> elements;
    for (int64_t q = 0; q < load.getNumTiles(); ++q)
      for (int64_t e = 0; e < 2; ++e) {
        Value rowLane = load.getTranspose() ? arith::AddIOp::create(b, pair, index(b, e)) : quad;
        Value column = load.getTranspose() ? quad : arith::AddIOp::create(b, pair, index(b, e));
        Value from = arith::AddIOp::create(b, warp, arith::AddIOp::create(b, rowLane,
                                                                          index(b, 8 * q)));
        SmallVector<Value> at;
        for (size_t r = 0; r < indices.size(); ++r)
          at.push_back(memref::LoadOp::create(b, addresses, ValueRange{from, index(b, r)}));
        at.back() = arith::AddIOp::create(b, at.back(), column);
        elements.push_back(memref::LoadOp::create(b, load.getSrcMemref(), at));
      }
    Value fragment = vector::FromElementsOp::create(b, load.getRes().getType(), elements);
    gpu::BarrierOp::create(b);
    load.replaceAllUsesWith(fragment);
    load.erase();
    return success();
  }

  /// mma.sync m16n8k16 of f16 or bf16 into f32. Fragments (PTX's layout,
  /// g = lane/4, t = lane%4): A's register i holds row g + 8·((i/2)%2),
  /// column 2t + i%2 + 8·(i/4); B's k 2t + i%2 + 8·(i/2), column g; C's row
  /// g + 8·(i/2), column 2t + i%2. Each lane sums its four elements of C
  /// over k from its warp's A and B, stored widened.
  LogicalResult emulateMmaSync(ImplicitLocOpBuilder &b, nvgpu::MmaSyncOp mma, int64_t threads) {
    if (llvm::to_vector(mma.getMmaShapeAsArray()) != ArrayRef<int64_t>{16, 8, 16} ||
        !cast<VectorType>(mma.getMatrixC().getType()).getElementType().isF32())
      return mma.emitError("peft-cuda-emulate-launches: only mma.sync m16n8k16 into f32 "
                           "runs on the host");
    auto [thread, lane, warp] = threadAndLane(b);
    Type f32 = b.getF32Type();
    auto share = [&](Value fragment) {
      auto type = cast<VectorType>(fragment.getType());
      Value buffer = scratch(f32, type.getNumElements(), threads);
      for (int64_t i = 0; i < type.getNumElements(); ++i) {
        Value element = vector::ExtractOp::create(b, fragment, ArrayRef<int64_t>{i / 2, i % 2});
        memref::StoreOp::create(b, arith::ExtFOp::create(b, f32, element), buffer,
                                ValueRange{thread, index(b, i)});
      }
      return buffer;
    };
    Value a = share(mma.getMatrixA()), bShared = share(mma.getMatrixB());
    gpu::BarrierOp::create(b);
    auto c = [&](int64_t v) { return index(b, v); };
    Value g = arith::DivUIOp::create(b, lane, c(4));
    Value t = arith::RemUIOp::create(b, lane, c(4));
    SmallVector<Value> sums;
    for (int64_t i = 0; i < 4; ++i) {
      // Row g + 8·(i/2) and column 2t + i%2 of C.
      Value column = arith::AddIOp::create(b, arith::MulIOp::create(b, t, c(2)), c(i % 2));
      Value start =
          vector::ExtractOp::create(b, mma.getMatrixC(), ArrayRef<int64_t>{i / 2, i % 2});
      auto ks = scf::ForOp::create(
          b, c(0), c(16), c(1), ValueRange{start},
          [&](OpBuilder &nested, Location loc, Value k, ValueRange carried) {
            ImplicitLocOpBuilder in(loc, nested);
            auto n = [&](int64_t v) { return index(in, v); };
            Value low = arith::RemUIOp::create(in, k, n(2));
            Value high = arith::DivUIOp::create(in, k, n(8));
            auto laneAt = [&](Value group) { // The lane holding group's k.
              return arith::AddIOp::create(
                  in, warp,
                  arith::AddIOp::create(
                      in, arith::MulIOp::create(in, group, n(4)),
                      arith::DivUIOp::create(in, arith::RemUIOp::create(in, k, n(8)), n(2))));
            };
            Value aIndex = arith::AddIOp::create(in, arith::AddIOp::create(in, low, n(2 * (i / 2))),
                                                 arith::MulIOp::create(in, high, n(4)));
            Value bIndex = arith::AddIOp::create(in, low, arith::MulIOp::create(in, high, n(2)));
            Value x = memref::LoadOp::create(in, a, ValueRange{laneAt(g), aIndex});
            Value y = memref::LoadOp::create(in, bShared, ValueRange{laneAt(column), bIndex});
            Value sum = math::FmaOp::create(in, x, y, carried[0]);
            scf::YieldOp::create(in, sum);
          });
      sums.push_back(ks.getResult(0));
    }
    Value d = vector::FromElementsOp::create(b, mma.getMatrixC().getType(), sums);
    gpu::BarrierOp::create(b);
    mma.replaceAllUsesWith(d);
    mma.erase();
    return success();
  }

  /// Workgroup memory as one host buffer (blocks run one after another);
  /// private memory as one buffer with a row per thread, its loads and stores
  /// indexed by the thread first.
  LogicalResult hostAttributions(IRMapping &uniform) {
    Location loc = launch.getLoc();
    for (BlockArgument attribution : launch.getWorkgroupAttributions()) {
      auto type = cast<MemRefType>(attribution.getType());
      auto buffer = memref::AllocOp::create(
          b, loc, MemRefType::get(type.getShape(), type.getElementType()));
      hostBuffers.push_back(buffer);
      uniform.map(attribution, buffer.getResult());
    }
    if (launch.getPrivateAttributions().empty())
      return success();
    Value threads = arith::MulIOp::create(
        b, loc, arith::MulIOp::create(b, loc, block.x, block.y), block.z);
    // The linear thread id, at the kernel's start; phases recompute it.
    OpBuilder atStart(&launch.getBody().front(), launch.getBody().front().begin());
    gpu::KernelDim3 ids = launch.getThreadIds(), sizes = launch.getBlockSize();
    Value thread = arith::AddIOp::create(
        atStart, loc, ids.x,
        arith::MulIOp::create(atStart, loc, sizes.x,
                              arith::AddIOp::create(atStart, loc, ids.y,
                                                    arith::MulIOp::create(atStart, loc,
                                                                          sizes.y, ids.z))));
    for (BlockArgument attribution : launch.getPrivateAttributions()) {
      auto type = cast<MemRefType>(attribution.getType());
      SmallVector<int64_t> shape = {ShapedType::kDynamic};
      llvm::append_range(shape, type.getShape());
      auto buffer = memref::AllocOp::create(
          b, loc, MemRefType::get(shape, type.getElementType()), ValueRange{threads});
      hostBuffers.push_back(buffer);
      for (OpOperand &use : llvm::make_early_inc_range(attribution.getUses())) {
        Operation *user = use.getOwner();
        OpBuilder at(user);
        if (auto load = dyn_cast<memref::LoadOp>(user)) {
          SmallVector<Value> indices = {thread};
          llvm::append_range(indices, load.getIndices());
          load.replaceAllUsesWith(
              memref::LoadOp::create(at, load.getLoc(), buffer, indices).getResult());
          load.erase();
        } else if (auto store = dyn_cast<memref::StoreOp>(user);
                   store && use.getOperandNumber() == 1) {
          SmallVector<Value> indices = {thread};
          llvm::append_range(indices, store.getIndices());
          memref::StoreOp::create(at, store.getLoc(), store.getValue(), buffer, indices);
          store.erase();
        } else {
          return user->emitError("peft-cuda-emulate-launches: private memory is only "
                                 "loaded from and stored to");
        }
      }
    }
    return success();
  }

  /// Emits the ops [begin, end) of the kernel: runs without barriers as loops
  /// over the threads; an scf.for holding barriers as a loop around its own
  /// phases, its bounds the same for every thread.
  LogicalResult emitPhases(Block::iterator begin, Block::iterator end, IRMapping uniform) {
    SmallVector<Operation *> phase;
    for (Operation &op : llvm::make_range(begin, end)) {
      if (!containsBarrier(&op)) {
        phase.push_back(&op);
        continue;
      }
      if (failed(emitPhase(phase, uniform)))
        return failure();
      phase.clear();
      if (isa<gpu::BarrierOp>(op))
        continue;
      auto loop = dyn_cast<scf::ForOp>(op);
      if (!loop)
        return op.emitError("peft-cuda-emulate-launches: a barrier must be in the kernel's "
                            "body or in its loops");
      SmallVector<Value> bounds;
      for (Value bound : {loop.getLowerBound(), loop.getUpperBound(), loop.getStep()}) {
        FailureOr<Value> value = materialize(bound, uniform, &op);
        if (failed(value))
          return failure();
        bounds.push_back(*value);
      }
      auto emulated = scf::ForOp::create(b, loop.getLoc(), bounds[0], bounds[1], bounds[2]);
      IRMapping inner = uniform;
      inner.map(loop.getInductionVar(), emulated.getInductionVar());
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(emulated.getBody()->getTerminator());
      Block *loopBody = loop.getBody();
      if (failed(emitPhases(loopBody->begin(), std::prev(loopBody->end()), inner)))
        return failure();
    }
    return emitPhase(phase, uniform);
  }

  /// `ops` for each thread (z, y, x), the values of earlier phases they use
  /// recomputed.
  LogicalResult emitPhase(ArrayRef<Operation *> ops, const IRMapping &uniform) {
    if (ops.empty())
      return success();
    OpBuilder::InsertionGuard guard(b);
    IRMapping mapping = uniform;
    gpu::KernelDim3 ids = launch.getThreadIds();
    for (auto [id, size] :
         SmallVector<std::pair<Value, Value>>{{ids.z, block.z}, {ids.y, block.y}, {ids.x, block.x}}) {
      auto loop = scf::ForOp::create(b, launch.getLoc(), zero, size, one);
      mapping.map(id, loop.getInductionVar());
      b.setInsertionPoint(loop.getBody()->getTerminator());
    }
    for (Operation *op : ops) {
      SetVector<Value> used(op->getOperands().begin(), op->getOperands().end());
      getUsedValuesDefinedAbove(op->getRegions(), used);
      for (Value value : used)
        if (failed(materialize(value, mapping, op)))
          return failure();
      b.clone(*op, mapping);
    }
    return success();
  }

  /// `value` where the builder is: as mapped, from outside the kernel, or
  /// recomputed from its operands if memory has no part in it (or memory
  /// the kernel does not write: readsConstant).
  FailureOr<Value> materialize(Value value, IRMapping &mapping, Operation *user) {
    if (mapping.contains(value) || !launch.getBody().isAncestor(value.getParentRegion()))
      return mapping.lookupOrDefault(value);
    Operation *def = value.getDefiningOp();
    if (!def || def->getNumRegions() != 0 || !(isMemoryEffectFree(def) || readsConstant(def)))
      return user->emitError("peft-cuda-emulate-launches: a value ")
             << (def ? "read from memory" : "of a single thread")
             << " is used across a barrier";
    for (Value operand : def->getOperands())
      if (failed(materialize(operand, mapping, user)))
        return failure();
    b.clone(*def, mapping);
    return mapping.lookup(value);
  }

  static constexpr int64_t kWarpSize = 32;

  gpu::LaunchOp launch;
  OpBuilder b;
  llvm::DenseMap<Value, bool> recomputes; ///< recomputable()'s answers.
  llvm::DenseMap<Value, bool> constantBuffers; ///< readsConstant()'s, by buffer.
  llvm::DenseMap<Type, Value> scratches;  ///< scratch()'s buffers.
  Value zero, one;
  gpu::KernelDim3 grid, block;
  SmallVector<Value> hostBuffers;
};

/// Asynchronous copies as the copies they are, done at once: each of the
/// `dstElements` elements read from the source (the first `srcElements`,
/// zeros after), and nothing left to wait for.
static void copyAtOnce(ModuleOp module) {
  module.walk([](nvgpu::DeviceAsyncWaitOp wait) { wait.erase(); });
  module.walk([](nvgpu::DeviceAsyncCreateGroupOp group) { group.erase(); });
  module.walk([](nvgpu::DeviceAsyncCopyOp copy) {
    OpBuilder b(copy);
    Location loc = copy.getLoc();
    Type element = copy.getDst().getType().getElementType();
    Value zero = arith::ConstantOp::create(b, loc, b.getZeroAttr(element));
    for (int64_t e = 0; e < copy.getDstElements().getZExtValue(); ++e) {
      Value offset = arith::ConstantIndexOp::create(b, loc, e);
      auto shifted = [&](ValueRange indices) {
        SmallVector<Value> at(indices);
        at.back() = arith::AddIOp::create(b, loc, at.back(), offset);
        return at;
      };
      SmallVector<Value> from = shifted(copy.getSrcIndices());
      Value value;
      if (Value count = copy.getSrcElements()) {
        Value read = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, offset, count);
        auto load = scf::IfOp::create(b, loc, TypeRange{element}, read, /*withElse=*/true);
        OpBuilder inside = load.getThenBodyBuilder();
        scf::YieldOp::create(
            inside, loc, memref::LoadOp::create(inside, loc, copy.getSrc(), from).getResult());
        OpBuilder outside = load.getElseBodyBuilder();
        scf::YieldOp::create(outside, loc, zero);
        value = load.getResult(0);
      } else {
        value = memref::LoadOp::create(b, loc, copy.getSrc(), from);
      }
      memref::StoreOp::create(b, loc, value, copy.getDst(), shifted(copy.getDstIndices()));
    }
    copy.erase();
  });
}

struct CudaEmulateLaunchesPass
    : peft::impl::CudaEmulateLaunchesBase<CudaEmulateLaunchesPass> {
  void runOnOperation() override {
    copyAtOnce(getOperation());
    SmallVector<gpu::LaunchOp> launches;
    getOperation().walk([&](gpu::LaunchOp launch) { launches.push_back(launch); });
    for (gpu::LaunchOp launch : launches) {
      if (launch.getAsyncToken() || launch.hasClusterSize() ||
          launch.getDynamicSharedMemorySize()) {
        launch.emitError("peft-cuda-emulate-launches: only synchronous launches without "
                         "clusters or dynamic shared memory run on the host");
        return signalPassFailure();
      }
      if (failed(LaunchEmulator(launch).emulate()))
        return signalPassFailure();
    }
    getOperation().walk([&](Operation *op) {
      OpBuilder b(op);
      if (auto alloc = dyn_cast<gpu::AllocOp>(op)) {
        auto host = memref::AllocOp::create(b, alloc.getLoc(), alloc.getType(),
                                            alloc.getDynamicSizes(), alloc.getSymbolOperands());
        alloc.getMemref().replaceAllUsesWith(host.getResult());
        alloc.erase();
      } else if (auto dealloc = dyn_cast<gpu::DeallocOp>(op)) {
        memref::DeallocOp::create(b, dealloc.getLoc(), dealloc.getMemref());
        dealloc.erase();
      } else if (auto copy = dyn_cast<gpu::MemcpyOp>(op)) {
        memref::CopyOp::create(b, copy.getLoc(), copy.getSrc(), copy.getDst());
        copy.erase();
      }
    });
  }
};

} // namespace
