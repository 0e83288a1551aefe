// TensorRT's tensor descriptions as the core's: DataType <-> DType, and
// TensorViews over TensorRT's dense (kLINEAR) buffers.
#pragma once

#include <NvInferRuntime.h>

#include <string>

#include "xpuruntime/tensor_view.h"

namespace xpu::trt {

// kInvalid for the TensorRT types no op takes (int8, fp8, bool, ...).
DType to_dtype(nvinfer1::DataType t);
// false for dtypes TensorRT has no type for.
bool to_trt(DType d, nvinfer1::DataType* out);
// "float16", or TensorRT's own name for types the core has none for ("int8").
std::string type_name(nvinfer1::DataType t);

// A dense row-major view of `dims` (which must be known: no -1).
TensorView view_of(const nvinfer1::Dims& dims, nvinfer1::DataType type, void* data, Device device);
// "[2, -1, 4096]" for messages.
std::string dims_string(const nvinfer1::Dims& dims);

}  // namespace xpu::trt
