// The operands of one call as buffers of any rank, turned into views for an op
// spec: dense row-major ones (XLA, ONNX Runtime and TensorRT hand those out) or
// strided ones (DLPack arrays of the native and torch frontends).
//
// OPS.md allows any number of leading axes while a view holds kMaxDims. When the
// first row operand (Role::kRows) has more, the same leading axes of every
// operand that carries rows (kRows, kLabels, kRowStat, kScalar) fold into one:
// rows and their order are unchanged, so the op computes the same function, and
// outputs are unfolded back to the caller's rank. Every adapter (ORT, XLA,
// TensorRT, the DLPack call and the Python shape-only calls) goes through this
// class, so the folding rule is written once. Strided axes fold only where they
// collapse to one stride; otherwise the call is an InvalidArgument naming the
// operand (a copy would fold them: the torch frontend makes one).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "xpuruntime/op_spec.h"

namespace xpu {

struct DenseTensor {
  void* data = nullptr;
  DType dtype = DType::kInvalid;
  std::span<const int64_t> shape;  // any rank
  Device device{};
  bool present = false;            // false: an optional input that was not given
  std::span<const int64_t> strides;  // in elements, one per axis; empty: dense row-major
};

class DenseOperands {
 public:
  // InvalidArgument (naming the op and both operands) when row operands do not
  // share the leading axes that fold, or naming the operand when its strided
  // leading axes do not collapse into one.
  Status set_inputs(const OpSpec& spec, std::span<const DenseTensor> inputs);
  const std::vector<TensorView>& inputs() const { return inputs_; }

  // The caller's shape of output `i`, which infer_outputs described for the views.
  std::vector<int64_t> output_shape(const OpSpec& spec, size_t i, const OutputDesc& desc) const;
  // The view of output `i` held in a buffer of the caller's shape; an
  // InvalidArgument when the output of a folded input has other leading axes (or
  // strides that do not fold).
  Status output_view(const OpSpec& spec, size_t i, const DenseTensor& t, TensorView* out) const;

 private:
  bool output_folds(const OpSpec& spec, size_t i, size_t ndim) const;

  std::vector<TensorView> inputs_;
  std::vector<bool> folded_;     // per input
  std::vector<int64_t> prefix_;  // sizes of the leading axes that fold; empty: none
};

// Every check of a call that its inputs' shapes and dtypes decide, before any data
// exists: the inputs as views (leading axes folded), the outputs infer_outputs
// describes and the workspace workspace_bytes sizes, given to validate_op, whose
// entry point checks them as it does at run time (the same words). Inputs without
// data get placeholder_data(); devices are the CPU's. For adapters that check a
// call before it runs (the JAX frontend at trace time).
Status validate_call(const OpSpec& spec, std::span<const DenseTensor> inputs,
                     const AttrValues& attrs);

}  // namespace xpu
