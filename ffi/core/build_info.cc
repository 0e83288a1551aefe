#include "xpuruntime/build_info.h"

namespace xpu {

BuildInfo build_info() {
  return {XPURUNTIME_WITH_CUDA != 0, XPURUNTIME_CUDA_ARCHS, XPURUNTIME_VERSION};
}

}  // namespace xpu
