//===- TensorBuilder.h - Build linalg and tensor ops for imports -*- C++ -*-===//
//
// The few generic shapes every ONNX op lowers to: broadcasting elementwise
// maps, reductions, unit-dimension reshapes, and integer vectors whose elements
// are OpFoldResults (constants fold, dynamic sizes stay index values).
//
//===----------------------------------------------------------------------===//
#ifndef PEFT_FRONTENDS_ONNX_TENSORBUILDER_H
#define PEFT_FRONTENDS_ONNX_TENSORBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"

namespace peft {

/// Elements of a small integer tensor known at import.
using Ints = llvm::SmallVector<mlir::OpFoldResult>;
using ScalarBody =
    llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location, mlir::ValueRange)>;
using Combiner = llvm::function_ref<mlir::Value(mlir::OpBuilder &, mlir::Location,
                                                mlir::Value element, mlir::Value acc)>;

/// The known constant elements of `ints`, or nothing if any is dynamic.
std::optional<llvm::SmallVector<int64_t>> constantInts(const Ints &ints);
/// Whether `size` is known to be >= 0: a constant, a tensor dimension, or
/// the smaller or larger of such sizes.
bool isNonNegative(mlir::OpFoldResult size);
/// `values` as the elements of a floating-point `type`, each rounded to
/// nearest (ties to even).
mlir::DenseElementsAttr floatElements(mlir::RankedTensorType type,
                                      llvm::ArrayRef<double> values);
/// The elements of an integer DenseElementsAttr of rank 0 or 1.
std::optional<Ints> intsOf(mlir::DenseElementsAttr value);

class TensorBuilder {
public:
  TensorBuilder(mlir::OpBuilder &builder, mlir::Location loc) : builder(builder), loc(loc) {}
  void setLoc(mlir::Location newLoc) { loc = newLoc; }
  mlir::OpBuilder &getBuilder() { return builder; }
  mlir::Location getLoc() { return loc; }

  // Sizes.
  mlir::OpFoldResult dim(mlir::Value tensor, int64_t index);
  Ints dims(mlir::Value tensor);
  /// Declares the sizes of `tensor`, for ops whose sizes cannot be traced.
  void recordSizes(mlir::Value tensor, Ints sizes);
  /// Π numerator / Π denominator, cancelling sizes that appear on both sides.
  mlir::OpFoldResult quotient(llvm::ArrayRef<mlir::OpFoldResult> numerator,
                              llvm::ArrayRef<mlir::OpFoldResult> denominator);
  mlir::Value indexValue(mlir::OpFoldResult size);
  mlir::OpFoldResult add(mlir::OpFoldResult lhs, mlir::OpFoldResult rhs);
  mlir::OpFoldResult sub(mlir::OpFoldResult lhs, mlir::OpFoldResult rhs);
  mlir::OpFoldResult mul(mlir::OpFoldResult lhs, mlir::OpFoldResult rhs);
  mlir::OpFoldResult div(mlir::OpFoldResult lhs, mlir::OpFoldResult rhs);
  mlir::OpFoldResult product(llvm::ArrayRef<mlir::OpFoldResult> sizes);
  mlir::OpFoldResult min(mlir::OpFoldResult lhs, mlir::OpFoldResult rhs);
  mlir::OpFoldResult max(mlir::OpFoldResult lhs, mlir::OpFoldResult rhs);
  mlir::OpFoldResult ceilDiv(mlir::OpFoldResult lhs, int64_t divisor);
  /// index + size when index < 0 (a position counted from the end).
  mlir::OpFoldResult wrapNegative(mlir::OpFoldResult index, mlir::OpFoldResult size);
  /// ONNX Slice on one axis of `size` elements: the lowest position read and
  /// how many elements are read (walking down from `start` when `step` < 0).
  std::pair<mlir::OpFoldResult, mlir::OpFoldResult>
  sliceBounds(mlir::OpFoldResult start, mlir::OpFoldResult end, int64_t step,
              mlir::OpFoldResult size);

  // Tensors.
  mlir::Value empty(llvm::ArrayRef<mlir::OpFoldResult> sizes, mlir::Type elementType);
  mlir::Value filled(llvm::ArrayRef<mlir::OpFoldResult> sizes, mlir::TypedAttr value);
  mlir::Value scalarConstant(mlir::Type type, double value);
  /// A tensor<Nxi64> (or tensor<i64> when `scalar`) holding `ints`.
  mlir::Value fromInts(const Ints &ints, bool scalar);

  /// Numpy-broadcasting elementwise map of `inputs`; `resultSizes` forces the
  /// result shape (Expand).
  mlir::Value elementwise(mlir::ValueRange inputs, mlir::Type elementType, ScalarBody body,
                          std::optional<Ints> resultSizes = std::nullopt);
  /// Converts the elements to `elementType` with ONNX Cast semantics; the
  /// flags say which integers are unsigned (the IR's are signless).
  mlir::Value castElements(mlir::Value input, mlir::Type elementType, bool fromUnsigned = false,
                           bool toUnsigned = false);
  /// Reduces `axes` (sorted, non-negative) with `combine`, starting from `init`.
  mlir::Value reduce(mlir::Value input, llvm::ArrayRef<int64_t> axes, bool keepDims,
                     mlir::TypedAttr init, Combiner combine);
  /// The mean over `axes`, keeping them as size-1 dimensions when `keepDims`.
  mlir::Value mean(mlir::Value x, llvm::ArrayRef<int64_t> axes, bool keepDims);
  /// The elements of `input` at offsets + i·strides, i < sizes.
  mlir::Value extractSlice(mlir::Value input, const Ints &offsets, const Ints &sizes,
                           const Ints &strides);
  /// Inserts size-1 dimensions at `axes` (positions in the result).
  mlir::Value insertUnitDims(mlir::Value input, llvm::ArrayRef<int64_t> axes);
  /// Removes size-1 dimensions at `axes`.
  mlir::Value dropUnitDims(mlir::Value input, llvm::ArrayRef<int64_t> axes);
  /// Row-major reshape to `sizes`.
  mlir::Value reshape(mlir::Value input, const Ints &sizes);
  /// Σ_k lhs[..., m, k]·rhs[..., k, n], batch dimensions broadcast.
  mlir::Value batchMatmul(mlir::Value lhs, mlir::Value rhs);

  /// x / y on integers as NumPy computes it where the hardware would trap:
  /// x / 0 is 0, and INT_MIN / -1 wraps to INT_MIN. ONNX leaves both
  /// undefined; a model's input must not be able to kill the process.
  static mlir::Value divideIntegers(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                                    mlir::Value y, bool isUnsigned);
  /// Scalar arithmetic that picks the float or integer op from the type.
  static mlir::Value addScalars(mlir::OpBuilder &b, mlir::Location loc, mlir::Value lhs,
                                mlir::Value rhs);
  static mlir::Value mulScalars(mlir::OpBuilder &b, mlir::Location loc, mlir::Value lhs,
                                mlir::Value rhs);

private:
  mlir::OpBuilder &builder;
  mlir::Location loc;
  llvm::DenseMap<mlir::Value, Ints> knownSizes;
};

} // namespace peft

#endif // PEFT_FRONTENDS_ONNX_TENSORBUILDER_H
