//===- CpuPackWeights.cpp - GEMM weights in the micro-kernel's layout -------===//
#include "lowering/cpu/Passes.h"

#include "lowering/GemmStart.h"

#include "runtime/Manifest.h"

#include "llvm/ADT/MapVector.h"

namespace peft {
#define GEN_PASS_DEF_CPUPACKWEIGHTS
#include "lowering/cpu/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// On a GEMM's copy of a start it shared (ownStart).
constexpr llvm::StringLiteral kOwnStartAttr = "peft.own_start";

/// A GEMM this pass packs: `out += lhs · W` or `lhs · Wᵀ`, W a weight argument.
struct WeightGemm {
  linalg::MatmulOp op;
  BlockArgument weight;
  bool transposed;
};

/// The weight argument `value` is, directly or as a convolution's kernel
/// [out, in, k...] collapsed to [out, in·k...].
static BlockArgument weightArgument(Value value) {
  if (auto collapse = value.getDefiningOp<tensor::CollapseShapeOp>()) {
    auto groups = collapse.getReassociationIndices();
    if (groups.size() == 2 && groups[0].size() == 1)
      value = collapse.getSrc();
  }
  return dyn_cast<BlockArgument>(value);
}

/// The matmul as a GEMM on a weight argument of `entry`, if it is one: f32
/// throughout, W static, the activations and the output not transposed.
static std::optional<WeightGemm> matchWeightGemm(linalg::MatmulOp op, func::FuncOp entry) {
  BlockArgument weight = weightArgument(op.getInputs()[1]);
  if (!weight || weight.getOwner() != &entry.front() ||
      !entry.getArgAttr(weight.getArgNumber(), kWeightNameAttr) ||
      entry.getArgAttr(weight.getArgNumber(), kWeightPanelsAttr))
    return std::nullopt;
  auto weightType = dyn_cast<RankedTensorType>(weight.getType());
  bool collapsed = weight != op.getInputs()[1];
  if (!weightType || !weightType.hasStaticShape() || (!collapsed && weightType.getRank() != 2))
    return std::nullopt;
  for (Value operand : op->getOperands())
    if (!cast<ShapedType>(operand.getType()).getElementType().isF32())
      return std::nullopt;
  MLIRContext *context = op.getContext();
  AffineExpr m, n, k;
  bindDims(context, m, n, k);
  auto map = [&](ArrayRef<AffineExpr> results) { return AffineMap::get(3, 0, results, context); };
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps[0] != map({m, k}) || maps[2] != map({m, n}))
    return std::nullopt;
  if (maps[1] == map({n, k}))
    return WeightGemm{op, weight, true};
  if (maps[1] == map({k, n}) && !collapsed)
    return WeightGemm{op, weight, false};
  return std::nullopt;
}

struct CpuPackWeightsPass : peft::impl::CpuPackWeightsBase<CpuPackWeightsPass> {
  using CpuPackWeightsBase::CpuPackWeightsBase;

  void runOnOperation() override {
    if (tile < 1) {
      getOperation().emitError("peft-cpu-pack-weights: tile must be positive");
      return signalPassFailure();
    }
    for (auto entry : getOperation().getOps<func::FuncOp>())
      if (entry.isPublic() && !entry.isExternal())
        if (failed(pack(entry)))
          return signalPassFailure();
  }

  LogicalResult pack(func::FuncOp entry) {
    SmallVector<WeightGemm> gemms;
    entry.walk([&](linalg::MatmulOp op) {
      if (auto gemm = matchWeightGemm(op, entry))
        gemms.push_back(*gemm);
    });
    // One packed argument per weight and orientation.
    llvm::MapVector<std::pair<unsigned, unsigned>, BlockArgument> packed;
    for (const WeightGemm &gemm : gemms) {
      auto key = std::make_pair(gemm.weight.getArgNumber(), unsigned(gemm.transposed));
      auto [slot, inserted] = packed.try_emplace(key, BlockArgument());
      if (inserted)
        slot->second = addPackedArgument(entry, gemm);
      rewriteAsPanelGemm(gemm, slot->second);
    }
    // A weight no other op reads is stored only packed, under its own name.
    llvm::BitVector unused(entry.getNumArguments());
    for (auto &[key, argument] : packed) {
      BlockArgument weight = entry.getArgument(key.first);
      bool bothOrientations = packed.count({key.first, 1 - key.second});
      if (!weight.use_empty() || bothOrientations)
        continue;
      StringAttr name = entry.getArgAttrOfType<StringAttr>(weight.getArgNumber(), kWeightNameAttr);
      entry.setArgAttr(argument.getArgNumber(), kWeightNameAttr, name);
      unused.set(weight.getArgNumber());
    }
    if (failed(entry.eraseArguments(unused)))
      return entry.emitError("cannot drop the unpacked weights");
    return success();
  }

  /// A new argument of `entry`: the gemm's weight in panels.
  BlockArgument addPackedArgument(func::FuncOp entry, const WeightGemm &gemm) {
    MLIRContext *context = entry.getContext();
    Builder builder(context);
    auto weightType = cast<RankedTensorType>(gemm.weight.getType());
    ArrayRef<int64_t> shape = weightType.getShape();
    PanelLayout layout{"", tile, gemm.transposed, std::vector<int64_t>(shape)};
    auto packedType = RankedTensorType::get(layout.packedShape(), weightType.getElementType());
    NamedAttrList attrs(entry.getArgAttrDict(gemm.weight.getArgNumber()));
    auto name = cast<StringAttr>(attrs.get(kWeightNameAttr));
    // The bytes come from where the weight's come from (file key or value).
    if (!attrs.get(kWeightKeyAttr))
      attrs.set(kWeightKeyAttr, name);
    attrs.set(kWeightNameAttr, builder.getStringAttr(name.getValue() + "@panels" +
                                                     (gemm.transposed ? "" : "_kn")));
    attrs.set(kWeightPanelsAttr,
              builder.getDictionaryAttr({
                  builder.getNamedAttr("of", name),
                  builder.getNamedAttr("tile", builder.getI64IntegerAttr(tile)),
                  builder.getNamedAttr("transposed", builder.getBoolAttr(gemm.transposed)),
                  builder.getNamedAttr("shape", builder.getDenseI64ArrayAttr(shape)),
              }));
    unsigned index = entry.getNumArguments();
    (void)entry.insertArgument(index, packedType, attrs.getDictionary(context),
                               gemm.weight.getLoc());
    return entry.getArgument(index);
  }

  /// `out`, or a copy of the zeros or bias it starts from when other ops
  /// read them too (a gate and an up projection of one input share one
  /// fill): a kernel takes over only a start of its own (startsGemmKernel);
  /// a shared one is written once, then copied for each GEMM but one. The
  /// copy is marked with its place among the start's uses, so that CSE does
  /// not merge it back.
  static Value ownStart(OpBuilder &builder, Value out) {
    Operation *start = out.getDefiningOp();
    if (!start || out.hasOneUse() || matchGemmStart(start, 2, 1).kind == GemmStart::Loaded)
      return out;
    Operation *copy = builder.clone(*start);
    copy->setAttr(kOwnStartAttr,
                  builder.getI64IntegerAttr(std::distance(out.use_begin(), out.use_end())));
    return copy->getResult(0);
  }

  /// out[m, n] += lhs[m, k] · packed[n floordiv tile, k, n mod tile].
  void rewriteAsPanelGemm(WeightGemm gemm, BlockArgument packed) {
    MLIRContext *context = gemm.op.getContext();
    AffineExpr m, n, k;
    bindDims(context, m, n, k);
    SmallVector<AffineMap> maps = {
        AffineMap::get(3, 0, {m, k}, context),
        AffineMap::get(3, 0, {n.floorDiv(tile), k, n % tile}, context),
        AffineMap::get(3, 0, {m, n}, context)};
    SmallVector<utils::IteratorType> iterators = {utils::IteratorType::parallel,
                                                  utils::IteratorType::parallel,
                                                  utils::IteratorType::reduction};
    OpBuilder builder(gemm.op);
    auto generic = linalg::GenericOp::create(
        builder, gemm.op.getLoc(), gemm.op.getResultTypes(),
        ValueRange{gemm.op.getInputs()[0], packed}, ownStart(builder, gemm.op.getOutputs()[0]),
        maps, iterators,
        [](OpBuilder &b, Location loc, ValueRange args) {
          Value product = arith::MulFOp::create(b, loc, args[0], args[1]);
          linalg::YieldOp::create(b, loc, ValueRange{arith::AddFOp::create(b, loc, product, args[2])});
        });
    generic->setAttr(kPanelGemmAttr, builder.getI64IntegerAttr(tile));
    Value rhs = gemm.op.getInputs()[1];
    gemm.op->replaceAllUsesWith(generic);
    gemm.op->erase();
    if (rhs != gemm.weight && rhs.use_empty()) // The kernel's collapse.
      rhs.getDefiningOp()->erase();
  }
};

} // namespace
