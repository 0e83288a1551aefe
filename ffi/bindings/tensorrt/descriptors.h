// TensorRT's tensor descriptions as the core's: DataType <-> DType, and
// TensorRT's dense (kLINEAR) buffers as DenseTensors (DenseOperands makes views).
#pragma once

#include <NvInferRuntime.h>

#include <string>

#include "xpuruntime/dense_operands.h"

namespace xpu::trt {

// kInvalid for the TensorRT types no op takes (int8, fp8, bool, ...).
DType to_dtype(nvinfer1::DataType t);
// false for dtypes TensorRT has no type for.
bool to_trt(DType d, nvinfer1::DataType* out);
// "float16", or TensorRT's own name for types the core has none for ("int8").
std::string type_name(nvinfer1::DataType t);

// A dense row-major tensor of `dims` (which must be known: no -1); the shape points
// into `dims`, which must outlive it. A negative rank is seen as 0-d.
DenseTensor dense_of(const nvinfer1::Dims& dims, nvinfer1::DataType type, void* data, Device device);
// "[2, -1, 4096]" for messages.
std::string dims_string(const nvinfer1::Dims& dims);

}  // namespace xpu::trt
