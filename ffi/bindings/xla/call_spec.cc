// The body of every XLA FFI handler: the call frame's buffers and attributes
// mapped onto an op spec, then the core's generic call.
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

  std::vector<DenseTensor> in_dense(n_in);
  for (size_t i = 0; i < args.size(); ++i) {
    auto b = args.get<ffi::AnyBuffer>(i);
    if (!b.has_value())
      return to_error(InvalidArgument(spec.op, ": operand '", spec.inputs[i].name, "' is not a buffer"));
    in_dense[i] = dense(*b, device);
  }
  DenseOperands operands;
  if (Status s = operands.set_inputs(spec, in_dense); !s.ok()) return to_error(s);
  const std::vector<TensorView>& inputs = operands.inputs();

  std::vector<TensorView> outputs(spec.outputs.size());
  for (size_t i = 0, next = 0; i < outputs.size(); ++i) {
    if (!present[i]) continue;
    auto r = rets.get<ffi::AnyBuffer>(next++);
    if (!r.has_value()) return to_error(InvalidArgument(spec.op, ": result ", next - 1, " is not a buffer"));
    if (Status s = operands.output_view(spec, i, dense(**r, device), &outputs[i]); !s.ok())
      return to_error(s);
  }
  TensorView workspace;
  if (rets.size() == n_out + 1) {
    auto r = rets.get<ffi::AnyBuffer>(n_out);
    if (!r.has_value() || (**r).element_type() != ffi::DataType::U8 || (**r).dimensions().size() != 1)
      return to_error(InvalidArgument(spec.op, ": the workspace result must be 1-d uint8"));
    const DenseTensor ws = dense(**r, device);
    workspace = dense_view(ws.data, ws.dtype, ws.shape.data(), 1, device);
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
