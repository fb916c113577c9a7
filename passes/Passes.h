//===- Passes.h - The peft transformation passes ----------------*- C++ -*-===//
#ifndef PEFT_PASSES_PASSES_H
#define PEFT_PASSES_PASSES_H

#include "dialects/peft/PeftDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace peft {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace peft

#endif // PEFT_PASSES_PASSES_H
