// The body of every XLA FFI handler: the call frame's buffers and attributes
// mapped onto an op spec, then the core's generic call.
#include <algorithm>
#include <vector>

#include "bindings/xla/xla_adapter.h"

namespace xpu::xla_adapter {

namespace {

// The spec's outputs that exist for these inputs (present_if satisfied).
std::vector<bool> present_outputs(const OpSpec& spec, const std::vector<bool>& input_given) {
  std::vector<bool> out(spec.outputs.size());
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    const int cond = spec.outputs[i].present_if;
    out[i] = cond < 0 || input_given[cond];
  }
  return out;
}

std::string_view direction_tag(const OpSpec& spec) { return direction_name(spec.direction); }

}  // namespace

ffi::Error call_spec(const OpSpec& spec, void* stream, Device device, ffi::RemainingArgs args,
                     ffi::RemainingRets rets, const ffi::Dictionary& attrs) {
  const size_t n_in = spec.inputs.size();
  size_t required = 0;
  for (size_t i = 0; i < n_in; ++i)
    if (!spec.inputs[i].optional) required = i + 1;
  if (args.size() < required || args.size() > n_in)
    return to_error(InvalidArgument(spec.op, " ", direction_tag(spec), ": expected ", required,
                                    required == n_in ? "" : str_cat(" to ", n_in), " operands, got ",
                                    args.size()));
  std::vector<bool> given(n_in, false);
  for (size_t i = 0; i < args.size(); ++i) given[i] = true;
  const std::vector<bool> present = present_outputs(spec, given);
  size_t n_out = 0;
  for (bool p : present) n_out += p;
  if (rets.size() != n_out && rets.size() != n_out + 1)
    return to_error(InvalidArgument(spec.op, " ", direction_tag(spec), ": expected ", n_out,
                                    " results (and optionally a uint8 workspace), got ", rets.size()));

  // Decode every buffer first: their ranks decide how leading axes fold.
  std::vector<ffi::AnyBuffer> in_bufs, out_bufs;
  int max_rank = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    auto b = args.get<ffi::AnyBuffer>(i);
    if (!b.has_value())
      return to_error(InvalidArgument(spec.op, ": operand '", spec.inputs[i].name, "' is not a buffer"));
    in_bufs.push_back(*b);
    max_rank = std::max(max_rank, static_cast<int>(b->dimensions().size()));
  }
  for (size_t i = 0; i < rets.size(); ++i) {
    auto r = rets.get<ffi::AnyBuffer>(i);
    if (!r.has_value()) return to_error(InvalidArgument(spec.op, ": result ", i, " is not a buffer"));
    out_bufs.push_back(**r);
    if (i < n_out) max_rank = std::max(max_rank, static_cast<int>((**r).dimensions().size()));
  }

  std::vector<TensorView> inputs(n_in), outputs(spec.outputs.size());
  for (size_t i = 0; i < in_bufs.size(); ++i) inputs[i] = view(in_bufs[i], device, max_rank);
  for (size_t i = 0, next = 0; i < outputs.size(); ++i)
    if (present[i]) outputs[i] = view(out_bufs[next++], device, max_rank);
  TensorView workspace;
  if (rets.size() == n_out + 1) {
    const ffi::AnyBuffer& ws = out_bufs.back();
    if (ws.element_type() != ffi::DataType::U8 || ws.dimensions().size() != 1)
      return to_error(InvalidArgument(spec.op, ": the workspace result must be 1-d uint8"));
    workspace = view(ws, device, 1);
  }

  std::vector<GivenAttr> given_list;
  if (Status s = given_attrs(spec, attrs, &given_list); !s.ok()) return to_error(s);
  AttrValues values;
  ExecContext ctx{stream};
  if (Status s = parse_attrs(spec, given_list, /*onnx_names=*/false, &values, &ctx.policy); !s.ok())
    return to_error(s);
  return to_error(call_op(spec, inputs, outputs, workspace, values, ctx));
}

}  // namespace xpu::xla_adapter
