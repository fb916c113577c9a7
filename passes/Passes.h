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

/// An adapter as `--adapter` names it, DIR[=NAME][:WEIGHT]: where it is, what
/// the IR calls it ("default" by default, as in PEFT), and the weight of its
/// delta in the combination of all adapters (1 by default).
struct AdapterSpec {
  std::string directory, name;
  double weight = 1;
};

/// `spec` taken apart; failure when WEIGHT is not a number.
mlir::FailureOr<AdapterSpec> parseAdapterSpec(llvm::StringRef spec);

/// The entry's argument `peft-batch-adapters` adds: each row's adapter slot.
constexpr llvm::StringLiteral kAdapterIndexInput = "adapter_index";

/// What `peft-batch-adapters`' `methods` (peftc --slot-methods) may name:
/// the tables beyond LoRA's factors a slotted layer can hold.
constexpr llvm::StringLiteral kSlotMethods[] = {"lora_bias", "dora", "ia3"};

/// Whether `method` is one of kSlotMethods.
inline bool isSlotMethod(llvm::StringRef method) {
  return llvm::is_contained(kSlotMethods, method);
}

} // namespace peft

#endif // PEFT_PASSES_PASSES_H
