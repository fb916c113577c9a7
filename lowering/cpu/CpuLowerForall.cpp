//===- CpuLowerForall.cpp - scf.forall on the runtime's threads -------------===//
//
// On memrefs, after bufferization and deallocation:
//
//   scf.forall (%i, %j) in (%m, %n) { BODY }
//
// becomes a call through the thread pool (ParallelCall.h) of a new function
//
//   func.func private @F_parallel_N(CAPTURES..., %begin, %end) {
//     scf.for %t = %begin to %end { %i, %j = delinearize %t; BODY }
//   }
//
// over [0, m·n): each thread runs a contiguous range of iterations. Values
// the body uses from above are passed in the call's context; constants are
// cloned into the function instead. Loops that make the same function (every
// layer of a transformer has the same ones) share the first: LLVM compiles
// each once.
//===----------------------------------------------------------------------===//
#include "lowering/cpu/Passes.h"

#include "lowering/cpu/ParallelCall.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Transforms/RegionUtils.h"

namespace peft {
#define GEN_PASS_DEF_CPULOWERFORALL
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;

namespace {

struct CpuLowerForallPass : peft::impl::CpuLowerForallBase<CpuLowerForallPass> {
  void runOnOperation() override {
    kernels.clear();
    counters.clear();
    // A forall nested in another runs serially inside the outer one's task.
    SmallVector<scf::ForallOp> nested;
    getOperation().walk([&](scf::ForallOp loop) {
      if (loop->getParentOfType<scf::ForallOp>())
        nested.push_back(loop);
    });
    IRRewriter rewriter(&getContext());
    for (scf::ForallOp loop : nested) {
      rewriter.setInsertionPoint(loop);
      if (failed(scf::forallToForLoop(rewriter, loop))) {
        loop.emitError("peft-cpu-lower-forall: cannot make this nested loop serial");
        return signalPassFailure();
      }
    }
    SmallVector<scf::ForallOp> loops;
    getOperation().walk([&](scf::ForallOp loop) { loops.push_back(loop); });
    for (scf::ForallOp loop : loops)
      if (failed(lower(loop)))
        return signalPassFailure();
  }

  /// Functions made so far, by their text with the name left out.
  llvm::StringMap<func::FuncOp> kernels;
  llvm::StringMap<unsigned> counters;

  /// `kernel`, or an identical one made before (then `kernel` is erased).
  func::FuncOp deduplicate(func::FuncOp kernel) {
    std::string text;
    llvm::raw_string_ostream os(text);
    StringAttr name = kernel.getSymNameAttr();
    kernel.setSymName("kernel");
    kernel->print(os, OpPrintingFlags().printGenericOpForm().useLocalScope());
    kernel.setSymNameAttr(name);
    auto [known, inserted] = kernels.try_emplace(text, kernel);
    if (inserted)
      return kernel;
    kernel.erase();
    return known->second;
  }

  LogicalResult lower(scf::ForallOp loop) {
    if (loop.getNumResults() != 0 || !loop.getTerminator().getYieldingOps().empty())
      return loop.emitError("peft-cpu-lower-forall: the loop still has tensor results "
                            "(it runs after bufferization)");
    auto parent = loop->getParentOfType<func::FuncOp>();
    Location loc = loop.getLoc();
    OpBuilder builder(loop);

    // Trip counts, computed before the loop.
    SmallVector<OpFoldResult> lowerBounds = loop.getMixedLowerBound();
    SmallVector<OpFoldResult> upperBounds = loop.getMixedUpperBound();
    SmallVector<OpFoldResult> steps = loop.getMixedStep();
    SmallVector<Value> counts;
    Value total = arith::ConstantIndexOp::create(builder, loc, 1);
    for (auto [lower, upper, step] : llvm::zip(lowerBounds, upperBounds, steps)) {
      Value lo = getValueOrCreateConstantIndexOp(builder, loc, lower);
      Value hi = getValueOrCreateConstantIndexOp(builder, loc, upper);
      Value st = getValueOrCreateConstantIndexOp(builder, loc, step);
      Value count = builder.createOrFold<arith::CeilDivUIOp>(
          loc, builder.createOrFold<arith::SubIOp>(loc, hi, lo), st);
      counts.push_back(count);
      total = builder.createOrFold<arith::MulIOp>(loc, total, count);
    }

    // What the body reads from above, and the loop's own bounds.
    llvm::SetVector<Value> above;
    getUsedValuesDefinedAbove(loop.getRegion(), above);
    for (OpFoldResult bound : llvm::concat<OpFoldResult>(lowerBounds, steps))
      if (auto value = dyn_cast<Value>(bound))
        above.insert(value);
    for (Value count : counts)
      above.insert(count);
    SmallVector<Value> captures;
    SmallVector<Operation *> constants;
    for (Value value : above) {
      Operation *producer = value.getDefiningOp();
      if (producer && producer->hasTrait<OpTrait::ConstantLike>())
        constants.push_back(producer);
      else
        captures.push_back(value);
    }

    // The task function.
    std::string name = (parent.getName() + "_parallel_" +
                        llvm::Twine(counters[parent.getName()])).str();
    SmallVector<Type> inputs(ValueRange(captures).getTypes());
    inputs.append({builder.getIndexType(), builder.getIndexType()});
    OpBuilder moduleBuilder(parent);
    moduleBuilder.setInsertionPointAfter(parent);
    auto kernel = func::FuncOp::create(moduleBuilder, loc, name,
                                       moduleBuilder.getFunctionType(inputs, {}));
    kernel.setPrivate();
    Block *entry = kernel.addEntryBlock();
    OpBuilder body = OpBuilder::atBlockBegin(entry);
    IRMapping mapping;
    for (auto [capture, argument] : llvm::zip(captures, entry->getArguments()))
      mapping.map(capture, argument);
    for (Operation *constant : constants)
      body.clone(*constant, mapping);
    auto lookup = [&](OpFoldResult value) {
      if (auto attr = dyn_cast<Attribute>(value))
        return arith::ConstantIndexOp::create(body, loc, cast<IntegerAttr>(attr).getInt())
            .getResult();
      return mapping.lookup(cast<Value>(value));
    };
    Value begin = entry->getArgument(captures.size());
    Value end = entry->getArgument(captures.size() + 1);
    Value one = arith::ConstantIndexOp::create(body, loc, 1);
    auto serial = scf::ForOp::create(body, loc, begin, end, one);
    body.setInsertionPointToStart(serial.getBody());
    SmallVector<Value> positions;
    if (counts.size() == 1) {
      positions.push_back(serial.getInductionVar());
    } else {
      SmallVector<Value> bases;
      for (Value count : counts)
        bases.push_back(mapping.lookup(count));
      auto split = affine::AffineDelinearizeIndexOp::create(body, loc, serial.getInductionVar(),
                                                            bases, /*hasOuterBound=*/true);
      positions.append(split.getResults().begin(), split.getResults().end());
    }
    for (auto [d, position] : llvm::enumerate(positions)) {
      Value scaled = body.createOrFold<arith::MulIOp>(loc, position, lookup(steps[d]));
      mapping.map(loop.getInductionVars()[d],
                  body.createOrFold<arith::AddIOp>(loc, lookup(lowerBounds[d]), scaled));
    }
    for (Operation &op : loop.getBody()->without_terminator())
      body.clone(op, mapping);
    body.setInsertionPointToEnd(entry);
    func::ReturnOp::create(body, loc);

    func::FuncOp shared = deduplicate(kernel);
    if (shared == kernel)
      ++counters[parent.getName()];
    peft::createParallelCall(builder, loc, shared, captures, total);
    loop.erase();
    return success();
  }
};

} // namespace
