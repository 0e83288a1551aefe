// xpuruntime_trt_test --library <libxpuruntime_trt.so> [--registry <libnvinfer*.so>] [--gpu]
// Drives every plugin of the library through TensorRT's interfaces without a
// builder. --registry: load the library through that TensorRT runtime's plugin
// registry (as TensorRT does) instead of dlopen; --gpu: also run every plugin's
// enqueue on the GPU against the core. Prints failures and a summary; exits 0
// when every check passed.
#include <cstdio>
#include <cstring>
#include <string>

#include "suites.h"

int main(int argc, char** argv) {
  using namespace xpu::trt_test;
  std::string library, registry;
  bool gpu = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--library" && i + 1 < argc) library = argv[++i];
    else if (arg == "--registry" && i + 1 < argc) registry = argv[++i];
    else if (arg == "--gpu") gpu = true;
    else {
      std::fprintf(stderr, "usage: %s --library PATH [--registry LIBNVINFER] [--gpu]\n", argv[0]);
      return 2;
    }
  }
  if (library.empty()) {
    std::fprintf(stderr, "--library is required\n");
    return 2;
  }
  Library lib(library, registry);
  if (!lib.ok()) {
    std::printf("FAIL loading %s: %s\n", library.c_str(), lib.error().c_str());
    return 1;
  }
  Checks checks;
  const std::vector<Case> cases = all_cases();
  check_creators(lib, cases, checks);
  if (gpu && !checks.check(have_gpu(), "a CUDA device for --gpu")) gpu = false;
  for (const Case& c : cases) {
    if (!xpu::find_spec_by_onnx_type(c.plugin)) {
      std::printf("case %s: the core has no op %s\n", c.label.c_str(), c.plugin.c_str());
      continue;
    }
    const int before = checks.total();
    check_build_phase(lib, c, checks);
    const int build = checks.total() - before;
    if (gpu) check_enqueue(lib, c, checks);
    std::printf("case %s: %d build-phase checks, %d enqueue checks\n", c.label.c_str(), build,
                checks.total() - before - build);
  }
  std::printf("xpuruntime_trt_test: %d checks, %d failed (%s, %s)\n", checks.total(), checks.failed(),
              registry.empty() ? "dlopen" : "TensorRT registry", gpu ? "GPU" : "no GPU");
  return checks.failed() == 0 && checks.total() > 0 ? 0 : 1;
}
