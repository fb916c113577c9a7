#!/usr/bin/env bash
# The GPU check, in two halves (docs/benchmarks.md records its runs):
#
#   bash scripts/gpu-check.sh            here: builds, compiles every end-to-end
#                                        model for CUDA and for the CPU, runs the
#                                        CPU artifacts for the reference outputs,
#                                        and packs build/gpu-check/ (< 64 MiB)
#   bash build/gpu-check/run.sh          on the GPU machine, in one command (the
#                                        device tool, carrying build/gpu-check):
#                                        the GPU end-to-end tests against the CPU
#                                        outputs, then the GPU benchmark
#
# The GPU machine has a driver, python3 with numpy and torch, and no LLVM:
# the bundle holds peft-run and libpeft_runtime.so (which link no LLVM), the
# artifacts, and the scripts. GPU_ARCH (default sm_90, the H100/H200's) is the
# architecture the kernels are compiled for.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${GPU_ARCH:-sm_90}
[ -x build/bin/peftc ] || bash scripts/setup.sh
ninja -C build > /dev/null
bundle=build/gpu-check
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib" "$bundle/cases" "$bundle/bench"
cp build/bin/peft-run "$bundle/bin/"
cp build/lib/libpeft_runtime.so "$bundle/lib/"
cp test/tools/gpu_check.py test/tools/device_io.py bench/gpu_bench.py "$bundle/"

# End-to-end cases: each model with its adapter merged and unmerged.
for model in bert-tiny gpt2-tiny llama-tiny vit-tiny cnn-tiny resnet-tiny; do
  for mode in merge fuse; do
    case_dir="$bundle/cases/$model-$mode"
    work=$(mktemp -d)
    mkdir -p "$case_dir"
    cp -r "examples/models/$model/inputs" "$case_dir/inputs"
    build/bin/peftc "examples/models/$model/model.onnx" --adapter "examples/models/$model/adapter" \
      --mode "$mode" -o "$work/cpu"
    build/bin/peftc "examples/models/$model/model.onnx" --adapter "examples/models/$model/adapter" \
      --mode "$mode" --target cuda --gpu-arch "$arch" -o "$case_dir/artifact"
    inputs=()
    for input in "$case_dir"/inputs/*.npy; do
      inputs+=(--input "$(basename "$input" .npy)=$input")
    done
    build/bin/peft-run "$work/cpu" "${inputs[@]}" --output-dir "$case_dir/expected" > /dev/null
    rm -rf "$work"
  done
done

# Benchmark layers: their weights are written on the GPU machine. f32 ones
# (with and without LoRA), and bf16 ones with each tensor-core tile size.
/usr/bin/python3 - "$bundle/bench" "$arch" <<'PYTHON'
import os, re, subprocess, sys
import numpy as np
import onnx
from onnx import TensorProto, helper
sys.path.insert(0, "bench")
import gemm_bench
bench, arch = sys.argv[1], sys.argv[2]

def write_bf16_model(directory, m, k, n):
    """y[M, N] = x[M, K] · W[K, N], all bf16 (W zeros: gpu_bench.py writes it)."""
    os.makedirs(directory, exist_ok=True)
    weight = helper.make_tensor("fc.weight_t", TensorProto.BFLOAT16, [k, n],
                                np.zeros(k * n, np.uint16).tobytes(), raw=True)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc.weight_t"], ["y"], name="/fc/MatMul")], "linear",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [m, n])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              os.path.join(directory, "model.onnx"))

cases = ["32x4096x4096", "32x4096x4096+lora16", "4096x4096x4096", "4096x4096x4096+lora16",
         "32x4096x4096-bf16", "4096x4096x4096-bf16", "4096x4096x4096-bf16-tiles64",
         "4096x4096x4096-bf16-tiles128"]
for name in cases:
    shape = re.match(r"(\d+)x(\d+)x(\d+)", name).group(0)
    bf16 = "-bf16" in name
    source = os.path.join("build", "gpu-check-models", shape + ("-bf16" if bf16 else "") +
                          ("+" + name.split("+")[1] if "+" in name else ""))
    if not os.path.exists(os.path.join(source, "model.onnx")):
        if bf16:
            write_bf16_model(source, *map(int, shape.split("x")))
        else:
            gemm_bench.write_model(source, name)
    case = os.path.join(bench, name)
    extra = ["--adapter", os.path.join(source, "adapter"), "--mode", "fuse"] if "+" in name else []
    tiles = re.search(r"-tiles(\d+)", name)
    if tiles:
        extra += ["--gpu-gemm-tiles", tiles.group(1)]
    subprocess.run(["build/bin/peftc", os.path.join(source, "model.onnx"), *extra, "--target", "cuda",
                    "--gpu-arch", arch, "-o", os.path.join(case, "artifact")], check=True)
    os.remove(os.path.join(case, "artifact", "weights.safetensors"))
PYTHON

# Issue 15's goal on the GPU: the LLaMA-style decoder of bench/hf_mixed_bench.py
# (8 layers of 1024), 32 sequences of 16 tokens, each with its own of 32 r=16
# LoRAs, --mode multi against the model alone (weights written there, random).
hf_work=build/gpu-check-models/hf-llama
if [ ! -f "$hf_work/adapter_index.npy" ]; then
  build/hf-venv/bin/python bench/hf_mixed_bench.py --model llama --work "$hf_work" \
    --prepare-only > "$bundle/hf-llama.log" 2>&1 || { cat "$bundle/hf-llama.log" >&2; exit 1; }
  rm "$bundle/hf-llama.log"
fi
case_dir="$bundle/bench/llama-32-adapters"
mkdir -p "$case_dir/inputs"
cp "$hf_work"/input_ids.npy "$hf_work"/attention_mask.npy "$hf_work"/adapter_index.npy \
  "$case_dir/inputs/"
slots=()
for i in $(seq 0 31); do slots+=(--adapter "$hf_work/adapter$i=a$i"); done
build/bin/peftc "$hf_work/model.onnx" --target cuda --gpu-arch "$arch" -o "$case_dir/base/artifact"
build/bin/peftc "$hf_work/model.onnx" "${slots[@]}" --mode multi --target cuda --gpu-arch "$arch" \
  -o "$case_dir/multi/artifact"
rm "$case_dir"/base/artifact/weights.safetensors "$case_dir"/multi/artifact/weights.safetensors

cat > "$bundle/run.sh" <<'RUN'
#!/usr/bin/env bash
# On the GPU machine: the end-to-end check, then the benchmark; both also
# written to $OUT when the device tool gives one.
set -o pipefail # The check's status, not tee's.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out=${OUT:-.}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt" || true
status=0
python3 gpu_check.py cases --peft-run bin/peft-run --runtime-library lib/libpeft_runtime.so | tee "$out/gpu-check.txt" || status=$?
python3 gpu_bench.py bench --runtime-library lib/libpeft_runtime.so | tee "$out/gpu-bench.txt" || true
exit $status
RUN
chmod +x "$bundle/run.sh"
size=$(du -sm "$bundle" | cut -f1)
if [ "$size" -ge 64 ]; then
  echo "gpu-check: $bundle is $size MiB; at most 64 MiB travel to the GPU machine" >&2
  exit 1
fi
echo "gpu-check: $bundle ready ($size MiB, kernels for $arch)."
echo "On the GPU machine (device tool, carry [\"$bundle\"]): bash $bundle/run.sh"
