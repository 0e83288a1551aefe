// TensorView: a non-owning description of one tensor (pointer, dtype, shape,
// strides in elements, device). Every adapter turns its framework's tensor into
// this, and the core sees nothing else.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "xpuruntime/dtype.h"

namespace xpu {

enum class DeviceKind : uint8_t { kCPU = 0, kCUDA = 1 };

constexpr std::string_view device_kind_name(DeviceKind k) {
  return k == DeviceKind::kCPU ? "cpu" : "cuda";
}

struct Device {
  DeviceKind kind = DeviceKind::kCPU;
  int index = 0;
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

inline constexpr int kMaxDims = 8;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kInvalid;
  int ndim = -1;  // -1: absent (an optional argument that was not given)
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> strides{};  // in elements
  Device device{};

  bool present() const { return ndim >= 0; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  int64_t size(int dim) const { return shape[dim < 0 ? dim + ndim : dim]; }
  template <typename T> T* as() const { return static_cast<T*>(data); }
};

// Builds a dense row-major view (the layout XLA, ONNX Runtime and TensorRT hand
// out). OPS.md allows any number of leading axes while a view holds kMaxDims: a
// tensor of higher rank is seen with its leading axes folded into one (rows, the
// last axes, are unchanged), never written past the view's arrays. Adapters fold
// the same leading axes of every row operand of a call (DenseOperands,
// dense_operands.h, does it from the op spec); this is its per-tensor step.
TensorView dense_view(void* data, DType dtype, const int64_t* shape, int ndim, Device device);
// The same with the first `fold` axes collapsed into one (fold <= 1: none; at most
// ndim), or more where the rest would not fit.
TensorView dense_view_folded(void* data, DType dtype, const int64_t* shape, int ndim, int fold,
                             Device device);
// dense_view_folded for a tensor with its own strides (in elements; DLPack arrays):
// the folded axes must collapse to one stride (dims of size 1 place no constraint;
// an empty tensor reads no memory). False, *out untouched, when they do not (a
// permuted or sliced layout that only a copy could fold).
bool strided_view_folded(void* data, DType dtype, const int64_t* shape, const int64_t* strides,
                         int ndim, int fold, Device device, TensorView* out);
// The leading axes a tensor of this rank must fold into one to fit a view; 0 when it fits.
constexpr int axes_to_fold(int ndim) { return ndim > kMaxDims ? ndim - kMaxDims + 1 : 0; }

// "[32, 4096]" for error messages.
std::string shape_string(const TensorView& v);
// "float32[32, 4096] on cuda:0"
std::string describe(const TensorView& v);

// A [..., N] tensor seen as rows of N elements: the last dim has stride 1 and the
// leading dims collapse to a single row stride. Views whose layout cannot be
// walked that way are rejected by validation, never read wrongly.
struct RowLayout {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // in elements
};
bool as_rows(const TensorView& v, RowLayout* out);

}  // namespace xpu
