// Argument checks shared by every op's validation, so that the same mistake
// reads the same in every op and every frontend. Each returns a Status naming
// the op and the argument.
#pragma once

#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu::check {

// A floating input of OPS.md: present, f32/f16/bf16, at least 1-d, rows walkable.
Status float_rows(const char* op, const char* name, const TensorView& v, RowLayout* rows);
// Present and of exactly this dtype.
Status dtype_is(const char* op, const char* name, const TensorView& v, DType want);
// Same shape as `ref` (named `ref_name`).
Status same_shape(const char* op, const char* name, const TensorView& v, const char* ref_name,
                  const TensorView& ref);
// Exactly this shape.
Status shape_is(const char* op, const char* name, const TensorView& v,
                std::initializer_list<int64_t> want);
// Same device as `ref`.
Status same_device(const char* op, const char* name, const TensorView& v, const TensorView& ref);
// A dense row-major output (adapters allocate outputs, so this is their contract).
Status dense_output(const char* op, const char* name, const TensorView& v);
// A floating input like `ref` (named `ref_name`): float rows of ref's dtype, shape
// and device (residual, dy, up, ...).
Status input_like(const char* op, const char* name, const TensorView& v, const char* ref_name,
                  const TensorView& ref, RowLayout* rows = nullptr);
// A dense output like `ref`: ref's shape, dtype and device, with data.
Status output_like(const char* op, const char* name, const TensorView& v, const char* ref_name,
                   const TensorView& ref);
// A [n] parameter (weight, bias): x's dtype and device, contiguous, with data.
Status parameter(const char* op, const char* name, const TensorView& p, const TensorView& x,
                 int64_t n);
// A dense f32 tensor of `count` elements on `ref`'s device, read or written as a
// flat array: per-row statistics (rstd, mean, lse) and cross_entropy's dloss.
Status flat_f32(const char* op, const char* name, const TensorView& v, int64_t count,
                const TensorView& ref);
// A workspace of at least `bytes` bytes, on `ref`'s device.
Status workspace(const char* op, const TensorView& ws, int64_t bytes, const TensorView& ref);

}  // namespace xpu::check
