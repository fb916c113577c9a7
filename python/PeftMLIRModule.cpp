//===- PeftMLIRModule.cpp - peft_mlir._peft_mlir: the Python extension -----===//
//
// The C++ side of the Python package (python/peft_mlir): compileModel
// (compiler/Compile.h) and the runtime's C API (runtime/peft_runtime.h), in
// process. peft_mlir/__init__.py builds the friendly API on these.
//
// Arrays cross without copies where they can: an input that is already a
// C-contiguous array of the input's dtype is bound as it is; each run has a
// session of its own, whose outputs the returned arrays view, and the last
// of them to go frees it.
//===----------------------------------------------------------------------===//
#include "compiler/Compile.h"
#include "runtime/peft_runtime.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

/// The one-line message of every failure (PeftError in Python).
struct PeftError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throwRuntimeError() { throw PeftError(peft_last_error()); }

/// The numpy dtype of a runtime dtype (BF16, which numpy lacks: its bits).
py::dtype numpyType(PeftDType dtype) {
  switch (dtype) {
  case PEFT_F32: return py::dtype::of<float>();
  case PEFT_F16: return py::dtype("float16");
  case PEFT_BF16: return py::dtype::of<uint16_t>();
  case PEFT_F64: return py::dtype::of<double>();
  case PEFT_I64: return py::dtype::of<int64_t>();
  case PEFT_I32: return py::dtype::of<int32_t>();
  case PEFT_I8: return py::dtype::of<int8_t>();
  case PEFT_U8: return py::dtype::of<uint8_t>();
  case PEFT_BOOL: return py::dtype::of<bool>();
  case PEFT_I16: return py::dtype::of<int16_t>();
  case PEFT_U16: return py::dtype::of<uint16_t>();
  case PEFT_U32: return py::dtype::of<uint32_t>();
  case PEFT_U64: return py::dtype::of<uint64_t>();
  }
  throw PeftError("unknown runtime dtype " + std::to_string(int(dtype)));
}

/// A BF16 output as numpy has no such type: widened, exactly, to float32.
py::array widenBf16(const std::vector<py::ssize_t> &shape, const void *data) {
  py::array_t<float> wide(shape);
  const auto *bits = static_cast<const uint16_t *>(data);
  float *out = wide.mutable_data();
  for (py::ssize_t i = 0, e = wide.size(); i < e; ++i) {
    uint32_t word = uint32_t(bits[i]) << 16;
    std::memcpy(&out[i], &word, sizeof word);
  }
  return wide;
}

const char *dtypeName(PeftDType dtype) {
  static const char *names[] = {"float32", "float16", "bfloat16", "float64", "int64",
                                "int32",   "int8",    "uint8",    "bool",    "int16",
                                "uint16",  "uint32",  "uint64"};
  return unsigned(dtype) < std::size(names) ? names[dtype] : "unknown";
}

/// A loaded artifact (peft_model_load), shared by the runs of any thread.
class Model {
public:
  explicit Model(const std::string &directory) {
    py::gil_scoped_release unlocked;
    model = peft_model_load(directory.c_str());
    if (!model)
      throwRuntimeError();
  }
  ~Model() { peft_model_free(model); }
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;

  /// (name, dtype name) of each input, in the entry's order.
  std::vector<std::pair<std::string, std::string>> inputs() const {
    std::vector<std::pair<std::string, std::string>> result;
    for (size_t i = 0, e = peft_model_num_inputs(model); i < e; ++i)
      result.emplace_back(peft_model_input_name(model, i),
                          dtypeName(peft_model_input_dtype(model, i)));
    return result;
  }

  std::vector<std::string> outputs() const {
    std::vector<std::string> result;
    for (size_t i = 0, e = peft_model_num_outputs(model); i < e; ++i)
      result.emplace_back(peft_model_output_name(model, i));
    return result;
  }

  /// Runs on `arrays` (name → C-contiguous array of the input's dtype,
  /// which __init__.py ensures) in a session of its own; the outputs view
  /// the session's buffers.
  py::dict run(const py::dict &arrays) {
    std::shared_ptr<PeftSession> session(peft_session_create(model), peft_session_free);
    if (!session)
      throwRuntimeError();
    std::vector<py::array> bound;
    for (auto [key, value] : arrays) {
      std::string name = py::cast<std::string>(key);
      auto array = py::cast<py::array>(value);
      PeftDType dtype = inputType(name);
      std::vector<int64_t> shape(array.shape(), array.shape() + array.ndim());
      if (peft_session_set_input(session.get(), name.c_str(), dtype, array.ndim(), shape.data(),
                                 array.data()))
        throwRuntimeError();
      bound.push_back(array);
    }
    {
      py::gil_scoped_release unlocked;
      if (peft_session_run(session.get()))
        throwRuntimeError();
    }
    // The arrays hold the session through this capsule.
    auto *holder = new std::shared_ptr<PeftSession>(session);
    py::capsule owner(holder, [](void *p) { delete static_cast<std::shared_ptr<PeftSession> *>(p); });
    py::dict results;
    for (const std::string &name : outputs()) {
      const PeftTensor *tensor = peft_session_output(session.get(), name.c_str());
      if (!tensor)
        throwRuntimeError();
      std::vector<py::ssize_t> shape(tensor->shape, tensor->shape + tensor->rank);
      results[py::str(name)] = tensor->dtype == PEFT_BF16
                                   ? widenBf16(shape, tensor->data)
                                   : py::array(numpyType(tensor->dtype), shape, tensor->data, owner);
    }
    return results;
  }

  void loadAdapter(int64_t slot, const std::string &directory) {
    py::gil_scoped_release unlocked;
    if (peft_model_load_adapter(model, slot, directory.c_str()))
      throwRuntimeError();
  }

  void unloadAdapter(int64_t slot) {
    py::gil_scoped_release unlocked;
    if (peft_model_unload_adapter(model, slot))
      throwRuntimeError();
  }

  std::optional<int64_t> freeAdapterSlot() const {
    int64_t slot = peft_model_free_adapter_slot(model);
    return slot < 0 ? std::nullopt : std::optional<int64_t>(slot);
  }

private:
  PeftDType inputType(const std::string &name) const {
    for (size_t i = 0, e = peft_model_num_inputs(model); i < e; ++i)
      if (name == peft_model_input_name(model, i))
        return peft_model_input_dtype(model, i);
    std::string names;
    for (const auto &[input, dtype] : inputs())
      names += (names.empty() ? "" : ", ") + input;
    throw PeftError("the model has no input '" + name + "' (its inputs: " + names + ")");
  }

  PeftModel *model = nullptr;
};

/// Forwards the compile's summary and warnings to Python callables.
class PythonObserver final : public peft::CompileObserver {
public:
  void summary(llvm::StringRef text) override { summaryText = text.str(); }
  void diagnostic(mlir::Diagnostic &diagnostic) override {
    if (diagnostic.getSeverity() == mlir::DiagnosticSeverity::Warning)
      warnings.push_back(peft::diagnosticLine(diagnostic));
  }
  std::string summaryText;
  std::vector<std::string> warnings;
};

/// compileModel; returns (summary, warnings).
std::pair<std::string, std::vector<std::string>> compile(peft::CompileOptions options) {
  PythonObserver observer;
  llvm::Error error = llvm::Error::success();
  {
    py::gil_scoped_release unlocked;
    mlir::DefaultTimingManager timingManager;
    mlir::TimingScope timing = timingManager.getRootScope();
    error = peft::compileModel(std::move(options), observer, timing);
  }
  if (error)
    throw PeftError(llvm::toString(std::move(error)));
  return {observer.summaryText, observer.warnings};
}

} // namespace

PYBIND11_MODULE(_peft_mlir, m) {
  m.doc() = "peft-mlir's compiler and runtime, in process (use the peft_mlir package)";
  py::register_exception<PeftError>(m, "PeftError", PyExc_RuntimeError);

  py::class_<peft::CompileOptions>(m, "CompileOptions")
      .def(py::init<>())
      .def_readwrite("model", &peft::CompileOptions::model)
      .def_readwrite("adapters", &peft::CompileOptions::adapters)
      .def_readwrite("insert", &peft::CompileOptions::insert)
      .def_readwrite("seed", &peft::CompileOptions::seed)
      .def_readwrite("mode", &peft::CompileOptions::mode)
      .def_readwrite("max_adapters", &peft::CompileOptions::maxAdapters)
      .def_readwrite("max_rank", &peft::CompileOptions::maxRank)
      .def_readwrite("slot_modules", &peft::CompileOptions::slotModules)
      .def_readwrite("slot_methods", &peft::CompileOptions::slotMethods)
      .def_readwrite("combine", &peft::CompileOptions::combine)
      .def_readwrite("combine_rank", &peft::CompileOptions::combineRank)
      .def_readwrite("target", &peft::CompileOptions::target)
      .def_property(
          "gpu_arch", [](const peft::CompileOptions &o) { return o.targetOptions.gpuArch; },
          [](peft::CompileOptions &o, std::string v) { o.targetOptions.gpuArch = std::move(v); })
      .def_property(
          "gpu_gemm_tiles",
          [](const peft::CompileOptions &o) { return o.targetOptions.gpuGemmTiles; },
          [](peft::CompileOptions &o, std::string v) { o.targetOptions.gpuGemmTiles = std::move(v); })
      .def_readwrite("emit", &peft::CompileOptions::emit)
      .def_readwrite("output", &peft::CompileOptions::output)
      .def_readwrite("summary", &peft::CompileOptions::summary);

  m.def("compile", &compile, py::arg("options"),
        "Compiles as peftc does; returns (summary text, warnings).");

  py::class_<Model>(m, "Model")
      .def(py::init<const std::string &>(), py::arg("directory"))
      .def_property_readonly("inputs", &Model::inputs)
      .def_property_readonly("outputs", &Model::outputs)
      .def("run", &Model::run, py::arg("arrays"))
      .def("load_adapter", &Model::loadAdapter, py::arg("slot"), py::arg("directory"))
      .def("unload_adapter", &Model::unloadAdapter, py::arg("slot"))
      .def("free_adapter_slot", &Model::freeAdapterSlot);

  m.def("set_num_threads", &peft_set_num_threads, py::arg("n"));
  m.def("get_num_threads", &peft_get_num_threads);
}
