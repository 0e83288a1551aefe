// Which of a spec's inputs and outputs one plugin has. TensorRT fixes a plugin's
// output count when it is created, before it sees its inputs, so an output that
// exists only with an optional input (rms_norm's h with residual) needs that
// input declared by a field: `has_<input>` (int 0/1, default 0). Only kResult
// outputs are TensorRT outputs; kSaved ones (row statistics for the backward)
// are passed absent.
#pragma once

#include <string>
#include <vector>

#include "xpuruntime/op_spec.h"

namespace xpu::trt {

// The optional inputs that decide whether a result output exists, in input order.
std::vector<int> declared_inputs(const OpSpec& spec);
// "has_residual"
std::string declared_field_name(const OpSpec& spec, int input);

class Signature {
 public:
  // `declared[i]`: whether declared_inputs(spec)[i] is present.
  Signature(const OpSpec& spec, const std::vector<bool>& declared);

  const OpSpec& spec() const { return *spec_; }
  // Spec indices of the TensorRT outputs, in order.
  const std::vector<int>& outputs() const { return outputs_; }
  // The inputs a call has unless told otherwise: the required ones and the
  // declared ones (optional inputs that are not declared count as absent).
  int expected_inputs() const;
  // Ok when TensorRT's input and output counts fit the spec and the declarations.
  Status check_counts(int nb_inputs, int nb_outputs) const;

 private:
  const OpSpec* spec_;
  std::vector<int> declared_inputs_;
  std::vector<bool> declared_;
  std::vector<int> outputs_;
};

}  // namespace xpu::trt
