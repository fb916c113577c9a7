#ifndef PEFT_OPS_TD
#define PEFT_OPS_TD

include "dialects/peft/PeftDialect.td"
include "dialects/peft/PeftInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Peft_WeightOp : Peft_Op<"weight", [Pure]> {
  let summary = "A named weight tensor, kept in a file or held as an attribute";
  let description = [{
    Produces a constant weight tensor. A weight imported from a model or an
    adapter names the file and the tensor inside it; the file (safetensors or
    ONNX) is memory-mapped only when a pass or the artifact writer needs the
    values, so the IR never carries large weights as text:

    ```mlir
    %w = peft.weight "encoder.layer.0.attention.self.query.weight"
           from "model.onnx" : tensor<768x768xf32>
    ```

    A weight computed at compile time (a merged LoRA, say) holds its values in
    `value`: a `dense` attribute when small, a `dense_resource` blob otherwise.

    ```mlir
    %w = peft.weight "q.weight" = dense<1.0> : tensor<4x4xf32>
    ```

    The result type of a weight with a value is the value's type.
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<StrAttr>:$file,
                       OptionalAttr<ElementsAttr>:$value);
  let results = (outs AnyRankedTensor:$result);
  let hasCustomAssemblyFormat = 1;
  let extraClassDeclaration = [{
    /// The weight's bytes: a view into its mapped file, or into `storage`
    /// when they had to be expanded (a splat value).
    ::llvm::Expected<::peft::TensorView> read(std::vector<uint8_t> &storage);
    /// The weight's values widened to fp32.
    ::llvm::Expected<std::vector<float>> readFloat32();
  }];
  let hasVerifier = 1;
}

def Peft_LinearOp : Peft_Op<"linear", [Pure,
    Peft_AdaptableLayer]> {
  let summary = "Fully connected layer y = x·Wᵀ + b of a source-model module";
  let description = [{
    The base layer behind `nn.Linear`, ONNX `Gemm` and `MatMul` with a
    constant right-hand side, and GPT-2's `Conv1D`. The input has any number
    of leading batch dimensions, `[..., in]`; the result is `[..., out]`.

    The weight is `[out, in]` (PyTorch's `nn.Linear` layout) unless
    `weight_in_out` is set, in which case it is stored `[in, out]` (what
    `torch.onnx.export` writes for `MatMul`, and GPT-2's `Conv1D`). Keeping the
    stored layout avoids copying the weight at import.

    `module_path` is the dotted path of the source module; adapters name their
    target modules by it.

    ```mlir
    %y = peft.linear "encoder.layer.0.output.dense" %x, %w, %b
           : (tensor<?x8x64xf32>, tensor<32x64xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$module_path, AnyRankedTensor:$input,
                       AnyRankedTensor:$weight, Optional<AnyRankedTensor>:$bias,
                       UnitAttr:$weight_in_out);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $module_path $input `,` $weight (`,` $bias^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// Sizes of the weight's [out, in] view, whatever its stored layout.
    int64_t getOutFeatures();
    int64_t getInFeatures();
  }];
  let hasVerifier = 1;
}

def Peft_ConvOp : Peft_Op<"conv", [Pure,
    Peft_AdaptableLayer]> {
  let summary = "Convolution layer of a source-model module (nn.Conv1d/2d/3d)";
  let description = [{
    The base layer behind ONNX `Conv`: the input is `[N, C, spatial...]`, the
    weight `[O, C / groups, kernel...]`, the optional bias `[O]`, and the
    result `[N, O, out...]` with, per spatial dimension,
    `out = (in + pad_begin + pad_end - dilation·(kernel - 1) - 1) / stride + 1`.

    `pads` lists the padding at the start of every spatial dimension, then
    at the end (ONNX's order); the padding holds zeros. With `groups` > 1 the
    channels split into that many independent convolutions.

    `module_path` is the dotted path of the source module; adapters name their
    target modules by it.

    ```mlir
    %y = peft.conv "stem.conv" %x, %w, %b
           {strides = array<i64: 2, 2>, dilations = array<i64: 1, 1>,
            pads = array<i64: 1, 1, 1, 1>, groups = 1 : i64}
           : (tensor<?x3x32x32xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>)
             -> tensor<?x8x16x16xf32>
    ```
  }];
  let arguments = (ins StrAttr:$module_path, AnyRankedTensor:$input,
                       AnyRankedTensor:$weight, Optional<AnyRankedTensor>:$bias,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$dilations,
                       DenseI64ArrayAttr:$pads, I64Attr:$groups);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $module_path $input `,` $weight (`,` $bias^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    int64_t getSpatialRank() { return getWeight().getType().getRank() - 2; }
    /// The weight as a matrix [O, C / groups·kernel...].
    int64_t getOutFeatures() { return getWeight().getType().getDimSize(0); }
    int64_t getInFeatures() { return getWeight().getType().getNumElements() / getOutFeatures(); }
    bool getWeightInOut() { return false; }
    /// The size of spatial dimension `dim` of the result for an input of
    /// size `in`.
    int64_t getOutputSize(int64_t dim, int64_t in);
  }];
  let hasVerifier = 1;
}

def Peft_EmbeddingOp : Peft_Op<"embedding", [Pure,
    Peft_AdaptableLayer]> {
  let summary = "Embedding table lookup of a source-model module (nn.Embedding)";
  let description = [{
    `result[..., :] = weight[input[...], :]`: the input holds integer indices
    of any shape into the rows of the `[num_embeddings, dim]` weight, and the
    result appends the embedding dimension. A negative index counts from the
    end, as in ONNX `Gather`; an index outside the table is a run-time error
    the generated code does not check, as in PyTorch.

    ```mlir
    %e = peft.embedding "embed_tokens" %ids, %table
           : (tensor<?x?xi64>, tensor<1000x64xf32>) -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$module_path, AnyRankedTensor:$input,
                       AnyRankedTensor:$weight);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $module_path $input `,` $weight attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The table [num_embeddings, dim] is a linear map from one-hot vectors,
    /// stored [in, out].
    int64_t getOutFeatures() { return getWeight().getType().getDimSize(1); }
    int64_t getInFeatures() { return getWeight().getType().getDimSize(0); }
    bool getWeightInOut() { return true; }
    ::mlir::Value getBias() { return {}; }
  }];
  let hasVerifier = 1;
}

def Peft_LayerNormOp : Peft_Op<"layer_norm", [Pure,
    AllTypesMatch<["input", "result"]>]> {
  let summary = "Layer normalization of a source-model module (nn.LayerNorm)";
  let description = [{
    Normalizes `input` over its dimensions from `axis` to the last, then
    applies the module's elementwise affine:

    `result = (input − mean) / sqrt(var + epsilon) · weight + bias`

    with the mean and the (biased) variance taken over those dimensions.
    `weight` (γ) and the optional `bias` (β) have the normalized dimensions'
    shape. This is ONNX `LayerNormalization`'s first output. Keeping it one op
    with a `module_path` lets adapters name it: an SSF after it folds into
    γ and β.

    ```mlir
    %y = peft.layer_norm "encoder.layer.0.layernorm_before" %x, %gamma, %beta
           {axis = 2 : i64, epsilon = 1.0e-12 : f32}
           : (tensor<?x17x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x17x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$module_path, AnyRankedTensor:$input,
                       AnyRankedTensor:$weight, Optional<AnyRankedTensor>:$bias,
                       I64Attr:$axis, F32Attr:$epsilon);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $module_path $input `,` $weight (`,` $bias^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The number of values normalized together: the product of the sizes
    /// from `axis` on.
    int64_t getNormalizedSize() { return getWeight().getType().getNumElements(); }
  }];
  let hasVerifier = 1;
}

def Peft_LoraOp : Peft_Op<"lora", [Pure, AllTypesMatch<["base", "result"]>,
    DeclareOpInterfaceMethods<Peft_AdapterOp, ["getAdapterRank", "getAdapterScale"]>]> {
  let summary = "Low-rank adapter added to a base layer's output";
  let description = [{
    `result = base + scale · ((input · Aᵀ) · Bᵀ + lora_bias)`, where `base` is the output of
    the adapted layer applied to `input`, `A` (`lora_a`) is `[r, in]` and `B`
    (`lora_b`) is `[out, r]`, as Hugging Face PEFT stores them. `scale` is
    `lora_alpha / r` (or `lora_alpha / sqrt(r)` for rsLoRA). `adapter` names
    the adapter the weights came from. The optional `lora_bias` (`[out]`) is
    PEFT's `lora_B.bias`, saved with `lora_bias: true`.

    The same formula covers PEFT's three LoRA layers, told apart by the input
    and `A`:
    - a linear layer: `input` is `[..., in]`;
    - an embedding: `input` holds integer indices into the table, read as
      one-hot rows, so `input · Aᵀ` picks columns of `A`
      (`lora_embedding_A`, `[r, num_embeddings]`); `B` is `[dim, r]`;
    - a convolution: `A` is `[r, C, kernel...]`, applied to the `[N, C, ...]`
      input as a convolution with the layer's kernel, `strides` and `pads`
      (and dilation 1, as PEFT builds it); `B` is a 1×1 convolution
      `[out, r, 1...]`; `lora_bias` runs along the channels.

    Merging folds the adapter into the base weight, `W' = W + scale · B·A`
    (the product over the rank, in the layer's matrix layout: a
    convolution's `[O, C·kernel]`, an embedding's `[num_embeddings, dim]`
    table gets `(B·A)ᵀ`), and the bias, `b' = b + scale · lora_bias`;
    left unmerged it lowers to two small GEMMs (convolutions) beside the base
    one. An adapter that cannot change its base folds away: `scale` 0, or a
    `B` of zeros and no bias (what PEFT initializes a fresh adapter with).

    ```mlir
    %y = peft.lora "default" %x, %base, %a, %b {scale = 2.0 : f32}
           : (tensor<?x8x32xf32>, tensor<?x8x32xf32>, tensor<4x32xf32>, tensor<32x4xf32>)
             -> tensor<?x8x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$adapter, AnyRankedTensor:$input,
                       AnyRankedTensor:$base, AnyRankedTensor:$lora_a,
                       AnyRankedTensor:$lora_b, Optional<AnyRankedTensor>:$lora_bias,
                       F32Attr:$scale, OptionalAttr<DenseI64ArrayAttr>:$strides,
                       OptionalAttr<DenseI64ArrayAttr>:$pads);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapter $input `,` $base `,` $lora_a `,` $lora_b (`,` $lora_bias^)? attr-dict `:`
    functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    int64_t getRank() { return getLoraA().getType().getDimSize(0); }
    /// Whether the adapter is on a convolution (A has kernel dimensions).
    bool isConvolution() { return getLoraA().getType().getRank() > 2; }
    /// Whether the adapter is on an embedding (the input holds indices).
    bool isEmbedding() {
      return ::llvm::isa<::mlir::IntegerType>(getInput().getType().getElementType());
    }
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Peft_MultiLoraOp : Peft_Op<"multi_lora", [Pure, AttrSizedOperandSegments,
    AllTypesMatch<["base", "result"]>]> {
  let summary = "Many LoRA adapters on one linear layer, each row of a batch picking its own";
  let description = [{
    The layer's LoRA update for a batch whose rows use different adapters, as
    multi-adapter servers (Punica, S-LoRA, vLLM) run them. The adapters sit
    in `N` slots of rank capacity `R`, each slot's factors transposed as a
    GEMM reads its right operand (k-major): `lora_a` is `[N, in, R]` (each
    slot's Aᵀ), `lora_b` `[N, R, out]` (each slot's Bᵀ), `scales` `[N]` (each
    slot's `lora_alpha / r`, or `/ √r` for rsLoRA), the optional `lora_bias`
    `[N, out]`. A slot holding an adapter of rank `r < R` has zeros past
    column `r` of its Aᵀ and row `r` of its Bᵀ; an empty slot, or one whose
    adapter does not adapt this layer, is all zeros. `index` (`[batch]`, integers) gives each element of the
    batch (dimension 0 of `input` and `base`; of a 2-D input read flattened,
    `[batch·rows, in]` batch-major, the rows of one element are consecutive)
    its slot, -1 for none:

    `result[i] = base[i] + scales[s] · ((input[i] · lora_a[s]) · lora_b[s] + lora_bias[s])`,
    `s = index[i]`, and `result[i] = base[i]` where `s` is -1.

    With `dora_scales` (`[N, out]`), slots may hold DoRA adapters: each is
    `n = magnitude / ‖W + scale · B·A‖` per output (1 in slots that are not
    DoRA), and with `layer_bias` the layer's bias `b`, which DoRA leaves
    unscaled (`peft.dora`):

    `result[i] = base[i] + (n[s] − 1) ⊙ (base[i] − b) + n[s] ⊙ scales[s] · (input[i] · lora_a[s]) · lora_b[s]`.

    `adapters` names each slot's adapter ("" when empty or filled at run
    time). With `ranks` (`[N]`, f32: each slot's rank on this layer, 0 where
    it holds nothing; its factors are zeros past it), a back end may compute
    each row over its slot's own rank: the CPU does, reading each row's
    factors where the tables hold them, slot by slot, running consecutive
    rows of one slot as one GEMM and rows of -1 as none (peft-cpu-lower-panel-gemms);
    CUDA reads each batch element's factors in the tables too, its
    expansion over the slot's rank and its shrink over the 64 columns of a
    tile (one tile holds a capacity up to 64), an element of -1 computing
    nothing (peft-cuda-launch-gemms). Without `ranks`, every row computes
    over the capacity `R`: rows of lower-rank adapters cost `R / r` times
    what their own rank needs, the bound of the padding.

    ```mlir
    %y = peft.multi_lora ["tenant-a", "tenant-b"] %x, %base, %index, %a, %b, %scales
           : (tensor<?x8x32xf32>, tensor<?x8x32xf32>, tensor<?xi64>, tensor<2x16x32xf32>,
              tensor<2x32x16xf32>, tensor<2xf32>) -> tensor<?x8x32xf32>
    ```
  }];
  let arguments = (ins StrArrayAttr:$adapters, AnyRankedTensor:$input, AnyRankedTensor:$base,
                       AnyRankedTensor:$index, AnyRankedTensor:$lora_a,
                       AnyRankedTensor:$lora_b, AnyRankedTensor:$scales,
                       Optional<AnyRankedTensor>:$lora_bias,
                       Optional<AnyRankedTensor>:$dora_scales,
                       Optional<AnyRankedTensor>:$layer_bias,
                       Optional<AnyRankedTensor>:$ranks);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapters $input `,` $base `,` $index `,` $lora_a `,` $lora_b `,` $scales
    (`bias` $lora_bias^)? (`dora` $dora_scales^)? (`layer_bias` $layer_bias^)?
    (`ranks` $ranks^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The number of slots.
    int64_t getSlots() { return getLoraA().getType().getDimSize(0); }
    /// The rank every slot has room for.
    int64_t getRankCapacity() { return getLoraA().getType().getDimSize(2); }
    /// The linear layer it adapts, or null.
    ::peft::AdaptableLayer getLayer() {
      return getBase().getDefiningOp<::peft::AdaptableLayer>();
    }
  }];
  let hasVerifier = 1;
}

def Peft_MultiIa3Op : Peft_Op<"multi_ia3", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "Many IA3 adapters on one layer's input or output, each row of a batch picking its own";
  let description = [{
    The IA3 scaling of a batch whose rows use different adapters (the
    companion of `peft.multi_lora`): `scales` is `[N, C]`, slot `s`'s
    vector over the `C` features of `input`'s last dimension, all ones for a
    slot whose adapter does not scale this value (an empty slot, another
    method, another module). `index` gives each element of the batch its
    slot as for `peft.multi_lora` (a 2-D input read flattened has several
    rows per element), -1 for none:

    `result[i, ..., c] = input[i, ..., c] · scales[s, c]`, `s = index[i]`,
    and `result[i] = input[i]` where `s` is -1.

    After a linear layer it scales the layer's output (PEFT's IA3 on
    attention modules); on a linear layer's input, that layer's alone
    (feed-forward modules).

    ```mlir
    %y = peft.multi_ia3 ["tenant-a", ""] %out, %index, %l
           : (tensor<?x8x32xf32>, tensor<?xi64>, tensor<2x32xf32>) -> tensor<?x8x32xf32>
    ```
  }];
  let arguments = (ins StrArrayAttr:$adapters, AnyRankedTensor:$input, AnyRankedTensor:$index,
                       AnyRankedTensor:$scales);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapters $input `,` $index `,` $scales attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The number of slots.
    int64_t getSlots() { return getScales().getType().getDimSize(0); }
    /// Whether it scales the input of the layer it adapts (else its output).
    bool scalesInput();
    /// The linear layer it adapts, or null.
    ::peft::AdaptableLayer getLayer();
  }];
  let hasVerifier = 1;
}

def Peft_DoraOp : Peft_Op<"dora", [Pure, AllTypesMatch<["base", "result"]>,
    DeclareOpInterfaceMethods<Peft_AdapterOp, ["getAdapterRank", "getAdapterScale",
                                               "getOwnOperands"]>]> {
  let summary = "Weight-decomposed low-rank adapter (DoRA) on a base layer's output";
  let description = [{
    DoRA rescales each output channel of a LoRA-adapted layer to a learned
    magnitude. With `V = W + scale · B·A` (the adapted weight, in the layer's
    `[out, in...]` layout; `weight_in_out` when `weight` is stored `[in, out]`)
    and `n = magnitude / ‖V‖`, the L2 norm of each output's row over all its
    inputs:

    `result = n ⊙ (base − bias + scale · (input · Aᵀ) · Bᵀ) + bias`

    where `base` is the output so far of the layer applied to `input`, and
    `bias` the layer's bias (0 when absent), which DoRA leaves unscaled. This
    is Hugging Face PEFT's DoRA forward (`use_dora: true`, with
    `lora_magnitude_vector` as `magnitude`, `[out]`, or `[1, out, 1, 1]` for a
    convolution). `A`, `B`, `strides` and `pads` are as in `peft.lora`: a
    convolution adapter's `A` is `[r, C, kernel...]`, and `n` runs along the
    channel dimension 1.

    Merging gives the layer `W' = n ⊙ V` (rows scaled), its bias unchanged.
    Left unmerged, `n` is computed at run time from the adapter's weights, so
    the adapter stays swappable.

    ```mlir
    %y = peft.dora "default" %x, %base, %w, %a, %b, %m {scale = 2.0 : f32}
           : (tensor<?x8x32xf32>, tensor<?x8x32xf32>, tensor<32x32xf32>,
              tensor<4x32xf32>, tensor<32x4xf32>, tensor<32xf32>) -> tensor<?x8x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$adapter, AnyRankedTensor:$input,
                       AnyRankedTensor:$base, AnyRankedTensor:$weight,
                       AnyRankedTensor:$lora_a, AnyRankedTensor:$lora_b,
                       AnyRankedTensor:$magnitude, Optional<AnyRankedTensor>:$bias,
                       F32Attr:$scale, UnitAttr:$weight_in_out,
                       OptionalAttr<DenseI64ArrayAttr>:$strides,
                       OptionalAttr<DenseI64ArrayAttr>:$pads);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapter $input `,` $base `,` $weight `,` $lora_a `,` $lora_b `,` $magnitude
    (`,` `bias` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    int64_t getRank() { return getLoraA().getType().getDimSize(0); }
    bool isConvolution() { return getLoraA().getType().getRank() > 2; }
  }];
  let hasVerifier = 1;
}

def Peft_FactorProductOp : Peft_Op<"factor_product", [Pure]> {
  let summary = "Matrix product of two adapter factors, a weight-space computation";
  let description = [{
    `result = lhs · rhs` for `[m, k]` and `[k, n]` factors: how LoHa's
    `hada_w1_a · hada_w1_b` and LoKr's factored `lokr_w1_a · lokr_w1_b` are
    formed. It computes a weight, not an activation: merging evaluates it at
    compile time; left unmerged it runs once per call on the adapter's
    weights.

    ```mlir
    %p = peft.factor_product %w1a, %w1b : (tensor<32x4xf32>, tensor<4x64xf32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$lhs, AnyRankedTensor:$rhs);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Peft_CpProductOp : Peft_Op<"cp_product", [Pure]> {
  let summary = "A convolution's factor rebuilt from its CP form, a weight-space computation";
  let description = [{
    `result[p, q·K + k] = Σᵢ Σⱼ core[i, j, k] · a[i, p] · b[j, q]` for a
    `[r1, r2, kernel...]` core (`k` running row-major over the kernel's `K`
    elements), `a` `[r1, p]` and `b` `[r2, q]`: the `[p, q, kernel...]`
    tensor read row-major as the matrix `[p, q·K]`, so that it feeds
    `peft.loha_delta` and `peft.lokr_delta` as a `peft.factor_product` does.

    This is how Hugging Face PEFT rebuilds a convolution's factors saved in
    the CP form (`use_effective_conv2d`, kernels other than 1×1), with
    PEFT's einsum `"i j k l, j r, i p -> p r k l"`: LoHa's `hada_t1` with
    `hada_w1_a` `[r, out]` and `hada_w1_b` `[r, in]` (and `hada_t2` with the
    `hada_w2` pair), LoKr's `lokr_t2` with `lokr_w2_a` and `lokr_w2_b`. Like
    `peft.factor_product` it computes a weight: merging evaluates it at
    compile time; left unmerged it runs once per call on the adapter's
    weights.

    ```mlir
    %p = peft.cp_product %t1, %w1a, %w1b
           : (tensor<4x4x3x3xf32>, tensor<4x32xf32>, tensor<4x16xf32>) -> tensor<32x144xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$core, AnyRankedTensor:$a, AnyRankedTensor:$b);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $core `,` $a `,` $b attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The rank of the decomposition: the core's first dimension.
    int64_t getRank() { return getCore().getType().getDimSize(0); }
    /// The number of elements of the kernel: the product of the core's
    /// dimensions from 2 on.
    int64_t getKernelSize() {
      int64_t size = 1;
      for (int64_t dim : getCore().getType().getShape().drop_front(2))
        size *= dim;
      return size;
    }
  }];
  let hasVerifier = 1;
}

def Peft_LohaDeltaOp : Peft_Op<"loha_delta", [Pure]> {
  let summary = "LoHa's weight delta: the Hadamard product of two low-rank products";
  let description = [{
    `result = scale · (p1 ⊙ p2)`, read row-major into the result's shape: the
    delta of a layer's weight in PyTorch's layout (`[out, in]`, or
    `[out, C, kernel...]` for a convolution), where `p1 = hada_w1_a ·
    hada_w1_b` and `p2 = hada_w2_a · hada_w2_b` are `[out, in·kernel]`
    products (or, in the CP form for convolutions, `peft.cp_product`s) and
    `scale = alpha / r` (Hugging Face PEFT's LoHa).

    ```mlir
    %d = peft.loha_delta %p1, %p2 {scale = 2.0 : f32}
           : (tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$p1, AnyRankedTensor:$p2, F32Attr:$scale);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $p1 `,` $p2 attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Peft_LokrDeltaOp : Peft_Op<"lokr_delta", [Pure]> {
  let summary = "LoKr's weight delta: the Kronecker product of two factors";
  let description = [{
    `result = scale · kron(w1, w2)`, read row-major into the result's shape
    (the layer's weight in PyTorch's layout), for `w1` `[a, b]` and `w2`
    `[c, d...]` read as the matrix `[c, d·...]`: element `[i·c + k, j·e + l]`
    of the `[a·c, b·e]` product is `w1[i, j] · w2[k, l]`. A convolution's
    `lokr_w2` `[c, d, kh, kw]` (or factored `[c, d·kh·kw]`) gives PEFT's
    `kron(w1[..., None, None], w2)`. `scale = alpha / r` (Hugging Face PEFT's
    LoKr); a factored `lokr_w1_a · lokr_w1_b` comes from
    `peft.factor_product`, a `lokr_w2` in the CP form (`lokr_t2`) from
    `peft.cp_product`.

    ```mlir
    %d = peft.lokr_delta %w1, %w2 {scale = 1.0 : f32}
           : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<32x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$w1, AnyRankedTensor:$w2, F32Attr:$scale);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $w1 `,` $w2 attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Peft_AddDeltaOp : Peft_Op<"add_delta", [Pure, AllTypesMatch<["base", "result"]>,
    DeclareOpInterfaceMethods<Peft_AdapterOp, ["getAdapterRank", "getAdapterScale"]>]> {
  let summary = "An adapter given as a whole weight delta (LoHa, LoKr) on a layer's output";
  let description = [{
    `result = base + layer(input, delta)`: the adapted layer applied to its
    input with the weight `delta` in PyTorch's layout and no bias — for a
    linear layer `input · deltaᵀ`; for a convolution (`strides`,
    `dilations`, `pads` and `groups` copied from it) the convolution with
    `delta` as its kernel. This is how Hugging Face PEFT runs LoHa and LoKr
    unmerged (`W + ΔW` in the layer's op). Merging adds `delta` to the layer's
    weight.

    ```mlir
    %y = peft.add_delta "default" %x, %base, %d
           : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$adapter, AnyRankedTensor:$input,
                       AnyRankedTensor:$base, AnyRankedTensor:$delta,
                       OptionalAttr<DenseI64ArrayAttr>:$strides,
                       OptionalAttr<DenseI64ArrayAttr>:$dilations,
                       OptionalAttr<DenseI64ArrayAttr>:$pads,
                       OptionalAttr<I64Attr>:$groups);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapter $input `,` $base `,` $delta attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    bool isConvolution() { return getDelta().getType().getRank() > 2; }
  }];
  let hasVerifier = 1;
}

def Peft_Ia3Op : Peft_Op<"ia3", [Pure, AllTypesMatch<["input", "result"]>,
    DeclareOpInterfaceMethods<Peft_AdapterOp, ["mapsValue"]>]> {
  let summary = "IA3 adapter: a learned scale per channel of a layer's input or output";
  let description = [{
    `result[..., c] = input[..., c] · scale[c]`. Attached after a layer it
    scales the layer's output (Hugging Face PEFT's IA3 on attention modules,
    `ia3_l` stored `[out, 1]`); attached before a layer's input it scales the
    input of that layer alone (feed-forward modules, `ia3_l` stored
    `[1, in]`). `scale` keeps PEFT's stored shape: its elements run along the
    last dimension of `input`, every other size is 1. On a convolution's
    `[N, C, spatial...]` values the scale is `[1, C, 1...]`, of the input's
    rank, and runs along the channels, dimension 1.

    Merging folds it into the layer: after a layer, `W[o, ...] *= l[o]` and
    `b *= l`; before one, `W[:, i, ...] *= l[i]`. Left unmerged it lowers to
    an elementwise product.

    ```mlir
    %k = peft.ia3 "default" %base, %l
           : (tensor<?x?x32xf32>, tensor<32x1xf32>) -> tensor<?x?x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$adapter, AnyRankedTensor:$input, AnyRankedTensor:$scale);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapter $input `,` $scale attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// The dimension of `input` the scale runs along: 1 for a convolution's
    /// [1, C, 1...] scale, else the last.
    int64_t getChannelDim() {
      int64_t rank = getInput().getType().getRank();
      return getScale().getType().getRank() == rank && rank > 2 ? 1 : rank - 1;
    }
  }];
  let hasVerifier = 1;
}

def Peft_SsfOp : Peft_Op<"ssf", [Pure, AllTypesMatch<["input", "result"]>,
    DeclareOpInterfaceMethods<Peft_AdapterOp, ["mapsValue"]>]> {
  let summary = "SSF adapter: a learned scale and shift per channel of a layer's output";
  let description = [{
    `result[..., c, ...] = input[..., c, ...] · scale[c] + shift[c]` along
    dimension `channel_dim` of `input`: the last for a linear layer's or a
    layer norm's output, 1 for a convolution's `[N, C, spatial...]`. `scale`
    (γ) and `shift` (β) are `[C]`. This is SSF (Scaling & Shifting your
    Features, Lian et al. 2022) as peft-mlir's own adapter format defines it
    (docs/adapters.md).

    Merging folds it into the layer it follows: `W[o, ...] *= γ[o]`,
    `b' = γ⊙b + β` (a layer without a bias gets `β`); after a layer norm
    `γ_ln' = γ⊙γ_ln`, `β_ln' = γ⊙β_ln + β`. Left unmerged it lowers to one
    elementwise op.

    ```mlir
    %y = peft.ssf "default" %x, %scale, %shift {channel_dim = 2 : i64}
           : (tensor<?x17x32xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x17x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$adapter, AnyRankedTensor:$input, AnyRankedTensor:$scale,
                       AnyRankedTensor:$shift, I64Attr:$channel_dim);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapter $input `,` $scale `,` $shift attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Peft_BottleneckOp : Peft_Op<"bottleneck", [Pure, AttrSizedOperandSegments,
    AllTypesMatch<["input", "result"]>,
    DeclareOpInterfaceMethods<Peft_AdapterOp, ["getAdapterRank", "getAdapterScale",
                                               "mapsValue"]>]> {
  let summary = "A residual bottleneck adapter: down-projection, activation, up-projection";
  let description = [{
    `result = input + scale · (up(act(down(input) + down_bias)) + up_bias)`
    along the last dimension of `input` (`[..., d]`), where `down` is
    `[h, d]` and `up` `[d, h / groups]` (or Conv1d kernels with a trailing
    1, `[h, d, 1]`, as RepAdapter stores them): with `groups` > 1 the up-projection
    is grouped, hidden group `g` feeding outputs group `g` (a grouped 1×1
    convolution). The biases are optional (0 when absent). It stands on a
    linear layer's output, or, with `before_layer`, on the input of the one
    layer that reads its result.

    One op covers three adapter families of peft-mlir's own format
    (docs/adapters.md):
    - Houlsby / Pfeiffer bottleneck adapters: `activation` is `relu`,
      `gelu` (exact, erf), `silu` or `tanh`. They cannot merge and lower to
      two GEMMs, the activation and the residual sum.
    - ZeroI2V linear adapters: `activation` `identity`. Merged into the
      layer with `A = I + scale·up·down` and `c = scale·(up·down_bias +
      up_bias)`: on the layer's input `W' = W·A`, `b' = W·c + b`; on its
      output `W' = A·W`, `b' = A·b + c`.
    - RepAdapter: `identity` with a grouped `up`, on the input of the
      following layer (qkv, fc1); it merges as above with `up` expanded
      block-diagonally.

    ```mlir
    %y = peft.bottleneck "default" %x, %down, %up down_bias %b1 up_bias %b2
           {activation = "gelu", groups = 1 : i64, scale = 1.0 : f32}
           : (tensor<?x17x32xf32>, tensor<8x32xf32>, tensor<32x8xf32>, tensor<8xf32>,
              tensor<32xf32>) -> tensor<?x17x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$adapter, AnyRankedTensor:$input, AnyRankedTensor:$down,
                       AnyRankedTensor:$up, Optional<AnyRankedTensor>:$down_bias,
                       Optional<AnyRankedTensor>:$up_bias, F32Attr:$scale,
                       StrAttr:$activation, I64Attr:$groups, UnitAttr:$before_layer);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapter $input `,` $down `,` $up (`down_bias` $down_bias^)? (`up_bias` $up_bias^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    int64_t getHiddenSize() { return getDown().getType().getDimSize(0); }
    /// Whether the adapter is affine (no activation), so that it merges.
    bool isLinear() { return getActivation() == "identity"; }
  }];
  let hasVerifier = 1;
}

def Peft_HeadShiftOp : Peft_Op<"head_shift", [Pure, AllTypesMatch<["input", "result"]>,
    DeclareOpInterfaceMethods<Peft_AdapterOp, ["mapsValue"]>]> {
  let summary = "ZeroI2V's STDHA: a temporal shift of attention heads across frames";
  let description = [{
    The zero-parameter spatio-temporal head shift of ZeroI2V (STDHA) on the
    keys or values of an attention, as peft-mlir's own format defines it
    (docs/adapters.md). `input` is a key or value projection's output
    `[B·frames, ..., heads·d]`: its first dimension runs over the frames of
    each clip, its last over the heads' channels. Heads `[0, fold)` take
    their values from the previous frame (`t − 1`), heads `[fold, 2·fold)`
    from the next (`t + 1`); the first and last frames keep their own, and
    the other heads are unchanged:

    `result[b·T + t, ..., h·d + j] = input[b·T + t', ..., h·d + j]`

    A static row count must be whole clips. A dynamic one that is not (a
    trailing clip cut short) is read as a last clip of fewer frames: no row
    past the last is read.

    It has no weights and mixes frames, so nothing merges it; it lowers to an
    index remapping of the input (a gather), no arithmetic. On the output of a
    linear layer that nothing else reads, the gather reads the layer's GEMM
    rows and adds its bias, in place of the layer's bias pass: no copy.

    ```mlir
    %k2 = peft.head_shift "default" %k {fold = 1 : i64, frames = 4 : i64, heads = 4 : i64}
            : (tensor<?x17x32xf32>) -> tensor<?x17x32xf32>
    ```
  }];
  let arguments = (ins StrAttr:$adapter, AnyRankedTensor:$input, I64Attr:$frames,
                       I64Attr:$heads, I64Attr:$fold);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $adapter $input attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // PEFT_OPS_TD
