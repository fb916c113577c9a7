//===- EmitPackedEntry.cpp - One calling convention for every model ---------===//
#include "lowering/Passes.h"

#include "mlir/IR/Builders.h"

namespace peft {
#define GEN_PASS_DEF_EMITPACKEDENTRY
#include "lowering/Passes.h.inc"
} // namespace peft

using namespace mlir;
using namespace peft;

namespace {

constexpr StringLiteral kCInterfacePrefix = "_mlir_ciface_";

/// void NAME_packed(void **args) { _mlir_ciface_NAME(args[0], ..., args[n-1]); }
void emitPackedWrapper(LLVM::LLVMFuncOp target, StringRef name) {
  OpBuilder builder(target);
  builder.setInsertionPointAfter(target);
  Location loc = target.getLoc();
  MLIRContext *context = builder.getContext();
  auto ptrType = LLVM::LLVMPointerType::get(context);
  auto wrapper = LLVM::LLVMFuncOp::create(
      builder, loc, (name + "_packed").str(),
      LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(context), {ptrType}));
  Block *body = wrapper.addEntryBlock(builder);
  builder.setInsertionPointToStart(body);
  SmallVector<Value> args;
  for (unsigned i = 0, e = target.getNumArguments(); i < e; ++i) {
    Value slot = LLVM::GEPOp::create(builder, loc, ptrType, ptrType,
                                     body->getArgument(0),
                                     ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)});
    args.push_back(LLVM::LoadOp::create(builder, loc, ptrType, slot));
  }
  LLVM::CallOp::create(builder, loc, target, args);
  LLVM::ReturnOp::create(builder, loc, ValueRange());
}

struct EmitPackedEntryPass : peft::impl::EmitPackedEntryBase<EmitPackedEntryPass> {
  void runOnOperation() override {
    SmallVector<LLVM::LLVMFuncOp> interfaces;
    for (auto func : getOperation().getOps<LLVM::LLVMFuncOp>())
      if (func.getName().starts_with(kCInterfacePrefix) && !func.isExternal())
        interfaces.push_back(func);
    for (LLVM::LLVMFuncOp func : interfaces) {
      if (!llvm::all_of(func.getArgumentTypes(), llvm::IsaPred<LLVM::LLVMPointerType>)) {
        func.emitError("entry arguments must all be memrefs");
        return signalPassFailure();
      }
      emitPackedWrapper(func, func.getName().drop_front(kCInterfacePrefix.size()));
    }
  }
};

} // namespace
