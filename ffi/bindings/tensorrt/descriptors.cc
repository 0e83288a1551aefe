#include "bindings/tensorrt/descriptors.h"

#include "xpuruntime/status.h"

namespace xpu::trt {

using nvinfer1::DataType;

DType to_dtype(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return DType::kF32;
    case DataType::kHALF: return DType::kF16;
    case DataType::kBF16: return DType::kBF16;
    case DataType::kINT32: return DType::kI32;
    case DataType::kINT64: return DType::kI64;
    default: return DType::kInvalid;
  }
}

bool to_trt(DType d, DataType* out) {
  switch (d) {
    case DType::kF32: *out = DataType::kFLOAT; return true;
    case DType::kF16: *out = DataType::kHALF; return true;
    case DType::kBF16: *out = DataType::kBF16; return true;
    case DType::kI32: *out = DataType::kINT32; return true;
    case DType::kI64: *out = DataType::kINT64; return true;
    default: return false;
  }
}

std::string type_name(DataType t) {
  if (to_dtype(t) != DType::kInvalid) return std::string(dtype_name(to_dtype(t)));
  switch (t) {
    case DataType::kINT8: return "int8";
    case DataType::kBOOL: return "bool";
    case DataType::kUINT8: return "uint8";
    case DataType::kFP8: return "fp8";
    case DataType::kINT4: return "int4";
    case DataType::kFP4: return "fp4";
    default: return str_cat("TensorRT type ", static_cast<int>(t));
  }
}

DenseTensor dense_of(const nvinfer1::Dims& dims, DataType type, void* data, Device device) {
  const size_t ndim = dims.nbDims < 0 ? 0 : static_cast<size_t>(dims.nbDims);
  return DenseTensor{data, to_dtype(type), std::span<const int64_t>(dims.d, ndim), device, true};
}

std::string dims_string(const nvinfer1::Dims& dims) {
  std::string s = "[";
  for (int i = 0; i < dims.nbDims; ++i) s += str_cat(i ? ", " : "", dims.d[i]);
  return s + "]";
}

}  // namespace xpu::trt
