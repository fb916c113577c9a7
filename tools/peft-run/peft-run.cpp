//===- peft-run.cpp - Run a compiled artifact on .npy inputs ----------------===//
//
//   peft-run OUTDIR [--adapter DIR[=NAME]]... --input NAME=FILE.npy ...
//            --output-dir DIR [--bench N] [--threads N] [--sessions N]
//
// Writes each output as DIR/NAME.npy; with --bench N, runs N more times and
// prints latency statistics. --sessions N runs the inputs in N sessions at
// once, each on a thread of its own (how a server shares one loaded model),
// checks that they all give the same outputs, and with --bench reports the
// throughput too. --adapter runs an artifact compiled with
// --mode fuse with another Hugging Face PEFT adapter in place of the one
// compiled in under NAME: same modules, methods, ranks and scales; on an
// artifact compiled with --mode multi it loads the adapter into the next
// free slot (rows whose adapter_index is that slot use it).
//
//===----------------------------------------------------------------------===//
#include "frontends/adapters/HfPeftAdapter.h"
#include "runtime/Manifest.h"
#include "runtime/peft_runtime.h"
#include "support/Diagnostics.h"
#include "support/Npy.h"
#include "support/ToolOptions.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <chrono>
#include <cstring>
#include <numeric>
#include <thread>

namespace cl = llvm::cl;

// --help lists these only (LLVM's options still parse).
static cl::OptionCategory runOptions("Running an artifact");

static cl::opt<std::string> artifactDir(cl::Positional, cl::desc("<artifact dir>"), cl::Required,
                                        cl::cat(runOptions));
static cl::list<std::string> inputSpecs("input", cl::desc("NAME=FILE.npy"), cl::value_desc("spec"), cl::cat(runOptions));
static cl::opt<std::string> outputDir("output-dir", cl::desc("Where to write NAME.npy outputs"),
                                      cl::value_desc("dir"), cl::cat(runOptions));
static cl::list<std::string> adapterSpecs("adapter",
                                          cl::desc("Swap in this adapter (--mode fuse), or "
                                                   "load it into the next free slot (--mode "
                                                   "multi): DIR[=NAME]"),
                                          cl::value_desc("dir"), cl::cat(runOptions));
static cl::opt<unsigned> benchRuns("bench", cl::desc("Time N further runs"), cl::init(0), cl::cat(runOptions));
static cl::opt<unsigned> sessionCount("sessions",
                                      cl::desc("Run in N sessions at once, a thread each"),
                                      cl::init(1), cl::cat(runOptions));
/// `--threads N`. libLLVM registers an option of that name too; it is renamed
/// before ours is registered (prepareToolOptions, in main).
static cl::opt<int> &threadsOption() {
  static cl::opt<int> threads(
      "threads",
      cl::desc("Threads to run on (default: PEFT_NUM_THREADS, else the CPUs this process may use)"),
      cl::init(0), cl::cat(runOptions));
  return threads;
}

static int fail(const llvm::Twine &message) { return peft::reportError("peft-run", message); }

static constexpr std::pair<peft::DType, PeftDType> kDTypes[] = {
    {peft::DType::F32, PEFT_F32}, {peft::DType::F16, PEFT_F16}, {peft::DType::BF16, PEFT_BF16},
    {peft::DType::F64, PEFT_F64}, {peft::DType::I64, PEFT_I64}, {peft::DType::I32, PEFT_I32},
    {peft::DType::I16, PEFT_I16}, {peft::DType::I8, PEFT_I8},   {peft::DType::U8, PEFT_U8},
    {peft::DType::U16, PEFT_U16}, {peft::DType::U32, PEFT_U32}, {peft::DType::U64, PEFT_U64},
    {peft::DType::Bool, PEFT_BOOL}};

static PeftDType runtimeDType(peft::DType dtype) {
  for (auto [support, runtime] : kDTypes)
    if (support == dtype)
      return runtime;
  return PEFT_BOOL;
}

static peft::DType supportDType(PeftDType dtype) {
  for (auto [support, runtime] : kDTypes)
    if (runtime == dtype)
      return support;
  return peft::DType::Bool;
}

/// The runtime dtype of `array` bound to input `name`: .npy files have no
/// bfloat16, so a BF16 input takes uint16 bit patterns.
static PeftDType inputDType(const PeftModel *model, llvm::StringRef name,
                            const peft::NpyArray &array) {
  for (size_t i = 0; i < peft_model_num_inputs(model); ++i)
    if (name == peft_model_input_name(model, i) && peft_model_input_dtype(model, i) == PEFT_BF16 &&
        array.dtype == peft::DType::U16)
      return PEFT_BF16;
  return runtimeDType(array.dtype);
}

/// The file an output is written to: its name with every character that
/// could leave `--output-dir` or surprise a shell ('/', a leading '.') as '_'.
static std::string outputFileName(llvm::StringRef name) {
  std::string file;
  for (char c : name)
    file += llvm::isAlnum(c) || c == '_' || c == '-' || c == '.' ? c : '_';
  if (file.empty() || file.front() == '.')
    file.insert(file.begin(), '_');
  return file + ".npy";
}

static int writeOutputs(PeftModel *model, PeftSession *session) {
  std::set<std::string> files;
  for (size_t i = 0; i < peft_model_num_outputs(model); ++i)
    if (!files.insert(outputFileName(peft_model_output_name(model, i))).second)
      return fail(artifactDir + ": two outputs would both be written to " + outputDir + "/" +
                  outputFileName(peft_model_output_name(model, i)));
  if (std::error_code error = llvm::sys::fs::create_directories(outputDir))
    return fail(outputDir + ": cannot create: " + error.message());
  for (size_t i = 0; i < peft_model_num_outputs(model); ++i) {
    const char *name = peft_model_output_name(model, i);
    const PeftTensor *tensor = peft_session_output(session, name);
    peft::TensorView view{supportDType(tensor->dtype),
                          std::vector<int64_t>(tensor->shape, tensor->shape + tensor->rank),
                          static_cast<const uint8_t *>(tensor->data), 0};
    view.byteSize = view.numElements() * peft_dtype_size(tensor->dtype);
    llvm::SmallString<256> path(outputDir);
    llvm::sys::path::append(path, outputFileName(name));
    if (llvm::Error error = peft::writeNpy(path, view))
      return fail(llvm::toString(std::move(error)));
  }
  return 0;
}

using Session = std::unique_ptr<PeftSession, void (*)(PeftSession *)>;

/// Runs `runs` times in every session at once, a thread each; the
/// milliseconds of each run, and the seconds all took. Fails with the first
/// session's error.
static int runConcurrently(std::vector<Session> &sessions, unsigned runs,
                           std::vector<double> &milliseconds, double &seconds) {
  std::vector<std::vector<double>> times(sessions.size());
  std::vector<std::string> errors(sessions.size());
  auto start = std::chrono::steady_clock::now();
  auto work = [&](size_t s) {
    for (unsigned i = 0; i < runs; ++i) {
      auto begin = std::chrono::steady_clock::now();
      if (peft_session_run(sessions[s].get())) {
        errors[s] = peft_last_error();
        return;
      }
      std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - begin;
      times[s].push_back(elapsed.count());
    }
  };
  std::vector<std::thread> threads;
  for (size_t s = 1; s < sessions.size(); ++s)
    threads.emplace_back(work, s);
  work(0);
  for (std::thread &thread : threads)
    thread.join();
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t s = 0; s < sessions.size(); ++s) {
    if (!errors[s].empty())
      return fail(sessions.size() > 1 ? "session " + std::to_string(s) + ": " + errors[s]
                                      : errors[s]);
    milliseconds.insert(milliseconds.end(), times[s].begin(), times[s].end());
  }
  return 0;
}

/// The outputs of every session equal session 0's, bit for bit: sessions
/// share the model, and results do not depend on which thread ran them.
static int checkSessionsAgree(PeftModel *model, std::vector<Session> &sessions) {
  for (size_t i = 0; i < peft_model_num_outputs(model); ++i) {
    const char *name = peft_model_output_name(model, i);
    const PeftTensor *first = peft_session_output(sessions[0].get(), name);
    size_t bytes = peft_dtype_size(first->dtype);
    for (int64_t d = 0; d < first->rank; ++d)
      bytes *= first->shape[d];
    for (size_t s = 1; s < sessions.size(); ++s) {
      const PeftTensor *other = peft_session_output(sessions[s].get(), name);
      if (other->rank != first->rank ||
          !std::equal(first->shape, first->shape + first->rank, other->shape) ||
          std::memcmp(first->data, other->data, bytes) != 0)
        return fail(artifactDir + ": output '" + name + "' of session " + std::to_string(s) +
                    " differs from session 0's");
    }
  }
  return 0;
}

static int bench(std::vector<Session> &sessions) {
  std::vector<double> milliseconds;
  double seconds = 0;
  if (runConcurrently(sessions, benchRuns, milliseconds, seconds))
    return 1;
  std::sort(milliseconds.begin(), milliseconds.end());
  double mean = std::accumulate(milliseconds.begin(), milliseconds.end(), 0.0) / milliseconds.size();
  auto at = [&](double q) { return milliseconds[std::min<size_t>(milliseconds.size() - 1, q * milliseconds.size())]; };
  llvm::outs() << llvm::format("latency over %u runs", benchRuns.getValue());
  if (sessions.size() > 1)
    llvm::outs() << llvm::format(" in each of %zu sessions", sessions.size());
  llvm::outs() << llvm::format(" on %d threads: min %.3f ms, median %.3f ms, mean %.3f ms, "
                               "p90 %.3f ms, max %.3f ms\n",
                               peft_get_num_threads(), milliseconds.front(), at(0.5), mean,
                               at(0.9), milliseconds.back());
  if (sessions.size() > 1)
    llvm::outs() << llvm::format("throughput: %.2f runs/s over %zu sessions\n",
                                 milliseconds.size() / seconds, sessions.size());
  return 0;
}

/// Each module's tensors and scale in a Hugging Face PEFT adapter.
static std::map<std::string, std::pair<std::set<std::string>, double>>
modulesOf(const peft::LoraAdapter &adapter) {
  std::map<std::string, std::pair<std::set<std::string>, double>> modules;
  for (const peft::LoraModule &module : adapter.modules) {
    auto &[tensors, scale] = modules[module.modulePath];
    for (const std::string *name : {&module.tensorA, &module.tensorB, &module.tensorBias,
                                    &module.tensorMagnitude})
      if (!name->empty())
        tensors.insert(*name);
    scale = module.scale;
  }
  for (const peft::Ia3Module &module : adapter.ia3Modules)
    modules[module.modulePath] = {{module.tensor}, 1.0};
  for (const peft::FactoredModule &module : adapter.factoredModules) {
    auto &[tensors, scale] = modules[module.modulePath];
    for (const auto &[role, factor] : module.factors)
      tensors.insert(factor.tensor);
    scale = module.scale;
  }
  return modules;
}

/// Binds the adapter in `spec` (DIR[=NAME]) over the one compiled in under
/// NAME, after checking that it has the same modules, tensors and scales.
static int swapAdapter(PeftModel *model, const peft::Manifest &manifest, llvm::StringRef spec) {
  auto [directory, nameText] = spec.split('=');
  std::string name = nameText.empty() ? "default" : nameText.str();
  auto adapter = peft::readHfPeftAdapter(directory, name);
  if (!adapter)
    return fail(llvm::toString(adapter.takeError()));
  if (!adapter->replacedParameters.empty())
    return fail(adapter->weightsFile + ": tensor '" + adapter->replacedParameters.front().tensor +
                "' replaces a base parameter, which is compiled in; only adapter weights swap");
  auto swapped = modulesOf(*adapter);
  size_t compiled = 0;
  for (const peft::ManifestAdapter &entry : manifest.adapters) {
    if (entry.name != name)
      continue;
    ++compiled;
    auto found = swapped.find(entry.module);
    if (found == swapped.end())
      return fail(adapter->weightsFile + ": has no tensors for module '" + entry.module +
                  "', which the artifact's adapter '" + name + "' adapts");
    auto &[keys, scale] = found->second;
    std::set<std::string> tensors;
    for (const std::string &key : keys)
      tensors.insert(peft::adapterWeightName(key, name));
    if (tensors != std::set<std::string>(entry.weights.begin(), entry.weights.end()))
      return fail(adapter->weightsFile + ": module '" + entry.module + "' has other tensors than "
                  "the artifact's " + entry.method + " adapter '" + name + "' (another method?)");
    if (std::abs(scale - entry.scale) > 1e-6 * std::abs(entry.scale))
      return fail(adapter->weightsFile + ": module '" + entry.module + "' has scale " +
                  std::to_string(scale) + ", but " + std::to_string(entry.scale) +
                  " is compiled in; recompile for other alphas or ranks");
  }
  if (compiled == 0)
    return fail(artifactDir + ": no unmerged adapter '" + name +
                "' to swap (compile with --mode fuse)");
  if (swapped.size() != compiled)
    return fail(adapter->weightsFile + ": adapts " + std::to_string(swapped.size()) +
                " modules, the artifact's adapter '" + name + "' " + std::to_string(compiled));
  if (peft_model_bind_adapter_weights(model, adapter->weightsFile.c_str(), name.c_str()))
    return fail(peft_last_error());
  return 0;
}

/// --mode multi: loads the adapter in `spec` (DIR[=NAME]) into the first
/// free slot.
static int loadIntoSlot(PeftModel *model, const peft::Manifest &manifest, llvm::StringRef spec) {
  llvm::StringRef directory = spec.split('=').first;
  int64_t slot = peft_model_free_adapter_slot(model);
  if (slot < 0)
    return fail(directory + ": no free adapter slot (the artifact has " +
                std::to_string(manifest.slots->count) +
                "; compile with a larger --max-adapters)");
  if (peft_model_load_adapter(model, slot, directory.str().c_str()))
    return fail(peft_last_error());
  llvm::errs() << "peft-run: adapter " << directory << " in slot " << slot << "\n";
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  peft::prepareToolOptions("peft-run", {&runOptions});
  cl::opt<int> &threads = threadsOption();
  cl::ParseCommandLineOptions(
      argc, argv,
      "peft-mlir runner: runs a compiled artifact on .npy inputs\n\n"
      "Exit status: 0 on success; 1 on any error, reported in one line on stderr "
      "(no partial output is left)\n");
  if (outputDir.empty() && benchRuns == 0)
    return fail("give --output-dir, --bench or both");
  if (threads.getNumOccurrences() && threads < 1)
    return fail("--threads wants a positive count, got " + std::to_string(threads));
  if (threads.getNumOccurrences())
    peft_set_num_threads(threads);
  PeftModel *model = peft_model_load(artifactDir.c_str());
  if (!model)
    return fail(peft_last_error());
  std::unique_ptr<PeftModel, void (*)(PeftModel *)> owner(model, peft_model_free);
  if (!adapterSpecs.empty()) {
    llvm::SmallString<256> path(artifactDir);
    llvm::sys::path::append(path, "manifest.json");
    auto text = llvm::MemoryBuffer::getFile(path);
    peft::Manifest manifest;
    std::string error;
    if (!text || !manifest.fromJson((*text)->getBuffer().str(), error))
      return fail(path + ": cannot read the manifest " + error);
    for (const std::string &spec : adapterSpecs)
      if (manifest.slots ? loadIntoSlot(model, manifest, spec) : swapAdapter(model, manifest, spec))
        return 1;
  }

  if (sessionCount < 1)
    return fail("--sessions wants a positive count, got 0");
  std::vector<Session> sessions;
  for (unsigned s = 0; s < sessionCount; ++s) {
    sessions.emplace_back(peft_session_create(model), peft_session_free);
    if (!sessions.back())
      return fail(peft_last_error());
  }

  std::vector<peft::NpyArray> arrays; // Inputs are borrowed: keep them alive.
  arrays.reserve(inputSpecs.size());
  std::set<llvm::StringRef> given;
  for (const std::string &spec : inputSpecs) {
    auto [name, path] = llvm::StringRef(spec).split('=');
    if (path.empty())
      return fail("--input wants NAME=FILE.npy, got '" + spec + "'");
    if (!given.insert(name).second)
      return fail("--input " + name + " is given twice");
    auto array = peft::readNpy(path);
    if (!array)
      return fail(llvm::toString(array.takeError()));
    arrays.push_back(std::move(*array));
    const peft::NpyArray &input = arrays.back();
    for (Session &session : sessions)
      if (peft_session_set_input(session.get(), name.str().c_str(),
                                 inputDType(model, name, input), input.shape.size(),
                                 input.shape.data(), input.bytes.data()))
        return fail(path + ": " + peft_last_error());
  }
  std::vector<double> milliseconds;
  double seconds = 0;
  if (runConcurrently(sessions, 1, milliseconds, seconds) || checkSessionsAgree(model, sessions))
    return 1;
  if (!outputDir.empty() && writeOutputs(model, sessions.front().get()))
    return 1;
  return benchRuns ? bench(sessions) : 0;
}
