// Facts about this build, reported by `xpuruntime info`.
#pragma once

namespace xpu {

struct BuildInfo {
  bool cuda;               // CUDA kernels compiled in
  const char* cuda_archs;  // e.g. "90"
  const char* version;
};

BuildInfo build_info();

}  // namespace xpu
