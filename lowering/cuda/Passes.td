#ifndef PEFT_LOWERING_CUDA_PASSES_TD
#define PEFT_LOWERING_CUDA_PASSES_TD

include "mlir/Pass/PassBase.td"

// The CUDA back end's passes. The target-independent stage before them is in
// lowering/Passes.td; buildCudaCodegenPipeline strings them together with
// upstream's GPU lowering.

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

def CudaGatherKernels : Pass<"peft-cuda-gather-kernels", "mlir::ModuleOp"> {
  let summary = "Put every outlined kernel into one gpu.module, `kernels`";
  let description = [{
    `gpu-kernel-outlining` makes a `gpu.module` per launch, each kernel
    named after its function (`forward_kernel` in `@forward_kernel`,
    `@forward_kernel_0`, ...). This pass moves every kernel into one module,
    `@kernels`, renamed after the module it came from so that names stay
    unique, and points each `gpu.launch_func` at it: the artifact has one PTX
    file (`kernels.ptx`) and the runtime loads one module.
  }];
  let dependentDialects = ["mlir::gpu::GPUDialect"];
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

def CudaEmulateLaunches : Pass<"peft-cuda-emulate-launches", "mlir::ModuleOp"> {
  let summary = "Run the kernels on the host, serially (--target cuda-emulated)";
  let description = [{
    For testing the CUDA lowering where there is no GPU: after
    `peft-cuda-launch-kernels`, each `gpu.launch` becomes loops over its
    blocks and threads (x, y, z) around its body, and `gpu.alloc`,
    `gpu.dealloc` and `gpu.memcpy` their memref counterparts. The kernels
    this back end makes use no barriers and no shared memory, so running the
    threads one after another computes what the GPU computes; the CPU
    pipeline's tail then makes model.so. `--target cuda-emulated` runs every
    end-to-end model this way against its references.
  }];
  let dependentDialects = ["mlir::scf::SCFDialect", "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

#endif // PEFT_LOWERING_CUDA_PASSES_TD
