// Host-side float16/bfloat16 <-> float32 conversions (round to nearest even),
// used by the CPU kernels. CUDA kernels use the hardware intrinsics instead.
#pragma once

#include <cstdint>
#include <cstring>

#include "xpuruntime/dtype.h"

namespace xpu::host {

struct f16 { uint16_t bits; };
struct bf16 { uint16_t bits; };

inline float bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float to_float(float v) { return v; }
inline float to_float(bf16 v) { return bits_to_float(uint32_t(v.bits) << 16); }
inline float to_float(f16 v) {
  const uint32_t sign = uint32_t(v.bits & 0x8000) << 16;
  uint32_t exp = (v.bits >> 10) & 0x1f, man = v.bits & 0x3ff;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp == 0) {
    if (man == 0) return bits_to_float(sign);
    // Subnormal: value = man * 2^-24.
    float f = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
}

template <typename T> T from_float(float f);
template <> inline float from_float<float>(float f) { return f; }
template <> inline bf16 from_float<bf16>(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {uint16_t((u >> 16) | 0x40)};  // quiet nan
  u += 0x7fffu + ((u >> 16) & 1u);
  return {uint16_t(u >> 16)};
}
template <> inline f16 from_float<f16>(float f) {
  uint32_t u = float_to_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return {uint16_t(sign | 0x7e00)};      // nan
  if (u >= 0x477ff000u) return {uint16_t(sign | 0x7c00)};     // overflow -> inf
  if (u < 0x38800000u) {                                      // subnormal or zero
    // Round |f| * 2^24 to the nearest integer, ties to even.
    const float scaled = bits_to_float(u) * 16777216.0f;
    uint32_t m = static_cast<uint32_t>(scaled);
    const float frac = scaled - static_cast<float>(m);
    if (frac > 0.5f || (frac == 0.5f && (m & 1u))) ++m;
    return {uint16_t(sign | m)};
  }
  const uint32_t exp = ((u >> 23) - 112) << 10, man = u & 0x7fffffu;
  uint32_t h = exp | (man >> 13);
  const uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return {uint16_t(sign | h)};
}

// Calls f.template operator()<T>() with T the host storage type of `dt`.
template <typename F>
auto dispatch_float(DType dt, F&& f) {
  switch (dt) {
    case DType::kF16: return f.template operator()<f16>();
    case DType::kBF16: return f.template operator()<bf16>();
    default: return f.template operator()<float>();
  }
}

}  // namespace xpu::host
