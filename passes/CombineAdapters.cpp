//===- CombineAdapters.cpp - Several LoRAs on a layer as one ----------------===//
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstring>
#include <numeric>

namespace peft {
#define GEN_PASS_DEF_COMBINEADAPTERS
#include "passes/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

/// A row-major matrix of doubles.
struct Matrix {
  int64_t rows = 0, columns = 0;
  std::vector<double> values;

  Matrix(int64_t rows, int64_t columns) : rows(rows), columns(columns), values(rows * columns) {}
  double &at(int64_t r, int64_t c) { return values[r * columns + c]; }
  double at(int64_t r, int64_t c) const { return values[r * columns + c]; }
};

/// The LoRAs of one layer as the factors of their summed delta
/// ΔW = B·A: A [R, in] holds each sᵢ·Aᵢ's rows, B [out, R] each Bᵢ's
/// columns, R = Σ rᵢ.
struct StackedFactors {
  Matrix a, b;
  std::vector<float> bias; ///< Σ sᵢ·lora_biasᵢ, empty when none has one.
};

FailureOr<StackedFactors> stackFactors(ArrayRef<LoraOp> chain, std::string &error) {
  int64_t rank = 0;
  for (LoraOp lora : chain)
    rank += lora.getRank();
  LoraOp first = chain.front();
  int64_t in = first.getLoraA().getType().getNumElements() / first.getRank();
  int64_t out = first.getLoraB().getType().getDimSize(0);
  StackedFactors stacked{Matrix(rank, in), Matrix(out, rank), {}};
  int64_t offset = 0;
  for (LoraOp lora : chain) {
    auto a = lora.getLoraA().getDefiningOp<WeightOp>();
    auto b = lora.getLoraB().getDefiningOp<WeightOp>();
    auto bias = lora.getLoraBias() ? lora.getLoraBias().getDefiningOp<WeightOp>() : WeightOp();
    if (!a || !b || (lora.getLoraBias() && !bias)) {
      error = "adapter '" + lora.getAdapter().str() + "' has weights that are not constant";
      return failure();
    }
    auto aValues = a.readFloat32(), bValues = b.readFloat32();
    if (!aValues || !bValues) {
      error = llvm::toString(!aValues ? aValues.takeError() : bValues.takeError());
      return failure();
    }
    double scale = lora.getScale().convertToDouble();
    int64_t r = lora.getRank();
    for (int64_t row = 0; row < r; ++row)
      for (int64_t i = 0; i < in; ++i)
        stacked.a.at(offset + row, i) = scale * (*aValues)[row * in + i];
    for (int64_t o = 0; o < out; ++o)
      for (int64_t column = 0; column < r; ++column)
        stacked.b.at(o, offset + column) = (*bValues)[o * r + column];
    if (bias) {
      auto values = bias.readFloat32();
      if (!values) {
        error = llvm::toString(values.takeError());
        return failure();
      }
      stacked.bias.resize(out, 0.0f);
      for (int64_t o = 0; o < out; ++o)
        stacked.bias[o] += scale * (*values)[o];
    }
    offset += r;
  }
  return stacked;
}

/// m = Q·R for m [n, k] (n ≥ k not required): Q [n, k] with orthonormal (or
/// zero) columns, R [k, k] upper triangular. Modified Gram-Schmidt, applied
/// twice for orthogonality to working precision.
std::pair<Matrix, Matrix> thinQr(const Matrix &m) {
  Matrix q = m, r(m.columns, m.columns);
  for (int64_t j = 0; j < m.columns; ++j) {
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t p = 0; p < j; ++p) {
        double dot = 0;
        for (int64_t i = 0; i < m.rows; ++i)
          dot += q.at(i, p) * q.at(i, j);
        r.at(p, j) += dot;
        for (int64_t i = 0; i < m.rows; ++i)
          q.at(i, j) -= dot * q.at(i, p);
      }
    double norm = 0;
    for (int64_t i = 0; i < m.rows; ++i)
      norm += q.at(i, j) * q.at(i, j);
    norm = std::sqrt(norm);
    r.at(j, j) = norm;
    for (int64_t i = 0; i < m.rows; ++i)
      q.at(i, j) = norm > 0 ? q.at(i, j) / norm : 0.0;
  }
  return {q, r};
}

/// m = U·diag(σ)·Vᵀ for a square m, by one-sided Jacobi rotations of its
/// columns (accurate for the small cores this pass decomposes). σ descends.
struct Svd {
  Matrix u, v;
  std::vector<double> sigma;
};

Svd jacobiSvd(Matrix g) {
  int64_t n = g.columns;
  Matrix v(n, n);
  for (int64_t i = 0; i < n; ++i)
    v.at(i, i) = 1;
  auto rotate = [](Matrix &m, int64_t p, int64_t q, double c, double s) {
    for (int64_t i = 0; i < m.rows; ++i) {
      double x = m.at(i, p), y = m.at(i, q);
      m.at(i, p) = c * x - s * y;
      m.at(i, q) = s * x + c * y;
    }
  };
  for (int sweep = 0; sweep < 60; ++sweep) {
    bool rotated = false;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        double alpha = 0, beta = 0, gamma = 0;
        for (int64_t i = 0; i < g.rows; ++i) {
          alpha += g.at(i, p) * g.at(i, p);
          beta += g.at(i, q) * g.at(i, q);
          gamma += g.at(i, p) * g.at(i, q);
        }
        if (std::abs(gamma) <= 1e-15 * std::sqrt(alpha * beta) || gamma == 0)
          continue;
        double zeta = (beta - alpha) / (2 * gamma);
        double t = (zeta >= 0 ? 1.0 : -1.0) / (std::abs(zeta) + std::sqrt(1 + zeta * zeta));
        double c = 1 / std::sqrt(1 + t * t), s = c * t;
        rotate(g, p, q, c, s);
        rotate(v, p, q, c, s);
        rotated = true;
      }
    if (!rotated)
      break;
  }
  std::vector<double> sigma(n);
  for (int64_t j = 0; j < n; ++j) {
    double norm = 0;
    for (int64_t i = 0; i < g.rows; ++i)
      norm += g.at(i, j) * g.at(i, j);
    sigma[j] = std::sqrt(norm);
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  llvm::stable_sort(order, [&](int64_t l, int64_t r) { return sigma[l] > sigma[r]; });
  Svd result{Matrix(g.rows, n), Matrix(n, n), std::vector<double>(n)};
  for (int64_t j = 0; j < n; ++j) {
    int64_t from = order[j];
    result.sigma[j] = sigma[from];
    for (int64_t i = 0; i < g.rows; ++i)
      result.u.at(i, j) = sigma[from] > 0 ? g.at(i, from) / sigma[from] : 0.0;
    for (int64_t i = 0; i < n; ++i)
      result.v.at(i, j) = v.at(i, from);
  }
  return result;
}

/// `lhs · rhs`, or `lhs · rhsᵀ` when `transposeRhs`.
Matrix multiply(const Matrix &lhs, const Matrix &rhs, bool transposeRhs) {
  int64_t inner = lhs.columns, columns = transposeRhs ? rhs.rows : rhs.columns;
  Matrix result(lhs.rows, columns);
  for (int64_t i = 0; i < lhs.rows; ++i)
    for (int64_t k = 0; k < inner; ++k)
      for (int64_t j = 0; j < columns; ++j)
        result.at(i, j) += lhs.at(i, k) * (transposeRhs ? rhs.at(j, k) : rhs.at(k, j));
  return result;
}

/// Truncates B·A to rank `keep` in place: B = U_k·Σ_k, A = V_kᵀ. Returns the
/// energy discarded, Σ_{j≥k} σⱼ² / Σⱼ σⱼ².
double truncate(StackedFactors &factors, int64_t keep) {
  Matrix aT(factors.a.columns, factors.a.rows); // Aᵀ [in, R]
  for (int64_t r = 0; r < factors.a.rows; ++r)
    for (int64_t i = 0; i < factors.a.columns; ++i)
      aT.at(i, r) = factors.a.at(r, i);
  auto [qb, rb] = thinQr(factors.b);
  auto [qa, ra] = thinQr(aT);
  Svd core = jacobiSvd(multiply(rb, ra, /*transposeRhs=*/true)); // B·A = Qb·(Rb·Raᵀ)·Qaᵀ
  Matrix u = multiply(qb, core.u, false), v = multiply(qa, core.v, false);
  Matrix a(keep, factors.a.columns), b(factors.b.rows, keep);
  for (int64_t j = 0; j < keep; ++j) {
    for (int64_t o = 0; o < b.rows; ++o)
      b.at(o, j) = u.at(o, j) * core.sigma[j];
    for (int64_t i = 0; i < a.columns; ++i)
      a.at(j, i) = v.at(i, j);
  }
  factors.a = a;
  factors.b = b;
  double total = 0, dropped = 0;
  for (size_t j = 0; j < core.sigma.size(); ++j) {
    total += core.sigma[j] * core.sigma[j];
    if (static_cast<int64_t>(j) >= keep)
      dropped += core.sigma[j] * core.sigma[j];
  }
  return total > 0 ? dropped / total : 0.0;
}

/// A weight holding `values` as f32 of `shape`.
Value createWeight(OpBuilder &builder, Location loc, const std::string &name,
                   ArrayRef<int64_t> shape, ArrayRef<double> values) {
  std::vector<float> narrowed(values.begin(), values.end());
  return createComputedWeight(builder, loc, name, shape, narrowed);
}

/// The LoRA ops stacked on `layer`'s output, innermost first; empty when the
/// chain holds another kind of adapter (`mixed` is set then).
SmallVector<LoraOp> loraChain(AdaptableLayer layer, bool &mixed) {
  SmallVector<LoraOp> chain;
  for (Operation *adapter : outputAdapters(layer)) {
    auto lora = dyn_cast<LoraOp>(adapter);
    if (!lora) {
      mixed = true;
      return {};
    }
    chain.push_back(lora);
  }
  return chain;
}

struct CombineAdaptersPass : peft::impl::CombineAdaptersBase<CombineAdaptersPass> {
  using CombineAdaptersBase::CombineAdaptersBase;

  void runOnOperation() override {
    if (method != "cat" && method != "svd") {
      getOperation().emitError("combination method must be 'cat' or 'svd', got '") << method << "'";
      return signalPassFailure();
    }
    if (method == "svd" && rank < 1) {
      getOperation().emitError("svd needs the rank to keep (rank=N, N ≥ 1)");
      return signalPassFailure();
    }
    SmallVector<AdaptableLayer> layers;
    getOperation().walk([&](AdaptableLayer layer) { layers.push_back(layer); });
    for (AdaptableLayer layer : layers)
      if (failed(combine(layer)))
        return signalPassFailure();
  }

  LogicalResult combine(AdaptableLayer layer) {
    bool mixed = false;
    SmallVector<LoraOp> chain = loraChain(layer, mixed);
    if (mixed) {
      layer->emitRemark("adapters on '") << layer.getModulePath()
                                         << "' not combined: only LoRA adapters combine";
      return success();
    }
    if (chain.empty() || (method == "cat" && chain.size() < 2))
      return success();
    std::string error;
    FailureOr<StackedFactors> factors = stackFactors(chain, error);
    if (failed(factors))
      return layer->emitError("cannot combine the adapters on '")
             << layer.getModulePath() << "': " << error;
    int64_t total = factors->a.rows;
    if (method == "svd") {
      int64_t keep = std::min<int64_t>(rank, total);
      double discarded = truncate(*factors, keep);
      layer->emitRemark("adapters on '")
          << layer.getModulePath() << "' combined by svd: rank " << keep << " of " << total
          << " kept, discarded energy " << llvm::formatv("{0:e2}", discarded).str();
    }
    replaceChain(layer, chain, *factors);
    return success();
  }

  /// One peft.lora with the combined factors, scale 1, in place of `chain`.
  void replaceChain(AdaptableLayer layer, ArrayRef<LoraOp> chain, const StackedFactors &factors) {
    LoraOp last = chain.back();
    OpBuilder builder(last);
    Location loc = last.getLoc();
    std::string prefix = name + "." + layer.getModulePath().str();
    LoraOp first = chain.front();
    SmallVector<int64_t> aShape(first.getLoraA().getType().getShape());
    SmallVector<int64_t> bShape(first.getLoraB().getType().getShape());
    aShape[0] = factors.a.rows;
    bShape[1] = factors.b.columns;
    Value a = createWeight(builder, loc, prefix + ".lora_A", aShape, factors.a.values);
    Value b = createWeight(builder, loc, prefix + ".lora_B", bShape, factors.b.values);
    Value bias;
    if (!factors.bias.empty())
      bias = createWeight(builder, loc, prefix + ".lora_bias", {bShape[0]},
                          std::vector<double>(factors.bias.begin(), factors.bias.end()));
    auto combined = LoraOp::create(builder, loc, last.getType(), builder.getStringAttr(name),
                                   last.getInput(), layer->getResult(0), a, b, bias,
                                   builder.getF32FloatAttr(1.0f), last.getStridesAttr(),
                                   last.getPadsAttr());
    last.getResult().replaceAllUsesWith(combined.getResult());
    for (LoraOp lora : llvm::reverse(chain)) {
      SmallVector<Operation *> weights;
      for (Value operand : lora->getOperands().drop_front(2))
        weights.push_back(operand.getDefiningOp());
      lora.erase();
      for (Operation *weight : weights)
        if (weight && weight->use_empty())
          weight->erase();
    }
  }
};

} // namespace
