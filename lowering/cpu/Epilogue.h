//===- Epilogue.h - Panel GEMM epilogues on vectors -------------*- C++ -*-===//
//
// The CPU's side of GEMM epilogues (lowering/Epilogue.h): which maps the
// tensor passes leave for the panel GEMMs, and their bodies on vectors.
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_CPU_EPILOGUE_H
#define PEFT_LOWERING_CPU_EPILOGUE_H

#include "lowering/Epilogue.h"

namespace peft {

/// On tensors: whether `op` is the epilogue of a panel GEMM, the only reader
/// of its result (directly or split into a batch of rows): left for the
/// kernel by the passes that would run it apart. A map reading the results
/// of several is the epilogue of one of them.
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
