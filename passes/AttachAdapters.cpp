//===- AttachAdapters.cpp - Attach PEFT adapters to their layers ------------===//
#include "passes/Passes.h"

#include "passes/AdapterAttacher.h"

namespace peft {
#define GEN_PASS_DEF_ATTACHADAPTERS
#include "passes/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

FailureOr<AdapterSpec> peft::parseAdapterSpec(StringRef spec) {
  AdapterSpec parsed;
  auto [location, weight] = spec.rsplit(':'); // No ':': location is the spec.
  bool hasWeight = location.size() != spec.size();
  if (hasWeight && (location.empty() || weight.getAsDouble(parsed.weight)))
    return failure();
  auto [directory, name] = location.split('=');
  parsed.directory = directory.str();
  parsed.name = name.empty() ? "default" : name.str();
  return parsed;
}

namespace {

struct AttachAdaptersPass : peft::impl::AttachAdaptersBase<AttachAdaptersPass> {
  using AttachAdaptersBase::AttachAdaptersBase;

  void runOnOperation() override {
    AdapterAttacher attacher(getOperation());
    for (const std::string &spec : adapters) {
      FailureOr<AdapterSpec> parsed = parseAdapterSpec(spec);
      if (failed(parsed)) {
        getOperation().emitError("adapter '")
            << spec << "': expected DIR[=NAME][:WEIGHT], WEIGHT a number";
        return signalPassFailure();
      }
      auto adapter = readHfPeftAdapter(parsed->directory, parsed->name);
      if (!adapter) {
        getOperation().emitError(llvm::toString(adapter.takeError()));
        return signalPassFailure();
      }
      if (failed(attacher.attach(*adapter, parsed->weight)))
        return signalPassFailure();
    }
  }
};

} // namespace
