//===- Epilogue.h - Elementwise ops run in a GEMM kernel's store -*- C++ -*-===//
//
// A map that reads a panel GEMM's result (a bias or residual add, GELU,
// DoRA's rescale, a LoRA's bias) runs in the GEMM kernel as the
// accumulators are stored for the last time, instead of as a pass of its own
// over the result: its "epilogue".
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_CPU_EPILOGUE_H
#define PEFT_LOWERING_CPU_EPILOGUE_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"

#include <optional>

namespace peft {

/// How an epilogue reads each of its inputs, at the accumulator's row and
/// column: the accumulator itself, a tensor of the output's shape (rows), or
/// a vector along the output's last dimension (columns).
enum class EpilogueInput { Accumulator, Rows, Columns };

/// The inputs of `op` if it can be an epilogue, the accumulator being the
/// one input for which `isAccumulator` holds: an f32 map (identity output)
/// of arith and math ops that apply elementwise, reading only its inputs
/// and scalar constants. std::nullopt otherwise.
std::optional<llvm::SmallVector<EpilogueInput>>
epilogueInputs(mlir::linalg::GenericOp op, llvm::function_ref<bool(mlir::Value)> isAccumulator);

/// On tensors: whether `op` is the epilogue of a panel GEMM, the only reader
/// of its result (directly or split into a batch of rows): left for the
/// kernel by the passes that would run it apart.
bool isPanelGemmEpilogue(mlir::linalg::GenericOp op);

/// `op`'s body on vectors of `width` f32: `inputs` are its inputs' vectors
/// in order; returns the yielded vector.
mlir::Value emitEpilogue(mlir::OpBuilder &builder, mlir::Location loc, mlir::linalg::GenericOp op,
                         mlir::ValueRange inputs, int64_t width);

/// A short name for what `op` computes with inputs read as `kinds` (kernel
/// names differ when their epilogues do).
std::string epilogueKey(mlir::linalg::GenericOp op, llvm::ArrayRef<EpilogueInput> kinds);

} // namespace peft

#endif // PEFT_LOWERING_CPU_EPILOGUE_H
