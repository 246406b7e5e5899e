// The operators of efficientvit_mm's CPU kernels, torch.ops.efficientvit_mm.*
// (their CPU implementations are registered beside each kernel).
#include <torch/library.h>

TORCH_LIBRARY(efficientvit_mm, m) {
  // relu?(depthwise_conv(x, weight (K, K, C)) + bias + residual?), NHWC
  m.def(
      "depthwise_conv2d(Tensor x, Tensor weight, Tensor bias, int stride, "
      "int padding, Tensor? residual, bool relu) -> Tensor");
  // softmax(scale * q k^T + bias) v per window: (B, L, D) x2, (B, L, E),
  // bias (L, L) -> (B, L, E)
  m.def(
      "window_attention(Tensor q, Tensor k, Tensor v, Tensor bias, "
      "float scale) -> Tensor");
}
