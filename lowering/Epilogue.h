//===- Epilogue.h - Elementwise ops run in a GEMM kernel's store -*- C++ -*-===//
//
// A map that reads a GEMM's result (a bias or residual add, GELU, DoRA's
// rescale, a LoRA's bias, a cast to the model's half type) can run in the
// GEMM kernel as the accumulators are stored for the last time, instead of
// as a pass of its own over the result: its "epilogue". Shared by the CPU's
// panel GEMMs and the CUDA target's tiled GEMMs.
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_EPILOGUE_H
#define PEFT_LOWERING_EPILOGUE_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"

#include <optional>

namespace peft {

/// How an epilogue reads each of its inputs, at the accumulator's row and
/// column: the accumulator itself, a tensor of the output's shape (rows), or
/// a vector along the output's last dimension (columns).
enum class EpilogueInput { Accumulator, Rows, Columns };

/// The element types an epilogue may have: f32 only (the CPU's vector
/// kernels), or any float type besides the f32 accumulator.
enum class EpilogueTypes { F32, Floats };

/// The inputs of `op` if it can be an epilogue, the accumulator being the
/// one input for which `isAccumulator` holds: a map (identity output) of
/// arith and math ops that apply elementwise, reading only its inputs and
/// scalar constants, of `types`. std::nullopt otherwise.
std::optional<llvm::SmallVector<EpilogueInput>>
epilogueInputs(mlir::linalg::GenericOp op, llvm::function_ref<bool(mlir::Value)> isAccumulator,
               EpilogueTypes types = EpilogueTypes::F32);

struct FoundEpilogue {
  mlir::linalg::GenericOp op;
  llvm::SmallVector<EpilogueInput> kinds;
};

/// On memrefs: the map that alone reads what the GEMM made of `gemms` (in
/// block order) wrote to `out`, when the kernel can run at the map's place
/// with it as its epilogue: nothing between the last of them and it touches
/// `out` or writes the GEMM's `inputs`, nothing after reads `out`, and it
/// writes neither `out` nor a buffer the GEMM reads.
std::optional<FoundEpilogue> findEpilogue(llvm::ArrayRef<mlir::Operation *> gemms,
                                          mlir::Value out, mlir::ValueRange inputs,
                                          EpilogueTypes types = EpilogueTypes::F32);

} // namespace peft

#endif // PEFT_LOWERING_EPILOGUE_H
