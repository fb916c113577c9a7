#ifndef PEFT_PASSES_TD
#define PEFT_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttachAdapters : Pass<"peft-attach-adapters", "mlir::ModuleOp"> {
  let summary = "Attach Hugging Face PEFT adapters to the layers they target";
  let description = [{
    Reads each adapter directory (adapter_config.json and
    adapter_model.safetensors), finds the layer whose module path the
    adapter names, and inserts a `peft.lora` on its output (LoRA on a
    `peft.linear`, a `peft.conv` with the layer's strides and pads, or a
    `peft.embedding`), a `peft.dora` (DoRA, `use_dora`), a `peft.add_delta`
    of the weight delta built from LoHa's or LoKr's factors
    (`peft.factor_product`, `peft.cp_product` for a convolution's factors in
    the CP form, `peft.loha_delta`, `peft.lokr_delta`), or a
    `peft.ia3` on its output or, for a feed-forward module, on its input
    (IA3). peft-mlir's own formats (docs/adapters.md) attach a `peft.ssf`
    after a linear layer, a convolution or a `peft.layer_norm` (SSF), and a
    `peft.bottleneck` after a linear layer or on its input alone
    (`LINEAR_ADAPTER`, `REPADAPTER`, `BOTTLENECK`), and a `peft.head_shift`
    after each key or value projection an `STDHA` config targets. Whole
    parameters the adapter saves (`modules_to_save`; biases with `bias` =
    "all" / "lora_only") replace the model's, keeping the model's names for
    them; a linear weight the model stores `[in, out]` gets PyTorch's
    `[out, in]` tensor transposed (unless `fan_in_fan_out`). The adapter's tensors become `peft.weight` ops that reference the
    safetensors file, so nothing is copied. Adapters attached to the same layer chain: their outputs
    add, as in PEFT. `DIR:WEIGHT` weighs an adapter's delta (its scale is
    multiplied by WEIGHT), so several adapters combine as the exact weighted
    sum `Σ w_i·s_i·B_i·A_i` (PEFT's "linear" combination without its
    cross terms).

    Errors name the tensor and the module: a module the model lacks, A/B
    shapes that disagree with the layer, tensors for another kind of layer,
    a grouped or dilated convolution, or a convolution whose exported weight
    is not the module's own (BatchNorm folded in by the exporter).
  }];
  let options = [
    ListOption<"adapters", "adapters", "std::string",
               "Adapter directories, each DIR[=NAME][:WEIGHT]">,
  ];
  let dependentDialects = ["peft::PeftDialect"];
}

def MergeAdapters : Pass<"peft-merge-adapters", "mlir::ModuleOp"> {
  let summary = "Fold adapters into their base layer's weights at compile time";
  let description = [{
    Replaces each chain `peft.lora(... peft.lora(layer(x, W, b)))` by the
    layer alone with `W' = W + Σ scale·B·A` (a linear layer, a convolution
    read as `[O, C·kernel]`, an embedding table given `(B·A)ᵀ`); a
    `peft.dora` in the chain then rescales each output's row,
    `W' = (m / ‖W'‖_row) ⊙ W'`, leaving the bias; a `peft.add_delta` adds
    its delta, evaluated from the LoHa or LoKr factors; and folds IA3
    scales (`W[o, :] *= l[o]`, `b *= l` after a layer; `W[:, i] *= l[i]` on
    its input), SSF (`W' = diag(γ)·W`, `b' = γ⊙b + β`; into a layer norm's
    `γ` and `β`) and linear adapters (with `A = I + s·up·down` and
    `c = s·(up·b₁ + b₂)`: `W' = A·W`, `b' = A·b + c` after a layer,
    `W' = W·A`, `b' = W·c + b` on its input), computed in
    fp32, one layer per thread; an f16 or bf16 base weight (under adapters of
    any float type) is widened, merged and rounded back once to its type
    (nearest, ties to even). The merged weight is held as a `dense` value
    when small and as a `dense_resource` blob otherwise. An adapter that cannot
    be merged stays, and the pass says why in a remark and in a
    `peft.not_merged` attribute on the op (which `peftc --summary` prints).
  }];
  let dependentDialects = ["peft::PeftDialect"];
}

def BatchAdapters : Pass<"peft-batch-adapters", "mlir::ModuleOp"> {
  let summary = "Put the LoRA, DoRA and IA3 adapters on each linear layer into slots each row of a batch picks from";
  let description = [{
    `--mode multi`: one artifact serves many adapters at once. The entry
    function gets one more argument, `adapter_index` (`[batch]`, i64): row i
    of the batch uses the adapter in slot `adapter_index[i]`, -1 none. The
    adapters named by `adapters` fill slots 0, 1, ... in that order; the
    artifact has `slots` of them (at least as many as named), each of rank
    capacity `max-rank` (0: the largest rank attached).

    The chain of `peft.lora` ops on each linear layer becomes one
    `peft.multi_lora` whose factors are the slots' stacked, zero-padded to
    the capacity (a slot whose adapter does not adapt the layer is zeros),
    with each slot's scale and, when one has it, `lora_bias`. A `peft.dora`
    fills its slot the same way, and its `m / ‖W + s·B·A‖` per output goes
    into the op's `dora_scales` (ones in other slots), computed here from
    the constant weights. The layer's `peft.ia3` ops become a `peft.multi_ia3` on its output, and those on its
    own input (feed-forward modules) one there, their vectors stacked (ones
    where a slot scales nothing).

    `modules` gives slots to linear layers no named adapter adapts, for
    adapters loaded at run time (PEFT's `target_modules` rule: a module's
    path, or its last dotted components); with it, `adapters` may be empty
    when `slots` and `max-rank` size the slots.

    A slotted layer holds what its compiled-in adapters need; `methods`
    adds, on every slotted layer, the tables adapters loaded at run time may
    need beyond LoRA's factors: `lora_bias` (zeros), `dora` (`dora_scales`
    of ones, with the layer's bias) and `ia3` (`peft.multi_ia3` of ones on
    the layer's output and on its input: PEFT's feed-forward modules scale
    the input).

    Refused, naming the adapter and module: a method `methods` does not
    know, an adapter not among `adapters`,
    another method than LoRA, DoRA and IA3 (LoHa, LoKr, SSF, ...), an adapter on a
    convolution, an embedding or anything but a linear layer, a rank above
    `max-rank`, more adapters than slots; a layer `modules` names that is
    not linear, and `modules` naming none.
  }];
  let options = [
    ListOption<"adapters", "adapters", "std::string",
               "The adapters filling slots 0, 1, ..., in order">,
    ListOption<"modules", "modules", "std::string",
               "Linear layers to give slots even where no named adapter adapts them">,
    Option<"slots", "slots", "int64_t", "0",
           "Adapter slots (0: as many as adapters are named)">,
    Option<"maxRank", "max-rank", "int64_t", "0",
           "Rank capacity of each slot (0: the largest rank attached)">,
    ListOption<"methods", "methods", "std::string",
               "Tables on every slotted layer for adapters loaded at run time: "
               "lora_bias, dora, ia3">,
  ];
  let dependentDialects = ["peft::PeftDialect", "mlir::func::FuncDialect"];
}

def CombineAdapters : Pass<"peft-combine-adapters", "mlir::ModuleOp"> {
  let summary = "Combine the LoRA adapters stacked on each layer into one";
  let description = [{
    Replaces each chain of two or more `peft.lora` ops on one layer by a
    single `peft.lora` named `name` whose delta is their sum
    `ΔW = Σᵢ sᵢ·Bᵢ·Aᵢ` (each scale already holds its adapter's weight from
    `DIR:WEIGHT`):

    - `cat` is exact: `A = [s₁·A₁; s₂·A₂; ...]` (rows stacked),
      `B = [B₁, B₂, ...]` (columns side by side), scale 1, rank `Σᵢ rᵢ`;
      LoRA biases add up.
    - `svd` truncates `ΔW` to rank `rank` (at most `Σᵢ rᵢ`): with
      `ΔW = U·Σ·Vᵀ`, `B = U_k·Σ_k` and `A = V_kᵀ`. It works on the thin
      factors (QR of the stacked `B` and `Aᵀ`, then a Jacobi SVD of the small
      `Σr × Σr` core), never forming `ΔW`, and reports in a remark per layer the
      energy it discarded, `Σ_{j>k} σⱼ² / Σⱼ σⱼ²`.

    Convolution and embedding LoRAs combine the same way on their matrix
    views. Chains holding other adapters (DoRA, LoHa, LoKr, IA3) are left
    alone with a remark.
  }];
  let options = [
    Option<"method", "method", "std::string", "\"cat\"", "cat or svd">,
    Option<"rank", "rank", "int64_t", "0", "The rank svd keeps">,
    Option<"name", "name", "std::string", "\"combined\"", "The combined adapter's name">,
  ];
  let dependentDialects = ["peft::PeftDialect"];
}

def InsertAdapters : Pass<"peft-insert-adapters", "mlir::ModuleOp"> {
  let summary = "Attach freshly initialized adapters, for training elsewhere";
  let description = [{
    Reads each config (an `adapter_config.json`: Hugging Face PEFT's `LORA` or
    `IA3`, or our `SSF`), and attaches a fresh adapter to every layer it
    targets, initialized as PEFT initializes one: LoRA's `A` from
    `kaiming_uniform(a = √5)`, i.e. uniform in `±1/√fan_in` (`fan_in` the
    layer's inputs, a convolution's `C·kh·kw`), and `B` zeros (on an
    embedding, `A` zeros and `B` standard normal); IA3's vectors ones; SSF's
    scale ones and shift zeros. The adapter computes the base model's
    function until it is trained. Its tensors get the names PEFT saves them
    under (`base_model.model.<module>.lora_A.weight`, ...), so that an ONNX
    export (`peftc --insert ... --emit onnx`) carries them as named
    initializers and `peft-translate --extract-adapters` writes them back as
    an adapter directory. Random values come from a generator seeded with
    `seed` and the module path, so a compile is reproducible.

    Refused with the config file named: other methods, DoRA and `lora_bias`,
    a config that targets no layer of the model.
  }];
  let options = [
    ListOption<"configs", "configs", "std::string",
               "Adapter configs to insert, each FILE[=NAME]">,
    Option<"seed", "seed", "uint64_t", "0", "Seed of the random initialization">,
  ];
  let dependentDialects = ["peft::PeftDialect"];
}

#endif // PEFT_PASSES_TD
