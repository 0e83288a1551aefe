#include "xpuruntime/tensor_view.h"

#include <algorithm>

#include "xpuruntime/status.h"

namespace xpu {

TensorView dense_view(void* data, DType dtype, const int64_t* shape, int ndim, Device device) {
  return dense_view_folded(data, dtype, shape, ndim, axes_to_fold(ndim), device);
}

TensorView dense_view_folded(void* data, DType dtype, const int64_t* shape, int ndim, int fold,
                             Device device) {
  TensorView v;
  strided_view_folded(data, dtype, shape, nullptr, ndim, fold, device, &v);  // dense: always folds
  return v;
}

bool strided_view_folded(void* data, DType dtype, const int64_t* shape, const int64_t* strides,
                         int ndim, int fold, Device device, TensorView* out) {
  fold = std::min(std::max(fold, axes_to_fold(ndim)), std::max(ndim, 0));
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.device = device;
  v.ndim = fold > 1 ? ndim - fold + 1 : ndim;
  const int skip = fold > 1 ? fold - 1 : 0;  // shape[i] lands in v.shape[i - skip]
  int64_t dense = 1;
  for (int i = ndim - 1; i >= skip; --i) {
    v.shape[i - skip] = shape[i];
    v.strides[i - skip] = strides ? strides[i] : dense;
    dense *= shape[i];
  }
  if (skip > 0) {
    // Axes [0, fold) become axis 0: their sizes multiply; with strides of their own,
    // each axis (of size > 1) must step over the whole of the axes inside it.
    int64_t size = 1, expect = -1;
    bool collapses = true;
    for (int i = fold - 1; i >= 0; --i) {
      size *= shape[i];
      if (!strides || shape[i] == 1) continue;
      if (expect < 0) v.strides[0] = strides[i];
      else if (strides[i] != expect) collapses = false;
      expect = strides[i] * shape[i];
    }
    v.shape[0] = size;
    if (!collapses && size != 0) return false;
  }
  *out = v;
  return true;
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
