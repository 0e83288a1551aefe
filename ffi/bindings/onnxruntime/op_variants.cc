#include "bindings/onnxruntime/op_variants.h"

#include "bindings/onnxruntime/ort_adapter.h"

namespace xpu::ort {
namespace {

constexpr DType kFloatDTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

// The dtypes an input may have in a call whose float dtype is `call`.
std::vector<DType> allowed(DTypeRule rule, DType call) {
  switch (rule) {
    case DTypeRule::kFloat: return {call};
    case DTypeRule::kFloatOrF32:
      return call == DType::kF32 ? std::vector{call} : std::vector{call, DType::kF32};
    case DTypeRule::kIndex: return {DType::kI64, DType::kI32};
    case DTypeRule::kF32: return {DType::kF32};
    default: return {DType::kI32};
  }
}

OpVariant make_variant(const OpSpec& spec, DeviceKind device, const std::vector<DType>& in) {
  OpVariant v{.spec = &spec, .device = device};
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
  std::vector<OpVariant> out;
  for (DType call : kFloatDTypes) {
    std::vector<std::vector<DType>> choices;
    for (const InputSpec& in : spec.inputs) choices.push_back(allowed(in.dtype, call));
    // Every combination of the inputs' choices, the first input's varying slowest.
    std::vector<size_t> pick(choices.size(), 0);
    for (bool more = true; more;) {
      std::vector<DType> types;
      for (size_t i = 0; i < choices.size(); ++i) types.push_back(choices[i][pick[i]]);
      out.push_back(make_variant(spec, device, types));
      more = false;
      for (size_t i = choices.size(); i-- > 0;) {
        if (++pick[i] < choices[i].size()) {
          more = true;
          break;
        }
        pick[i] = 0;
      }
    }
  }
  return out;
}

}  // namespace xpu::ort
