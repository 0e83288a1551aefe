// The test program's suites. Each records its checks in `checks`.
#pragma once

#include <vector>

#include "cases.h"
#include "harness.h"

namespace xpu::trt_test {

// Every forward op of the core has a creator (name = ONNX type, version "1",
// namespace "xpuruntime") and a case here; creator field names and types.
void check_creators(Library& lib, const std::vector<Case>& cases, Checks& checks);
// Build-phase methods, fields round trip, clone, and enqueue failing cleanly
// where there is no GPU.
void check_build_phase(Library& lib, const Case& c, Checks& checks);
// enqueue on device buffers for every dtype and policy against the core's own
// call of the op (bitwise equal under deterministic and reference).
void check_enqueue(Library& lib, const Case& c, Checks& checks);

// True when a CUDA device is usable.
bool have_gpu();

}  // namespace xpu::trt_test
