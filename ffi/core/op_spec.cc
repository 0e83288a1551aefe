// The op-spec core: the table of every spec (expanded from ffi/ops.def), the one
// attribute rule, output inference from the spec's rules, and the generic call.
#include "xpuruntime/op_spec.h"

#include <algorithm>
#include <cmath>

#include "xpuruntime/device_guard.h"

namespace xpu {

namespace ops {
#define XPU_OP(name, onnx)              \
  const OpSpec& name##_forward_spec();  \
  const OpSpec& name##_backward_spec();
#include "ops.def"
#undef XPU_OP
}  // namespace ops

std::span<const OpSpec* const> all_specs() {
  static const std::vector<const OpSpec*> specs = [] {
    std::vector<const OpSpec*> v;
#define XPU_OP(name, onnx)                      \
  v.push_back(&ops::name##_forward_spec());     \
  v.push_back(&ops::name##_backward_spec());
#include "ops.def"
#undef XPU_OP
    return v;
  }();
  return specs;
}

const OpSpec* find_spec(std::string_view op, Direction direction) {
  for (const OpSpec* s : all_specs())
    if (s->direction == direction && op == s->op) return s;
  return nullptr;
}

const OpSpec* find_spec_by_onnx_type(std::string_view onnx_type) {
  for (const OpSpec* s : all_specs())
    if (s->direction == Direction::kForward && onnx_type == s->onnx_type) return s;
  return nullptr;
}

std::string xla_target_name(const OpSpec& spec) {
  std::string name = std::string("xpuruntime_") + spec.op +
                     (spec.direction == Direction::kForward ? "_fwd" : "_bwd");
  if (spec.revision > 1) name += "_v" + std::to_string(spec.revision);
  return name;
}

namespace {

const char* attr_name(const AttrSpec& a, bool onnx_names) {
  return onnx_names ? a.onnx_name : a.name;
}

std::string_view given_type_name(GivenType t) {
  switch (t) {
    case GivenType::kFloat: return "a float";
    case GivenType::kInt: return "an int";
    case GivenType::kBool: return "a bool";
    default: return "a string";
  }
}

// The values of a '|'-separated choice list.
std::vector<std::string_view> split_choices(std::string_view choices) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t bar; (bar = choices.find('|', start)) != std::string_view::npos; start = bar + 1)
    out.push_back(choices.substr(start, bar - start));
  out.push_back(choices.substr(start));
  return out;
}

// "a, b or c" from "a|b|c".
std::string choice_list(std::string_view choices) {
  const auto values = split_choices(choices);
  std::string out;
  for (size_t i = 0; i < values.size(); ++i)
    out += str_cat(i == 0 ? "" : i + 1 == values.size() ? " or " : ", ", values[i]);
  return out;
}

bool is_choice(std::string_view choices, std::string_view value) {
  for (std::string_view c : split_choices(choices))
    if (c == value) return true;
  return false;
}

std::string attr_names(const OpSpec& spec, bool onnx_names) {
  std::string out;
  for (const AttrSpec& a : spec.attrs)
    out += str_cat(out.empty() ? "" : ", ", attr_name(a, onnx_names));
  return out.empty() ? "none" : out;
}

// Checks one given value against its attribute and stores it.
Status parse_one(const OpSpec& spec, const AttrSpec& a, const GivenAttr& g, bool onnx_names,
                 AttrValue* out) {
  const char* name = attr_name(a, onnx_names);
  auto wrong_type = [&](std::string_view want) {
    return InvalidArgument(spec.op, ": attribute '", name, "' must be ", want, ", got ",
                           given_type_name(g.type));
  };
  switch (a.type) {
    case AttrType::kString:
      if (g.type != GivenType::kString) return wrong_type("a string");
      if (a.choices && !is_choice(a.choices, g.text))
        return InvalidArgument(spec.op, ": unknown ", name, " '", g.text, "'; expected ",
                               choice_list(a.choices));
      out->text = std::string(g.text);
      return Status::Ok();
    case AttrType::kFloat:
      if (g.type != GivenType::kFloat && g.type != GivenType::kInt) return wrong_type("a float");
      break;
    case AttrType::kInt:
      if (g.type != GivenType::kInt && g.type != GivenType::kBool) return wrong_type("an int");
      break;
    case AttrType::kBool:
      if (g.type == GivenType::kInt && g.number != 0 && g.number != 1)
        return InvalidArgument(spec.op, ": attribute '", name,
                               "' must be a bool (or int 0/1), got ", g.number);
      if (g.type != GivenType::kBool && g.type != GivenType::kInt)
        return wrong_type("a bool (or int 0/1)");
      break;
  }
  const double v = g.number;
  if (std::isnan(v)) return InvalidArgument(spec.op, ": attribute '", name, "' must not be NaN");
  // An integer beyond a double's range reaches here as +-inf (GivenAttr): no
  // attribute can hold it.
  if (g.type == GivenType::kInt && std::isinf(v))
    return InvalidArgument(spec.op, ": attribute '", name, "' must be ",
                           a.type == AttrType::kFloat ? "a float" : "an integer in [-2^53, 2^53]",
                           ", got an integer too large for a double");
  // Integers live in a double: beyond 2^53 they are no longer exact (2^53 + 1 would
  // read as 2^53; beyond int64 the kernels' conversion would be undefined), so an
  // integer attribute refuses them.
  constexpr double kExactInt = 9007199254740992.0;  // 2^53
  if (a.type == AttrType::kInt && (!g.exact || !(v >= -kExactInt && v <= kExactInt)))
    return InvalidArgument(spec.op, ": attribute '", name, "' must be an integer in [-2^53, 2^53], got ",
                           v);
  if (v < a.min || v > a.max) {
    if (a.min > -kUnbounded && a.max < kUnbounded)
      return InvalidArgument(spec.op, ": '", name, "' must be in [", a.min, ", ", a.max,
                             "], got ", v);
    if (a.min > -kUnbounded)
      return InvalidArgument(spec.op, ": '", name, "' must be >= ", a.min, ", got ", v);
    return InvalidArgument(spec.op, ": '", name, "' must be <= ", a.max, ", got ", v);
  }
  // Kernels compute in f32, where a value below its smallest normal vanishes (CUDA
  // flushes subnormals): eps = 1e-300 would turn rsqrt(var + eps) of a constant row into
  // inf, and y into NaN. Such a value keeps its sign at that smallest normal, which is
  // as near as f32 can come (and no range above it is crossed).
  constexpr double kMinNormal = std::numeric_limits<float>::min();
  out->number = a.type == AttrType::kFloat && v != 0 && std::abs(v) < kMinNormal
                    ? std::copysign(kMinNormal, v)
                    : v;
  return Status::Ok();
}

Status required(const OpSpec& spec, int index, const TensorView& v) {
  if (!v.present())
    return InvalidArgument(spec.op, ": argument '", spec.inputs[index].name, "' is required");
  return Status::Ok();
}

// The float dtype of a call: its first kFloat input's that is a float (kInvalid: none).
DType call_float_dtype(const OpSpec& spec, std::span<const DType> dtypes,
                       std::span<const bool> present) {
  for (size_t i = 0; i < dtypes.size() && i < spec.inputs.size(); ++i)
    if ((present.empty() || present[i]) && spec.inputs[i].dtype == DTypeRule::kFloat &&
        is_op_float(dtypes[i]))
      return dtypes[i];
  return DType::kInvalid;
}

// What an input of `rule` must be in a call of float dtype `call`, as a message says
// it; `is_float`: the input is a float (of another dtype than the call's).
std::string dtype_rule_text(DTypeRule rule, DType call, bool is_float) {
  switch (rule) {
    case DTypeRule::kFloat:
      return is_float ? std::string(dtype_name(call)) : "float32, float16 or bfloat16";
    case DTypeRule::kFloatOrF32:
      return is_float16ish(call) ? str_cat(dtype_name(call), " or float32") : "float32";
    case DTypeRule::kIndex: return "int32 or int64";
    case DTypeRule::kF32: return "float32";
    default: return "int32";
  }
}

bool rule_allows(DTypeRule rule, DType t, DType call) {
  if (!dtype_allowed(rule, t)) return false;
  if (call == DType::kInvalid) return rule != DTypeRule::kFloatOrF32 || t == DType::kF32;
  if (rule == DTypeRule::kFloat) return t == call;
  if (rule == DTypeRule::kFloatOrF32) return t == call || t == DType::kF32;
  return true;
}

}  // namespace

bool input_dtype_ok(const OpSpec& spec, size_t pos, DType t, std::span<const DType> before) {
  if (pos >= spec.inputs.size()) return false;
  const DType call = call_float_dtype(spec, before.first(std::min(pos, before.size())), {});
  const DTypeRule rule = spec.inputs[pos].dtype;
  // The first float input sets the call's dtype; a kFloatOrF32 one before any takes either.
  if (call == DType::kInvalid && rule == DTypeRule::kFloatOrF32) return is_op_float(t);
  return rule_allows(rule, t, call == DType::kInvalid && rule == DTypeRule::kFloat ? t : call);
}

Status check_dtypes(const OpSpec& spec, std::span<const DType> dtypes, std::span<const bool> present) {
  const DType call = call_float_dtype(spec, dtypes, present);
  for (size_t i = 0; i < dtypes.size() && i < spec.inputs.size(); ++i) {
    if (!present.empty() && !present[i]) continue;
    const DTypeRule rule = spec.inputs[i].dtype;
    if (!rule_allows(rule, dtypes[i], call))
      return InvalidArgument(spec.op, ": '", spec.inputs[i].name, "' must be ",
                             dtype_rule_text(rule, call, is_op_float(dtypes[i])), ", got ",
                             dtype_name(dtypes[i]));
  }
  return Status::Ok();
}

AttrValues default_attrs(const OpSpec& spec) {
  AttrValues out(spec.attrs.size());
  for (size_t i = 0; i < spec.attrs.size(); ++i) {
    out[i].number = spec.attrs[i].default_number;
    out[i].text = spec.attrs[i].default_text;
  }
  return out;
}

int attr_index(const OpSpec& spec, std::string_view name) {
  for (size_t i = 0; i < spec.attrs.size(); ++i)
    if (name == spec.attrs[i].name) return static_cast<int>(i);
  return -1;
}

Status parse_policy(const OpSpec& spec, std::string_view text, Policy* out) {
  if (!parse_policy(text, out))
    return InvalidArgument(spec.op, ": unknown policy '", text,
                           "'; expected fast, deterministic or reference");
  return Status::Ok();
}

Status parse_attrs(const OpSpec& spec, std::span<const GivenAttr> given, bool onnx_names,
                   AttrValues* out, Policy* policy) {
  *out = default_attrs(spec);
  std::vector<bool> seen(spec.attrs.size() + 1, false);  // the last slot: policy
  for (const GivenAttr& g : given) {
    if (g.name == "policy") {
      if (seen.back()) return InvalidArgument(spec.op, ": attribute 'policy' given twice");
      seen.back() = true;
      Policy p = Policy::kFast;
      if (g.type != GivenType::kString)
        return InvalidArgument(spec.op, ": attribute 'policy' must be a string, got ",
                               given_type_name(g.type));
      XPU_RETURN_IF_ERROR(parse_policy(spec, g.text, &p));
      if (policy) *policy = p;
      continue;
    }
    size_t i = 0;
    while (i < spec.attrs.size() && g.name != attr_name(spec.attrs[i], onnx_names)) ++i;
    if (i == spec.attrs.size())
      return InvalidArgument(spec.op, ": unknown attribute '", g.name, "'; expected ",
                             attr_names(spec, onnx_names), " or policy");
    if (seen[i]) return InvalidArgument(spec.op, ": attribute '", g.name, "' given twice");
    seen[i] = true;
    XPU_RETURN_IF_ERROR(parse_one(spec, spec.attrs[i], g, onnx_names, &(*out)[i]));
  }
  for (size_t i = 0; i < spec.attrs.size(); ++i)
    if (!seen[i] && attr_required(spec.attrs[i]))
      return InvalidArgument(spec.op, ": attribute '", attr_name(spec.attrs[i], onnx_names),
                             "' is required");
  return Status::Ok();
}

int64_t workspace_bytes(const OpSpec& spec, std::span<const TensorView> inputs,
                        const AttrValues& attrs) {
  return spec.workspace_bytes ? spec.workspace_bytes(inputs, attrs) : 0;
}

Status infer_outputs(const OpSpec& spec, std::span<const TensorView> inputs,
                     const AttrValues& attrs, std::vector<OutputDesc>* out) {
  if (inputs.size() != spec.inputs.size())
    return InvalidArgument(spec.op, ": expected ", spec.inputs.size(), " inputs, got ",
                           inputs.size());
  out->assign(spec.outputs.size(), OutputDesc{});
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    const OutputSpec& o = spec.outputs[i];
    if (o.present_if >= 0 && !inputs[o.present_if].present()) continue;
    const TensorView& ref = inputs[o.ref];
    XPU_RETURN_IF_ERROR(required(spec, o.ref, ref));
    OutputDesc& d = (*out)[i];
    d.dtype = o.dtype == OutputDType::kLikeRef ? ref.dtype
              : o.dtype == OutputDType::kF32   ? DType::kF32
                                               : DType::kI32;
    if (o.shape != ShapeRule::kLike && ref.ndim < 1)
      return InvalidArgument(spec.op, ": '", spec.inputs[o.ref].name,
                             "' must have at least 1 dimension, got a 0-d tensor");
    const int attr = o.attr ? attr_index(spec, o.attr) : -1;
    const bool needs_attr = o.shape == ShapeRule::kLeadingAndAttr || o.shape == ShapeRule::kLoss;
    if (needs_attr && (attr < 0 || static_cast<size_t>(attr) >= attrs.size()))
      return Error(StatusCode::kInternal, spec.op, ": output '", o.name,
                   "' names no attribute of the spec");
    switch (o.shape) {
      case ShapeRule::kLike:
        d.ndim = ref.ndim;
        break;
      case ShapeRule::kLeading:
        d.ndim = ref.ndim - 1;
        break;
      case ShapeRule::kLeadingAndAttr:
        d.ndim = ref.ndim;
        d.shape[ref.ndim - 1] = static_cast<int64_t>(attrs[attr].number);
        break;
      case ShapeRule::kLoss:
        d.ndim = attrs[attr].text == "none" ? ref.ndim - 1 : 0;
        break;
    }
    const int copy = o.shape == ShapeRule::kLike ? ref.ndim : d.ndim == 0 ? 0 : ref.ndim - 1;
    for (int k = 0; k < copy; ++k) d.shape[k] = ref.shape[k];
  }
  return Status::Ok();
}

Status call_op(const OpSpec& spec, std::span<const TensorView> inputs,
               std::span<const TensorView> outputs, const TensorView& workspace,
               const AttrValues& attrs, const ExecContext& ctx) {
  if (inputs.size() != spec.inputs.size() || outputs.size() != spec.outputs.size() ||
      attrs.size() != spec.attrs.size())
    return InvalidArgument(spec.op, " ", direction_name(spec.direction), ": expected ",
                           spec.inputs.size(), " inputs, ", spec.outputs.size(), " outputs and ",
                           spec.attrs.size(), " attributes, got ", inputs.size(), ", ",
                           outputs.size(), " and ", attrs.size());
  // The device of the call: the first present tensor's; every other must match.
  const TensorView* first = nullptr;
  const char* first_name = nullptr;
  auto same_device = [&](const char* name, const TensorView& v) -> Status {
    if (!v.present()) return Status::Ok();
    if (!first) {
      first = &v;
      first_name = name;
    } else if (v.device != first->device) {
      return InvalidArgument(spec.op, ": all tensors must be on one device; '", name, "' is on ",
                             device_kind_name(v.device.kind), ':', v.device.index, ", '",
                             first_name, "' on ", device_kind_name(first->device.kind), ':',
                             first->device.index);
    }
    return Status::Ok();
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!spec.inputs[i].optional)
      XPU_RETURN_IF_ERROR(required(spec, static_cast<int>(i), inputs[i]));
    XPU_RETURN_IF_ERROR(same_device(spec.inputs[i].name, inputs[i]));
  }
  for (size_t i = 0; i < outputs.size(); ++i)
    XPU_RETURN_IF_ERROR(same_device(spec.outputs[i].name, outputs[i]));
  XPU_RETURN_IF_ERROR(same_device("workspace", workspace));
  DeviceGuard guard(first ? first->device : Device{});
  XPU_RETURN_IF_ERROR(guard.status());
  return spec.run(spec, inputs, outputs, workspace, attrs, ctx);
}

Status validate_op(const OpSpec& spec, std::span<const TensorView> inputs,
                   std::span<const TensorView> outputs, const TensorView& workspace,
                   const AttrValues& attrs) {
  ValidationOnly scope;
  Status status = call_op(spec, inputs, outputs, workspace, attrs, ExecContext{});
  // Reaching the lookup means every check passed; its "found nothing" is ours.
  return scope.reached_lookup() ? Status::Ok() : status;
}

void* placeholder_data() {
  alignas(256) static unsigned char placeholder[256];
  return placeholder;
}

}  // namespace xpu
