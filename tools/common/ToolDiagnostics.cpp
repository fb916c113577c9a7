//===- ToolDiagnostics.cpp - MLIR diagnostics as one line each --------------===//
#include "tools/common/ToolDiagnostics.h"

#include "support/Diagnostics.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"
#include "llvm/Support/WithColor.h"

namespace peft {

std::unique_ptr<mlir::ScopedDiagnosticHandler>
printDiagnosticsAsLines(mlir::MLIRContext &context, llvm::StringRef tool) {
  std::string name = tool.str();
  return std::make_unique<mlir::ScopedDiagnosticHandler>(
      &context, [name](mlir::Diagnostic &diagnostic) {
        llvm::raw_ostream &os = llvm::errs();
        switch (diagnostic.getSeverity()) {
        case mlir::DiagnosticSeverity::Error:
          llvm::WithColor::error(os, name);
          break;
        case mlir::DiagnosticSeverity::Warning:
          llvm::WithColor::warning(os, name);
          break;
        default:
          llvm::WithColor::remark(os, name);
        }
        std::string where;
        if (auto file = llvm::dyn_cast<mlir::FileLineColLoc>(diagnostic.getLocation()))
          where = (file.getFilename().getValue() + ":" + llvm::Twine(file.getLine()) + ":" +
                   llvm::Twine(file.getColumn()) + ": ")
                      .str();
        os << oneLineMessage(where + diagnostic.str()) << "\n";
        return mlir::success();
      });
}

} // namespace peft
