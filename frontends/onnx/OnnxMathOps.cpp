//===- OnnxMathOps.cpp - Arithmetic, reductions and linear layers -----------===//
#include "frontends/onnx/GraphImporter.h"

#include "dialects/peft/PeftDialect.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>

using namespace mlir;

namespace peft {

namespace {

/// Fails unless lhs [..., m, k] and rhs [..., k, n] agree on k.
LogicalResult checkInnerSizes(Value lhs, Value rhs, std::string &message) {
  auto lhsShape = cast<RankedTensorType>(lhs.getType()).getShape();
  auto rhsShape = cast<RankedTensorType>(rhs.getType()).getShape();
  int64_t k = lhsShape.back(), rhsK = rhsShape[rhsShape.size() - 2];
  if (ShapedType::isDynamic(k) || ShapedType::isDynamic(rhsK) || k == rhsK)
    return success();
  message = "inner dimensions differ: " + formatShape(lhsShape) + " times " + formatShape(rhsShape);
  return failure();
}

/// The splat value of a constant tensor, if `value` is one.
std::optional<double> splatConstant(Value value) {
  DenseElementsAttr attr;
  if (!value || !matchPattern(value, m_Constant(&attr)) || !attr.isSplat())
    return std::nullopt;
  if (isa<FloatType>(attr.getElementType()))
    return attr.getSplatValue<APFloat>().convertToDouble();
  return static_cast<double>(attr.getSplatValue<APInt>().getSExtValue());
}

bool isComparison(StringRef op) {
  return llvm::is_contained({"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}, op);
}

Value compare(OpBuilder &b, Location loc, StringRef op, Value lhs, Value rhs, bool isUnsigned) {
  if (isa<FloatType>(lhs.getType())) {
    auto predicate = llvm::StringSwitch<arith::CmpFPredicate>(op)
                         .Case("Equal", arith::CmpFPredicate::OEQ)
                         .Case("Less", arith::CmpFPredicate::OLT)
                         .Case("LessOrEqual", arith::CmpFPredicate::OLE)
                         .Case("GreaterOrEqual", arith::CmpFPredicate::OGE)
                         .Default(arith::CmpFPredicate::OGT);
    return arith::CmpFOp::create(b, loc, predicate, lhs, rhs);
  }
  auto predicate = llvm::StringSwitch<arith::CmpIPredicate>(op)
                       .Case("Equal", arith::CmpIPredicate::eq)
                       .Case("Less", isUnsigned ? arith::CmpIPredicate::ult : arith::CmpIPredicate::slt)
                       .Case("LessOrEqual", isUnsigned ? arith::CmpIPredicate::ule : arith::CmpIPredicate::sle)
                       .Case("GreaterOrEqual", isUnsigned ? arith::CmpIPredicate::uge : arith::CmpIPredicate::sge)
                       .Default(isUnsigned ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::sgt);
  return arith::CmpIOp::create(b, loc, predicate, lhs, rhs);
}

/// The scalar function of a unary elementwise op.
std::function<Value(OpBuilder &, Location, Value)> unaryBody(const onnx::NodeProto &node) {
  StringRef op = node.op_type();
  if (op == "Sqrt")
    return [](OpBuilder &b, Location l, Value x) { return math::SqrtOp::create(b, l, x); };
  if (op == "Erf")
    return [](OpBuilder &b, Location l, Value x) { return math::ErfOp::create(b, l, x); };
  if (op == "Tanh")
    return [](OpBuilder &b, Location l, Value x) { return math::TanhOp::create(b, l, x); };
  if (op == "Exp")
    return [](OpBuilder &b, Location l, Value x) { return math::ExpOp::create(b, l, x); };
  if (op == "Neg")
    return [](OpBuilder &b, Location l, Value x) -> Value {
      if (isa<FloatType>(x.getType()))
        return arith::NegFOp::create(b, l, x);
      return arith::SubIOp::create(b, l, arith::ConstantOp::create(b, l, b.getZeroAttr(x.getType())), x);
    };
  if (op == "Relu")
    return [](OpBuilder &b, Location l, Value x) -> Value {
      return arith::MaximumFOp::create(b, l, x,
                                       arith::ConstantOp::create(b, l, b.getZeroAttr(x.getType())));
    };
  if (op == "Sin")
    return [](OpBuilder &b, Location l, Value x) { return math::SinOp::create(b, l, x); };
  if (op == "Sinh")
    return [](OpBuilder &b, Location l, Value x) { return math::SinhOp::create(b, l, x); };
  if (op == "Cosh")
    return [](OpBuilder &b, Location l, Value x) { return math::CoshOp::create(b, l, x); };
  if (op == "Ceil")
    return [](OpBuilder &b, Location l, Value x) { return math::CeilOp::create(b, l, x); };
  if (op == "Floor")
    return [](OpBuilder &b, Location l, Value x) { return math::FloorOp::create(b, l, x); };
  if (op == "Cos")
    return [](OpBuilder &b, Location l, Value x) { return math::CosOp::create(b, l, x); };
  if (op == "Log")
    return [](OpBuilder &b, Location l, Value x) { return math::LogOp::create(b, l, x); };
  if (op == "Abs")
    return [](OpBuilder &b, Location l, Value x) -> Value {
      if (isa<FloatType>(x.getType()))
        return math::AbsFOp::create(b, l, x);
      return math::AbsIOp::create(b, l, x);
    };
  if (op == "Not")
    return [](OpBuilder &b, Location l, Value x) -> Value {
      return arith::XOrIOp::create(b, l, x, arith::ConstantOp::create(b, l, b.getBoolAttr(true)));
    };
  if (op == "Reciprocal")
    return [](OpBuilder &b, Location l, Value x) -> Value {
      Value one = arith::ConstantOp::create(b, l, b.getFloatAttr(x.getType(), 1.0));
      return arith::DivFOp::create(b, l, one, x);
    };
  if (op == "Sigmoid") // 1 / (1 + exp(-x))
    return [](OpBuilder &b, Location l, Value x) -> Value {
      Value one = arith::ConstantOp::create(b, l, b.getFloatAttr(x.getType(), 1.0));
      Value exp = math::ExpOp::create(b, l, arith::NegFOp::create(b, l, x));
      return arith::DivFOp::create(b, l, one, arith::AddFOp::create(b, l, one, exp));
    };
  if (op == "LeakyRelu") {
    double alpha = floatAttr(node, "alpha", 0.01f);
    return [alpha](OpBuilder &b, Location l, Value x) -> Value {
      Value zero = arith::ConstantOp::create(b, l, b.getZeroAttr(x.getType()));
      Value scaled = arith::MulFOp::create(
          b, l, x, arith::ConstantOp::create(b, l, b.getFloatAttr(x.getType(), alpha)));
      Value negative = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OLT, x, zero);
      return arith::SelectOp::create(b, l, negative, scaled, x);
    };
  }
  if (op == "HardSigmoid" || op == "HardSwish") {
    // HardSigmoid: max(0, min(1, alpha·x + beta)); HardSwish: x·HardSigmoid(x)
    // with alpha = 1/6 and beta = 1/2.
    bool swish = op == "HardSwish";
    double alpha = swish ? 1.0 / 6 : floatAttr(node, "alpha", 0.2f);
    double beta = swish ? 0.5 : floatAttr(node, "beta", 0.5f);
    return [=](OpBuilder &b, Location l, Value x) -> Value {
      auto constant = [&](double v) {
        return arith::ConstantOp::create(b, l, b.getFloatAttr(x.getType(), v));
      };
      Value linear = arith::AddFOp::create(b, l, arith::MulFOp::create(b, l, x, constant(alpha)),
                                           constant(beta));
      Value clamped = arith::MaximumFOp::create(
          b, l, constant(0.0), arith::MinimumFOp::create(b, l, constant(1.0), linear));
      return swish ? Value(arith::MulFOp::create(b, l, x, clamped)) : clamped;
    };
  }
  if (op == "Gelu") {
    bool tanh = stringAttr(node, "approximate", "none") == "tanh";
    return [tanh](OpBuilder &b, Location l, Value x) -> Value {
      auto constant = [&](double v) {
        return arith::ConstantOp::create(b, l, b.getFloatAttr(x.getType(), v));
      };
      Value inner;
      if (tanh) { // tanh(√(2/π)·(x + 0.044715·x³))
        Value cube = arith::MulFOp::create(b, l, arith::MulFOp::create(b, l, x, x), x);
        Value sum = arith::AddFOp::create(b, l, x, arith::MulFOp::create(b, l, constant(0.044715), cube));
        inner = math::TanhOp::create(b, l, arith::MulFOp::create(b, l, constant(std::sqrt(2 / M_PI)), sum));
      } else { // erf(x/√2)
        inner = math::ErfOp::create(b, l, arith::MulFOp::create(b, l, x, constant(M_SQRT1_2)));
      }
      Value half = arith::MulFOp::create(b, l, constant(0.5), x);
      return arith::MulFOp::create(b, l, half, arith::AddFOp::create(b, l, constant(1.0), inner));
    };
  }
  return nullptr;
}


} // namespace

std::function<Value(OpBuilder &, Location, Value, Value)> binaryBody(StringRef op,
                                                                     bool isUnsigned) {
  if (isComparison(op))
    return [=](OpBuilder &b, Location l, Value x, Value y) {
      return compare(b, l, op, x, y, isUnsigned);
    };
  return [=](OpBuilder &b, Location l, Value x, Value y) -> Value {
    bool isFloat = isa<FloatType>(x.getType());
    if (op == "Add")
      return TensorBuilder::addScalars(b, l, x, y);
    if (op == "Mul")
      return TensorBuilder::mulScalars(b, l, x, y);
    if (op == "Sub")
      return isFloat ? Value(arith::SubFOp::create(b, l, x, y)) : Value(arith::SubIOp::create(b, l, x, y));
    if (op == "Div" && isFloat)
      return arith::DivFOp::create(b, l, x, y);
    if (op == "Div")
      return TensorBuilder::divideIntegers(b, l, x, y, isUnsigned);
    if (op == "Max" && isUnsigned)
      return arith::MaxUIOp::create(b, l, x, y);
    if (op == "Min" && isUnsigned)
      return arith::MinUIOp::create(b, l, x, y);
    if (op == "Max")
      return isFloat ? Value(arith::MaximumFOp::create(b, l, x, y)) : Value(arith::MaxSIOp::create(b, l, x, y));
    if (op == "And")
      return arith::AndIOp::create(b, l, x, y);
    if (op == "Or")
      return arith::OrIOp::create(b, l, x, y);
    if (op == "Xor")
      return arith::XOrIOp::create(b, l, x, y);
    if (op == "Min")
      return isFloat ? Value(arith::MinimumFOp::create(b, l, x, y)) : Value(arith::MinSIOp::create(b, l, x, y));
    return math::PowFOp::create(b, l, x, y); // Pow
  };
}

LogicalResult GraphImporter::importElementwise(const onnx::NodeProto &node) {
  StringRef op = node.op_type();
  if (op == "Neg" && knowsInts(node, 0)) { // Shape arithmetic stays known.
    ImportedValue &x = values[node.input(0)];
    Ints negated;
    for (OpFoldResult element : *x.ints)
      negated.push_back(b.sub(builder.getIndexAttr(0), element));
    setInts(node, 0, std::move(negated), x.scalar, x.type().getElementType());
    return success();
  }
  if (op == "Abs" && isUnsigned(node, 0))
    return importIdentity(node);
  if (auto body = unaryBody(node)) {
    FailureOr<Value> x = tensor(node, 0);
    if (failed(x))
      return failure();
    Type elementType = cast<RankedTensorType>(x->getType()).getElementType();
    setTensor(node, 0, b.elementwise(*x, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
      return body(nb, l, args[0]);
    }));
    return success();
  }
  if (succeeded(importIntArithmetic(node)))
    return success();
  if (!error.empty())
    return failure();
  if ((op == "Max" || op == "Min") && node.input_size() == 1)
    return importIdentity(node);
  FailureOr<Value> x = tensor(node, 0), y = tensor(node, 1);
  if (failed(x) || failed(y))
    return failure();
  Type elementType = cast<RankedTensorType>(x->getType()).getElementType();
  if (op == "Pow") { // Small integer powers are products: exact and fast.
    std::optional<double> exponent = splatConstant(*y);
    if (exponent && (*exponent == 2 || *exponent == 3)) {
      int power = static_cast<int>(*exponent);
      setTensor(node, 0, b.elementwise(*x, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
        Value result = args[0];
        for (int i = 1; i < power; ++i)
          result = arith::MulFOp::create(nb, l, result, args[0]);
        return result;
      }));
      return success();
    }
    if (!isa<FloatType>(elementType) || cast<RankedTensorType>(y->getType()).getElementType() !=
                                              elementType)
      return importMixedPow(node, *x, *y), success();
  }
  Type resultType = isComparison(op) ? Type(builder.getI1Type()) : elementType;
  auto body = binaryBody(op, isUnsigned(node, 0));
  Value result = b.elementwise(ValueRange{*x, *y}, resultType,
                               [&](OpBuilder &nb, Location l, ValueRange args) {
                                 return body(nb, l, args[0], args[1]);
                               });
  // Max and Min take any number of inputs.
  for (int i = 2; i < node.input_size() && (op == "Max" || op == "Min"); ++i) {
    FailureOr<Value> next = tensor(node, i);
    if (failed(next))
      return failure();
    result = b.elementwise(ValueRange{result, *next}, resultType,
                           [&](OpBuilder &nb, Location l, ValueRange args) {
                             return body(nb, l, args[0], args[1]);
                           });
  }
  setTensor(node, 0, result);
  return success();
}

/// Pow with an integer operand, in the base's type: integer powers exactly
/// (math.ipowi), anything else in f64 then converted, as ONNX's reference does.
void GraphImporter::importMixedPow(const onnx::NodeProto &node, Value base, Value exponent) {
  Type baseType = cast<RankedTensorType>(base.getType()).getElementType();
  Type exponentType = cast<RankedTensorType>(exponent.getType()).getElementType();
  if (isa<IntegerType>(baseType) && baseType == exponentType) {
    setTensor(node, 0, b.elementwise(ValueRange{base, exponent}, baseType,
                                     [](OpBuilder &nb, Location l, ValueRange args) {
                                       return math::IPowIOp::create(nb, l, args[0], args[1]);
                                     }));
    return;
  }
  Type f64 = builder.getF64Type();
  bool unsignedBase = isUnsigned(node, 0);
  Value wideBase = b.castElements(base, f64, unsignedBase);
  Value wideExponent = b.castElements(exponent, f64, isUnsigned(node, 1));
  Value power = b.elementwise(ValueRange{wideBase, wideExponent}, f64,
                              [](OpBuilder &nb, Location l, ValueRange args) {
                                return math::PowFOp::create(nb, l, args[0], args[1]);
                              });
  setTensor(node, 0, b.castElements(power, baseType, false, unsignedBase));
}

/// Add/Sub/Mul/Div/Equal on integer vectors known at import stay known, so
/// that shape arithmetic folds.
LogicalResult GraphImporter::importIntArithmetic(const onnx::NodeProto &node) {
  StringRef op = node.op_type();
  if (!knowsInts(node, 0) || !knowsInts(node, 1) ||
      !llvm::is_contained({"Add", "Sub", "Mul", "Div", "Equal"}, op))
    return failure();
  ImportedValue &lhs = values[node.input(0)], &rhs = values[node.input(1)];
  size_t count = std::max(lhs.ints->size(), rhs.ints->size());
  if ((lhs.ints->size() != count && lhs.ints->size() != 1) ||
      (rhs.ints->size() != count && rhs.ints->size() != 1))
    return failure();
  Ints result;
  for (size_t i = 0; i < count; ++i) {
    OpFoldResult l = (*lhs.ints)[lhs.ints->size() == 1 ? 0 : i];
    OpFoldResult r = (*rhs.ints)[rhs.ints->size() == 1 ? 0 : i];
    if (op == "Equal") {
      std::optional<int64_t> lc = getConstantIntValue(l), rc = getConstantIntValue(r);
      // A size never equals a negative constant (the -1 of "infer this size").
      bool differ = (lc && *lc < 0 && isNonNegative(r)) || (rc && *rc < 0 && isNonNegative(l));
      if (!differ && (!lc || !rc))
        return failure();
      result.push_back(builder.getIndexAttr(!differ && *lc == *rc));
      continue;
    }
    result.push_back(op == "Add"   ? b.add(l, r)
                     : op == "Sub" ? b.sub(l, r)
                     : op == "Mul" ? b.mul(l, r)
                                   : b.div(l, r));
  }
  Type elementType = op == "Equal" ? builder.getI1Type() : lhs.type().getElementType();
  setInts(node, 0, std::move(result), lhs.scalar && rhs.scalar, elementType);
  return success();
}

LogicalResult GraphImporter::importWhere(const onnx::NodeProto &node) {
  if (knowsInts(node, 0) && knowsInts(node, 1) && knowsInts(node, 2)) {
    auto cond = constantInts(*values[node.input(0)].ints);
    Ints &x = *values[node.input(1)].ints, &y = *values[node.input(2)].ints;
    size_t count = std::max({cond ? cond->size() : 0, x.size(), y.size()});
    if (cond && llvm::all_of(std::initializer_list<size_t>{cond->size(), x.size(), y.size()},
                             [&](size_t n) { return n == count || n == 1; })) {
      Ints result;
      for (size_t i = 0; i < count; ++i)
        result.push_back((*cond)[cond->size() == 1 ? 0 : i] ? x[x.size() == 1 ? 0 : i]
                                                            : y[y.size() == 1 ? 0 : i]);
      setInts(node, 0, std::move(result), values[node.input(1)].scalar, builder.getI64Type());
      return success();
    }
  }
  FailureOr<Value> cond = tensor(node, 0), x = tensor(node, 1), y = tensor(node, 2);
  if (failed(cond) || failed(x) || failed(y))
    return failure();
  Type elementType = cast<RankedTensorType>(x->getType()).getElementType();
  setTensor(node, 0, b.elementwise(ValueRange{*cond, *x, *y}, elementType,
                                   [](OpBuilder &nb, Location l, ValueRange args) {
                                     return arith::SelectOp::create(nb, l, args[0], args[1], args[2]);
                                   }));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions and normalizations
//===----------------------------------------------------------------------===//

FailureOr<SmallVector<int64_t>> GraphImporter::reductionAxes(const onnx::NodeProto &node,
                                                             int64_t rank) {
  auto given = constantList(node, 1, "axes");
  if (failed(given))
    return failure();
  SmallVector<int64_t> axes = given->value_or(SmallVector<int64_t>{});
  if (axes.empty() && !intAttr(node, "noop_with_empty_axes", 0))
    axes = llvm::to_vector(llvm::seq<int64_t>(0, rank));
  for (int64_t &axis : axes) {
    if (axis < -rank || axis >= rank)
      return fail(node, "axis " + llvm::Twine(axis) + " is out of range for rank " +
                            llvm::Twine(rank));
    axis = axis < 0 ? axis + rank : axis;
  }
  llvm::sort(axes);
  return axes;
}

/// The start value and combiner of ReduceSum/Max/Min/Prod over `type`.
static std::pair<TypedAttr, Combiner> reduction(Builder &builder, StringRef op, Type type,
                                                bool isUnsigned) {
  bool isFloat = isa<FloatType>(type);
  auto extreme = [&](bool largest) -> TypedAttr {
    if (isFloat)
      return builder.getFloatAttr(type, largest ? std::numeric_limits<double>::infinity()
                                                : -std::numeric_limits<double>::infinity());
    unsigned width = type.getIntOrFloatBitWidth();
    if (isUnsigned)
      return builder.getIntegerAttr(type, largest ? APInt::getMaxValue(width) : APInt(width, 0));
    return builder.getIntegerAttr(type, largest ? APInt::getSignedMaxValue(width)
                                                : APInt::getSignedMinValue(width));
  };
  if (op == "ReduceMax" && isUnsigned)
    return {extreme(false), [](OpBuilder &b, Location l, Value e, Value acc) -> Value {
              return arith::MaxUIOp::create(b, l, e, acc);
            }};
  if (op == "ReduceMin" && isUnsigned)
    return {extreme(true), [](OpBuilder &b, Location l, Value e, Value acc) -> Value {
              return arith::MinUIOp::create(b, l, e, acc);
            }};
  if (op == "ReduceMax")
    return {extreme(false), [](OpBuilder &b, Location l, Value e, Value acc) -> Value {
              if (isa<FloatType>(e.getType()))
                return arith::MaximumFOp::create(b, l, e, acc);
              return arith::MaxSIOp::create(b, l, e, acc);
            }};
  if (op == "ReduceMin")
    return {extreme(true), [](OpBuilder &b, Location l, Value e, Value acc) -> Value {
              if (isa<FloatType>(e.getType()))
                return arith::MinimumFOp::create(b, l, e, acc);
              return arith::MinSIOp::create(b, l, e, acc);
            }};
  if (op == "ReduceProd")
    return {isFloat ? TypedAttr(builder.getFloatAttr(type, 1.0))
                    : TypedAttr(builder.getIntegerAttr(type, 1)),
            TensorBuilder::mulScalars};
  return {builder.getZeroAttr(type), TensorBuilder::addScalars}; // ReduceSum
}

LogicalResult GraphImporter::importReduce(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  StringRef op = node.op_type();
  bool global = op.starts_with("Global"); // GlobalAveragePool, GlobalMaxPool
  FailureOr<SmallVector<int64_t>> axes =
      global ? FailureOr<SmallVector<int64_t>>(llvm::to_vector(llvm::seq<int64_t>(2, type.getRank())))
             : reductionAxes(node, type.getRank());
  if (failed(axes))
    return failure();
  if (axes->empty())
    return setTensor(node, 0, *x), success();
  bool keepDims = global || intAttr(node, "keepdims", 1);
  if (op == "ReduceSumSquare") {
    Value squares = b.elementwise(*x, type.getElementType(), [](OpBuilder &nb, Location l, ValueRange args) {
      return TensorBuilder::mulScalars(nb, l, args[0], args[0]);
    });
    auto [init, combine] = reduction(builder, "ReduceSum", type.getElementType(), false);
    setTensor(node, 0, b.reduce(squares, *axes, keepDims, init, combine));
    return success();
  }
  if (op == "ReduceMean" || op == "GlobalAveragePool") {
    setTensor(node, 0, b.mean(*x, *axes, keepDims));
    return success();
  }
  auto [init, combine] =
      reduction(builder, op == "GlobalMaxPool" ? "ReduceMax" : op, type.getElementType(),
                isUnsigned(node, 0));
  setTensor(node, 0, b.reduce(*x, *axes, keepDims, init, combine));
  return success();
}

LogicalResult GraphImporter::importSoftmax(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  int64_t axis = intAttr(node, "axis", -1);
  if (axis < -type.getRank() || axis >= type.getRank())
    return fail(node, "axis " + llvm::Twine(axis) + " is out of range for rank " +
                          llvm::Twine(type.getRank()));
  axis = axis < 0 ? axis + type.getRank() : axis;
  Type elementType = type.getElementType();
  auto lowest = builder.getFloatAttr(elementType, -std::numeric_limits<double>::infinity());
  Value max = b.reduce(*x, {axis}, true, lowest, [](OpBuilder &nb, Location l, Value e, Value acc) {
    return arith::MaximumFOp::create(nb, l, e, acc);
  });
  Value exps = b.elementwise(ValueRange{*x, max}, elementType, [](OpBuilder &nb, Location l, ValueRange args) {
    return math::ExpOp::create(nb, l, arith::SubFOp::create(nb, l, args[0], args[1]));
  });
  Value sum = b.reduce(exps, {axis}, true, builder.getZeroAttr(elementType), TensorBuilder::addScalars);
  if (node.op_type() == "LogSoftmax") { // x - max - log(Σ exp(x - max))
    setTensor(node, 0, b.elementwise(ValueRange{*x, max, sum}, elementType,
                                     [](OpBuilder &nb, Location l, ValueRange args) -> Value {
                                       Value shifted = arith::SubFOp::create(nb, l, args[0], args[1]);
                                       return arith::SubFOp::create(nb, l, shifted,
                                                                    math::LogOp::create(nb, l, args[2]));
                                     }));
    return success();
  }
  setTensor(node, 0, b.elementwise(ValueRange{exps, sum}, elementType,
                                   [](OpBuilder &nb, Location l, ValueRange args) {
                                     return arith::DivFOp::create(nb, l, args[0], args[1]);
                                   }));
  return success();
}

/// LayerNormalization: the normalized output is a peft.layer_norm named after
/// its module (from the scale's name), so that adapters can address it; the
/// optional mean and 1/sqrt(variance + epsilon) outputs are computed beside
/// it when asked for.
LogicalResult GraphImporter::importLayerNorm(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  FailureOr<ImportedValue *> scaleEntry = entry(node, 1);
  if (failed(x) || failed(scaleEntry))
    return failure();
  Value scale = layerWeight(**scaleEntry), bias;
  if (hasInput(node, 2)) {
    FailureOr<ImportedValue *> biasEntry = entry(node, 2);
    if (failed(biasEntry))
      return failure();
    bias = layerWeight(**biasEntry);
  }
  auto type = cast<RankedTensorType>(x->getType());
  int64_t axis = intAttr(node, "axis", -1);
  axis = axis < 0 ? axis + type.getRank() : axis;
  if (axis < 0 || axis >= type.getRank())
    return fail(node, "axis " + llvm::Twine(intAttr(node, "axis", -1)) + " is outside input " +
                          formatShape(type.getShape()));
  ArrayRef<int64_t> normalized = type.getShape().drop_front(axis);
  for (Value parameter : {scale, bias}) {
    auto parameterType = parameter ? cast<RankedTensorType>(parameter.getType()) : RankedTensorType();
    if (parameter && (parameterType.getShape() != normalized || !parameterType.hasStaticShape()))
      return fail(node, (parameter == scale ? "scale " : "bias ") +
                            formatShape(parameterType.getShape()) +
                            " must have the shape of the normalized dimensions of input " +
                            formatShape(type.getShape()));
  }
  // The name the node reads, not the initializer behind it: torch's exporter
  // turns equal parameters (fresh layer norms) into Identity nodes of one.
  std::string modulePath = modulePathFor(node, node.input(1));
  float epsilon = floatAttr(node, "epsilon", 1e-5f);
  auto norm = LayerNormOp::create(builder, loc, type, builder.getStringAttr(modulePath), *x, scale,
                                  bias, builder.getI64IntegerAttr(axis),
                                  builder.getF32FloatAttr(epsilon));
  b.recordSizes(norm.getResult(), b.dims(*x));
  setTensor(node, 0, norm.getResult());
  bool wantsMean = node.output_size() > 1 && !node.output(1).empty();
  bool wantsInverse = node.output_size() > 2 && !node.output(2).empty();
  if (!wantsMean && !wantsInverse)
    return success();
  // The statistics, with the normalized dimensions kept as size 1.
  Type elementType = type.getElementType();
  SmallVector<int64_t> axes = llvm::to_vector(llvm::seq<int64_t>(axis, type.getRank()));
  Value average = b.mean(*x, axes, true);
  setTensor(node, 1, average);
  if (!wantsInverse)
    return success();
  Value centered = b.elementwise(ValueRange{*x, average}, elementType, [](OpBuilder &nb, Location l, ValueRange args) {
    return arith::SubFOp::create(nb, l, args[0], args[1]);
  });
  Value squares = b.elementwise(centered, elementType, [](OpBuilder &nb, Location l, ValueRange args) {
    return arith::MulFOp::create(nb, l, args[0], args[0]);
  });
  Value variance = b.mean(squares, axes, true);
  Value epsilonValue = b.scalarConstant(elementType, epsilon);
  setTensor(node, 2, b.elementwise(variance, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
    Value one = arith::ConstantOp::create(nb, l, nb.getFloatAttr(elementType, 1.0));
    Value stddev = math::SqrtOp::create(nb, l, arith::AddFOp::create(nb, l, args[0], epsilonValue));
    return arith::DivFOp::create(nb, l, one, stddev);
  }));
  return success();
}

/// Clip(x, min?, max?): the bounds are optional scalar inputs.
LogicalResult GraphImporter::importClip(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  SmallVector<Value> inputs = {*x};
  bool hasMin = hasInput(node, 1), hasMax = hasInput(node, 2);
  for (int i : {1, 2}) {
    if (!hasInput(node, i))
      continue;
    FailureOr<Value> bound = tensor(node, i);
    if (failed(bound))
      return failure();
    inputs.push_back(*bound);
  }
  Type elementType = cast<RankedTensorType>(x->getType()).getElementType();
  auto largest = binaryBody("Max", isUnsigned(node, 0));
  auto smallest = binaryBody("Min", isUnsigned(node, 0));
  setTensor(node, 0, b.elementwise(inputs, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
    Value result = args[0];
    if (hasMin)
      result = largest(nb, l, result, args[1]);
    if (hasMax)
      result = smallest(nb, l, result, args.back());
    return result;
  }));
  return success();
}

LogicalResult GraphImporter::importTrilu(const onnx::NodeProto &node) {
  FailureOr<Value> x = tensor(node, 0);
  if (failed(x))
    return failure();
  auto given = constantList(node, 1);
  if (failed(given))
    return failure();
  if (*given && (*given)->size() != 1)
    return fail(node, "k must be a scalar");
  int64_t k = *given ? (**given)[0] : 0;
  bool upper = intAttr(node, "upper", 1);
  auto type = cast<RankedTensorType>(x->getType());
  int64_t rank = type.getRank();
  if (rank < 2)
    return fail(node, "input must have rank 2 or more");
  setTensor(node, 0, b.elementwise(*x, type.getElementType(), [&](OpBuilder &nb, Location l, ValueRange args) {
    // Keep element (i, j) when j - i >= k (upper) or j - i <= k (lower).
    Value i = linalg::IndexOp::create(nb, l, rank - 2);
    Value j = linalg::IndexOp::create(nb, l, rank - 1);
    Value diagonal = arith::SubIOp::create(nb, l, j, i);
    Value kValue = arith::ConstantIndexOp::create(nb, l, k);
    Value keep = arith::CmpIOp::create(nb, l, upper ? arith::CmpIPredicate::sge : arith::CmpIPredicate::sle,
                                       diagonal, kValue);
    Value zero = arith::ConstantOp::create(nb, l, nb.getZeroAttr(args[0].getType()));
    return arith::SelectOp::create(nb, l, keep, args[0], zero);
  }));
  return success();
}

//===----------------------------------------------------------------------===//
// Matrix products and linear layers
//===----------------------------------------------------------------------===//

std::string GraphImporter::modulePathFor(const onnx::NodeProto &node,
                                         const std::string &weightName) {
  StringRef name(weightName);
  if (!name.starts_with("onnx::") && name.consume_back(".weight"))
    return name.str();
  // torch names nodes after their module scope: /encoder/layer.0/attention/self/query/MatMul.
  // A called container repeats its name in its children's: /layer1/layer1.0/conv1/Conv.
  StringRef scope(node.name());
  if (scope.consume_front("/") && scope.contains('/')) {
    SmallVector<StringRef> segments, parts;
    scope.rsplit('/').first.split(segments, '/');
    for (StringRef segment : segments) {
      if (!parts.empty() && segment.starts_with((parts.back() + ".").str()))
        parts.pop_back();
      parts.push_back(segment);
    }
    return llvm::join(parts, ".");
  }
  return weightName;
}

LogicalResult GraphImporter::importLinear(const onnx::NodeProto &node, Value input,
                                          ImportedValue &weightEntry, Value bias,
                                          bool weightInOut) {
  Value weight = layerWeight(weightEntry);
  auto weightType = cast<RankedTensorType>(weight.getType());
  auto inputType = cast<RankedTensorType>(input.getType());
  if (weightType.getRank() != 2)
    return fail(node, "weight '" + weightEntry.weightName + "' " +
                          formatShape(weightType.getShape()) + " is not a matrix");
  int64_t in = weightType.getDimSize(weightInOut ? 0 : 1);
  int64_t out = weightType.getDimSize(weightInOut ? 1 : 0);
  if (inputType.getRank() < 1 ||
      (!inputType.isDynamicDim(inputType.getRank() - 1) && inputType.getShape().back() != in))
    return fail(node, "input " + formatShape(inputType.getShape()) + " does not match weight '" +
                          weightEntry.weightName + "' " + formatShape(weightType.getShape()));
  SmallVector<int64_t> shape(inputType.getShape());
  shape.back() = out;
  auto resultType = RankedTensorType::get(shape, inputType.getElementType());
  std::string modulePath = modulePathFor(node, weightEntry.weightName);
  auto linear = LinearOp::create(builder, loc, resultType, builder.getStringAttr(modulePath),
                                 input, weight, bias,
                                 weightInOut ? builder.getUnitAttr() : UnitAttr());
  Ints sizes = b.dims(input);
  sizes.back() = builder.getIndexAttr(out);
  b.recordSizes(linear.getResult(), sizes);
  setTensor(node, 0, linear.getResult());
  return success();
}

LogicalResult GraphImporter::importMatMul(const onnx::NodeProto &node) {
  FailureOr<ImportedValue *> rhs = entry(node, 1);
  if (failed(rhs))
    return failure();
  FailureOr<Value> lhs = tensor(node, 0);
  if (failed(lhs))
    return failure();
  bool isWeight = !(*rhs)->weightName.empty() && (*rhs)->weightType.getRank() == 2;
  if (isWeight)
    return importLinear(node, *lhs, **rhs, Value(), /*weightInOut=*/true);
  Value rhsTensor = materialize(**rhs);
  if (cast<RankedTensorType>(lhs->getType()).getRank() < 2 ||
      cast<RankedTensorType>(rhsTensor.getType()).getRank() < 2)
    return fail(node, "MatMul of vectors is not supported");
  std::string message;
  if (failed(checkInnerSizes(*lhs, rhsTensor, message)))
    return fail(node, message);
  setTensor(node, 0, b.batchMatmul(*lhs, rhsTensor));
  return success();
}

/// Transposes a matrix.
static Value transposeMatrix(TensorBuilder &b, Value matrix) {
  Ints sizes = {b.dim(matrix, 1), b.dim(matrix, 0)};
  Value init = b.empty(sizes, cast<RankedTensorType>(matrix.getType()).getElementType());
  return linalg::TransposeOp::create(b.getBuilder(), b.getLoc(), matrix, init,
                                     ArrayRef<int64_t>{1, 0})
      .getResult()[0];
}

/// Y = alpha·A'·B' + beta·C with A' = transA ? Aᵀ : A, B' likewise. With a
/// constant B, transA = 0 and alpha = beta = 1 it is a linear layer.
LogicalResult GraphImporter::importGemm(const onnx::NodeProto &node) {
  bool transA = intAttr(node, "transA", 0), transB = intAttr(node, "transB", 0);
  float alpha = floatAttr(node, "alpha", 1), beta = floatAttr(node, "beta", 1);
  FailureOr<ImportedValue *> weight = entry(node, 1);
  FailureOr<Value> input = tensor(node, 0);
  if (failed(weight) || failed(input))
    return failure();
  // ONNX's Gemm multiplies matrices; the transposes below index dimension 1.
  if (cast<RankedTensorType>(input->getType()).getRank() != 2 || (*weight)->type().getRank() != 2)
    return fail(node, "A " + formatShape(cast<RankedTensorType>(input->getType()).getShape()) +
                          " and B " + formatShape((*weight)->type().getShape()) +
                          " must both be matrices");
  Value bias;
  if (hasInput(node, 2)) {
    FailureOr<ImportedValue *> c = entry(node, 2);
    if (failed(c))
      return failure();
    bias = layerWeight(**c);
  }
  bool biasIsVector = !bias || cast<RankedTensorType>(bias.getType()).getRank() == 1;
  if (!(*weight)->weightName.empty() && !transA && alpha == 1 && beta == 1 && biasIsVector &&
      (!bias || cast<RankedTensorType>(bias.getType()).getDimSize(0) ==
                    (*weight)->weightType.getDimSize(transB ? 0 : 1)))
    return importLinear(node, *input, **weight, bias, !transB);

  Value a = transA ? transposeMatrix(b, *input) : *input;
  Value rhs = materialize(**weight);
  rhs = transB ? transposeMatrix(b, rhs) : rhs;
  std::string message;
  if (failed(checkInnerSizes(a, rhs, message)))
    return fail(node, message);
  Value product = b.batchMatmul(a, rhs);
  Type elementType = cast<RankedTensorType>(product.getType()).getElementType();
  Value alphaValue = b.scalarConstant(elementType, alpha);
  Value betaValue = b.scalarConstant(elementType, beta);
  if (!bias) {
    setTensor(node, 0, b.elementwise(product, elementType, [&](OpBuilder &nb, Location l, ValueRange args) {
      return arith::MulFOp::create(nb, l, args[0], alphaValue);
    }));
    return success();
  }
  // C broadcasts to the product's shape, which leads the operands.
  setTensor(node, 0, b.elementwise(ValueRange{product, bias}, elementType,
                                   [&](OpBuilder &nb, Location l, ValueRange args) {
                                     Value scaled = arith::MulFOp::create(nb, l, args[0], alphaValue);
                                     Value shift = arith::MulFOp::create(nb, l, args[1], betaValue);
                                     return arith::AddFOp::create(nb, l, scaled, shift);
                                   }));
  return success();
}

/// A bias added to a linear layer's output folds into the layer, as it was in
/// the source module (nn.Linear exports as MatMul + Add).
LogicalResult GraphImporter::importAdd(const onnx::NodeProto &node) {
  for (int side = 0; side < 2 && hasInput(node, 1); ++side) {
    auto found = values.find(node.input(side));
    LinearOp linear = found != values.end() && found->second.tensor
                          ? found->second.tensor.getDefiningOp<LinearOp>()
                          : LinearOp();
    if (!linear || linear.getBias() || useCounts.lookup(node.input(side)) != 1)
      continue;
    FailureOr<ImportedValue *> other = entry(node, 1 - side);
    if (failed(other) || (*other)->weightName.empty())
      continue;
    Value bias = layerWeight(**other); // Named, so merges can rewrite it.
    auto biasType = cast<RankedTensorType>(bias.getType());
    if (biasType.getRank() != 1 || biasType.getDimSize(0) != linear.getOutFeatures())
      continue;
    std::string modulePath = linear.getModulePath().str();
    StringRef biasName((*other)->weightName);
    if (StringRef(modulePath).starts_with("onnx::") && !biasName.starts_with("onnx::") &&
        biasName.consume_back(".bias"))
      modulePath = biasName.str();
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPoint(linear);
    if (Operation *biasOp = bias.getDefiningOp(); biasOp && biasOp->getBlock() == linear->getBlock() &&
                                                   linear->isBeforeInBlock(biasOp))
      biasOp->moveBefore(linear);
    auto withBias = LinearOp::create(builder, linear.getLoc(), linear.getType(),
                                     builder.getStringAttr(modulePath), linear.getInput(),
                                     linear.getWeight(), bias, linear.getWeightInOutAttr());
    b.recordSizes(withBias.getResult(), b.dims(linear.getResult()));
    linear.getResult().replaceAllUsesWith(withBias.getResult());
    linear.erase();
    setTensor(node, 0, withBias.getResult());
    return success();
  }
  return importElementwise(node);
}

} // namespace peft
