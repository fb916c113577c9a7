#ifndef PEFT_LOWERING_PASSES_TD
#define PEFT_LOWERING_PASSES_TD

include "mlir/Pass/PassBase.td"

def ExternalizeWeights : Pass<"peft-externalize-weights", "mlir::ModuleOp"> {
  let summary = "Turn weights into arguments of the entry functions";
  let description = [{
    Prepares each public function as an entry the runtime calls. Compiled code
    does not embed weights: the runtime maps them from the artifact's
    safetensors file and passes them in. This pass replaces every
    `peft.weight` by a new trailing argument, which carries `peft.weight` (the
    tensor's name in the artifact) and either `peft.file` or `peft.value`, so
    the artifact writer can gather the bytes. An adapter's own tensors are
    named as PEFT names them in memory, after their adapter
    (`...lora_A.NAME.weight`), with their key in the adapter file in
    `peft.key`: PEFT's saved keys carry no adapter name, and two adapters on
    the same modules must keep weights of their own. It also marks the function
    `llvm.emit_c_interface`, which the runtime's calling convention builds on.
  }];
  let dependentDialects = ["peft::PeftDialect", "mlir::func::FuncDialect"];
}

def ConvertPeftToLinalg : Pass<"convert-peft-to-linalg", "mlir::ModuleOp"> {
  let summary = "Lower peft layers and adapters to linalg on tensors";
  let description = [{
    The target-independent stage of code generation. `peft.linear` becomes a
    `linalg.matmul` over the flattened batch dimensions followed by an
    elementwise bias add (which fuses with what follows, while the GEMM stays
    a named op for the back ends' schedules); `peft.lora` becomes the two thin GEMMs of the
    unmerged adapter accumulated into the base output (on an embedding, a
    gather of A's columns and one GEMM; on a convolution, two convolutions);
    `peft.dora` the same branch, then each output channel rescaled by
    `magnitude / ‖W + s·B·A‖`, computed from the weights at run time;
    LoHa's and LoKr's deltas are computed from their factors at run time
    (GEMMs, a Hadamard or Kronecker product) and `peft.add_delta` applies
    one as the layer's weight;
    `peft.ia3` an
    elementwise product along the last dimension; `peft.conv` becomes one
    `linalg.generic` over the zero-padded input, channels split into
    `[groups, channels / groups]`; `peft.embedding` gathers table rows with
    `tensor.extract`; a `peft.weight` that
    holds its value becomes an `arith.constant`. Weights that still name a
    file are an error: run `peft-externalize-weights` first.

    `peft.head_shift` becomes a gather; on a linear layer's output that
    nothing else reads, the gather reads the layer's GEMM rows and adds its
    bias, so the shift copies nothing.

    `peft.multi_lora` becomes per-row selections of the slot factors and two
    batched GEMMs accumulated into the base (`MultiAdaptersToLinalg.cpp`);
    when a residual add alone reads its f32 result (not DoRA slots), the add
    comes first and the update accumulates into the sum, so that the layer's
    GEMM takes the add into its epilogue as it does without adapters.

    Precision: f16 and bf16 layers accumulate their products in f32 and round
    the result once. Unmerged adapters compute in f32 (on an f64 layer, f64)
    whatever the types of their tensors (PEFT's default,
    `autocast_adapter_dtype`): F16/BF16 adapter tensors, the layer's input
    and its base result are widened, and the adapted result is rounded once
    to the layer's type.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect",
                           "mlir::tensor::TensorDialect",
                           "mlir::arith::ArithDialect",
                           "mlir::math::MathDialect"];
}

def FuseElementwise : Pass<"peft-fuse-elementwise", "mlir::ModuleOp"> {
  let summary = "Fuse chains of elementwise linalg ops (and their padding), leaving GEMMs alone";
  let description = [{
    Fuses an elementwise `linalg.generic` into the elementwise op that
    consumes it, so that chains such as bias add, GELU and residual add run
    as one loop nest. Unlike upstream `linalg-fuse-elementwise-ops`, it does
    not propagate reshapes into other ops: those would turn a
    `linalg.matmul` over flattened rows into a generic contraction that the
    back ends' GEMM schedules no longer recognize. A producer that other
    ops read too is left apart, since fusing it would make every reader
    compute it again.

    A constant `tensor.pad` that alone reads an op's result, the op's output
    starting empty or filled with a constant (an activation before a
    convolution, a pooling window), becomes a fill of the padded tensor with
    the padding value and the op writing into its interior
    (`tensor.insert_slice` of its result): bufferized, nothing is copied.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def ExpandShapeToReinterpretCast : Pass<"peft-expand-shape-to-reinterpret-cast",
                                        "mlir::ModuleOp"> {
  let summary = "Lower memref.expand_shape ops that split a dynamic size in two";
  let description = [{
    A reshape that splits one dynamic size into several dynamic ones (the
    `[batch·sequence, hidden] -> [batch, sequence, hidden]` after a GEMM over
    flattened rows) cannot be lowered by upstream `expand-strided-metadata`.
    On a contiguous (identity-layout) buffer the result is the same memory
    with new sizes, so this pass rewrites such an `memref.expand_shape` into a
    `memref.reinterpret_cast` whose row-major strides are the products of the
    trailing output sizes. Other expand_shapes are left to upstream.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect", "mlir::arith::ArithDialect"];
}

def EmitPackedEntry : Pass<"peft-emit-packed-entry", "mlir::ModuleOp"> {
  let summary = "Add a `void NAME_packed(void **args)` wrapper to each entry";
  let description = [{
    Runs on the LLVM dialect, after `convert-func-to-llvm` made the
    `_mlir_ciface_NAME` wrappers. The runtime calls any model through one
    signature: `args[0]` points to the result descriptor(s) and `args[1..]`
    to the argument descriptors, in order.
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
}

#endif // PEFT_LOWERING_PASSES_TD
