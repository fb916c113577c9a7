//===- WindowOps.h - Window ops the CPU kernels take -------------*- C++ -*-===//
#ifndef PEFT_LOWERING_CPU_WINDOWOPS_H
#define PEFT_LOWERING_CPU_WINDOWOPS_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"

#include <optional>

namespace peft {

/// A convolution read through a window (convolveAsWindowGemm in
/// PeftToLinalg.cpp): loops n, o, p (parallel), c, k... (reduction),
///   out[n, o, p] += in[n, c, p + Σ_d k_d·step_d] · w[o, c, k...]
/// on tensors or memrefs; everything but n static.
struct WindowGemm {
  int64_t channels;    ///< C: the reduction over input channels.
  int64_t outChannels; ///< O: the rows of the output.
  int64_t positions;   ///< P: the positions the window takes.
  int64_t length;      ///< L: each input channel's flattened length.
  /// The kernel's sizes, k...
  llvm::SmallVector<int64_t> kernel;
  /// Per tap of the kernel (row-major over k...), its offset into the window.
  llvm::SmallVector<int64_t> offsets;
};
std::optional<WindowGemm> matchWindowGemm(mlir::linalg::GenericOp op);

/// A pooling window's reduction (the ONNX importer's MaxPool and
/// AveragePool): loops n, c, y... (parallel), k... (reduction),
///   out[n, c, y...] = out max in, or out + in, for
///   in[n, c, y_d·stride_d + k_d·dilation_d], in row-major order of k,
/// a second operand shaped like the window (not read), f32, every size but
/// n static and at most `kMaxTaps` taps.
struct WindowReduction {
  static constexpr int64_t kMaxTaps = 64;
  bool isMax;
  int64_t channels;
  llvm::SmallVector<int64_t> strides, dilations, kernel, inSizes, outSizes;
};
std::optional<WindowReduction> matchWindowReduction(mlir::linalg::GenericOp op);

} // namespace peft

#endif // PEFT_LOWERING_CPU_WINDOWOPS_H
