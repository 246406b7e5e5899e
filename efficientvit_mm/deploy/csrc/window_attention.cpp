// One attention head over windows of tokens, fp32, CPU:
//
//   out[b, t, :] = sum_u softmax_u(scale * q[b, t, :] . k[b, u, :] + bias[t, u])
//                  * v[b, u, :]
//
// Registered as torch.ops.efficientvit_mm.window_attention (ops.cpp; see
// efficientvit_mm/deploy/native.py). In eager PyTorch a head is a baddbmm, a
// softmax and a bmm, each a call with its own fixed cost and a trip of the
// (L, L) scores through memory; here the scores of a few queries live in a
// small buffer, and the softmax's exp is a vector polynomial.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "vec.h"

namespace efficientvit_mm {
namespace {

constexpr int kRows = 4;  // queries computed together

struct Head {
  int64_t tokens, padded, key_dim, value_dim;
  const float* bias;  // (tokens, padded), -inf past `tokens`
  float scale;
};

// One window: keys transposed into `kt` (key_dim, padded); values, when
// value_dim is not a multiple of 16, copied into `vpad` (tokens, whole
// vectors); the scores of kRows queries into `p` (kRows, padded).
void attend_window(const Head& h, const float* q, int64_t q_row,
                   const float* k, int64_t k_row, const float* v,
                   int64_t v_row, float* out, float* kt, float* vpad,
                   float* p) {
  const int64_t L = h.tokens, Lp = h.padded, D = h.key_dim, E = h.value_dim;
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t u = 0; u < L; ++u) kt[d * Lp + u] = k[u * k_row + d];
    for (int64_t u = L; u < Lp; ++u) kt[d * Lp + u] = 0.f;
  }
  const int64_t Ep = (E + kLanes - 1) / kLanes * kLanes;
  if (Ep != E) {  // values padded with zeros to whole vectors
    for (int64_t u = 0; u < L; ++u) {
      std::copy(v + u * v_row, v + u * v_row + E, vpad + u * Ep);
      std::fill(vpad + u * Ep + E, vpad + (u + 1) * Ep, 0.f);
    }
    v = vpad;
    v_row = Ep;
  }
  for (int64_t t0 = 0; t0 < L; t0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, L - t0);
    // rows past the last query repeat it (computed, never written)
    const float* qr[kRows];
    const float* br[kRows];
    for (int j = 0; j < kRows; ++j) {
      const int64_t t = t0 + std::min<int64_t>(j, rows - 1);
      qr[j] = q + t * q_row;
      br[j] = h.bias + t * Lp;
    }
    // scores: scale * q k^T + bias, and each row's maximum
    Vec row_max[kRows];
    for (int j = 0; j < kRows; ++j)
      row_max[j] = broadcast(-std::numeric_limits<float>::infinity());
    for (int64_t u0 = 0; u0 < Lp; u0 += kLanes) {
      Vec acc[kRows] = {};
      for (int64_t d = 0; d < D; ++d) {
        const Vec kv = load(kt + d * Lp + u0);
        for (int j = 0; j < kRows; ++j) acc[j] += broadcast(qr[j][d]) * kv;
      }
      for (int j = 0; j < kRows; ++j) {
        acc[j] = acc[j] * h.scale + load(br[j] + u0);
        store(p + j * Lp + u0, acc[j]);
        row_max[j] = vmax(row_max[j], acc[j]);
      }
    }
    // softmax numerators in place; the sums divide the outputs
    float inv_sum[kRows];
    for (int j = 0; j < kRows; ++j) {
      const Vec m = broadcast(hmax(row_max[j]));
      Vec sum = {};
      for (int64_t u0 = 0; u0 < Lp; u0 += kLanes) {
        const Vec e = exp_nonpositive(load(p + j * Lp + u0) - m);
        store(p + j * Lp + u0, e);
        sum += e;
      }
      inv_sum[j] = 1.f / hsum(sum);
    }
    // out rows: (p v) / sum, 16 value channels at a time
    for (int64_t e0 = 0; e0 < Ep; e0 += kLanes) {
      Vec acc[kRows] = {};
      for (int64_t u = 0; u < L; ++u) {
        const Vec vu = load(v + u * v_row + e0);
        for (int j = 0; j < kRows; ++j)
          acc[j] += broadcast(p[j * Lp + u]) * vu;
      }
      const int64_t width = std::min<int64_t>(kLanes, E - e0);
      for (int j = 0; j < rows; ++j) {
        const Vec o = acc[j] * inv_sum[j];
        float* dst = out + (t0 + j) * E + e0;
        if (width == kLanes) {
          store(dst, o);
        } else {
          float tail[kLanes];
          store(tail, o);
          std::copy(tail, tail + width, dst);
        }
      }
    }
  }
}

bool rows_of_features(const at::Tensor& t) {
  return t.dim() == 3 && t.scalar_type() == at::kFloat && t.device().is_cpu() &&
         (t.stride(2) == 1 || t.size(2) == 1);
}

at::Tensor window_attention(const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const at::Tensor& bias,
                            double scale) {
  TORCH_CHECK(rows_of_features(q) && rows_of_features(k) &&
                  rows_of_features(v),
              "window_attention: q, k, v must be 3-d fp32 CPU tensors "
              "(windows, tokens, features) with features innermost; got ",
              q.sizes(), q.strides(), ", ", k.sizes(), k.strides(), ", ",
              v.sizes(), v.strides());
  const int64_t B = q.size(0), L = q.size(1), D = q.size(2), E = v.size(2);
  TORCH_CHECK(k.size(0) == B && v.size(0) == B && k.size(1) == L &&
                  v.size(1) == L && k.size(2) == D,
              "window_attention: q ", q.sizes(), ", k ", k.sizes(), " and v ",
              v.sizes(), " disagree on windows, tokens or key channels");
  TORCH_CHECK(bias.dim() == 2 && bias.size(0) == L && bias.size(1) == L &&
                  bias.scalar_type() == at::kFloat,
              "window_attention: bias must be fp32 (tokens, tokens) = (", L,
              ", ", L, "), got ", bias.sizes());
  at::Tensor out = at::empty({B, L, E}, q.options());
  if (out.numel() == 0) return out;
  Head h;
  h.tokens = L;
  h.padded = (L + kLanes - 1) / kLanes * kLanes;
  h.key_dim = D;
  h.value_dim = E;
  h.scale = static_cast<float>(scale);
  // the bias padded to whole vectors; -inf past the last token drops the
  // padding lanes out of the softmax
  std::vector<float> padded_bias(L * h.padded,
                                 -std::numeric_limits<float>::infinity());
  const at::Tensor b = bias.contiguous();
  const float* bd = b.data_ptr<float>();
  for (int64_t t = 0; t < L; ++t)
    std::copy(bd + t * L, bd + (t + 1) * L, padded_bias.begin() + t * h.padded);
  h.bias = padded_bias.data();
  const float *qd = q.data_ptr<float>(), *kd = k.data_ptr<float>(),
              *vd = v.data_ptr<float>();
  float* od = out.data_ptr<float>();
  at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
    const int64_t Ep = (E + kLanes - 1) / kLanes * kLanes;
    std::vector<float> kt(D * h.padded), vpad(E % kLanes ? L * Ep : 0),
        p(kRows * h.padded);
    for (int64_t w = begin; w < end; ++w)
      attend_window(h, qd + w * q.stride(0), q.stride(1), kd + w * k.stride(0),
                    k.stride(1), vd + w * v.stride(0), v.stride(1),
                    od + w * L * E, kt.data(), vpad.data(), p.data());
  });
  return out;
}

}  // namespace
}  // namespace efficientvit_mm

TORCH_LIBRARY_IMPL(efficientvit_mm, CPU, m) {
  m.impl("window_attention", TORCH_FN(efficientvit_mm::window_attention));
}
