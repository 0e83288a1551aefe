#include "bindings/onnxruntime/op_variants.h"

#include "bindings/onnxruntime/ort_adapter.h"

namespace xpu::ort {
namespace {

// Every dtype an input of this rule may have in some call.
std::vector<DType> allowed(DTypeRule rule) {
  switch (rule) {
    case DTypeRule::kFloat: case DTypeRule::kFloatOrF32: return {DType::kF32, DType::kF16, DType::kBF16};
    case DTypeRule::kIndex: return {DType::kI64, DType::kI32};
    case DTypeRule::kF32: return {DType::kF32};
    default: return {DType::kI32};
  }
}

OpVariant make_variant(const OpSpec& spec, DeviceKind device, const std::vector<DType>& in) {
  OpVariant v{.spec = &spec, .device = device, .dtype_error = check_dtypes(spec, in)};
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    v.inputs.push_back(onnx_type_of(in[i]));
    v.input_optional.push_back(spec.inputs[i].optional);
  }
  for (size_t j = 0; j < spec.outputs.size(); ++j) {
    const OutputSpec& o = spec.outputs[j];
    if (o.use != OutputUse::kResult) continue;
    const DType t = o.dtype == OutputDType::kLikeRef ? in[o.ref]
                    : o.dtype == OutputDType::kF32   ? DType::kF32
                                                     : DType::kI32;
    v.outputs.push_back(onnx_type_of(t));
    v.output_optional.push_back(o.present_if >= 0);
    v.output_index.push_back(j);
  }
  return v;
}

}  // namespace

std::vector<OpVariant> variants_of(const OpSpec& spec, DeviceKind device) {
  std::vector<std::vector<DType>> choices;
  for (const InputSpec& in : spec.inputs) choices.push_back(allowed(in.dtype));
  // Every combination of the inputs' choices, the first input's varying slowest; the
  // valid ones first: ORT takes the first variant that matches a node's present
  // inputs, and a node that leaves an optional input out matches the refused
  // combinations of that input's dtype as well.
  std::vector<OpVariant> out, refused;
  std::vector<size_t> pick(choices.size(), 0);
  for (bool more = true; more;) {
    std::vector<DType> types;
    for (size_t i = 0; i < choices.size(); ++i) types.push_back(choices[i][pick[i]]);
    OpVariant v = make_variant(spec, device, types);
    (v.dtype_error.ok() ? out : refused).push_back(std::move(v));
    more = false;
    for (size_t i = choices.size(); i-- > 0;) {
      if (++pick[i] < choices[i].size()) {
        more = true;
        break;
      }
      pick[i] = 0;
    }
  }
  for (OpVariant& v : refused) out.push_back(std::move(v));
  return out;
}

}  // namespace xpu::ort
