#include "xpuruntime/tensor_view.h"

#include <algorithm>

#include "xpuruntime/status.h"

namespace xpu {

TensorView dense_view(void* data, DType dtype, const int64_t* shape, int ndim, Device device) {
  return dense_view_folded(data, dtype, shape, ndim, axes_to_fold(ndim), device);
}

TensorView dense_view_folded(void* data, DType dtype, const int64_t* shape, int ndim, int fold,
                             Device device) {
  fold = std::min(std::max(fold, axes_to_fold(ndim)), std::max(ndim, 0));
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.device = device;
  v.ndim = fold > 1 ? ndim - fold + 1 : ndim;
  const int skip = fold > 1 ? fold - 1 : 0;  // shape[i] lands in v.shape[i - skip]
  int64_t stride = 1;
  for (int i = ndim - 1; i >= skip; --i) {
    v.shape[i - skip] = shape[i];
    v.strides[i - skip] = stride;
    stride *= shape[i];
  }
  for (int i = skip - 1; i >= 0; --i) v.shape[0] *= shape[i];
  return v;
}

std::string shape_string(const TensorView& v) {
  std::string s = "[";
  for (int i = 0; i < v.ndim; ++i) s += str_cat(i ? ", " : "", v.shape[i]);
  return s + "]";
}

std::string describe(const TensorView& v) {
  return str_cat(dtype_name(v.dtype), shape_string(v), " on ", device_kind_name(v.device.kind), ':',
                 v.device.index);
}

bool as_rows(const TensorView& v, RowLayout* out) {
  if (v.ndim < 1) return false;
  const int64_t cols = v.shape[v.ndim - 1];
  int64_t rows = 1;
  for (int i = 0; i + 1 < v.ndim; ++i) rows *= v.shape[i];
  // An empty tensor reads no memory: exporters give it arbitrary strides (numpy: 0).
  if (rows == 0 || cols == 0) {
    *out = {rows, cols, cols};
    return true;
  }
  if (cols > 1 && v.strides[v.ndim - 1] != 1) return false;
  // Leading dims must collapse to one stride: stride[i] == stride[i+1] * shape[i+1]
  // (dims of size 1 place no constraint).
  int64_t row_stride = cols;
  int last = v.ndim - 2;
  while (last >= 0 && v.shape[last] == 1) --last;
  if (last >= 0) {
    row_stride = v.strides[last];
    int64_t expect = row_stride;
    for (int i = last; i >= 0; --i) {
      if (v.shape[i] == 1) continue;
      if (v.strides[i] != expect) return false;
      expect *= v.shape[i];
    }
    if (rows > 1 && row_stride < cols) return false;  // rows would overlap
  }
  *out = {rows, cols, row_stride};
  return true;
}

}  // namespace xpu
