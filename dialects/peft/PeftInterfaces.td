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

#endif // PEFT_INTERFACES_TD
