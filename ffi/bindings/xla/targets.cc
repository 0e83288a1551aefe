#include "bindings/xla/xla_targets.h"

namespace xpu::xla_adapter {

void add_rms_norm_targets(TargetList& out);
void add_layer_norm_targets(TargetList& out);
void add_softmax_targets(TargetList& out);
void add_glu_targets(TargetList& out);
void add_rope_targets(TargetList& out);
void add_cross_entropy_targets(TargetList& out);

TargetList all_targets() {
  TargetList out;
  add_rms_norm_targets(out);
  add_layer_norm_targets(out);
  add_softmax_targets(out);
  add_glu_targets(out);
  add_rope_targets(out);
  add_cross_entropy_targets(out);
  return out;
}

}  // namespace xpu::xla_adapter
