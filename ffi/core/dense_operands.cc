#include "xpuruntime/dense_operands.h"

#include <algorithm>

namespace xpu {
namespace {

bool carries_rows(Role r) {
  return r == Role::kRows || r == Role::kLabels || r == Role::kRowStat || r == Role::kScalar;
}

std::string shape_text(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += str_cat(i ? ", " : "", shape[i]);
  return s + "]";
}

// The view of `t` with its first `fold` axes collapsed; `name` and `what` ("input",
// "output") for the error when its strides do not collapse.
Status view_of(const OpSpec& spec, const char* what, const char* name, const DenseTensor& t,
               size_t fold, TensorView* out) {
  const bool strided = !t.strides.empty();
  if (strided && t.strides.size() != t.shape.size())
    return InvalidArgument(spec.op, ": ", what, " '", name, "' has ", t.strides.size(),
                           " strides for ", t.shape.size(), " dimensions");
  if (!strided_view_folded(t.data, t.dtype, t.shape.data(), strided ? t.strides.data() : nullptr,
                           static_cast<int>(t.shape.size()), static_cast<int>(fold), t.device, out))
    return InvalidArgument(spec.op, ": ", what, " '", name, "' ", shape_text(t.shape), " (strides ",
                           shape_text(t.strides), ") has more than ", kMaxDims,
                           " dimensions and leading axes that do not collapse into one; make it "
                           "contiguous first");
  return Status::Ok();
}

}  // namespace

Status DenseOperands::set_inputs(const OpSpec& spec, std::span<const DenseTensor> inputs) {
  inputs_.assign(inputs.size(), TensorView{});
  folded_.assign(inputs.size(), false);
  prefix_.clear();
  // The leading axes to fold: those of the first row operand, past kMaxDims.
  size_t ref = inputs.size();
  for (size_t i = 0; i < inputs.size() && i < spec.inputs.size(); ++i) {
    if (spec.inputs[i].role == Role::kRows && inputs[i].present) {
      ref = i;
      break;
    }
  }
  if (ref < inputs.size()) {
    const auto shape = inputs[ref].shape;
    const int fold = axes_to_fold(static_cast<int>(shape.size()));
    prefix_.assign(shape.begin(), shape.begin() + fold);
  }
  const size_t fold = prefix_.size();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const DenseTensor& t = inputs[i];
    if (!t.present) continue;
    const bool rows = i < spec.inputs.size() && carries_rows(spec.inputs[i].role);
    if (rows && fold > 0 && t.shape.size() >= fold) {
      if (!std::equal(prefix_.begin(), prefix_.end(), t.shape.begin()))
        return InvalidArgument(spec.op, ": '", spec.inputs[i].name, "' ", shape_text(t.shape),
                               " and '", spec.inputs[ref].name, "' ", shape_text(inputs[ref].shape),
                               " must have the same leading axes");
      folded_[i] = true;
    }
    const char* name = i < spec.inputs.size() ? spec.inputs[i].name : "extra";
    XPU_RETURN_IF_ERROR(view_of(spec, "input", name, t, folded_[i] ? fold : 0, &inputs_[i]));
  }
  return Status::Ok();
}

// Every shape rule keeps its ref's leading axes as the output's first axes, so an
// output of a folded ref unfolds its first axis (a reduced loss has none).
bool DenseOperands::output_folds(const OpSpec& spec, size_t i, size_t ndim) const {
  const int ref = spec.outputs[i].ref;
  return !prefix_.empty() && ref >= 0 && static_cast<size_t>(ref) < folded_.size() &&
         folded_[ref] && ndim >= 1;
}

std::vector<int64_t> DenseOperands::output_shape(const OpSpec& spec, size_t i,
                                                 const OutputDesc& desc) const {
  if (desc.ndim < 0) return {};
  const size_t ndim = static_cast<size_t>(desc.ndim);
  if (!output_folds(spec, i, ndim)) return {desc.shape, desc.shape + ndim};
  std::vector<int64_t> shape = prefix_;
  shape.insert(shape.end(), desc.shape + 1, desc.shape + ndim);
  return shape;
}

Status DenseOperands::output_view(const OpSpec& spec, size_t i, const DenseTensor& t,
                                  TensorView* out) const {
  if (!t.present) {
    *out = TensorView{};
    return Status::Ok();
  }
  const size_t fold = prefix_.size();
  const bool folds = output_folds(spec, i, t.shape.size());
  if (folds && (t.shape.size() < fold || !std::equal(prefix_.begin(), prefix_.end(), t.shape.begin())))
    return InvalidArgument(spec.op, ": output '", spec.outputs[i].name, "' ", shape_text(t.shape),
                           " must have the leading axes ", shape_text(prefix_), " of '",
                           spec.inputs[spec.outputs[i].ref].name, "'");
  return view_of(spec, "output", spec.outputs[i].name, t, folds ? fold : 0, out);
}

Status validate_call(const OpSpec& spec, std::span<const DenseTensor> inputs,
                     const AttrValues& attrs) {
  std::vector<DenseTensor> given(inputs.begin(), inputs.end());
  for (DenseTensor& t : given) {
    if (t.present && !t.data) t.data = placeholder_data();
    t.device = Device{};
  }
  DenseOperands operands;
  XPU_RETURN_IF_ERROR(operands.set_inputs(spec, given));
  std::vector<OutputDesc> descs;
  XPU_RETURN_IF_ERROR(infer_outputs(spec, operands.inputs(), attrs, &descs));
  std::vector<TensorView> outputs(spec.outputs.size());
  for (size_t j = 0; j < descs.size(); ++j) {
    if (descs[j].ndim < 0) continue;
    const std::vector<int64_t> shape = operands.output_shape(spec, j, descs[j]);
    XPU_RETURN_IF_ERROR(operands.output_view(
        spec, j, DenseTensor{placeholder_data(), descs[j].dtype, shape, Device{}, true}, &outputs[j]));
  }
  TensorView workspace;
  if (const int64_t bytes = workspace_bytes(spec, operands.inputs(), attrs); bytes > 0)
    workspace = dense_view(placeholder_data(), DType::kU8, &bytes, 1, Device{});
  return validate_op(spec, operands.inputs(), outputs, workspace, attrs);
}

}  // namespace xpu
