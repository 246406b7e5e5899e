// Depthwise 2-d convolution over maps whose channels are innermost
// (channels_last, or channel slices of such maps), fp32, CPU:
//
//   y = relu?(depthwise_conv(x, weight) + bias + residual?)
//
// written channels_last: torch.ops.efficientvit_mm.depthwise_conv2d (declared
// in ops.cpp; built and loaded by efficientvit_mm/deploy/native.py).
//
// EfficientViT runs some forty small depthwise convs per forward. A oneDNN call
// costs 20-40 us whatever the map, a large share of these convs' time; this
// kernel costs a few microseconds to enter. Each call computes blocks of
// OB output pixels x 16 channels in registers: the K x (S*(OB-1)+K) input
// vectors a block reads are loaded once per kernel row and reused by every
// output of the block they touch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "vec.h"

namespace efficientvit_mm {
namespace {

struct Problem {
  const float* weight;  // (K, K, C)
  const float* bias;    // (C)
  int64_t channels, height, width, out_height, out_width;
  int64_t x_row, x_col;  // strides of x within an image (channel stride 1)
  int64_t r_row, r_col;  // same for the residual
  int64_t padding;
  bool relu;
};

// Output row `oh`, columns [ow0, ow0 + OB), channels [c, c + 16) of one image.
template <int K, int S, int OB>
__attribute__((always_inline)) inline void output_block(
    const Problem& p, const float* x, const float* r, float* y, int64_t oh,
    int64_t ow0, int64_t c) {
  constexpr int kInputs = S * (OB - 1) + K;  // input columns the block reads
  const Vec zero = {};
  Vec acc[OB];
  const Vec bias = load(p.bias + c);
  for (int j = 0; j < OB; ++j) acc[j] = bias;
  for (int kh = 0; kh < K; ++kh) {
    const int64_t ih = oh * S - p.padding + kh;
    if (ih < 0 || ih >= p.height) continue;  // zero padding
    const float* row = x + ih * p.x_row + c;
    Vec in[kInputs];
    for (int t = 0; t < kInputs; ++t) {
      const int64_t iw = ow0 * S - p.padding + t;
      in[t] = (iw >= 0 && iw < p.width) ? load(row + iw * p.x_col) : zero;
    }
    const float* w = p.weight + kh * K * p.channels + c;
    for (int kw = 0; kw < K; ++kw) {
      const Vec wv = load(w + kw * p.channels);
      for (int j = 0; j < OB; ++j) acc[j] += in[S * j + kw] * wv;
    }
  }
  const int64_t valid = std::min<int64_t>(OB, p.out_width - ow0);
  for (int j = 0; j < valid; ++j) {
    Vec v = acc[j];
    if (r) v += load(r + oh * p.r_row + (ow0 + j) * p.r_col + c);
    if (p.relu) v = v > zero ? v : zero;
    store(y + (oh * p.out_width + ow0 + j) * p.channels + c, v);
  }
}

template <int K, int S, int OB>
__attribute__((always_inline)) inline void output_rows(
    const Problem& p, const float* x, const float* r, float* y, int64_t oh0,
    int64_t oh1) {
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t ow0 = 0; ow0 < p.out_width; ow0 += OB)
      for (int64_t c = 0; c < p.channels; c += kLanes)
        output_block<K, S, OB>(p, x, r, y, oh, ow0, c);
}

template <int K, int S>
__attribute__((always_inline)) inline void output_rows_for_width(
    const Problem& p, const float* x, const float* r, float* y, int64_t oh0,
    int64_t oh1) {
  if (p.out_width <= 4)  // the last stage's 4x4 maps: no idle outputs
    output_rows<K, S, 4>(p, x, r, y, oh0, oh1);
  else
    output_rows<K, S, 8>(p, x, r, y, oh0, oh1);
}

// Rows [oh0, oh1) of one image.
void image_rows(const Problem& p, int kernel, int stride, const float* x,
                const float* r, float* y, int64_t oh0, int64_t oh1) {
  switch (kernel * 10 + stride) {
    case 31: output_rows_for_width<3, 1>(p, x, r, y, oh0, oh1); break;
    case 32: output_rows_for_width<3, 2>(p, x, r, y, oh0, oh1); break;
    case 51: output_rows_for_width<5, 1>(p, x, r, y, oh0, oh1); break;
    case 52: output_rows_for_width<5, 2>(p, x, r, y, oh0, oh1); break;
    case 71: output_rows_for_width<7, 1>(p, x, r, y, oh0, oh1); break;
    case 72: output_rows_for_width<7, 2>(p, x, r, y, oh0, oh1); break;
  }
}

bool channels_innermost(const at::Tensor& t) { return t.stride(1) == 1; }

at::Tensor depthwise_conv2d(const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, int64_t stride,
                            int64_t padding,
                            const c10::optional<at::Tensor>& residual,
                            bool relu) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat &&
                  x.dim() == 4,
              "depthwise_conv2d: x must be a 4-d fp32 CPU tensor, got ",
              x.sizes(), " ", x.scalar_type(), " on ", x.device());
  const int64_t n = x.size(0), channels = x.size(1);
  TORCH_CHECK(channels_innermost(x) || x.numel() == 0,
              "depthwise_conv2d: x must have its channels innermost "
              "(channels_last), got strides ", x.strides());
  TORCH_CHECK(channels % kLanes == 0, "depthwise_conv2d: channels must be a "
              "multiple of 16, got ", channels);
  TORCH_CHECK(weight.dim() == 3 && weight.size(0) == weight.size(1) &&
                  weight.size(2) == channels && weight.is_contiguous() &&
                  weight.scalar_type() == at::kFloat,
              "depthwise_conv2d: weight must be a contiguous fp32 (K, K, C) "
              "tensor with C = ", channels, ", got ", weight.sizes());
  const int64_t kernel = weight.size(0);
  TORCH_CHECK((kernel == 3 || kernel == 5 || kernel == 7) &&
                  (stride == 1 || stride == 2),
              "depthwise_conv2d: supports kernels 3, 5, 7 and strides 1, 2; "
              "got kernel ", kernel, ", stride ", stride);
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == channels &&
                  bias.is_contiguous() && bias.scalar_type() == at::kFloat,
              "depthwise_conv2d: bias must be a contiguous fp32 (C) tensor");
  TORCH_CHECK(padding >= 0 && padding < kernel,
              "depthwise_conv2d: padding must be in [0, K), got ", padding);
  Problem p;
  p.channels = channels;
  p.height = x.size(2);
  p.width = x.size(3);
  p.out_height = (p.height + 2 * padding - kernel) / stride + 1;
  p.out_width = (p.width + 2 * padding - kernel) / stride + 1;
  TORCH_CHECK(p.out_height > 0 && p.out_width > 0,
              "depthwise_conv2d: map ", p.height, "x", p.width,
              " is smaller than the kernel");
  at::Tensor y = at::empty({n, channels, p.out_height, p.out_width},
                           x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* r = nullptr;
  int64_t r_image = 0;
  p.r_row = p.r_col = 0;
  if (residual.has_value()) {
    const at::Tensor& res = *residual;
    TORCH_CHECK(res.sizes() == y.sizes() && res.scalar_type() == at::kFloat &&
                    res.device().is_cpu() && channels_innermost(res),
                "depthwise_conv2d: residual must be an fp32 CPU tensor of the "
                "output's shape ", y.sizes(), " with channels innermost, got ",
                res.sizes(), " with strides ", res.strides());
    r = res.data_ptr<float>();
    r_image = res.stride(0);
    p.r_row = res.stride(2);
    p.r_col = res.stride(3);
  }
  if (y.numel() == 0) return y;
  p.weight = weight.data_ptr<float>();
  p.bias = bias.data_ptr<float>();
  p.x_row = x.stride(2);
  p.x_col = x.stride(3);
  p.padding = padding;
  p.relu = relu;
  const float* xd = x.data_ptr<float>();
  float* yd = y.data_ptr<float>();
  const int64_t x_image = x.stride(0);
  const int64_t y_image = p.out_height * p.out_width * channels;
  const int64_t rows = n * p.out_height;
  // (image, output row) pairs shared out among threads
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t image = i / p.out_height, oh0 = i % p.out_height;
      const int64_t oh1 = std::min(p.out_height, oh0 + (end - i));
      image_rows(p, static_cast<int>(kernel), static_cast<int>(stride),
                 xd + image * x_image, r ? r + image * r_image : nullptr,
                 yd + image * y_image, oh0, oh1);
      i += oh1 - oh0;
    }
  });
  return y;
}

}  // namespace
}  // namespace efficientvit_mm

TORCH_LIBRARY_IMPL(efficientvit_mm, CPU, m) {
  m.impl("depthwise_conv2d", TORCH_FN(efficientvit_mm::depthwise_conv2d));
}
