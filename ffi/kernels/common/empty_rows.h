// Row statistics of rows that have no columns (x of shape [..., 0]).
#pragma once

#include <initializer_list>

#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::kernels {

// Sets every element of the present f32 statistics to NaN, the mean of no values
// (as torch.mean and numpy.mean of an empty axis): the kernels never run on such
// rows, and the outputs would otherwise hold whatever the allocator left there.
Status nan_row_stats(std::initializer_list<const TensorView*> stats, const ExecContext& ctx);

}  // namespace xpu::kernels
