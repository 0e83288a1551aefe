// Helpers shared by the nanobind bindings: DLPack arrays become TensorViews and
// a failed Status becomes a Python exception of the matching class.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <vector>

#include "xpuruntime/dense_operands.h"
#include "xpuruntime/exec_context.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::python {

namespace nb = nanobind;
using Array = nb::ndarray<nb::ro>;        // any dtype, device, layout
// Outputs are accepted through the read-only import too: they are always
// allocated by an adapter, and some exporters (nanobind's own nb_ndarray) flag
// every export read-only.
using MutableArray = nb::ndarray<nb::ro>;

// A DLPack array of any rank as an operand (the core folds leading axes past
// kMaxDims: dense_operands.h); its shape and strides (in elements) live in `dims`,
// which must outlive the result. An invalid (None) array gives present == false;
// a device other than the CPU or CUDA is an InvalidArgument.
struct ArrayDims {
  std::vector<int64_t> shape, strides;
};
Status tensor_of(const Array& a, ArrayDims* dims, DenseTensor* out);

DType dtype_from_dlpack(nb::dlpack::dtype t);
nb::dlpack::dtype dlpack_from_dtype(DType t);

// Raises xpuruntime.Error subclasses (ValueError, LookupError, MemoryError kin).
void throw_if_error(const Status& s);
// Raises xpuruntime.InvalidArgumentTypeError (an InvalidArgumentError and a
// TypeError): an argument of the wrong Python type.
[[noreturn]] void throw_type_error(const std::string& message);

// Runs `fn` (returning Status) without the GIL, so that other Python threads run
// while a kernel or a CUDA call works, then raises its error, if any.
template <typename Fn>
void nogil(Fn&& fn) {
  Status s;
  {
    nb::gil_scoped_release release;
    s = fn();
  }
  throw_if_error(s);
}

void register_exceptions(nb::module_& m);

}  // namespace xpu::python
