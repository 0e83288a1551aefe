#include "xpuruntime/validate_op.h"

#include "xpuruntime/registry.h"

namespace xpu {

void* placeholder_data() {
  alignas(256) static unsigned char placeholder[256];
  return placeholder;
}

Status validate_op(const OpSpec& spec, std::span<const TensorView> inputs,
                   std::span<const TensorView> outputs, const TensorView& workspace,
                   const AttrValues& attrs) {
  ValidationOnly scope;
  Status status = call_op(spec, inputs, outputs, workspace, attrs, ExecContext{});
  // Reaching the lookup means every check passed; its "found nothing" is ours.
  return scope.reached_lookup() ? Status::Ok() : status;
}

}  // namespace xpu
