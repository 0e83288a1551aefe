// Division by a run-time divisor fixed for a whole launch, as a multiply-high and a
// shift (Granlund-Montgomery): elementwise kernels that map a flat index to
// (row, column, position) pay ~4 instructions a division instead of the ~70 of a
// 64-bit `/` or `%` (which nvcc expands into a subroutine call).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace xpu::cuda {

// Exact for every numerator in [0, 2^63) and divisor in [1, 2^63).
// With l = ceil(log2 d) and m = ceil(2^(63+l) / d) (< 2^64), n / d = (n * m) >> (63 + l):
// m * d = 2^(63+l) + e with 0 <= e < d, so the error term e * n / (d * 2^(63+l)) is below
// 2^-l <= 1/d and never carries the quotient past the next integer.
struct FastDiv {
  uint64_t d = 1;
  uint64_t mul = 0;  // 0 when d == 1
  int shift = 0;     // l - 1

  FastDiv() = default;
  explicit FastDiv(uint64_t divisor) : d(divisor) {
    if (d <= 1) return;
    int l = 0;
    while ((uint64_t{1} << l) < d) ++l;
    const unsigned __int128 num = static_cast<unsigned __int128>(1) << (63 + l);
    mul = static_cast<uint64_t>((num + d - 1) / d);
    shift = l - 1;
  }

  __device__ __forceinline__ uint64_t div(uint64_t n) const {
    return mul == 0 ? n : __umul64hi(n, mul) >> shift;
  }
  // Quotient, with the remainder in *rem.
  __device__ __forceinline__ uint64_t divmod(uint64_t n, uint64_t* rem) const {
    const uint64_t q = div(n);
    *rem = n - q * d;
    return q;
  }
};

}  // namespace xpu::cuda
