#ifndef PEFT_LOWERING_CUDA_PASSES_TD
#define PEFT_LOWERING_CUDA_PASSES_TD

include "mlir/Pass/PassBase.td"

// The CUDA back end's passes. The target-independent stage before them is in
// lowering/Passes.td; buildCudaCodegenPipeline strings them together with
// upstream's GPU lowering.

def CudaLaunchGemms : Pass<"peft-cuda-launch-gemms", "mlir::ModuleOp"> {
  let summary = "Run each contraction into f32 as a tiled kernel staged in shared memory";
  let description = [{
    Runs on memrefs, before linalg becomes loops. Each linalg op whose body
    is `out + a · b` into f32 (A and B f32, f16 or bf16, widened to f32 as
    they are staged), C indexed by a projection of the loops, becomes a
    `gpu.launch` computing `C += A · B`. Its loops split into batch (read by
    A, B and C), M (A and C), N (B and C) and K (the reduction loops, read
    by A and B), each group linearized, the last loop fastest: GEMMs in
    either weight layout, the LoRA shrink and expansion, attention's batched
    products, and convolutions as implicit GEMMs (M the batch and output
    positions, N the output channels, K the input channels and the window;
    A and B may be read through any affine map, evaluated per element).

    - a block per tile of C (x: N, y: M, z: the batch linearized): 64 x 64,
      or for f16 and bf16 (`tile`) 128 x 128 where C has at least 256 of
      those (or at run time, where its sizes are known only then: both
      kernels, the launch chosen by the sizes);
    - per K step, A's and B's share of it staged in shared memory (workgroup
      attributions), neighbouring threads loading neighbouring elements
      along each operand's fastest dimension and zeros outside the operands;
      S stages (3; 4 for 128 x 128 tiles): step s is computed while steps
      s + 1 to s + S - 1 arrive in the others, one `gpu.barrier` per step,
      before step s + S - 1 is staged into the stage step s - 1 was computed
      from; f32 operands with contiguous rows by asynchronous copies (with
      `async-copies`: `nvgpu.device_async_copy` of one element, or of none
      and a zero; a group per step, waited for with S - 2 pending), half
      types as below, others loaded;
    - f32 operands (or mixed ones): 256 threads, K steps of 16 staged
      k-major in f32 (half types widened), rows padded by one element
      against bank conflicts; each thread accumulates a 4 x 4 block of C,
      rows and columns 16 apart, with `math.fma`;
    - f16 or bf16 operands, both of one type (with `tensor-cores`): warps of
      32 x 32 (four, for 64 x 64 tiles) or 64 x 32 (eight, for 128 x 128);
      K steps of 32 staged in the half type, a row of A holding its K, 40
      elements long (16-byte aligned, conflict-free for `nvgpu.ldmatrix`),
      and B the same way, or, when a product's B has N fastest (a weight
      stored [K, N]), a row per k of the tile's N + 8 elements read by
      ldmatrix transposed; an operand whose rows along the staged rows are a
      multiple of 8 elements (and whose offset is) is copied in 16-byte
      chunks (`async-copies`: `nvgpu.device_async_copy` of 8 elements, or of
      none and zeros); per 16 of K each warp loads its A fragments of its
      m16 tiles and its B fragments of its n8 tiles (`nvgpu.ldmatrix` x4)
      and issues an `nvgpu.mma.sync` m16n8k16 per pair, f32 accumulators.
      The 128 x 128 kernel stages 80 KiB (`peft-cuda-dynamic-shared-memory`
      moves it to dynamic shared memory);
    - the accumulators in a private attribution indexed by constants
      (registers, once LLVM has promoted it); then C is read, added to and
      written back where the thread's elements lie inside C. When the op just
      before the first product writes C's start, zeros (`linalg.fill`) or a
      bias broadcast along C's one N loop (f32, or a half type widened), the
      kernel takes it over: it writes the sums, or bias + sums, without
      reading C, and that op is erased.
    - the epilogue: when C is an allocation of the kernel's own that only a
      map reads afterwards (`findEpilogue`, lowering/Epilogue.h: elementwise
      arith and math on C, reshaped at most, and on tensors of its shape or
      vectors along its last dimension; a bias or residual add, GELU, a cast
      to the model's half type), the kernel runs at the map's place and
      writes the map's result, at the element of C's linear index, instead
      of C; the map is erased.

    Contractions that add to the same C the same way are one kernel, placed
    at the last of them, when nothing between touches C or writes what an
    earlier one reads (views and sizes touch nothing): a layer and its
    unmerged LoRA's expansion, `x·W` then `(x·A)·B` into the same output,
    run the layer's K steps and then the rank's into the same accumulators,
    the fused LoRA GEMM (the shrink, before it, is a kernel of its own).

    A product whose B is each batch element's adapter slot selected from a
    table (peft.multi_lora's shrink and expansion: a generic marked
    `peft.slot_gather` fills B, lowering/SlotGather.h) reads the table at
    the block's slot instead (its element's index; -1 reads slot 0), and the
    selection and its buffer go: no copy. Where the selection says K is the
    slot's rank (the expansion), each block's K is that rank, and for an
    element of index -1 it is 0 in both products (its update is scaled by
    0, so C keeps its start): no K steps past a slot's rank.

    Other linalg ops are left to `convert-linalg-to-parallel-loops` and
    `peft-cuda-launch-kernels`.
  }];
  let options = [
    Option<"tensorCores", "tensor-cores", "bool", "true",
           "Multiply f16 and bf16 operands with mma.sync (sm_80 and later)">,
    Option<"asyncCopies", "async-copies", "bool", "true",
           "Stage f32 operands with cp.async (sm_80 and later)">,
    Option<"tile", "tile", "int64_t", "0",
           "Rows and columns of C per block on tensor cores: 64, 128, or 0 to "
           "choose by C's size">,
  ];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::scf::SCFDialect",
                           "mlir::arith::ArithDialect", "mlir::math::MathDialect",
                           "mlir::memref::MemRefDialect", "mlir::nvgpu::NVGPUDialect",
                           "mlir::vector::VectorDialect"];
}

def CudaLaunchReductions : Pass<"peft-cuda-launch-reductions", "mlir::ModuleOp"> {
  let summary = "Run each reduction over one dimension as block reductions (warp shuffles)";
  let description = [{
    Runs on memrefs, after `peft-cuda-launch-gemms`, before linalg becomes
    loops. A `linalg.generic` with one reduction loop whose body folds each
    element into the output with one associative, commutative operation that
    has a neutral element (`out = combine(out, h(inputs))`: add, multiply,
    maximum, minimum, bitwise; softmax's maximum and sum, layer norm's mean
    and variance, RMSNorm's sum of squares) becomes a `gpu.launch` of one
    block per output element:

    - the block's threads (a power of two from 32 to 256, no more than a row
      of static length needs) fold the elements `t, t + threads, ...` of the
      row into partials starting from the neutral element, neighbouring
      threads reading neighbouring elements;
    - partials of 32- and 64-bit types combine within each warp by five
      `gpu.shuffle xor` steps; lane 0 of each warp stores its warp's total
      in shared memory (a workgroup attribution of a value per warp), one
      `gpu.barrier`, and every warp combines those totals by shuffles again
      (the neutral element past the last warp);
    - partials of other types (f16, i8, ...) meet in shared memory and are
      combined in log2(threads) halving steps, a `gpu.barrier` after each;
    - thread 0 combines the row's total into the output element.

    The order of the fold changes, as a GPU's reductions do: floating-point
    sums may differ from the serial loop's in their last bits.
  }];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::scf::SCFDialect",
                           "mlir::arith::ArithDialect", "mlir::memref::MemRefDialect"];
}

def CudaLaunchKernels : Pass<"peft-cuda-launch-kernels", "mlir::ModuleOp"> {
  let summary = "Run every loop nest that touches memory as a GPU kernel";
  let description = [{
    Runs on memrefs, after linalg became loops (`scf.parallel` over the
    parallel dimensions, `scf.for` over the reductions inside). Afterwards
    the host functions only allocate device buffers, take views and launch
    kernels; every buffer they touch lives on the device:

    - each top-level `scf.parallel` becomes a `gpu.launch` of blocks of
      `block-size` threads, one thread per iteration: the iteration space
      linearized (last dimension fastest, so that neighbouring threads touch
      neighbouring elements) and the body guarded by `id < count`; no launch
      when the space is empty;
    - a `memref.copy` becomes such a loop nest first;
    - any other top-level op that reads or writes memory (a reduction to a
      scalar: an `scf.for` alone) runs in a kernel of one thread;
    - `memref.alloc` / `memref.dealloc` become `gpu.alloc` / `gpu.dealloc`;
    - a `memref.get_global` (a small constant the model holds) becomes a
      device buffer that `gpu.memcpy` fills from the host's copy.

    Host code that would use a value read from memory (a shape computed from
    a tensor's data) is an error naming the op: the host cannot read device
    memory.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", "256", "Threads of a block">,
  ];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::scf::SCFDialect",
                           "mlir::arith::ArithDialect", "mlir::memref::MemRefDialect"];
}

def CudaDynamicSharedMemory : Pass<"peft-cuda-dynamic-shared-memory", "mlir::ModuleOp"> {
  let summary = "Shared buffers past 48 KiB in a launch's dynamic shared memory";
  let description = [{
    A kernel may declare at most 48 KiB of shared memory statically (ptxas
    refuses more); beyond that it must be dynamic shared memory, sized at
    launch, up to what the GPU allows once the kernel opts in (99 KiB on
    sm_86 and sm_89, 163 KiB on sm_80, 227 KiB on sm_90; the runtime opts
    in at launch). Each `gpu.launch` whose workgroup attributions (static
    shapes) need more than 48 KiB is rebuilt without them: it launches with
    their total as its dynamic shared memory, and each becomes a
    `memref.view` of `gpu.dynamic_shared_memory` at its offset, every
    buffer starting at a multiple of 128 bytes. Smaller launches are left
    as they are. The emulation runs before this pass and never sees it.
  }];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::arith::ArithDialect",
                           "mlir::memref::MemRefDialect"];
}

def CudaGatherKernels : Pass<"peft-cuda-gather-kernels", "mlir::ModuleOp"> {
  let summary = "Put every outlined kernel into one gpu.module, `kernels`";
  let description = [{
    `gpu-kernel-outlining` makes a `gpu.module` per launch, each kernel
    named after its function (`forward_kernel` in `@forward_kernel`,
    `@forward_kernel_0`, ...). This pass moves every kernel into one module,
    `@kernels`, renamed after the module it came from so that names stay
    unique, and points each `gpu.launch_func` at it: the artifact has one PTX
    file (`kernels.ptx`) and the runtime loads one module. Each kernel's
    workgroup buffers are aligned to 16 bytes (`llvm.align`), as ldmatrix's
    rows must be; the NVVM lowering would align them to their element only.
    Where a kernel uses `gpu.dynamic_shared_memory`, the module declares the
    symbol its NVVM lowering takes (`__dynamic_shmem__`, an empty i8 array
    in shared memory, 16-byte aligned) with external linkage, so that the
    PTX declares `.extern .shared .align 16 .b8 __dynamic_shmem__[]`, the
    launch's dynamic block, instead of the one-byte variable the lowering's
    internal symbol becomes.
  }];
  let dependentDialects = ["mlir::gpu::GPUDialect", "mlir::LLVM::LLVMDialect"];
}

def CudaLowerMath : Pass<"peft-cuda-lower-math", "mlir::gpu::GPUModuleOp"> {
  let summary = "Math in kernels without libdevice";
  let description = [{
    The NVVM lowering would call libdevice (`__nv_sqrtf`, `__nv_expf`, ...)
    for `math` ops, which the PTX can only link where the CUDA toolkit's
    libdevice is found at compile time. Instead, in the kernels:
    `math.sqrt`, `absf`, `fma`, `floor`, `ceil`, `trunc`, `roundeven` and
    `copysign` of f32 and f64 become the one PTX instruction each is
    (`sqrt.rn`, `abs`, `fma.rn`, `cvt.rmi`, ...: inline assembly, as the
    NVVM lowering refuses LLVM's intrinsics for them); `exp`, `log`,
    `erf`, `tanh` and the others MLIR approximates become the same
    branch-free polynomials the CPU back end uses, so both targets compute
    the same functions; powers, `round` and hyperbolic functions are
    expanded into those first.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect", "mlir::math::MathDialect",
                           "mlir::LLVM::LLVMDialect"];
}

def CudaLowerMma : Pass<"peft-cuda-lower-mma", "mlir::gpu::GPUModuleOp"> {
  let summary = "bf16 mma.sync to NVVM";
  let description = [{
    Upstream's `convert-nvgpu-to-nvvm` deduces no PTX type for bf16 operands
    of `nvgpu.mma.sync`, though PTX has `mma.sync.aligned.m16n8k16` for bf16
    with f32 accumulators from sm_80 on. In the kernels, each bf16
    `nvgpu.mma.sync` m16n8k16 into f32 becomes `nvvm.mma.sync`: each row of
    the A and B fragments (two bf16) a 32-bit register, C's four f32 taken
    apart and the result's four put back together. f16 ones are left to the
    upstream lowering.
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect", "mlir::NVVM::NVVMDialect",
                           "mlir::vector::VectorDialect"];
}

def CudaEmulateLaunches : Pass<"peft-cuda-emulate-launches", "mlir::ModuleOp"> {
  let summary = "Run the kernels on the host, serially (--target cuda-emulated)";
  let description = [{
    For testing the CUDA lowering where there is no GPU: each `gpu.launch`
    becomes loops over its blocks (z, y, x) and, inside, over its threads
    around its body, and `gpu.alloc`, `gpu.dealloc` and `gpu.memcpy` their
    memref counterparts. The CPU pipeline's tail then makes model.so;
    `--target cuda-emulated` runs every end-to-end model this way against its
    references.

    Threads run one after another, so a `gpu.barrier` splits the body into
    phases, each its own loop over the threads: the body's ops between
    barriers, and an `scf.for` holding barriers as a loop (bounds the same
    for every thread) around its own phases. A value a phase uses from an
    earlier one is recomputed from its operands where memory has no part in
    it, or none but memory the kernel does not write (an adapter's slot
    index or rank, which may then bound such a loop), and otherwise kept in
    private memory (stored where it is defined,
    loaded where it is used), as is what such a loop carries (a thread's
    accumulators); a thread's own loop index cannot cross a barrier (an
    error). Workgroup memory becomes one host buffer per launch; private
    memory one with a row per thread, its loads and stores indexed by the
    linear thread id first. Asynchronous copies (`nvgpu.device_async_copy`)
    are done at once, zeros past their source elements; their groups and
    waits go.

    A warp's collective ops become an exchange through shared memory between
    two barriers (blocks of a constant size, whole warps): each lane stores
    its operands in a scratch row, then computes its part of the result from
    the rows of its warp's lanes. `nvgpu.ldmatrix` (x1, x2, x4, transposed
    or not): lane l reads, of matrix q, elements 2·(l%4) and 2·(l%4) + 1 of
    the row lane 8q + l/4 gave. `nvgpu.mma.sync` m16n8k16 of f16 or bf16
    into f32: each of the lane's four elements of C summed over k with FMAs
    from the A and B elements other lanes hold, as PTX lays the fragments
    out; other shapes are refused. `gpu.shuffle` over a whole warp (width
    32): lane l reads lane l ^ offset (xor), l ± offset (down, up) or offset
    (idx) of its warp, its own value and `valid` false outside the warp.
  }];
  let dependentDialects = ["mlir::scf::SCFDialect", "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect", "mlir::math::MathDialect",
                           "mlir::vector::VectorDialect"];
}

#endif // PEFT_LOWERING_CUDA_PASSES_TD
