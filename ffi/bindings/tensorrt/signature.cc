#include "bindings/tensorrt/signature.h"

#include <algorithm>

namespace xpu::trt {

std::vector<int> declared_inputs(const OpSpec& spec) {
  std::vector<int> out;
  for (const OutputSpec& o : spec.outputs)
    if (o.use == OutputUse::kResult && o.present_if >= 0 &&
        std::find(out.begin(), out.end(), o.present_if) == out.end())
      out.push_back(o.present_if);
  std::sort(out.begin(), out.end());
  return out;
}

std::string declared_field_name(const OpSpec& spec, int input) {
  return str_cat("has_", spec.inputs[input].name);
}

Signature::Signature(const OpSpec& spec, const std::vector<bool>& declared)
    : spec_(&spec), declared_inputs_(declared_inputs(spec)), declared_(declared) {
  declared_.resize(declared_inputs_.size(), false);
  auto present = [&](int input) {
    for (size_t i = 0; i < declared_inputs_.size(); ++i)
      if (declared_inputs_[i] == input) return static_cast<bool>(declared_[i]);
    return true;
  };
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    const OutputSpec& o = spec.outputs[i];
    if (o.use == OutputUse::kResult && (o.present_if < 0 || present(o.present_if)))
      outputs_.push_back(static_cast<int>(i));
  }
}

int Signature::expected_inputs() const {
  int n = 0;
  for (size_t i = 0; i < spec_->inputs.size(); ++i) {
    bool present = !spec_->inputs[i].optional;
    for (size_t d = 0; d < declared_inputs_.size(); ++d)
      if (declared_inputs_[d] == static_cast<int>(i)) present = declared_[d];
    if (!present) break;
    n = static_cast<int>(i) + 1;
  }
  return n;
}

Status Signature::check_counts(int nb_inputs, int nb_outputs) const {
  const OpSpec& spec = *spec_;
  int required = 0;
  while (required < static_cast<int>(spec.inputs.size()) && !spec.inputs[required].optional)
    ++required;
  const int total = static_cast<int>(spec.inputs.size());
  if (nb_inputs < required || nb_inputs > total) {
    std::string names;
    for (int i = 0; i < total; ++i)
      names += str_cat(i ? ", " : "", spec.inputs[i].name, spec.inputs[i].optional ? "?" : "");
    return InvalidArgument(spec.op, ": expected ", required, required == total ? "" : str_cat(" to ", total),
                           " inputs (", names, "), got ", nb_inputs);
  }
  for (size_t i = 0; i < declared_inputs_.size(); ++i) {
    const int input = declared_inputs_[i];
    const bool given = nb_inputs > input;
    if (given != static_cast<bool>(declared_[i]))
      return InvalidArgument(spec.op, ": input '", spec.inputs[input].name, "' is ",
                             given ? "given" : "not given", " but field '",
                             declared_field_name(spec, input), "' is ", declared_[i] ? 1 : 0,
                             " (it fixes the outputs when the plugin is created; set it to ",
                             given ? 1 : 0, ")");
  }
  if (nb_outputs != static_cast<int>(outputs_.size()))
    return InvalidArgument(spec.op, ": expected ", outputs_.size(), " outputs, got ", nb_outputs);
  return Status::Ok();
}

}  // namespace xpu::trt
