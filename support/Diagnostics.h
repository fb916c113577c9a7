//===- Diagnostics.h - One-line error messages ------------------*- C++ -*-===//
#ifndef PEFT_SUPPORT_DIAGNOSTICS_H
#define PEFT_SUPPORT_DIAGNOSTICS_H

#include "llvm/ADT/Twine.h"

#include <string>

namespace peft {

/// The longest message a tool prints: enough for a path, a field and why.
inline constexpr size_t kMaxMessageLength = 300;

/// `message` as one line: line breaks and runs of blanks become one space,
/// control characters are dropped, ONNX checker's "==> Context:" trailer goes,
/// and what follows the leading path ("PATH: ") is cut to kMaxMessageLength,
/// ending in "...". Messages lead with the file and field, so the cut loses
/// only detail (an echoed header, a long name).
std::string oneLineMessage(const llvm::Twine &message);

/// Prints "TOOL: error: MESSAGE" as one line to stderr; returns 1.
int reportError(llvm::StringRef tool, const llvm::Twine &message);

} // namespace peft

#endif // PEFT_SUPPORT_DIAGNOSTICS_H
