// Direct 3x3 convolution on the CPU: see conv2d_direct.h for the math, layouts and register blocking.
#include "kernels/conv2d_direct.h"

#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define FN_DIRECT3X3 1
#endif

namespace fn::kernels {
namespace {
constexpr int kBlockK = 4, kBlockQ = 16;
int64_t padded_row(const ConvGeom& g) { return (g.W + kBlockQ - 1) / kBlockQ * kBlockQ + 8; }
}  // namespace

bool conv3x3_direct_supported(const ConvGeom& g) {
#ifdef FN_DIRECT3X3
  return g.R == 3 && g.S == 3 && g.stride == 1 && g.pad == 1 && g.K % kBlockK == 0;
#else
  (void)g;
  return false;
#endif
}

bool conv3x3_direct_preferred(const ConvGeom& g) { return conv3x3_direct_supported(g) && g.C * g.K <= 512; }

void conv3x3_direct_pack_filters(const float* w, const ConvGeom& g, float* wt) {
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t i = 0; i < 9; ++i) wt[(c * 9 + i) * g.K + k] = w[(k * g.C + c) * 9 + i];
}

int64_t conv3x3_direct_scratch_floats(const ConvGeom& g) { return g.C * (g.H + 2) * padded_row(g); }

void conv3x3_direct_image(const float* xn, const float* wt, const float* b, float* yn, const ConvGeom& g, bool relu,
                          float* scratch) {
#ifdef FN_DIRECT3X3
  const int64_t Wp = padded_row(g), plane = (g.H + 2) * Wp;
  // The zero-bordered copy: x[c, h, w] lands at scratch[c, h + 1, w + 1].
  for (int64_t c = 0; c < g.C; ++c) {
    float* pc = scratch + c * plane;
    std::memset(pc, 0, sizeof(float) * size_t(Wp));
    std::memset(pc + (g.H + 1) * Wp, 0, sizeof(float) * size_t(Wp));
    for (int64_t h = 0; h < g.H; ++h) {
      float* row = pc + (h + 1) * Wp;
      row[0] = 0.f;
      std::memcpy(row + 1, xn + (c * g.H + h) * g.W, sizeof(float) * size_t(g.W));
      std::memset(row + 1 + g.W, 0, sizeof(float) * size_t(Wp - 1 - g.W));
    }
  }
  alignas(32) float acc[kBlockK][kBlockQ];
  for (int64_t k0 = 0; k0 < g.K; k0 += kBlockK)
    for (int64_t p = 0; p < g.H; ++p)
      for (int64_t q0 = 0; q0 < g.W; q0 += kBlockQ) {
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
               a31 = a00;
        const float* wk = wt + k0;
        for (int64_t c = 0; c < g.C; ++c) {
          const float* base = scratch + c * plane + p * Wp + q0;  // tap (r, s) of column q0 + j: base[r*Wp + s + j]
          for (int r = 0; r < 3; ++r) {
            const float* row = base + r * Wp;
            for (int s = 0; s < 3; ++s, wk += g.K) {
              const __m256 x0 = _mm256_loadu_ps(row + s), x1 = _mm256_loadu_ps(row + s + 8);
              const __m256 w0 = _mm256_broadcast_ss(wk), w1 = _mm256_broadcast_ss(wk + 1);
              a00 = _mm256_fmadd_ps(w0, x0, a00);
              a01 = _mm256_fmadd_ps(w0, x1, a01);
              a10 = _mm256_fmadd_ps(w1, x0, a10);
              a11 = _mm256_fmadd_ps(w1, x1, a11);
              const __m256 w2 = _mm256_broadcast_ss(wk + 2), w3 = _mm256_broadcast_ss(wk + 3);
              a20 = _mm256_fmadd_ps(w2, x0, a20);
              a21 = _mm256_fmadd_ps(w2, x1, a21);
              a30 = _mm256_fmadd_ps(w3, x0, a30);
              a31 = _mm256_fmadd_ps(w3, x1, a31);
            }
          }
        }
        _mm256_store_ps(acc[0], a00);
        _mm256_store_ps(acc[0] + 8, a01);
        _mm256_store_ps(acc[1], a10);
        _mm256_store_ps(acc[1] + 8, a11);
        _mm256_store_ps(acc[2], a20);
        _mm256_store_ps(acc[2] + 8, a21);
        _mm256_store_ps(acc[3], a30);
        _mm256_store_ps(acc[3] + 8, a31);
        // Bias and ReLU on the way out; the last block of a row keeps only its W - q0 real columns.
        const int64_t n = g.W - q0 < kBlockQ ? g.W - q0 : kBlockQ;
        for (int j = 0; j < kBlockK; ++j) {
          float* out = yn + ((k0 + j) * g.H + p) * g.W + q0;
          const float bk = b ? b[k0 + j] : 0.f;
          for (int64_t i = 0; i < n; ++i) {
            const float v = acc[j][i] + bk;
            out[i] = relu ? (v > 0.f ? v : 0.f) : v;
          }
        }
      }
#else
  (void)xn, (void)wt, (void)b, (void)yn, (void)g, (void)relu, (void)scratch;
  FN_FAIL("conv3x3_direct_image: this build has no AVX2/FMA");
#endif
}

}  // namespace fn::kernels
