//===- BufferUses.h - Which ops touch which buffers -------------*- C++ -*-===//
//
// After bufferization, kernels of every back end are fused or moved only when
// nothing between reads or writes what they touch; these answer that.
//===----------------------------------------------------------------------===//
#ifndef PEFT_LOWERING_BUFFERUSES_H
#define PEFT_LOWERING_BUFFERUSES_H

#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace peft {

/// `value` and the views of it (subviews, reshapes, casts), transitively: what
/// reads or writes the same memory.
llvm::SmallPtrSet<mlir::Value, 8> aliasesOf(mlir::Value value);

/// The buffer `value` is a view of (itself if none): aliasesOf(rootOf(v)) is
/// everything that reads or writes v's memory.
mlir::Value rootOf(mlir::Value value);

/// Whether `op` or an op nested in it has an operand among `values`.
bool usesAnyOf(mlir::Operation *op, const llvm::SmallPtrSetImpl<mlir::Value> &values);

/// Whether `op` (or an op inside it) reads or writes one of `touched`, or may
/// write one of `read` (as a destination, a store, a copy or a call; views
/// and sizes do neither): what
/// may not lie between a kernel that writes `touched` and reads `read` and
/// the place it is moved to.
bool interferes(mlir::Operation *op, const llvm::SmallPtrSetImpl<mlir::Value> &touched,
                const llvm::SmallPtrSetImpl<mlir::Value> &read);

} // namespace peft

#endif // PEFT_LOWERING_BUFFERUSES_H
