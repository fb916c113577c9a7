#ifndef PEFT_LOWERING_CPU_PASSES_TD
#define PEFT_LOWERING_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

// The CPU back end's passes. The target-independent stage before them is in
// lowering/Passes.td; buildCpuLoweringPipeline strings both together.

def CpuPackWeights : Pass<"peft-cpu-pack-weights", "mlir::ModuleOp"> {
  let summary = "Store GEMM weights in the micro-kernel's panel layout";
  let description = [{
    Each f32 `linalg.matmul` whose right-hand side is a weight argument of
    the entry (`x·Wᵀ` or `x·W`, static K and N) becomes a panel GEMM: a
    `linalg.generic` marked `peft.panel_gemm` that reads a new argument, the
    weight packed into panels of `tile` output channels (`[ceil(N/tile), K,
    tile]`, zero-padded; see `PanelLayout` in runtime/Manifest.h). The new
    argument carries `peft.panels = {of, tile, transposed, shape}`, so the
    artifact writer packs the weight's bytes at compile time and the runtime
    packs any weight bound over it later. A weight with no other use is
    replaced and keeps its name; one that other ops read (a tied embedding,
    DoRA's norm) stays, and its packed copy is named `NAME@panels`.

    A panel GEMM whose start (a zero fill, a bias broadcast) other ops read
    too (CSE merges the fills of a gate and an up projection) gets a copy of
    its own, marked `peft.own_start` so that CSE keeps it apart: its kernel
    then starts from zeros or the bias itself instead of loading a copy.

    `peft-cpu-lower-panel-gemms` turns the marked generics into calls to
    the micro-kernels after bufferization.
  }];
  let options = [
    Option<"tile", "tile", "int64_t", "48", "Output channels per panel">,
  ];
  let dependentDialects = ["mlir::linalg::LinalgDialect", "mlir::arith::ArithDialect"];
}

def CpuLowerPanelGemms : Pass<"peft-cpu-lower-panel-gemms", "mlir::ModuleOp"> {
  let summary = "Lower panel GEMMs to register-blocked micro-kernels";
  let description = [{
    Runs on memrefs. Each `linalg.generic` marked `peft.panel_gemm` (from
    `peft-cpu-pack-weights`) whose activations and output have unit inner
    strides becomes a call to a kernel function generated once per weight
    shape, `peft_panel_gemm_KxN_TILE(a, panels, out, first, last)`, shared
    by every layer of that shape; others stay generics, lowered to loops.

    The call goes through `peft_parallel_for` (runtime/cpu/model_support.c):
    the runtime's threads each take a contiguous run of panels. In a run,
    the kernel walks row blocks of `m-block` rows (their activations stay
    in L2), the panels (a panel's output rows stay in L1 from one K block
    to the next), K blocks of `k-block` (a panel's K block stays in L2),
    and tiles of `micro-rows` rows: a micro-kernel that keeps `micro-rows` x
    `tile` accumulators in vector registers, broadcasts one activation per
    row and multiplies it into a row of the panel with `vector.fma`. The
    last rows of a block run in tiles of 8, 4, 2 and 1; a last partial panel
    loads and stores the output through masks. Each output element is summed
    over K in the same order whatever the runs, so results do not depend on
    the number of threads.

    The op just before that starts the output, a zero `linalg.fill` or a
    generic broadcasting an f32 bias `[N]` along the rows (a linear layer's
    bias), is the kernel's: the first K block starts its registers from
    zeros or the bias's vectors instead of loading the output
    (`_from_zero`, `_from_bias`), and the op is gone.

    An unmerged LoRA is two panel GEMMs into its layer's output: the layer's
    `x·Wᵀ` and then `s·Bᵀ` (s = scale·x·Aᵀ, rank r ≤ 256, B packed in the
    layer's panels). When nothing between them touches that output or writes
    x, the two are one call, at the second, of
    `peft_panel_gemm_KxN_TILE_lowrankR`: in the last K block, after the
    `x·Wᵀ` products, the micro-kernel goes on over the r columns of s and the
    rows of B's panel, in the same registers, then stores them once.

    The map that alone reads a panel GEMM's result (a bias or residual add,
    GELU, DoRA's rescale `n·(t − bias) + bias`, a LoRA's bias, a LoRA's
    scale on `x·Aᵀ`) runs as the kernel's epilogue: an f32 map of
    elementwise arith and math ops whose inputs are the result (possibly
    split into a batch of rows), tensors of its shape (rows) and vectors
    along its last dimension (columns). After the last K block the
    micro-kernel computes the map's body on its accumulators, reading the
    other inputs at the same rows and columns, and stores the map's result
    instead of the sums; the call moves to the map's place, which must see
    nothing between touch the result or write the GEMM's inputs, and
    nothing after read the result. Kernels are named after what their
    epilogue computes (`_epilogue_HASH`), so layers share them.

    A batched GEMM of activations, a `linalg.generic` computing
    `out[b..., i, j] += lhs[b..., i, k] · rhs[b..., k, j]` in f32 (attention's
    scores and context), runs through the same micro-kernels with B read as
    it is, in runs of `row-tile` columns (`peft_row_gemm_KxN_TILE`, K and N
    static or not, the last run masked; with N known at run time, the last
    run computes only the vectors that hold columns), one call per matrix
    of the batch, the matrices split over the threads. Over a static K
    above 32, each K step asks for B's row 32 further (a shrink's Aᵀ is a
    line per row, read from memory once per run).

    When such a GEMM's `rhs` is filled, one batch dimension over, by a
    generic marked `peft.slot_gather` (`peft.multi_lora`'s selection of each
    row's slot `[batch, K, N]` from a table `[slots, K, N]`), the GEMM reads
    the table at each row's slot instead and the copy goes
    (`peft_row_gemm_KxN_TILE_slots...`). Each thread takes its elements of
    the batch slot by slot, in the order `peft_slot_runs`
    (runtime/cpu/model_support.c) gives (by slot, then position: an
    adapter's rows run one after another, its factors hot in cache, however
    the batch is ordered); consecutive elements with one slot run as one
    GEMM of all their rows (where those rows lie contiguous: SGMV's
    segments; a batch sorted by adapter runs one GEMM per adapter and
    thread), and elements of slot -1 run none.
  }];
  let options = [
    Option<"microRows", "micro-rows", "int64_t", "8", "Rows of a register tile">,
    Option<"vectorWidth", "vector-width", "int64_t", "16",
           "Floats per vector register (16: AVX-512, 8: AVX2)">,
    Option<"kBlock", "k-block", "int64_t", "768",
           "Depth of a K block (768: a 48-wide panel's block, 147 KB, stays in L2; "
           "a transformer's K of 768 in one block)">,
    Option<"mBlock", "m-block", "int64_t", "192", "Rows of a row block">,
    Option<"rowTile", "row-tile", "int64_t", "48",
           "Columns of a register tile in batched GEMMs, whose B is read as it is">,
  ];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::scf::SCFDialect",
                           "mlir::vector::VectorDialect", "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

def CpuLowerWindowGemms : Pass<"peft-cpu-lower-window-gemms", "mlir::ModuleOp"> {
  let summary = "Lower convolutions read through a window to micro-kernels";
  let description = [{
    Runs on memrefs. A stride-1 convolution reaches here as a window GEMM
    (`convolveAsWindowGemm`): a `linalg.generic` over n, o, p, c, k... with
    `out[n, o, p] += in[n, c, p + Σ_d k_d·step_d] · w[o, c, k...]` in f32,
    the input's channels flattened at the padded pitch. Each becomes a call
    of a kernel generated once per shape and tap offsets,
    `peft_window_gemm_CxOxP_lL_taps_...(in, w, out, first, last)`.

    The work is (image, panel of `tile` positions) units, split over the
    runtime's threads (`peft_parallel_for`). Per unit the kernel walks
    channel blocks of about `k-block` / taps channels (the window's rows stay
    in L1), then tiles of `micro-rows` output channels: a micro-kernel keeps
    `micro-rows` x `tile` accumulators in vector registers and, per channel
    and tap, loads `tile` consecutive inputs at the tap's offset and
    broadcasts one weight per output channel into them (`vector.fma`). The
    last output channels run in tiles of 8, 4, 2 and 1; the last panel of an
    image masks its loads and stores. No im2col copy is made and the output
    is the NCHW image, so nothing is transposed back. Each output is summed
    in the same order whatever the split, so results do not depend on the
    number of threads. Generics whose input or output has a non-unit inner
    stride, or whose weight is not contiguous, stay loops.
  }];
  let options = [
    Option<"microRows", "micro-rows", "int64_t", "8", "Output channels of a register tile">,
    Option<"vectorWidth", "vector-width", "int64_t", "16",
           "Floats per vector register (16: AVX-512, 8: AVX2)">,
    Option<"tile", "tile", "int64_t", "48", "Positions of a register tile">,
    Option<"kBlock", "k-block", "int64_t", "256",
           "Channels times taps of a channel block">,
  ];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::scf::SCFDialect",
                           "mlir::vector::VectorDialect", "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

def CpuLowerWindowReductions : Pass<"peft-cpu-lower-window-reductions", "mlir::ModuleOp"> {
  let summary = "Lower pooling windows to vector kernels";
  let description = [{
    Runs on memrefs. MaxPool and AveragePool reach here as window reductions
    (WindowOps.h): a `linalg.generic` over n, c, y... (parallel) and k...
    (reduction) with `out = out max in` or `out + in` for
    `in[n, c, y_d·stride_d + k_d·dilation_d]`, f32, at most 64 taps. Each
    becomes a call of a kernel generated once per shape,
    `peft_max_pool_...` or `peft_sum_pool_...(in, out, first, last)`, over
    the output's rows (all dimensions but the last spatial one), split over
    the runtime's threads. Along a row the kernel reduces `vector-width`
    outputs at a time over the taps, in the generic's order: a stride-1 tap
    is one vector load, a stride-s tap loads s·`vector-width` consecutive
    inputs and keeps every s-th (a shuffle). Outputs whose vector read would
    leave the input row are reduced one at a time. Generics whose input or
    output has a non-unit inner stride stay loops.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", "16", "Outputs per vector">,
  ];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::scf::SCFDialect",
                           "mlir::vector::VectorDialect", "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

def CpuTileAndVectorize : Pass<"peft-cpu-tile-and-vectorize", "mlir::ModuleOp"> {
  let summary = "Tile GEMMs for the caches and registers, then vectorize them";
  let description = [{
    The CPU back end's GEMM schedule, applied with the transform dialect on
    tensors, before bufferization. Each `linalg.matmul` is tiled in
    `[64, 128, 128]` blocks (M, N, K) that fit the caches, then in
    `[micro-rows, micro-cols]` register tiles. The row loop is peeled so that
    full register tiles have static shapes; those are vectorized into
    `vector.fma` outer products whose accumulators stay in registers across
    the K block. Partial tiles (the last rows of a dynamic batch, a dimension
    that the block sizes do not divide) stay scalar loops.

    `micro-cols` is one or two vector registers: 16 floats suits AVX2, 32
    AVX-512.
  }];
  let options = [
    Option<"microRows", "micro-rows", "int64_t", "4", "Rows of a register tile">,
    Option<"microCols", "micro-cols", "int64_t", "16", "Columns of a register tile">,
  ];
  let dependentDialects = ["mlir::transform::TransformDialect",
                           "mlir::vector::VectorDialect",
                           "mlir::scf::SCFDialect"];
}

def CpuVectorizeElementwise : Pass<"peft-cpu-vectorize-elementwise", "mlir::ModuleOp"> {
  let summary = "Vectorize elementwise maps and row reductions";
  let description = [{
    Every `linalg.generic` on tensors whose operands are read along the
    innermost loop contiguously or broadcast (bias adds, activations, the
    residual adds, layer norm's and softmax's row reductions and maps), and
    whose other loops are parallel, is tiled by 1 on every loop but the
    innermost and by `vector-width` on it; the innermost loop is peeled, so
    every tile but a row's last is full and is vectorized. A row's last
    partial tile is vectorized when its length is static and stays a scalar
    loop when the row's length is known at run time only (softmax over the
    sequence). Row reductions become `vector.reduction`s of `vector-width`
    elements accumulated per tile; sums and products among a tile's elements
    are reassociated (`fastmath<reassoc>`: a tree of vector adds, then one
    add into the row's running value, instead of a chain through every
    element). GEMMs, gathers, transposed reads and
    booleans (bytes in memory, bits in a vector) are left alone.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", "16", "Elements per vector">,
  ];
  let dependentDialects = ["mlir::transform::TransformDialect",
                           "mlir::vector::VectorDialect",
                           "mlir::scf::SCFDialect"];
}

def CpuDistributeLoops : Pass<"peft-cpu-distribute-loops", "mlir::ModuleOp"> {
  let summary = "Split maps and reductions into rows for the runtime's threads";
  let description = [{
    On tensors. Every `linalg.generic` at the top of a function that is not
    a GEMM, a GEMM's epilogue or start, or a pooling window (those have
    kernels that split their own work) is tiled by 1 on
    its leading parallel loops, never the innermost, into an `scf.forall`:
    rows of layer norms, softmaxes, activations, residual adds, transposes
    and gathers. `peft-cpu-vectorize-elementwise` then vectorizes each row,
    and `peft-cpu-lower-forall` hands the rows to the threads. An op with
    fewer than `min-elements` iterations in all, or one row, stays serial:
    waking the threads would cost more than it saves. Each row is computed
    as it was, so results do not depend on the number of threads.
  }];
  let options = [
    Option<"minElements", "min-elements", "int64_t", "16384",
           "Fewest iterations (all loops together) worth running in parallel">,
  ];
  let dependentDialects = ["mlir::scf::SCFDialect", "mlir::tensor::TensorDialect",
                           "mlir::affine::AffineDialect", "mlir::arith::ArithDialect"];
}

def CpuDistributeCopies : Pass<"peft-cpu-distribute-copies", "mlir::ModuleOp"> {
  let summary = "Split the copies and fills of bufferization into rows for the threads";
  let description = [{
    On memrefs, after bufferization. The copies and fills bufferization
    makes (a pad's fill and interior, a strided slice made contiguous, a
    buffer copied where two ops cannot share one) would run on one thread,
    strided ones in memrefCopy's element-by-element loop. Each
    `memref.copy`, `linalg.fill` and map without inputs (a fill) of rank 2
    or more at the top of a function, with at least `min-elements` elements
    or sizes known at run time only, becomes an `scf.forall` over all
    dimensions but the last, each row a loop of loads and stores that LLVM
    vectorizes; `peft-cpu-lower-forall` hands the rows to the threads.
  }];
  let options = [
    Option<"minElements", "min-elements", "int64_t", "16384",
           "Fewest elements worth writing in parallel">,
  ];
  let dependentDialects = ["mlir::scf::SCFDialect", "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

def CpuLowerForall : Pass<"peft-cpu-lower-forall", "mlir::ModuleOp"> {
  let summary = "Run scf.forall loops on the runtime's thread pool";
  let description = [{
    On memrefs, after bufferization. Each `scf.forall` becomes a function,
    `F_parallel_N(captures..., begin, end)`, that runs iterations [begin,
    end) of the loop (delinearized into its induction variables), and a
    call of it through `peft_parallel_for` (runtime/cpu/model_support.c) over
    all of them: each thread takes a contiguous range. The values the body
    uses from above travel in the call's context; constants are cloned into
    the function. A forall nested in another becomes serial loops.
  }];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::scf::SCFDialect",
                           "mlir::affine::AffineDialect", "mlir::arith::ArithDialect",
                           "mlir::LLVM::LLVMDialect"];
}

def CpuApproximateMath : Pass<"peft-cpu-approximate-math", "mlir::ModuleOp"> {
  let summary = "Replace erf, tanh and exp by branch-free polynomial approximations";
  let description = [{
    Rewrites `math.erf`, `math.tanh` (GELU, tanh-GELU, the bottleneck
    adapters' activations) and `math.exp` (softmax, SiLU, sigmoid) into
    MLIR's polynomial approximations: plain arithmetic and selects, accurate
    to a few ulp in fp32. libm's `erff` and `tanhf`, which the ops would
    otherwise call, branch on their argument, so a model's latency depended
    on its activations (a merged adapter changed it), and the calls kept the
    loops around them scalar; LLVM has no vector `exp`, and splits one into
    a call of `expf` per element. It runs after the kernels are generated,
    so that the GEMM epilogues' GELU is approximated too.

    `math.floor`, `math.ceil`, `math.trunc` and `math.roundeven` (exp's
    approximation rounds with floor) become LLVM's rounding intrinsics, one
    instruction each: the libm conversion would call `floorf` per element.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect", "mlir::math::MathDialect",
                           "mlir::vector::VectorDialect", "mlir::LLVM::LLVMDialect"];
}

#endif // PEFT_LOWERING_CPU_PASSES_TD
