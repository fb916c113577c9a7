#ifndef PEFT_INTERFACES_TD
#define PEFT_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Peft_AdaptableLayer : OpInterface<"AdaptableLayer"> {
  let cppNamespace = "::peft";
  let description = [{
    A base layer of the source model that adapters can attach to. It knows the
    dotted module path it came from (`encoder.layer.0.attention.self.query`),
    which is how adapter files name their targets.
  }];
  let methods = [
    InterfaceMethod<"The dotted module path of the source model's layer.",
                    "::llvm::StringRef", "getModulePath">,
    InterfaceMethod<"The layer's input value.", "::mlir::Value", "getInput">,
  ];
}

#endif // PEFT_INTERFACES_TD
