//===- ToolDiagnostics.h - MLIR diagnostics as one line each ----*- C++ -*-===//
#ifndef PEFT_TOOLS_COMMON_TOOLDIAGNOSTICS_H
#define PEFT_TOOLS_COMMON_TOOLDIAGNOSTICS_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <memory>

namespace peft {

/// Prints each diagnostic of `context` as "TOOL: error: FILE:LINE:COL: message"
/// (the location when it is a file's), one line per diagnostic, as long as
/// the returned handler lives.
std::unique_ptr<mlir::ScopedDiagnosticHandler>
printDiagnosticsAsLines(mlir::MLIRContext &context, llvm::StringRef tool);

} // namespace peft

#endif // PEFT_TOOLS_COMMON_TOOLDIAGNOSTICS_H
