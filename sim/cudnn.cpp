// cudasim's cuDNN: the calls the engine makes (convolution with groups, max pooling, spatial batch norm), as
// plain loops over float32 NCHW with double sums, and cuDNN's alpha / beta blending (out = alpha * result +
// beta * out; beta 0 never reads out). These are references, not cuDNN: a test that compares a handwritten
// kernel with the "cuDNN" path in this build compares it with these loops. The algorithm searches return one
// algorithm (0), so the engine's choice logic runs.
#include <cudnn.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

namespace {

struct Handle {
  cudaStream_t stream = nullptr;
};

}  // namespace

struct cudnnTensorStruct {
  int n = 0, c = 0, h = 0, w = 0;
  size_t count() const { return size_t(n) * c * h * w; }
};
struct cudnnFilterStruct {
  int k = 0, c = 0, r = 0, s = 0;
};
struct cudnnConvolutionStruct {
  int pad_h = 0, pad_w = 0, u = 1, v = 1, dil_h = 1, dil_w = 1, groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};
struct cudnnPoolingStruct {
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  int wh = 1, ww = 1, ph = 0, pw = 0, sh = 1, sw = 1;
};

namespace {

void blend(float* out, size_t i, double result, const void* alpha, const void* beta) {
  const double a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  out[i] = float(b == 0 ? a * result : a * result + b * double(out[i]));
}

// Calls f(n, k, p, q, c, r, s, x index, w index, y index) for every tap of the convolution that lands
// inside the input.
template <class F>
cudnnStatus_t for_taps(const cudnnTensorStruct& x, const cudnnFilterStruct& w, const cudnnConvolutionStruct& cv,
                       const cudnnTensorStruct& y, F&& f) {
  const int g = cv.groups, cg = x.c / g, kg = w.k / g;
  if (x.c % g || w.k % g || w.c != cg || y.c != w.k || y.n != x.n) {
    std::fprintf(stderr, "cudasim: cuDNN convolution with mismatched descriptors\n");
    return CUDNN_STATUS_BAD_PARAM;
  }
  for (int n = 0; n < x.n; ++n)
    for (int k = 0; k < w.k; ++k)
      for (int p = 0; p < y.h; ++p)
        for (int q = 0; q < y.w; ++q)
          for (int c = 0; c < cg; ++c)
            for (int r = 0; r < w.r; ++r)
              for (int s = 0; s < w.s; ++s) {
                const int h = p * cv.u - cv.pad_h + r * cv.dil_h, ww = q * cv.v - cv.pad_w + s * cv.dil_w;
                if (h < 0 || h >= x.h || ww < 0 || ww >= x.w) continue;
                const int xc = k / kg * cg + c;
                f((((size_t(n) * x.c + xc) * x.h + h) * x.w + ww), ((size_t(k) * cg + c) * w.r + r) * w.s + s,
                  ((size_t(n) * y.c + k) * y.h + p) * y.w + q);
              }
  return CUDNN_STATUS_SUCCESS;
}

// A descriptor (or handle) is a plain struct behind cuDNN's opaque pointer.
template <class T>
cudnnStatus_t create(T** d) {
  *d = new T;
  return CUDNN_STATUS_SUCCESS;
}
template <class T>
cudnnStatus_t destroy(T* d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

template <class Perf>
void one_algorithm(int* returned, Perf* perf) {
  *returned = 1;
  perf[0] = Perf{};
  perf[0].status = CUDNN_STATUS_SUCCESS;
  perf[0].time = 1.f;
  perf[0].memory = 0;
  perf[0].determinism = CUDNN_DETERMINISTIC;
  perf[0].mathType = CUDNN_FMA_MATH;
}

}  // namespace

size_t cudnnGetVersion() { return CUDNN_VERSION; }
const char* cudnnGetErrorString(cudnnStatus_t s) {
  return s == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_BAD_PARAM (cudasim)";
}
cudnnStatus_t cudnnCreate(cudnnHandle_t* h) { return create(reinterpret_cast<Handle**>(h)); }
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) { return destroy(reinterpret_cast<Handle*>(h)); }
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  reinterpret_cast<Handle*>(h)->stream = s;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) { return create(d); }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f, cudnnDataType_t t, int n,
                                         int c, int h, int w) {
  if (f != CUDNN_TENSOR_NCHW || t != CUDNN_DATA_FLOAT || n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return CUDNN_STATUS_BAD_PARAM;
  *d = cudnnTensorStruct{n, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) { return create(d); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f, int k,
                                         int c, int h, int w) {
  if (f != CUDNN_TENSOR_NCHW || t != CUDNN_DATA_FLOAT || k <= 0 || c <= 0 || h <= 0 || w <= 0)
    return CUDNN_STATUS_BAD_PARAM;
  *d = cudnnFilterStruct{k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) { return create(d); }
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph, int pw, int u, int v, int dh,
                                              int dw, cudnnConvolutionMode_t mode, cudnnDataType_t t) {
  if (mode != CUDNN_CROSS_CORRELATION || t != CUDNN_DATA_FLOAT || ph < 0 || pw < 0 || u <= 0 || v <= 0 || dh <= 0 ||
      dw <= 0)
    return CUDNN_STATUS_BAD_PARAM;
  d->pad_h = ph, d->pad_w = pw, d->u = u, d->v = v, d->dil_h = dh, d->dil_w = dw;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  if (groups <= 0) return CUDNN_STATUS_BAD_PARAM;
  d->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
  d->math = m;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t, const cudnnTensorDescriptor_t, const void*,
                                                     const cudnnFilterDescriptor_t, const void*,
                                                     const cudnnConvolutionDescriptor_t, const cudnnTensorDescriptor_t,
                                                     void*, const int, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf, void*, size_t) {
  one_algorithm(returned, perf);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t, const cudnnFilterDescriptor_t, const void*,
                                                          const cudnnTensorDescriptor_t, const void*,
                                                          const cudnnConvolutionDescriptor_t,
                                                          const cudnnTensorDescriptor_t, void*, const int,
                                                          int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf,
                                                          void*, size_t) {
  one_algorithm(returned, perf);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t, const cudnnTensorDescriptor_t, const void*,
                                                            const cudnnTensorDescriptor_t, const void*,
                                                            const cudnnConvolutionDescriptor_t,
                                                            const cudnnFilterDescriptor_t, void*, const int,
                                                            int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf,
                                                            void*, size_t) {
  one_algorithm(returned, perf);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void* alpha, const cudnnTensorDescriptor_t xd,
                                      const void* x, const cudnnFilterDescriptor_t wd, const void* w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t, void*, size_t,
                                      const void* beta, const cudnnTensorDescriptor_t yd, void* y) {
  std::vector<double> acc(yd->count(), 0.0);
  const float *xf = static_cast<const float*>(x), *wf = static_cast<const float*>(w);
  const cudnnStatus_t s =
      for_taps(*xd, *wd, *cd, *yd, [&](size_t xi, size_t wi, size_t yi) { acc[yi] += double(xf[xi]) * wf[wi]; });
  if (s != CUDNN_STATUS_SUCCESS) return s;
  for (size_t i = 0; i < acc.size(); ++i) blend(static_cast<float*>(y), i, acc[i], alpha, beta);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void* alpha, const cudnnFilterDescriptor_t wd,
                                           const void* w, const cudnnTensorDescriptor_t dyd, const void* dy,
                                           const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t, void*,
                                           size_t, const void* beta, const cudnnTensorDescriptor_t dxd, void* dx) {
  std::vector<double> acc(dxd->count(), 0.0);
  const float *gf = static_cast<const float*>(dy), *wf = static_cast<const float*>(w);
  const cudnnStatus_t s =
      for_taps(*dxd, *wd, *cd, *dyd, [&](size_t xi, size_t wi, size_t yi) { acc[xi] += double(gf[yi]) * wf[wi]; });
  if (s != CUDNN_STATUS_SUCCESS) return s;
  for (size_t i = 0; i < acc.size(); ++i) blend(static_cast<float*>(dx), i, acc[i], alpha, beta);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void* alpha, const cudnnTensorDescriptor_t xd,
                                             const void* x, const cudnnTensorDescriptor_t dyd, const void* dy,
                                             const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdFilterAlgo_t,
                                             void*, size_t, const void* beta, const cudnnFilterDescriptor_t dwd,
                                             void* dw) {
  std::vector<double> acc(size_t(dwd->k) * dwd->c * dwd->r * dwd->s, 0.0);
  const float *xf = static_cast<const float*>(x), *gf = static_cast<const float*>(dy);
  const cudnnStatus_t s =
      for_taps(*xd, *dwd, *cd, *dyd, [&](size_t xi, size_t wi, size_t yi) { acc[wi] += double(xf[xi]) * gf[yi]; });
  if (s != CUDNN_STATUS_SUCCESS) return s;
  for (size_t i = 0; i < acc.size(); ++i) blend(static_cast<float*>(dw), i, acc[i], alpha, beta);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* d) { return create(d); }
cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t d, cudnnPoolingMode_t mode, cudnnNanPropagation_t,
                                          int wh, int ww, int ph, int pw, int sh, int sw) {
  if ((mode != CUDNN_POOLING_MAX && mode != CUDNN_POOLING_MAX_DETERMINISTIC) || wh <= 0 || ww <= 0 || ph < 0 ||
      pw < 0 || sh <= 0 || sw <= 0)
    return CUDNN_STATUS_BAD_PARAM;
  *d = cudnnPoolingStruct{mode, wh, ww, ph, pw, sh, sw};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetPooling2dForwardOutputDim(const cudnnPoolingDescriptor_t d, const cudnnTensorDescriptor_t x,
                                                int* n, int* c, int* h, int* w) {
  *n = x->n, *c = x->c;
  *h = 1 + (x->h + 2 * d->ph - d->wh) / d->sh;
  *w = 1 + (x->w + 2 * d->pw - d->ww) / d->sw;
  return CUDNN_STATUS_SUCCESS;
}

namespace {
// The input index of the first maximum of output (plane, p, q)'s window (-1 if the window is all padding).
long window_argmax(const cudnnPoolingStruct& d, const cudnnTensorStruct& x, const float* xf, size_t plane, int p,
                   int q) {
  long best = -1;
  float m = -std::numeric_limits<float>::infinity();
  for (int r = 0; r < d.wh; ++r)
    for (int s = 0; s < d.ww; ++s) {
      const int h = p * d.sh - d.ph + r, w = q * d.sw - d.pw + s;
      if (h < 0 || h >= x.h || w < 0 || w >= x.w) continue;
      const long i = long((plane * x.h + h) * x.w + w);
      if (best < 0 || xf[i] > m) best = i, m = xf[i];
    }
  return best;
}
}  // namespace

cudnnStatus_t cudnnPoolingForward(cudnnHandle_t, const cudnnPoolingDescriptor_t d, const void* alpha,
                                  const cudnnTensorDescriptor_t xd, const void* x, const void* beta,
                                  const cudnnTensorDescriptor_t yd, void* y) {
  const float* xf = static_cast<const float*>(x);
  for (size_t plane = 0; plane < size_t(xd->n) * xd->c; ++plane)
    for (int p = 0; p < yd->h; ++p)
      for (int q = 0; q < yd->w; ++q) {
        const long i = window_argmax(*d, *xd, xf, plane, p, q);
        blend(static_cast<float*>(y), (plane * yd->h + p) * yd->w + q, i < 0 ? 0.0 : xf[i], alpha, beta);
      }
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t, const cudnnPoolingDescriptor_t d, const void* alpha,
                                   const cudnnTensorDescriptor_t yd, const void*, const cudnnTensorDescriptor_t,
                                   const void* dy, const cudnnTensorDescriptor_t xd, const void* x, const void* beta,
                                   const cudnnTensorDescriptor_t, void* dx) {
  const float *xf = static_cast<const float*>(x), *gf = static_cast<const float*>(dy);
  std::vector<double> acc(xd->count(), 0.0);
  for (size_t plane = 0; plane < size_t(xd->n) * xd->c; ++plane)
    for (int p = 0; p < yd->h; ++p)
      for (int q = 0; q < yd->w; ++q) {
        const long i = window_argmax(*d, *xd, xf, plane, p, q);
        if (i >= 0) acc[size_t(i)] += gf[(plane * yd->h + p) * yd->w + q];
      }
  for (size_t i = 0; i < acc.size(); ++i) blend(static_cast<float*>(dx), i, acc[i], alpha, beta);
  return CUDNN_STATUS_SUCCESS;
}

namespace {
// Channel c's values of an NCHW tensor: n rows of hw.
template <class F>
void for_channel(const cudnnTensorStruct& t, int c, F&& f) {
  const size_t hw = size_t(t.h) * t.w;
  for (int n = 0; n < t.n; ++n)
    for (size_t k = 0; k < hw; ++k) f((size_t(n) * t.c + c) * hw + k);
}
}  // namespace

cudnnStatus_t cudnnBatchNormalizationForwardTraining(cudnnHandle_t, cudnnBatchNormMode_t mode, const void* alpha,
                                                     const void* beta, const cudnnTensorDescriptor_t xd, const void* x,
                                                     const cudnnTensorDescriptor_t, void* y,
                                                     const cudnnTensorDescriptor_t, const void* scale, const void* bias,
                                                     double factor, void* running_mean, void* running_var, double eps,
                                                     void* save_mean, void* save_inv_var) {
  if (mode != CUDNN_BATCHNORM_SPATIAL || eps < CUDNN_BN_MIN_EPSILON) return CUDNN_STATUS_BAD_PARAM;
  const float *xf = static_cast<const float*>(x), *w = static_cast<const float*>(scale),
              *b = static_cast<const float*>(bias);
  const double n = double(xd->n) * xd->h * xd->w;
  for (int c = 0; c < xd->c; ++c) {
    double s = 0, ss = 0;
    for_channel(*xd, c, [&](size_t i) { s += xf[i]; });
    const double mean = s / n;
    for_channel(*xd, c, [&](size_t i) { ss += (xf[i] - mean) * (xf[i] - mean); });
    const double var = ss / n, inv = 1.0 / std::sqrt(var + eps);
    for_channel(*xd, c, [&](size_t i) { blend(static_cast<float*>(y), i, (xf[i] - mean) * inv * w[c] + b[c], alpha, beta); });
    if (running_mean) {
      float* rm = static_cast<float*>(running_mean);
      rm[c] = float((1 - factor) * rm[c] + factor * mean);
    }
    if (running_var) {
      float* rv = static_cast<float*>(running_var);
      rv[c] = float((1 - factor) * rv[c] + factor * (n > 1 ? var * n / (n - 1) : var));
    }
    if (save_mean) static_cast<float*>(save_mean)[c] = float(mean);
    if (save_inv_var) static_cast<float*>(save_inv_var)[c] = float(inv);
  }
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnBatchNormalizationForwardInference(cudnnHandle_t, cudnnBatchNormMode_t mode, const void* alpha,
                                                      const void* beta, const cudnnTensorDescriptor_t xd,
                                                      const void* x, const cudnnTensorDescriptor_t, void* y,
                                                      const cudnnTensorDescriptor_t, const void* scale,
                                                      const void* bias, const void* mean, const void* var, double eps) {
  if (mode != CUDNN_BATCHNORM_SPATIAL || eps < CUDNN_BN_MIN_EPSILON) return CUDNN_STATUS_BAD_PARAM;
  const float *xf = static_cast<const float*>(x), *w = static_cast<const float*>(scale),
              *b = static_cast<const float*>(bias), *m = static_cast<const float*>(mean),
              *v = static_cast<const float*>(var);
  for (int c = 0; c < xd->c; ++c) {
    const double inv = 1.0 / std::sqrt(double(v[c]) + eps);
    for_channel(*xd, c, [&](size_t i) { blend(static_cast<float*>(y), i, (xf[i] - m[c]) * inv * w[c] + b[c], alpha, beta); });
  }
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnBatchNormalizationBackward(cudnnHandle_t, cudnnBatchNormMode_t mode, const void* alpha_data,
                                              const void* beta_data, const void* alpha_param, const void* beta_param,
                                              const cudnnTensorDescriptor_t xd, const void* x,
                                              const cudnnTensorDescriptor_t, const void* dy,
                                              const cudnnTensorDescriptor_t, void* dx, const cudnnTensorDescriptor_t,
                                              const void* scale, void* dscale, void* dbias, double eps,
                                              const void* saved_mean, const void* saved_inv_var) {
  if (mode != CUDNN_BATCHNORM_SPATIAL) return CUDNN_STATUS_BAD_PARAM;
  const float *xf = static_cast<const float*>(x), *gf = static_cast<const float*>(dy),
              *w = static_cast<const float*>(scale);
  const double n = double(xd->n) * xd->h * xd->w;
  for (int c = 0; c < xd->c; ++c) {
    double mean, inv;
    if (saved_mean && saved_inv_var) {
      mean = static_cast<const float*>(saved_mean)[c], inv = static_cast<const float*>(saved_inv_var)[c];
    } else {
      double s = 0, ss = 0;
      for_channel(*xd, c, [&](size_t i) { s += xf[i]; });
      mean = s / n;
      for_channel(*xd, c, [&](size_t i) { ss += (xf[i] - mean) * (xf[i] - mean); });
      inv = 1.0 / std::sqrt(ss / n + eps);
    }
    double g = 0, gx = 0;
    for_channel(*xd, c, [&](size_t i) { g += gf[i], gx += gf[i] * (xf[i] - mean) * inv; });
    for_channel(*xd, c, [&](size_t i) {
      const double xhat = (xf[i] - mean) * inv;
      blend(static_cast<float*>(dx), i, w[c] * inv * (gf[i] - g / n - xhat * gx / n), alpha_data, beta_data);
    });
    blend(static_cast<float*>(dscale), size_t(c), gx, alpha_param, beta_param);
    blend(static_cast<float*>(dbias), size_t(c), g, alpha_param, beta_param);
  }
  return CUDNN_STATUS_SUCCESS;
}
