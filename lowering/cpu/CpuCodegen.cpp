//===- CpuCodegen.cpp - LLVM dialect to a shared library for the host -------===//
#include "lowering/cpu/CpuBackend.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

using namespace mlir;

namespace peft {

static llvm::Error codegenError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// A target machine for the CPU we run on, with every feature it has (AVX2,
/// AVX-512, ...), producing position-independent code for a shared library.
static llvm::Expected<std::unique_ptr<llvm::TargetMachine>> createHostTargetMachine() {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return codegenError("no LLVM target for " + triple.str() + ": " + error);
  llvm::SubtargetFeatures features;
  for (const auto &[feature, enabled] : llvm::sys::getHostCPUFeatures())
    features.AddFeature(feature, enabled);
  return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(
      triple, llvm::sys::getHostCPUName(), features.getString(), llvm::TargetOptions(),
      llvm::Reloc::PIC_, std::nullopt, llvm::CodeGenOptLevel::Aggressive));
}

static llvm::Error emitObject(llvm::Module &module, llvm::TargetMachine &machine,
                              StringRef path) {
  std::error_code errorCode;
  llvm::ToolOutputFile object(path, errorCode, llvm::sys::fs::OF_None);
  if (errorCode)
    return codegenError(path + ": cannot write: " + errorCode.message());
  llvm::legacy::PassManager passes;
  if (machine.addPassesToEmitFile(passes, object.os(), nullptr,
                                  llvm::CodeGenFileType::ObjectFile))
    return codegenError("LLVM cannot emit object code for this target");
  passes.run(module);
  object.keep();
  return llvm::Error::success();
}

/// The helpers compiled code calls (runtime/model_support.c), installed in
/// ../lib beside the directory of the running tool.
static llvm::Expected<std::string> findModelSupportLibrary() {
  static int anchor;
  std::string tool = llvm::sys::fs::getMainExecutable(nullptr, &anchor);
  llvm::SmallString<256> path(llvm::sys::path::parent_path(llvm::sys::path::parent_path(tool)));
  llvm::sys::path::append(path, "lib", "libpeft_model_support.a");
  if (!llvm::sys::fs::exists(path))
    return codegenError(path + ": missing (it is built with the tools)");
  return path.str().str();
}

/// -Bsymbolic: the model's calls to its own helpers (the allocator) bind to
/// them, never to a same-named symbol of the process that loads it.
static llvm::Error linkSharedLibrary(StringRef objectPath, StringRef libraryPath) {
  auto linker = llvm::sys::findProgramByName("cc");
  if (!linker)
    return codegenError("no C compiler driver 'cc' on PATH to link the library");
  auto support = findModelSupportLibrary();
  if (!support)
    return support.takeError();
  std::string message;
  int status = llvm::sys::ExecuteAndWait(
      *linker, {*linker, "-shared", "-Wl,-Bsymbolic", "-o", libraryPath, objectPath, *support, "-lm"},
      std::nullopt, {}, 0, 0, &message);
  if (status != 0)
    return codegenError("linking " + libraryPath + " failed" +
                        (message.empty() ? "" : ": " + message));
  return llvm::Error::success();
}

/// The artifact writer has read the argument and result attributes (names,
/// weights); LLVM has no use for them.
static void dropSignatureAttrs(ModuleOp module) {
  module.walk([](func::FuncOp func) {
    func.removeArgAttrsAttr();
    func.removeResAttrsAttr();
  });
}

llvm::Error lowerCpuTensors(ModuleOp module) {
  PassManager pm(module.getContext());
  buildCpuTensorPipeline(pm);
  if (failed(pm.run(module)))
    return codegenError("lowering to linalg failed (see the diagnostics above)");
  return llvm::Error::success();
}

llvm::Error compileCpuLibrary(ModuleOp module, StringRef libraryPath) {
  dropSignatureAttrs(module);
  PassManager pm(module.getContext());
  buildCpuCodegenPipeline(pm);
  if (failed(pm.run(module)))
    return codegenError("lowering to the LLVM dialect failed (see the diagnostics above)");

  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  module.getContext()->appendDialectRegistry(registry);
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule = translateModuleToLLVMIR(module, llvmContext);
  if (!llvmModule)
    return codegenError("translating the LLVM dialect to LLVM IR failed");

  auto machine = createHostTargetMachine();
  if (!machine)
    return machine.takeError();
  llvmModule->setTargetTriple((*machine)->getTargetTriple());
  llvmModule->setDataLayout((*machine)->createDataLayout());
  if (llvm::Error error = makeOptimizingTransformer(3, 0, machine->get())(llvmModule.get()))
    return error;

  std::string objectPath = (libraryPath + ".o").str();
  if (llvm::Error error = emitObject(*llvmModule, **machine, objectPath))
    return error;
  llvm::Error linked = linkSharedLibrary(objectPath, libraryPath);
  llvm::sys::fs::remove(objectPath);
  return linked;
}

} // namespace peft
