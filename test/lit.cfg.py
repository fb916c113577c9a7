# lit configuration of the peft-mlir test suite.
import os
import shutil

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "peft-mlir"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".onnxtxt", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.peft_obj_root, "test")

# Debian's interpreter: it has python3-numpy and python3-onnx.
config.substitutions.append(("%python", "/usr/bin/python3"))
# The interpreter with onnxruntime from PyPI.
config.substitutions.append(("%ort_python", config.peft_ort_python))
config.substitutions.append(("%models", os.path.join(config.peft_src_root, "examples", "models")))
# Fixtures made by the real transformers and peft (examples/hf/).
config.substitutions.append(("%hf_models", os.path.join(config.peft_src_root, "examples", "hf-models")))
# The virtual environment of scripts/setup.sh: Debian's torch with transformers
# and peft from PyPI (a test that needs it fails where it is missing). It is
# made in build/; other build directories (build-asan) use that one.
hf_venv = os.path.join(config.peft_obj_root, "hf-venv")
if not os.path.isdir(hf_venv):
    hf_venv = os.path.join(config.peft_src_root, "build", "hf-venv")
config.substitutions.append(("%hf_python", os.path.join(hf_venv, "bin", "python")))
# The Python package (python/), as PYTHONPATH=build/python gives it, under
# Debian's interpreter and under the venv with transformers and peft.
python_path = "env PYTHONPATH=" + os.path.join(config.peft_obj_root, "python") + " "
config.substitutions.append(("%peft_python", python_path + "/usr/bin/python3"))
config.substitutions.append(("%peft_hf_python", python_path + os.path.join(hf_venv, "bin", "python")))
config.substitutions.append(("%peft_src", config.peft_src_root))
config.substitutions.append(("%peft_obj", config.peft_obj_root))
config.substitutions.append(("%testtools", os.path.join(config.peft_src_root, "test", "tools")))

llvm_config.with_system_environment(["HOME", "TMPDIR"])
llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
tools = ["peft-opt", "peft-translate", "peftc", "peft-run", "peft-unit-tests",
         "peft-session-stress"]
llvm_config.add_tool_substitutions([ToolSubst(t, unresolved="fatal") for t in tools],
                                   [config.peft_tools_dir])

# The CUDA toolkit's PTX assembler validates what --target cuda makes.
ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
if os.access(ptxas, os.X_OK):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))

# A GPU to run CUDA artifacts on: the driver loads and finds a device. Tests
# that need one are unsupported (skipped: no GPU) without.
def has_cuda_gpu():
    try:
        import ctypes
        driver = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 \
            and count.value > 0
    except OSError:
        return False
if has_cuda_gpu():
    config.available_features.add("cuda-gpu")
else:
    lit_config.note("skipped: no GPU (the tests that run CUDA artifacts are unsupported)")

# The libFuzzer targets, built only with PEFT_FUZZ=ON (scripts/sanitize.sh's
# build-asan): test/fuzz runs them over the inputs that once crashed them,
# fuzz/regressions/<target>/ (an empty directory where a target has none).
fuzz_targets = ["onnx", "safetensors", "adapter-config", "npy", "manifest"]
if all(os.path.exists(os.path.join(config.peft_tools_dir, "peft-fuzz-" + t)) for t in fuzz_targets):
    config.available_features.add("fuzzers")
    llvm_config.add_tool_substitutions(["peft-fuzz-" + t for t in fuzz_targets],
                                       [config.peft_tools_dir])
    empty = os.path.join(config.test_exec_root, "fuzz", "no-regressions")
    os.makedirs(empty, exist_ok=True)
    for t in fuzz_targets:
        inputs = os.path.join(config.peft_src_root, "fuzz", "regressions", t)
        config.substitutions.append(("%regressions_" + t, inputs if os.path.isdir(inputs) else empty))
