#ifndef PEFT_DIALECT_TD
#define PEFT_DIALECT_TD

include "mlir/IR/OpBase.td"

def Peft_Dialect : Dialect {
  let name = "peft";
  let cppNamespace = "::peft";
  let summary = "Base layers and the parameter-efficient adapters attached to them";
  let description = [{
    The `peft` dialect models a network as the upstream tensor dialects see it
    (linalg, tensor, arith, math) plus the layers that parameter-efficient
    fine-tuning methods attach to (`peft.linear`, ...) and the adapters
    themselves (`peft.lora`, ...). An adapter consumes the input and the output
    of its base layer, so it can be merged into the base weights at compile
    time, fused into the base GEMM, or lowered on its own.

    Weights live outside the IR: `peft.weight` names a tensor in a safetensors
    or ONNX file that is memory-mapped when the weight is needed, so the IR of
    a large model stays a few kilobytes per layer.
  }];
  let extraClassDeclaration = [{
    /// The files behind this context's `peft.weight` ops, mapped on demand.
    ::peft::WeightStore &getWeightStore() { return *weightStore; }

  private:
    std::unique_ptr<::peft::WeightStore> weightStore;
  }];
}

class Peft_Op<string mnemonic, list<Trait> traits = []>
    : Op<Peft_Dialect, mnemonic, traits>;

#endif // PEFT_DIALECT_TD
