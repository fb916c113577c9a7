// A linear layer, for the consumer's opt tool to attach an adapter to and merge.
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x3xf32> {
  %w = peft.weight "enc.fc.weight" = dense<1.0> : tensor<3x4xf32>
  %y = peft.linear "enc.fc" %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}
