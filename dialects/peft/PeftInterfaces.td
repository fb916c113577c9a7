#ifndef PEFT_INTERFACES_TD
#define PEFT_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Peft_AdaptableLayer : OpInterface<"AdaptableLayer"> {
  let cppNamespace = "::peft";
  let description = [{
    A base layer of the source model that adapters can attach to. It knows the
    dotted module path it came from (`encoder.layer.0.attention.self.query`),
    which is how adapter files name their targets.

    Its weight reads as a matrix `[out, in]`, or `[in, out]` when
    `getWeightInOut()`, where `in` spans every dimension but the output one
    (a convolution's `[O, C, kh, kw]` is `[O, C·kh·kw]`): the layout in which
    an adapter's delta is added to it.
  }];
  let methods = [
    InterfaceMethod<"The dotted module path of the source model's layer.",
                    "::llvm::StringRef", "getModulePath">,
    InterfaceMethod<"The layer's input value.", "::mlir::Value", "getInput">,
    InterfaceMethod<"The layer's weight.",
                    "::mlir::TypedValue<::mlir::RankedTensorType>", "getWeight">,
    InterfaceMethod<"The operand holding the weight.", "::mlir::OpOperand &",
                    "getWeightMutable">,
    InterfaceMethod<"The layer's bias; null when it has none.", "::mlir::Value", "getBias">,
    InterfaceMethod<"The weight's output size as a matrix.", "int64_t", "getOutFeatures">,
    InterfaceMethod<"The weight's input size as a matrix.", "int64_t", "getInFeatures">,
    InterfaceMethod<"Whether the weight is stored [in, out].", "bool", "getWeightInOut">,
  ];
}

def Peft_AdapterOp : OpInterface<"AdapterOp"> {
  let cppNamespace = "::peft";
  let description = [{
    An adapter attached to a model: what merging removes, with no ONNX op of
    its own. It is made of one adapter's tensors (`adapter` names it) and
    either adds an update to a base layer's output from the layer's input
    (LoRA, DoRA, LoHa, LoKr) or maps a value (IA3, SSF, bottlenecks, a head
    shift). Passes and tools (`--summary`, the manifest, peft-run's checks)
    learn what an adapter is through this interface, not from lists of op
    classes.
  }];
  let methods = [
    InterfaceMethod<"The name of the adapter its tensors came from.", "::llvm::StringRef",
                    "getAdapterName", (ins), [{}], [{ return $_op.getAdapter(); }]>,
    InterfaceMethod<"The method as Hugging Face PEFT names it: LoRA, DoRA, LoHa, LoKr, IA3, "
                    "SSF, bottleneck, linear (a bottleneck without activation), STDHA.",
                    "::llvm::StringRef", "getMethod">,
    InterfaceMethod<"Its rank (a bottleneck's hidden size); 0 for a method without one.",
                    "int64_t", "getAdapterRank", (ins), [{}], [{ return 0; }]>,
    InterfaceMethod<"The factor its update is scaled by (lora_alpha / r, ...); 1 without one.",
                    "double", "getAdapterScale", (ins), [{}], [{ return 1.0; }]>,
    InterfaceMethod<"Whether it maps a value rather than adding to a layer's output from the "
                    "layer's input.",
                    "bool", "mapsValue", (ins), [{}], [{ return false; }]>,
    InterfaceMethod<"The value it adapts: the layer's output it adds to (operand 1, after the "
                    "layer's input), or the value it maps (operand 0).",
                    "::mlir::Value", "getAdapted", (ins), [{}],
                    [{ return $_op->getOperand($_op.mapsValue() ? 0 : 1); }]>,
    InterfaceMethod<"The operands holding its own tensors, or what they are computed from: "
                    "those after the adapted value (and the layer's input).",
                    "::llvm::MutableArrayRef<::mlir::OpOperand>", "getOwnOperands", (ins), [{}],
                    [{ return $_op->getOpOperands().drop_front($_op.mapsValue() ? 1 : 2); }]>,
  ];
}

#endif // PEFT_INTERFACES_TD
