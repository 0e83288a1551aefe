#include "kernels/common/validate.h"

namespace xpu::check {

Status dtype_is(const char* op, const char* name, const TensorView& v, DType want) {
  if (!v.present()) return InvalidArgument(op, ": argument '", name, "' is required");
  if (v.dtype != want)
    return InvalidArgument(op, ": '", name, "' must be ", dtype_name(want), ", got ",
                           dtype_name(v.dtype));
  return Status::Ok();
}

Status float_rows(const char* op, const char* name, const TensorView& v, RowLayout* rows) {
  if (!v.present()) return InvalidArgument(op, ": argument '", name, "' is required");
  if (!is_op_float(v.dtype))
    return InvalidArgument(op, ": '", name, "' must be float32, float16 or bfloat16, got ",
                           dtype_name(v.dtype));
  if (v.ndim < 1)
    return InvalidArgument(op, ": '", name, "' must have at least 1 dimension, got a 0-d tensor");
  if (v.data == nullptr && v.numel() > 0)
    return InvalidArgument(op, ": '", name, "' has no data pointer");
  RowLayout tmp;
  if (!as_rows(v, rows ? rows : &tmp))
    return InvalidArgument(op, ": '", name, "' ", describe(v),
                           " must be contiguous in its last dimension with leading dimensions "
                           "that collapse to one row stride; make it contiguous first");
  return Status::Ok();
}

Status same_shape(const char* op, const char* name, const TensorView& v, const char* ref_name,
                  const TensorView& ref) {
  bool same = v.ndim == ref.ndim;
  for (int i = 0; same && i < v.ndim; ++i) same = v.shape[i] == ref.shape[i];
  if (!same)
    return InvalidArgument(op, ": '", name, "' must have the shape of '", ref_name, "' ",
                           shape_string(ref), ", got ", shape_string(v));
  return Status::Ok();
}

Status shape_is(const char* op, const char* name, const TensorView& v,
                std::initializer_list<int64_t> want) {
  bool same = v.ndim == static_cast<int>(want.size());
  int i = 0;
  for (int64_t d : want) {
    if (!same) break;
    same = v.shape[i++] == d;
  }
  if (!same) {
    TensorView w;
    w.ndim = static_cast<int>(want.size());
    i = 0;
    for (int64_t d : want) w.shape[i++] = d;
    return InvalidArgument(op, ": '", name, "' must have shape ", shape_string(w), ", got ",
                           shape_string(v));
  }
  return Status::Ok();
}

Status same_device(const char* op, const char* name, const TensorView& v, const TensorView& ref) {
  if (v.device != ref.device)
    return InvalidArgument(op, ": all tensors must be on one device; '", name, "' is on ",
                           device_kind_name(v.device.kind), ':', v.device.index, ", expected ",
                           device_kind_name(ref.device.kind), ':', ref.device.index);
  return Status::Ok();
}

Status dense_output(const char* op, const char* name, const TensorView& v) {
  if (!v.present()) return InvalidArgument(op, ": output '", name, "' is required");
  if (v.numel() == 0) return Status::Ok();  // nothing is written: any strides will do
  int64_t expect = 1;
  for (int i = v.ndim - 1; i >= 0; --i) {
    if (v.shape[i] != 1 && v.strides[i] != expect)
      return InvalidArgument(op, ": output '", name, "' must be dense row-major");
    expect *= v.shape[i];
  }
  return Status::Ok();
}

Status workspace(const char* op, const TensorView& ws, int64_t bytes, const TensorView& ref) {
  if (bytes == 0) return Status::Ok();
  if (!ws.present() || ws.data == nullptr)
    return InvalidArgument(op, ": a workspace of ", bytes, " bytes is required");
  const int64_t have = ws.numel() * static_cast<int64_t>(dtype_size(ws.dtype));
  if (have < bytes)
    return InvalidArgument(op, ": workspace has ", have, " bytes, needs ", bytes);
  return same_device(op, "workspace", ws, ref);
}

Status input_like(const char* op, const char* name, const TensorView& v, const char* ref_name,
                  const TensorView& ref, RowLayout* rows) {
  XPU_RETURN_IF_ERROR(float_rows(op, name, v, rows));
  XPU_RETURN_IF_ERROR(dtype_is(op, name, v, ref.dtype));
  XPU_RETURN_IF_ERROR(same_shape(op, name, v, ref_name, ref));
  return same_device(op, name, v, ref);
}

Status output_like(const char* op, const char* name, const TensorView& v, const char* ref_name,
                   const TensorView& ref) {
  XPU_RETURN_IF_ERROR(dense_output(op, name, v));
  XPU_RETURN_IF_ERROR(same_shape(op, name, v, ref_name, ref));
  XPU_RETURN_IF_ERROR(dtype_is(op, name, v, ref.dtype));
  XPU_RETURN_IF_ERROR(same_device(op, name, v, ref));
  if (v.data == nullptr && v.numel() > 0)
    return InvalidArgument(op, ": output '", name, "' has no data pointer");
  return Status::Ok();
}

Status parameter(const char* op, const char* name, const TensorView& p, const TensorView& x,
                 int64_t n) {
  XPU_RETURN_IF_ERROR(dtype_is(op, name, p, x.dtype));
  XPU_RETURN_IF_ERROR(shape_is(op, name, p, {n}));
  XPU_RETURN_IF_ERROR(same_device(op, name, p, x));
  if (p.strides[0] != 1 && n > 1) return InvalidArgument(op, ": '", name, "' must be contiguous");
  if (p.data == nullptr && n > 0) return InvalidArgument(op, ": '", name, "' has no data pointer");
  return Status::Ok();
}

Status flat_f32(const char* op, const char* name, const TensorView& v, int64_t count,
                const TensorView& ref) {
  XPU_RETURN_IF_ERROR(dtype_is(op, name, v, DType::kF32));
  if (v.numel() != count)
    return InvalidArgument(op, ": '", name, "' must have ", count, " elements, got shape ",
                           shape_string(v));
  if (!dense_output(op, name, v).ok())
    return InvalidArgument(op, ": '", name, "' must be contiguous");
  if (count > 0 && v.data == nullptr)
    return InvalidArgument(op, ": '", name, "' has no data pointer");
  return same_device(op, name, v, ref);
}

}  // namespace xpu::check
