// Shared by the rms_norm CUDA files (forward in cuda.cu, backward in
// cuda_backward.cu): names, per-thread register budgets, and the entry points.
#pragma once

#include "kernels/common/cluster.cuh"
#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/launch.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/rms_norm/rms_norm_kernels.h"

namespace xpu::ops::rms_norm_detail::gpu {

inline constexpr const char* kOp = "rms_norm";
// 512 threads a block leave each thread up to 128 registers (launch.cuh).
inline constexpr int kMaxThreads = cuda::kMaxRowThreads;
// Elements a thread holds in registers, per CTA slice of a row, at the most
// that compile without spills (ptxas -v, sm_90): forward (x: 16 registers at
// 32 bf16 elements), fused backward (x and dy, for two rows where they fit, plus
// an f32 dweight accumulator), unfused backward (x, dy; 32 spilled once the
// kernel gained its row loop; scalar rows 8: 16 spilled 4 bytes once the kernel
// recomputed rstd).
inline constexpr int kForwardElems = 32, kFusedElems = 16, kUnfusedElems = 16;
inline constexpr int kUnfusedScalarElems = 8;

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx);
template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx);

}  // namespace xpu::ops::rms_norm_detail::gpu
