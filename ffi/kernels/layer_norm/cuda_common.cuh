// Shared by the layer_norm CUDA files (forward in cuda_forward.cu; backward and
// registration in cuda.cu): names, limits and the forward entry point.
#pragma once

#include <climits>
#include <cstdint>

#include "kernels/common/cluster.cuh"
#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/launch.cuh"
#include "kernels/common/resident_row.cuh"
#include "kernels/layer_norm/layer_norm_kernels.h"

namespace xpu::ops::layer_norm_detail::gpu {

inline constexpr const char* kOp = "layer_norm";
// 512 threads a block leave each thread up to 128 registers (launch.cuh shapes stay within it).
inline constexpr int kMaxThreads = cuda::kMaxRowThreads;
inline constexpr int kReferenceThreads = 256;


template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx);

}  // namespace xpu::ops::layer_norm_detail::gpu
