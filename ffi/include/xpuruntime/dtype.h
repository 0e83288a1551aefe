// Element types a tensor view can carry. Kernels support a subset; validation
// names the dtype by the same string in every frontend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xpu {

enum class DType : uint8_t { kF32, kF16, kBF16, kF64, kI32, kI64, kU8, kBool, kInvalid };

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kF64: return "float64";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    case DType::kU8: return "uint8";
    case DType::kBool: return "bool";
    default: return "invalid";
  }
}

// Every valid dtype, and the one a name ("float32") stands for (kInvalid: none).
inline constexpr DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kF64,
                                       DType::kI32, DType::kI64, DType::kU8,  DType::kBool};
constexpr DType dtype_from_name(std::string_view name) {
  for (DType t : kAllDTypes)
    if (dtype_name(t) == name) return t;
  return DType::kInvalid;
}

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: case DType::kI32: return 4;
    case DType::kF16: case DType::kBF16: return 2;
    case DType::kF64: case DType::kI64: return 8;
    case DType::kU8: case DType::kBool: return 1;
    default: return 0;
  }
}

constexpr bool is_float16ish(DType t) { return t == DType::kF16 || t == DType::kBF16; }
// The dtypes every op of OPS.md accepts for its floating inputs.
constexpr bool is_op_float(DType t) { return t == DType::kF32 || is_float16ish(t); }

}  // namespace xpu
