// The list of built-in kernel families. Explicit calls (rather than static
// registrars) so that linking the core as a static library never drops a kernel.
#include "kernels/cross_entropy/cross_entropy_kernels.h"
#include "kernels/layer_norm/layer_norm_kernels.h"
#include "kernels/glu/glu_kernels.h"
#include "kernels/rms_norm/rms_norm_kernels.h"
#include "kernels/rope/rope_kernels.h"
#include "kernels/softmax/softmax_kernels.h"
#include "xpuruntime/registry.h"

namespace xpu {

void register_builtin_kernels(Registry& r) {
  ops::rms_norm_detail::register_cpu(r);
  ops::layer_norm_detail::register_cpu(r);
  ops::softmax_detail::register_cpu(r);
  ops::glu_detail::register_cpu(r);
  ops::rope_detail::register_cpu(r);
  ops::cross_entropy_detail::register_cpu(r);
#if XPURUNTIME_WITH_CUDA
  ops::rms_norm_detail::register_cuda(r);
  ops::layer_norm_detail::register_cuda(r);
  ops::softmax_detail::register_cuda(r);
  ops::glu_detail::register_cuda(r);
  ops::rope_detail::register_cuda(r);
  ops::cross_entropy_detail::register_cuda(r);
#endif
}

}  // namespace xpu
