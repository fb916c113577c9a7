//===- SessionStress.cpp - Sessions running while adapters load and unload --===//
//
//   peft-session-stress ARTIFACT --input NAME=FILE.npy ... --slot S
//       --adapter DIR --loaded DIR --unloaded DIR [--sessions N] [--runs K]
//       [--atol X]
//
// Runs an artifact compiled with --mode multi in N sessions at once, K runs
// each, while another thread loads the adapter in DIR into slot S and
// unloads it again, over and over. Every run must give one of two answers as
// a whole: the outputs in --loaded (NAME.npy each; the adapter in slot S) or
// those in --unloaded (slot S empty), never a mixture of weights from before
// and after a change. Before that, an unload and a load each change the next
// run's answer. Prints what it saw; exits 1 on the first wrong answer.
//
//===----------------------------------------------------------------------===//
#include "runtime/peft_runtime.h"
#include "support/Npy.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cl = llvm::cl;

static cl::opt<std::string> artifact(cl::Positional, cl::desc("<artifact>"), cl::Required);
static cl::list<std::string> inputSpecs("input", cl::desc("NAME=FILE.npy"));
static cl::opt<int64_t> slot("slot", cl::desc("The adapter slot to load and unload"),
                             cl::Required);
static cl::opt<std::string> adapter("adapter", cl::desc("The PEFT adapter to load"), cl::Required);
static cl::opt<std::string> loadedDir("loaded", cl::desc("Outputs with the adapter loaded"),
                                      cl::Required);
static cl::opt<std::string> unloadedDir("unloaded", cl::desc("Outputs with the slot empty"),
                                        cl::Required);
static cl::opt<unsigned> sessionCount("sessions", cl::desc("Sessions at once"), cl::init(3));
static cl::opt<unsigned> runs("runs", cl::desc("Runs per session"), cl::init(200));
static cl::opt<double> tolerance("atol", cl::desc("Absolute tolerance"), cl::init(1e-4));

[[noreturn]] static void fail(const std::string &message) {
  llvm::errs() << "peft-session-stress: error: " << message << "\n";
  std::exit(1);
}

/// One expected answer: every output's values.
struct Answer {
  std::vector<std::vector<float>> outputs; ///< By the model's output index.
};

static Answer readAnswer(PeftModel *model, const std::string &directory) {
  Answer answer;
  for (size_t i = 0; i < peft_model_num_outputs(model); ++i) {
    llvm::SmallString<256> path(directory);
    llvm::sys::path::append(path, std::string(peft_model_output_name(model, i)) + ".npy");
    auto array = peft::readNpy(path);
    if (!array)
      fail(llvm::toString(array.takeError()));
    if (array->dtype != peft::DType::F32)
      fail(std::string(path) + ": not float32");
    const auto *values = reinterpret_cast<const float *>(array->bytes.data());
    answer.outputs.emplace_back(values, values + array->bytes.size() / sizeof(float));
  }
  return answer;
}

/// The largest difference between `session`'s outputs and `answer`.
static double distance(PeftModel *model, PeftSession *session, const Answer &answer) {
  double worst = 0;
  for (size_t i = 0; i < answer.outputs.size(); ++i) {
    const PeftTensor *tensor = peft_session_output(session, peft_model_output_name(model, i));
    if (!tensor || tensor->dtype != PEFT_F32)
      return INFINITY;
    size_t count = 1;
    for (int64_t d = 0; d < tensor->rank; ++d)
      count *= tensor->shape[d];
    if (count != answer.outputs[i].size())
      return INFINITY;
    const auto *values = static_cast<const float *>(tensor->data);
    for (size_t e = 0; e < count; ++e)
      worst = std::max(worst, double(std::fabs(values[e] - answer.outputs[i][e])));
  }
  return worst;
}

int main(int argc, char **argv) {
  cl::ParseCommandLineOptions(argc, argv, "sessions running while an adapter loads and unloads\n");
  PeftModel *model = peft_model_load(artifact.c_str());
  if (!model)
    fail(peft_last_error());
  Answer loaded = readAnswer(model, loadedDir), unloaded = readAnswer(model, unloadedDir);

  std::vector<peft::NpyArray> arrays;
  arrays.reserve(inputSpecs.size());
  std::vector<PeftSession *> sessions;
  for (unsigned s = 0; s < sessionCount; ++s)
    if (!sessions.emplace_back(peft_session_create(model)))
      fail(peft_last_error());
  for (const std::string &spec : inputSpecs) {
    auto [name, path] = llvm::StringRef(spec).split('=');
    auto array = peft::readNpy(path);
    if (!array)
      fail(llvm::toString(array.takeError()));
    const peft::NpyArray &input = arrays.emplace_back(std::move(*array));
    PeftDType dtype = input.dtype == peft::DType::I64 ? PEFT_I64 : PEFT_F32;
    for (PeftSession *session : sessions)
      if (peft_session_set_input(session, name.str().c_str(), dtype, input.shape.size(),
                                 input.shape.data(), input.bytes.data()))
        fail(peft_last_error());
  }

  // Each change decides the next run's answer.
  auto expect = [&](const Answer &answer, const char *what) {
    if (peft_session_run(sessions[0]))
      fail(peft_last_error());
    double d = distance(model, sessions[0], answer);
    if (!(d <= tolerance))
      fail(std::string("after ") + what + ", a run differs from its answer by " +
           std::to_string(d));
  };
  if (peft_model_unload_adapter(model, slot))
    fail(peft_last_error());
  if (peft_model_free_adapter_slot(model) > slot)
    fail("an unloaded slot is not free");
  expect(unloaded, "the unload");
  if (peft_model_load_adapter(model, slot, adapter.c_str()))
    fail(peft_last_error());
  expect(loaded, "the load");

  // Runs in every session while the adapter comes and goes.
  std::atomic<bool> running{true};
  std::atomic<unsigned> changes{0}, sawLoaded{0}, sawUnloaded{0};
  std::mutex errorLock;
  std::string error;
  std::thread changer([&] {
    while (running) {
      if (peft_model_unload_adapter(model, slot) ||
          peft_model_load_adapter(model, slot, adapter.c_str())) {
        std::lock_guard<std::mutex> lock(errorLock);
        error = peft_last_error();
        return;
      }
      changes += 2;
    }
  });
  std::vector<std::thread> workers;
  for (PeftSession *session : sessions)
    workers.emplace_back([&, session] {
      for (unsigned r = 0; r < runs; ++r) {
        if (peft_session_run(session)) {
          std::lock_guard<std::mutex> lock(errorLock);
          error = peft_last_error();
          return;
        }
        double toLoaded = distance(model, session, loaded);
        double toUnloaded = distance(model, session, unloaded);
        if (toLoaded <= tolerance) {
          ++sawLoaded;
        } else if (toUnloaded <= tolerance) {
          ++sawUnloaded;
        } else {
          std::lock_guard<std::mutex> lock(errorLock);
          error = "a run matches neither answer: " + std::to_string(toLoaded) +
                  " from the adapter loaded, " + std::to_string(toUnloaded) + " from it unloaded";
          return;
        }
      }
    });
  for (std::thread &worker : workers)
    worker.join();
  running = false;
  changer.join();
  if (!error.empty())
    fail(error);
  llvm::outs() << sessions.size() << " sessions x " << runs << " runs, " << changes
               << " loads and unloads meanwhile: every run matched an answer\n";
  llvm::errs() << "(" << sawLoaded << " with the adapter loaded, " << sawUnloaded
               << " with the slot empty)\n";
  for (PeftSession *session : sessions)
    peft_session_free(session);
  peft_model_free(model);
  return 0;
}
