//===- ParallelCall.cpp - Calls split over the runtime's threads ------------===//
#include "lowering/cpu/ParallelCall.h"

#include "mlir/Conversion/LLVMCommon/TypeConverter.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;

namespace peft {

static constexpr llvm::StringLiteral kParallelFor = "peft_parallel_for";

/// The LLVM struct that holds one value of each capture's type.
static LLVM::LLVMStructType contextType(MLIRContext *context, TypeRange captures) {
  LLVMTypeConverter converter(context);
  SmallVector<Type> fields;
  for (Type type : captures)
    fields.push_back(converter.convertType(type));
  return LLVM::LLVMStructType::getLiteral(context, fields);
}

static Value fieldAddress(OpBuilder &builder, Location loc, LLVM::LLVMStructType type,
                          Value base, int32_t field) {
  auto pointer = LLVM::LLVMPointerType::get(builder.getContext());
  return LLVM::GEPOp::create(builder, loc, pointer, type, base,
                             ArrayRef<LLVM::GEPArg>{0, field});
}

/// KERNEL_task(context, begin, end): the captures read back, then the kernel.
static func::FuncOp getOrCreateTask(func::FuncOp kernel, LLVM::LLVMStructType type) {
  auto module = kernel->getParentOfType<ModuleOp>();
  std::string name = (kernel.getName() + "_task").str();
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  MLIRContext *context = module.getContext();
  OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
  Location loc = kernel.getLoc();
  auto pointer = LLVM::LLVMPointerType::get(context);
  auto task = func::FuncOp::create(
      builder, loc, name,
      builder.getFunctionType({pointer, builder.getIndexType(), builder.getIndexType()}, {}));
  task.setPrivate();
  Block *body = task.addEntryBlock();
  builder.setInsertionPointToStart(body);
  TypeRange kernelInputs = kernel.getFunctionType().getInputs();
  SmallVector<Value> arguments;
  for (unsigned i = 0; i + 2 < kernelInputs.size(); ++i) {
    Value address = fieldAddress(builder, loc, type, body->getArgument(0), i);
    Value field = LLVM::LoadOp::create(builder, loc, type.getBody()[i], address);
    arguments.push_back(
        UnrealizedConversionCastOp::create(builder, loc, kernelInputs[i], field).getResult(0));
  }
  arguments.push_back(body->getArgument(1));
  arguments.push_back(body->getArgument(2));
  func::CallOp::create(builder, loc, kernel, arguments);
  func::ReturnOp::create(builder, loc);
  return task;
}

/// void peft_parallel_for(void (*task)(void *, i64, i64), void *context, i64 count).
static func::FuncOp getOrDeclareParallelFor(ModuleOp module) {
  if (auto existing = module.lookupSymbol<func::FuncOp>(kParallelFor))
    return existing;
  OpBuilder builder = OpBuilder::atBlockEnd(module.getBody());
  auto pointer = LLVM::LLVMPointerType::get(module.getContext());
  auto declaration = func::FuncOp::create(
      builder, module.getLoc(), kParallelFor,
      builder.getFunctionType({pointer, pointer, builder.getI64Type()}, {}));
  declaration.setPrivate();
  return declaration;
}

void createParallelCall(OpBuilder &builder, Location loc, func::FuncOp kernel,
                        ValueRange captures, Value count) {
  MLIRContext *context = builder.getContext();
  auto module = kernel->getParentOfType<ModuleOp>();
  LLVM::LLVMStructType type = contextType(context, captures.getTypes());
  func::FuncOp task = getOrCreateTask(kernel, type);
  func::FuncOp parallelFor = getOrDeclareParallelFor(module);
  auto pointer = LLVM::LLVMPointerType::get(context);

  // The context lives in the caller's frame: allocated once at its entry.
  Value contextPointer;
  {
    OpBuilder::InsertionGuard guard(builder);
    Block &entry = builder.getInsertionBlock()->getParent()->front();
    builder.setInsertionPointToStart(&entry);
    Value one = LLVM::ConstantOp::create(builder, loc, builder.getI64Type(),
                                         builder.getI64IntegerAttr(1));
    contextPointer = LLVM::AllocaOp::create(builder, loc, pointer, type, one);
  }
  for (auto [i, capture] : llvm::enumerate(captures)) {
    Value value =
        UnrealizedConversionCastOp::create(builder, loc, type.getBody()[i], capture).getResult(0);
    LLVM::StoreOp::create(builder, loc, value, fieldAddress(builder, loc, type, contextPointer, i));
  }
  Value taskValue = func::ConstantOp::create(builder, loc, task.getFunctionType(),
                                             SymbolRefAttr::get(task));
  Value taskPointer =
      UnrealizedConversionCastOp::create(builder, loc, pointer, taskValue).getResult(0);
  Value count64 = arith::IndexCastOp::create(builder, loc, builder.getI64Type(), count);
  func::CallOp::create(builder, loc, parallelFor, ValueRange{taskPointer, contextPointer, count64});
}

} // namespace peft
