//===- Diagnostics.cpp - One-line error messages ----------------------------===//
#include "support/Diagnostics.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/WithColor.h"

namespace peft {

std::string oneLineMessage(const llvm::Twine &message) {
  std::string text = message.str();
  llvm::StringRef view(text);
  view = view.split("==> Context:").first;
  std::string line;
  bool blank = false;
  for (char c : view) {
    if (llvm::isSpace(c)) {
      blank = !line.empty();
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      continue;
    if (blank)
      line += ' ';
    blank = false;
    line += c;
  }
  // The leading path is what the user typed: the limit is on what follows.
  size_t pathLength = llvm::StringRef(line).find(": ");
  size_t limit = kMaxMessageLength +
                 (pathLength == llvm::StringRef::npos ? 0 : std::min<size_t>(pathLength, 4096));
  if (line.size() > limit) {
    line.resize(limit - 3);
    // Never end inside a UTF-8 sequence.
    while (!line.empty() && (static_cast<unsigned char>(line.back()) & 0xc0) == 0x80)
      line.pop_back();
    if (!line.empty() && static_cast<unsigned char>(line.back()) >= 0xc0)
      line.pop_back();
    line += "...";
  }
  return line;
}

int reportError(llvm::StringRef tool, const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), tool) << oneLineMessage(message) << "\n";
  return 1;
}

} // namespace peft
