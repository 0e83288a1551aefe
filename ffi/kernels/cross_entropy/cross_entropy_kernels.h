// Internal to cross_entropy: the validated problem a kernel receives and the
// kernel signatures the registry stores (keyed by logits' dtype; the label dtype
// is a runtime choice inside each kernel). Frontends never see this file.
#pragma once

#include "xpuruntime/ops/cross_entropy.h"
#include "xpuruntime/registry.h"

namespace xpu::ops::cross_entropy_detail {

// Rows view of the validated arguments: logits carry their own row stride; labels,
// lse, loss and dlogits are dense.
struct ForwardProblem {
  const CrossEntropyForwardArgs* args;
  int64_t rows, v;
  int64_t logits_stride;
  bool labels64;  // labels are int64 (else int32)
};

struct BackwardProblem {
  const CrossEntropyBackwardArgs* args;
  int64_t rows, v;
  int64_t logits_stride;
  bool labels64;
};

using ForwardKernel = Status(const ForwardProblem&, const ExecContext&);
using BackwardKernel = Status(const BackwardProblem&, const ExecContext&);

void register_cpu(Registry& r);
void register_cuda(Registry& r);

}  // namespace xpu::ops::cross_entropy_detail
