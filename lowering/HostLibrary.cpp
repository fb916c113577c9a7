//===- HostLibrary.cpp - LLVM dialect to a shared library for the host ------===//
#include "lowering/HostLibrary.h"


#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/Passes/PassBuilder.h"
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

#include <cstdlib>
#include <dlfcn.h>

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

/// LLVM's -O3 for the host, without its loop unroller: our kernels come
/// unrolled as far as their registers allow, and unrolling them again made
/// code twice the size and loop strength reduction take most of the compile
/// time (bert-tiny: 9 s of 14). The vectorizers stay for the loops we leave
/// scalar (gathers, transposes, a row's last elements).
static void optimize(llvm::Module &module, llvm::TargetMachine &machine) {
  llvm::PipelineTuningOptions tuning;
  tuning.LoopUnrolling = false;
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager sccs;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder(&machine, tuning);
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(sccs);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, sccs, modules);
  builder.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3).run(module, modules);
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
  // Checked and cleared here: a stream destroyed with an error aborts.
  object.os().flush();
  if (std::error_code error = object.os().error()) {
    object.os().clear_error();
    return codegenError(path + ": cannot write: " + error.message());
  }
  object.keep();
  return llvm::Error::success();
}

static std::string &supportLibraryDir() {
  static std::string directory;
  return directory;
}

void setSupportLibraryDir(StringRef directory) { supportLibraryDir() = directory.str(); }

/// `library` (libNAME.a, helpers compiled code calls: runtime/cpu/
/// model_support.c, ...): in the directory set, or named by
/// PEFT_MLIR_LIBRARY_DIR, else in lib/ of the prefix that holds the file this
/// code was linked into: a tool in bin/, or the Python package's extension in
/// python/peft_mlir/ (build tree and install alike).
static llvm::Expected<std::string> findSupportLibrary(StringRef library) {
  std::string chosen = supportLibraryDir();
  if (chosen.empty())
    if (const char *variable = std::getenv("PEFT_MLIR_LIBRARY_DIR"))
      chosen = variable;
  if (!chosen.empty()) {
    llvm::SmallString<256> path(chosen);
    llvm::sys::path::append(path, library);
    if (!llvm::sys::fs::exists(path))
      return codegenError(path + ": missing (the support library directory is " + chosen + ")");
    return path.str().str();
  }
  static int anchor;
  std::string image;
  Dl_info info;
  if (dladdr(&anchor, &info) && info.dli_fname)
    image = info.dli_fname;
  if (image.empty() || !llvm::sys::path::is_absolute(image))
    image = llvm::sys::fs::getMainExecutable(nullptr, &anchor);
  std::string dir = llvm::sys::path::parent_path(image).str();
  for (int up = 0; up < 2 && !dir.empty(); ++up) {
    dir = llvm::sys::path::parent_path(dir).str(); // A copy: the parent is a part of dir.
    llvm::SmallString<256> path(dir);
    llvm::sys::path::append(path, "lib", library);
    if (llvm::sys::fs::exists(path))
      return path.str().str();
  }
  return codegenError(library + ": missing in lib/ beside " + image +
                      " (set PEFT_MLIR_LIBRARY_DIR to the directory holding it)");
}

/// -Bsymbolic: the model's calls to its own helpers (the allocator) bind to
/// them, never to a same-named symbol of the process that loads it.
static llvm::Error linkSharedLibrary(StringRef objectPath, StringRef libraryPath,
                                     ArrayRef<std::string> supportLibraries) {
  auto linker = llvm::sys::findProgramByName("cc");
  if (!linker)
    return codegenError("no C compiler driver 'cc' on PATH to link the library");
  std::vector<std::string> arguments = {*linker, "-shared", "-Wl,-Bsymbolic", "-o",
                                        libraryPath.str(), objectPath.str()};
  for (const std::string &library : supportLibraries) {
    auto support = findSupportLibrary(library);
    if (!support)
      return support.takeError();
    arguments.push_back(*support);
  }
  arguments.push_back("-lm");
  std::vector<StringRef> argumentRefs(arguments.begin(), arguments.end());
  std::string message;
  int status =
      llvm::sys::ExecuteAndWait(*linker, argumentRefs, std::nullopt, {}, 0, 0, &message);
  if (status != 0)
    return codegenError("linking " + libraryPath + " failed" +
                        (message.empty() ? "" : ": " + message));
  return llvm::Error::success();
}

/// The artifact writer has read the argument and result attributes (names,
/// weights); LLVM has no use for them.
static void dropSignatureAttrs(ModuleOp module) {
  module.walk([](FunctionOpInterface function) {
    function.removeArgAttrsAttr();
    function.removeResAttrsAttr();
  });
}

llvm::Error compileHostLibrary(ModuleOp module, StringRef libraryPath,
                               ArrayRef<std::string> supportLibraries, TimingScope &timing) {
  dropSignatureAttrs(module);
  TimingScope translation = timing.nest("translation to LLVM IR");
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerGPUDialectTranslation(registry); // A GPU target's kernels and launches.
  module.getContext()->appendDialectRegistry(registry);
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule = translateModuleToLLVMIR(module, llvmContext);
  if (!llvmModule)
    return codegenError("translating the LLVM dialect to LLVM IR failed");
  translation.stop();

  auto machine = createHostTargetMachine();
  if (!machine)
    return machine.takeError();
  llvmModule->setTargetTriple((*machine)->getTargetTriple());
  llvmModule->setDataLayout((*machine)->createDataLayout());
  TimingScope optimization = timing.nest("LLVM optimization");
  optimize(*llvmModule, **machine);
  optimization.stop();

  TimingScope codegen = timing.nest("LLVM code generation");
  std::string objectPath = (libraryPath + ".o").str();
  if (llvm::Error error = emitObject(*llvmModule, **machine, objectPath))
    return error;
  codegen.stop();
  TimingScope link = timing.nest("link");
  llvm::Error linked = linkSharedLibrary(objectPath, libraryPath, supportLibraries);
  llvm::sys::fs::remove(objectPath);
  return linked;
}

} // namespace peft
