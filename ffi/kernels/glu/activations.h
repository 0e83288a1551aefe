// The activations of the gated-linear-unit ops, written once for the CPU and CUDA
// kernels (host/device functions, f32 arithmetic). Each gives act(g) and act'(g).
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define XPU_GLU_HD __host__ __device__ __forceinline__
#else
#define XPU_GLU_HD inline
#endif

namespace xpu::ops::glu_detail {

// 1 / x for x >= 1 (every use here: 1 + exp(.)). On the device the approximate
// reciprocal (1 ulp) avoids the out-of-line slow path of '/' and __frcp_rn, a call
// that makes ptxas spill registers; for x > 2^126 it gives 0, the flushed result.
XPU_GLU_HD float rcp(float x) {
#if defined(__CUDA_ARCH__)
  return __fdividef(1.0f, x);
#else
  return 1.0f / x;
#endif
}

// swiglu: silu(g) = g * sigmoid(g); silu'(g) = sigmoid(g) * (1 + g * (1 - sigmoid(g))).
struct Silu {
  static constexpr const char* kOp = "swiglu";
  XPU_GLU_HD static float act(float g) { return g * rcp(1.0f + expf(-g)); }
  XPU_GLU_HD static void act_grad(float g, float* a, float* da) {
    const float s = rcp(1.0f + expf(-g));
    *a = g * s;
    *da = s * (1.0f + g * (1.0f - s));
  }
};

// geglu: gelu_tanh(g) = 0.5 g (1 + tanh(u)), u = sqrt(2/pi) (g + 0.044715 g^3).
// Evaluated as g * sigmoid(2u) (the same function: 0.5 (1 + tanh(u)) = sigmoid(2u)),
// which avoids the cancellation in 1 + tanh(u) for negative g. The derivative is
// sigmoid(2u) + g * sigmoid(2u) (1 - sigmoid(2u)) * 2u'.
struct GeluTanh {
  static constexpr const char* kOp = "geglu";
  static constexpr float kA = 0.7978845608028654f;  // sqrt(2 / pi)
  static constexpr float kB = 0.044715f;
  XPU_GLU_HD static float act(float g) {
    const float u2 = 2.0f * kA * g * (1.0f + kB * g * g);
    return g * rcp(1.0f + expf(-u2));
  }
  XPU_GLU_HD static void act_grad(float g, float* a, float* da) {
    const float g2 = g * g;
    const float u2 = 2.0f * kA * g * (1.0f + kB * g2);
    const float s = rcp(1.0f + expf(-u2));
    *a = g * s;
    // Saturated (s(1-s) == 0): skip the product, whose last factor overflows for
    // |g| > ~1e19 and would turn 0 * inf into NaN.
    const float w = s * (1.0f - s);
    *da = w == 0.0f ? s : s + g * w * (2.0f * kA * (1.0f + 3.0f * kB * g2));
  }
};

}  // namespace xpu::ops::glu_detail
