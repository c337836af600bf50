// Winograd F(2x2, 3x3) on the CPU: see conv2d_winograd.h for the math, the layouts and the threads.
#include "kernels/conv2d_winograd.h"

#include <algorithm>
#include <cstring>

#include "kernels/conv2d_direct.h"
#include "kernels/gemm.h"

namespace fn::kernels {
namespace {

// Tiles a chunk aims for: the 16 GEMMs get about 256 columns. 128 to 512 measured alike on the 2-core
// build machine; 1024 was slower (V and M leave the cache between the transforms and the GEMMs).
constexpr int64_t kChunkTiles = 256;

// The tile grid of one image. A row of tiles is stored with one spare column (pitch = w + 1), so that
// every transform below is a plain loop over one flat index u = tile_row * pitch + tile_col: the spare
// column holds harmless values that the GEMMs carry along and the output transform never writes out.
struct Tiles {
  int64_t h, w, pitch, per_image;  // tile rows, tile columns, w + 1, h * pitch
  int64_t plane;                   // floats of one phase plane: (h + 1) * pitch, plus 1 for the last shift
};
Tiles tiles_of(const ConvGeom& g) {
  Tiles t;
  t.h = (g.P + 1) / 2;
  t.w = (g.Q + 1) / 2;
  t.pitch = t.w + 1;
  t.per_image = t.h * t.pitch;
  t.plane = (t.h + 1) * t.pitch + 1;
  return t;
}

// first[j] = src[2 j], second[j] = src[2 j + 1] for the n values of src.
template <class T>
void deinterleave(const T* __restrict src, int64_t n, T* __restrict first, T* __restrict second) {
  const int64_t pairs = n / 2;
  for (int64_t j = 0; j < pairs; ++j) {
    first[j] = src[2 * j];
    second[j] = src[2 * j + 1];
  }
  if (n % 2) first[pairs] = src[n - 1];
}
// dst[2 j] = f(even[j]), dst[2 j + 1] = f(odd[j]) for the n values of dst.
template <class T, class F>
void interleave(const T* __restrict even, const T* __restrict odd, int64_t n, T* __restrict dst, F f) {
  const int64_t pairs = n / 2;
  for (int64_t j = 0; j < pairs; ++j) {
    dst[2 * j] = f(even[j]);
    dst[2 * j + 1] = f(odd[j]);
  }
  if (n % 2) dst[n - 1] = f(even[pairs]);
}

}  // namespace

bool conv3x3_winograd_supported(const ConvGeom& g) {
  return g.R == 3 && g.S == 3 && g.stride == 1 && g.pad >= 0 && g.pad <= 2;
}

bool conv3x3_winograd_filter_grad_preferred(const ConvGeom& g) {
  // C, K >= 16: at conv1_1 (3 channels) the GEMMs are too thin and Winograd measured 0.6x.
  if (!conv3x3_winograd_supported(g) || g.C < 16 || g.K < 16) return false;
  // Multiply-adds of the 16 GEMMs (spare column included) against im2col + GEMM's 9 per output: 0.46 at
  // 56x56, 0.51 at 14x14, but 0.73 at 7x7, where partial tiles and the spare column eat the gain.
  const Tiles t = tiles_of(g);
  return 16.0 * double(t.per_image) <= 0.6 * 9.0 * double(g.P * g.Q);
}

bool conv3x3_winograd_preferred(const ConvGeom& g) {
  return conv3x3_winograd_filter_grad_preferred(g) && !conv3x3_direct_preferred(g);
}

int64_t conv3x3_winograd_chunk_images(const ConvGeom& g, int threads) {
  // As many chunks as the tiles ask for, rounded up to a multiple of the threads so that none idles,
  // then spread evenly over the images.
  const int64_t n = std::max<int64_t>(1, g.N), t = std::max(1, threads);
  int64_t chunks = std::max<int64_t>(1, (n * tiles_of(g).per_image + kChunkTiles / 2) / kChunkTiles);
  if (chunks > 1 || n >= t) chunks = (chunks + t - 1) / t * t;
  chunks = std::min(chunks, n);
  return (n + chunks - 1) / chunks;
}

int64_t conv3x3_winograd_scratch(const ConvGeom& g, int64_t images) {
  const Tiles t = tiles_of(g);
  return 16 * (g.C + g.K) * images * t.per_image + 12 * t.plane;
}

template <class T>
void conv3x3_winograd_filters(const T* w, const ConvGeom& g, T* U) {
  // Blocks of 16 input channels go through a small local array, so that the 16 output rows (K * C apart,
  // often a power of two) are written 16 contiguous values at a time rather than one.
  constexpr int64_t kB = 16;
  const T h = T(0.5);
  T blk[16][kB];
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t c0 = 0; c0 < g.C; c0 += kB) {
      const int64_t nc = std::min(kB, g.C - c0);
      for (int64_t c = 0; c < nc; ++c) {
        const T* f = w + (k * g.C + c0 + c) * 9;
        T gf[4][3];  // G f
        for (int s = 0; s < 3; ++s) {
          gf[0][s] = f[s];
          gf[1][s] = h * (f[s] + f[3 + s] + f[6 + s]);
          gf[2][s] = h * (f[s] - f[3 + s] + f[6 + s]);
          gf[3][s] = f[6 + s];
        }
        for (int a = 0; a < 4; ++a) {  // (G f) G^T
          blk[4 * a + 0][c] = gf[a][0];
          blk[4 * a + 1][c] = h * (gf[a][0] + gf[a][1] + gf[a][2]);
          blk[4 * a + 2][c] = h * (gf[a][0] - gf[a][1] + gf[a][2]);
          blk[4 * a + 3][c] = gf[a][2];
        }
      }
      for (int xi = 0; xi < 16; ++xi) std::copy(blk[xi], blk[xi] + nc, U + (xi * g.K + k) * g.C + c0);
    }
}

namespace {

// V (16, C, nt) from `images` images of x, at tile offset 0: V = B^T d B for every tile and channel.
// The four phase planes of one zero-bordered input channel are ph[2 * (row % 2) + (col % 2)][(row / 2) *
// pitch + col / 2] (rows and columns counted from the border, -pad), then the vertical transform e of each
// column parity, e[2 * i + col % 2], i = 0..3. Tile (ti, tj) reads row 2 ti + rho, column 2 tj + sigma:
// phase plane (rho % 2, sigma % 2) at u + (rho / 2) * pitch + sigma / 2, u = ti * pitch + tj, so each
// pass is one flat loop over u. `work` holds 12 planes.
template <class T>
void input_transform(const T* x, int64_t images, const ConvGeom& g, const Tiles& tl, T* V, T* work) {
  const int64_t nt = images * tl.per_image, C = g.C, n_u = tl.per_image, pl = tl.plane;
  T* ph = work;
  T* e = ph + 4 * pl;
  for (int64_t n = 0; n < images; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* plane = x + (n * C + c) * g.H * g.W;
      std::fill(ph, ph + 4 * pl, T(0));
      for (int64_t h = 0; h < g.H; ++h) {
        const int64_t rb = h + g.pad;  // row counted from the border
        if (rb >= 2 * (tl.h + 1)) break;
        T* even = ph + (2 * (rb % 2)) * pl + (rb / 2) * tl.pitch;
        T* odd = even + pl;
        // Column w sits at border column w + pad: even columns to one plane, odd to the other.
        T* first = (g.pad % 2 ? odd : even) + g.pad / 2;
        T* second = (g.pad % 2 ? even : odd) + (g.pad + 1) / 2;
        deinterleave(plane + h * g.W, std::min(g.W, 2 * tl.pitch - g.pad), first, second);
      }
      // Vertical: e_i = (B^T d) row i, for both column parities; over u and the extra row of the shift.
      const int64_t n_e = n_u + 1;
      for (int cp = 0; cp < 2; ++cp) {
        const T* r0 = ph + cp * pl;        // rho = 0
        const T* r1 = ph + (2 + cp) * pl;  // rho = 1
        const T* r2 = r0 + tl.pitch;       // rho = 2
        const T* r3 = r1 + tl.pitch;       // rho = 3
        T* e0 = e + (0 + cp) * pl;
        T* e1 = e + (2 + cp) * pl;
        T* e2 = e + (4 + cp) * pl;
        T* e3 = e + (6 + cp) * pl;
#pragma GCC ivdep
        for (int64_t u = 0; u < n_e; ++u) {
          e0[u] = r0[u] - r2[u];
          e1[u] = r1[u] + r2[u];
          e2[u] = r2[u] - r1[u];
          e3[u] = r1[u] - r3[u];
        }
      }
      // Horizontal: V = (B^T d) B, row i of the 4x4 from e_i's columns sigma = 0..3.
      for (int i = 0; i < 4; ++i) {
        const T* s0 = e + (2 * i) * pl;      // sigma = 0
        const T* s1 = e + (2 * i + 1) * pl;  // sigma = 1
        T* v0 = V + ((4 * i + 0) * C + c) * nt + n * n_u;
        T* v1 = V + ((4 * i + 1) * C + c) * nt + n * n_u;
        T* v2 = V + ((4 * i + 2) * C + c) * nt + n * n_u;
        T* v3 = V + ((4 * i + 3) * C + c) * nt + n * n_u;
#pragma GCC ivdep
        for (int64_t u = 0; u < n_u; ++u) {
          const T a0 = s0[u], a1 = s1[u], a2 = s0[u + 1], a3 = s1[u + 1];
          v0[u] = a0 - a2;
          v1[u] = a1 + a2;
          v2[u] = a2 - a1;
          v3[u] = a1 - a3;
        }
      }
    }
}

// The filter gradient's counterpart of V: Z (16, K, nt) = A gy A^T for every 2x2 tile of gy (zero past
// P or Q, and on the spare column), the gradient of the output transform Y = A^T z A. `work` holds 4
// phase planes of gy: q[2 * (p % 2) + (q % 2)][(p / 2) * pitch + q / 2].
template <class T>
void gradient_transform(const T* gy, int64_t images, const ConvGeom& g, const Tiles& tl, T* Z, T* work) {
  const int64_t nt = images * tl.per_image, K = g.K, n_u = tl.per_image;
  T* q0 = work;
  T* q1 = q0 + n_u;
  T* q2 = q1 + n_u;
  T* q3 = q2 + n_u;
  for (int64_t n = 0; n < images; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const T* plane = gy + (n * K + k) * g.P * g.Q;
      std::fill(q0, q0 + 4 * n_u, T(0));
      for (int64_t p = 0; p < g.P; ++p)
        deinterleave(plane + p * g.Q, g.Q, (p % 2 ? q2 : q0) + (p / 2) * tl.pitch,
                     (p % 2 ? q3 : q1) + (p / 2) * tl.pitch);
      T* z[16];
      for (int xi = 0; xi < 16; ++xi) z[xi] = Z + (xi * K + k) * nt + n * n_u;
#pragma GCC ivdep
      for (int64_t u = 0; u < n_u; ++u) {
        // A gy: rows (q0, q1) and (q2, q3) of the tile become four rows (x_a, y_a); then each row times A^T.
        const T x[4] = {q0[u], q0[u] + q2[u], q0[u] - q2[u], -q2[u]};
        const T y[4] = {q1[u], q1[u] + q3[u], q1[u] - q3[u], -q3[u]};
        for (int a = 0; a < 4; ++a) {
          z[4 * a + 0][u] = x[a];
          z[4 * a + 1][u] = x[a] + y[a];
          z[4 * a + 2][u] = x[a] - y[a];
          z[4 * a + 3][u] = -y[a];
        }
      }
    }
}

}  // namespace

template <class T>
void conv3x3_winograd_images(const T* x, int64_t images, const T* U, const T* b, T* y, const ConvGeom& g, bool relu,
                             T* scratch) {
  const Tiles tl = tiles_of(g);
  const int64_t nt = images * tl.per_image, C = g.C, K = g.K, n_u = tl.per_image;
  T* V = scratch;
  T* M = V + 16 * C * nt;
  T* work = M + 16 * K * nt;
  input_transform(x, images, g, tl, V, work);

  for (int xi = 0; xi < 16; ++xi)
    gemm_cpu(false, false, K, nt, C, T(1), U + xi * K * C, C, V + xi * C * nt, nt, T(0), M + xi * K * nt, nt);

  // Y = A^T m A over u, into four planes (one per output position of the 2x2 tile), then written out
  // interleaved, with the bias and the ReLU.
  T* out = work;  // 4 planes of n_u
  for (int64_t n = 0; n < images; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const T* m[16];
      for (int xi = 0; xi < 16; ++xi) m[xi] = M + (xi * K + k) * nt + n * n_u;
      T* o00 = out;
      T* o01 = out + n_u;
      T* o10 = out + 2 * n_u;
      T* o11 = out + 3 * n_u;
#pragma GCC ivdep  // 16 input streams are too many for the compiler's own overlap checks
      for (int64_t u = 0; u < n_u; ++u) {
        T z0[4], z1[4];  // A^T m
        for (int j = 0; j < 4; ++j) {
          z0[j] = m[j][u] + m[4 + j][u] + m[8 + j][u];
          z1[j] = m[4 + j][u] - m[8 + j][u] - m[12 + j][u];
        }
        o00[u] = z0[0] + z0[1] + z0[2];
        o01[u] = z0[1] - z0[2] - z0[3];
        o10[u] = z1[0] + z1[1] + z1[2];
        o11[u] = z1[1] - z1[2] - z1[3];
      }
      T* yk = y + (n * K + k) * g.P * g.Q;
      const T bk = b ? b[k] : T(0);
      for (int64_t p = 0; p < g.P; ++p) {
        const T* ev = (p % 2 ? o10 : o00) + (p / 2) * tl.pitch;
        const T* od = (p % 2 ? o11 : o01) + (p / 2) * tl.pitch;
        T* dst = yk + p * g.Q;
        if (relu)
          interleave(ev, od, g.Q, dst, [bk](T v) { return v + bk > T(0) ? v + bk : T(0); });
        else
          interleave(ev, od, g.Q, dst, [bk](T v) { return v + bk; });
      }
    }
}

template <class T>
void conv3x3_winograd_filter_grad_images(const T* x, const T* gy, int64_t images, const ConvGeom& g, T* dU,
                                         T* scratch) {
  const Tiles tl = tiles_of(g);
  const int64_t nt = images * tl.per_image, C = g.C, K = g.K;
  T* V = scratch;
  T* Z = V + 16 * C * nt;
  T* work = Z + 16 * K * nt;
  input_transform(x, images, g, tl, V, work);
  gradient_transform(gy, images, g, tl, Z, work);
  for (int xi = 0; xi < 16; ++xi)  // dU[xi] += Z[xi] V[xi]^T: the sum over this chunk's tiles
    gemm_cpu(false, true, K, C, nt, T(1), Z + xi * K * nt, nt, V + xi * C * nt, nt, T(1), dU + xi * K * C, C);
}

template <class T>
void conv3x3_winograd_filter_grad_finish(const T* dU, const ConvGeom& g, T* gw) {
  const T h = T(0.5);
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t c = 0; c < g.C; ++c) {
      T d[16];
      for (int xi = 0; xi < 16; ++xi) d[xi] = dU[(xi * g.K + k) * g.C + c];
      T gd[3][4];  // G^T dU
      for (int b = 0; b < 4; ++b) {
        gd[0][b] = d[b] + h * (d[4 + b] + d[8 + b]);
        gd[1][b] = h * (d[4 + b] - d[8 + b]);
        gd[2][b] = h * (d[4 + b] + d[8 + b]) + d[12 + b];
      }
      T* f = gw + (k * g.C + c) * 9;
      for (int r = 0; r < 3; ++r) {  // (G^T dU) G
        f[3 * r + 0] = gd[r][0] + h * (gd[r][1] + gd[r][2]);
        f[3 * r + 1] = h * (gd[r][1] - gd[r][2]);
        f[3 * r + 2] = h * (gd[r][1] + gd[r][2]) + gd[r][3];
      }
    }
}

template void conv3x3_winograd_filters<float>(const float*, const ConvGeom&, float*);
template void conv3x3_winograd_filters<double>(const double*, const ConvGeom&, double*);
template void conv3x3_winograd_images<float>(const float*, int64_t, const float*, const float*, float*, const ConvGeom&,
                                             bool, float*);
template void conv3x3_winograd_images<double>(const double*, int64_t, const double*, const double*, double*,
                                              const ConvGeom&, bool, double*);
template void conv3x3_winograd_filter_grad_images<float>(const float*, const float*, int64_t, const ConvGeom&, float*,
                                                         float*);
template void conv3x3_winograd_filter_grad_images<double>(const double*, const double*, int64_t, const ConvGeom&,
                                                          double*, double*);
template void conv3x3_winograd_filter_grad_finish<float>(const float*, const ConvGeom&, float*);
template void conv3x3_winograd_filter_grad_finish<double>(const double*, const ConvGeom&, double*);

}  // namespace fn::kernels
