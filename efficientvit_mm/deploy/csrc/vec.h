// 16-float vectors for our CPU kernels, written with GCC/Clang vector
// extensions: one AVX-512 register, two AVX2 registers, or four SSE ones,
// whichever the CPU the kernels are built on has (-march=native, see
// efficientvit_mm/deploy/native.py).
#pragma once

#include <cstdint>
#include <cstring>

// inlined into each kernel (16-float vectors never cross a call)
#define EVIT_INLINE __attribute__((always_inline)) inline

namespace efficientvit_mm {

typedef float Vec __attribute__((vector_size(64)));
typedef int32_t IntVec __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;

EVIT_INLINE Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}

EVIT_INLINE void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(Vec)); }

EVIT_INLINE Vec broadcast(float x) {
  return Vec{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}

EVIT_INLINE Vec vmax(Vec a, Vec b) { return a > b ? a : b; }

// lanes i and i + 8 (then + 4, + 2, + 1) combined: the result in lane 0
#define EVIT_HALVES(v, op)                                                   \
  v = op(v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, \
                                    2, 3, 4, 5, 6, 7));                       \
  v = op(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, \
                                    0, 1, 2, 3));                             \
  v = op(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, \
                                    2, 3, 0, 1));                             \
  v = op(v, __builtin_shufflevector(v, v, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, \
                                    1, 0, 1, 0))

EVIT_INLINE Vec vadd(Vec a, Vec b) { return a + b; }

EVIT_INLINE float hmax(Vec v) {
  EVIT_HALVES(v, vmax);
  return v[0];
}

EVIT_INLINE float hsum(Vec v) {
  EVIT_HALVES(v, vadd);
  return v[0];
}

// exp(x) for x <= 0 (softmax scores minus their maximum), to about 1e-7
// relative: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by its degree-7 Taylor
// polynomial, 2^n written into the exponent bits. x below -87 (and -inf)
// gives 2^-126, which is nothing beside the row's maximum term, 1.
EVIT_INLINE Vec exp_nonpositive(Vec x) {
  x = vmax(x, broadcast(-87.f));
  const Vec t = x * 1.44269504088896341f;  // x / ln2
  const IntVec n = __builtin_convertvector(t - 0.5f, IntVec);  // round(t)
  const Vec nf = __builtin_convertvector(n, Vec);
  const Vec r = (x - nf * 0.693145751953125f) - nf * 1.42860682030941723e-6f;
  Vec p = broadcast(1.f / 5040);
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const IntVec bits = (n + 127) << 23;
  Vec scale;
  std::memcpy(&scale, &bits, sizeof(Vec));
  return p * scale;
}

}  // namespace efficientvit_mm
