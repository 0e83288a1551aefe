#include "cases.h"

namespace xpu::trt_test {

Dim sym(const std::string& name, int64_t value) { return {name, value, true}; }
Dim num(int64_t value) { return {std::to_string(value), value, false}; }

std::vector<Case> all_cases() {
  const Dim B = sym("B", 2), S = sym("S", 3), N = num(64), T = sym("T", 7);
  std::vector<Case> cases;

  cases.push_back({"RMSNorm", "RMSNorm", Fields().f32("epsilon", 1e-5f),
                   {{"x", InKind::kFloat, {B, S, N}}, {"weight", InKind::kFloat, {N}}},
                   {{"y", OutKind::kLike, {B, S, N}}},
                   {{1, {num(65)}, "weight"}, {1, {N, num(1)}, "weight"}}});
  cases.push_back({"RMSNorm with residual", "RMSNorm", Fields().i32("has_residual", 1),
                   {{"x", InKind::kFloat, {B, S, N}}, {"weight", InKind::kFloat, {N}},
                    {"residual", InKind::kFloat, {B, S, N}}},
                   {{"y", OutKind::kLike, {B, S, N}}, {"h", OutKind::kLike, {B, S, N}}},
                   {{2, {B, S, num(65)}, "residual"}, {1, {num(63)}, "weight"}}});
  cases.push_back({"LayerNorm", "LayerNorm", Fields().f32("epsilon", 1e-3f),
                   {{"x", InKind::kFloat, {B, S, N}}, {"weight", InKind::kFloat, {N}},
                    {"bias", InKind::kFloat, {N}}},
                   {{"y", OutKind::kLike, {B, S, N}}},
                   {{2, {num(65)}, "bias"}, {1, {num(32)}, "weight"}}});
  const Dim W = sym("W", 50);
  cases.push_back({"Softmax", "Softmax", Fields().f32("scale", 0.5f),
                   {{"x", InKind::kFloat, {B, W}}},
                   {{"y", OutKind::kLike, {B, W}}},
                   {{0, {}, "x"}}});
  for (const char* glu : {"SwiGLU", "GeGLU"})
    cases.push_back({glu, glu, Fields(),
                     {{"gate", InKind::kFloat, {B, S, N}}, {"up", InKind::kFloat, {B, S, N}}},
                     {{"y", OutKind::kLike, {B, S, N}}},
                     {{1, {B, S, num(65)}, "up"}}});
  const Dim H = num(3), D = num(16), Dh = num(8);
  for (int interleaved : {0, 1})
    cases.push_back({interleaved ? "RoPE interleaved" : "RoPE", "RoPE",
                     Fields().i32("interleaved", interleaved),
                     {{"x", InKind::kFloat, {B, S, H, D}}, {"cos", InKind::kTable, {S, Dh}},
                      {"sin", InKind::kTable, {S, Dh}}},
                     {{"y", OutKind::kLike, {B, S, H, D}}},
                     {{1, {num(9), Dh}, "cos"}, {2, {S, num(7)}, "sin"}, {0, {B, S, D}, "x"}}});
  const Dim V = num(33);
  cases.push_back({"CrossEntropy mean", "CrossEntropy", Fields(),
                   {{"logits", InKind::kFloat, {T, V}}, {"labels", InKind::kLabels, {T}}},
                   {{"loss", OutKind::kF32, {}}},
                   {{1, {num(8)}, "labels"}, {1, {T, num(1)}, "labels"}}});
  cases.push_back({"CrossEntropy none", "CrossEntropy",
                   Fields().text("reduction", "none").i64("ignore_index", -1).f32("label_smoothing", 0.1f),
                   {{"logits", InKind::kFloat, {T, V}}, {"labels", InKind::kLabels, {T}}},
                   {{"loss", OutKind::kF32, {T}}},
                   {{1, {num(8)}, "labels"}}});
  cases.push_back({"CrossEntropy sum", "CrossEntropy",
                   Fields().text("reduction", "sum").i32("ignore_index", 3),
                   {{"logits", InKind::kFloat, {T, V}}, {"labels", InKind::kLabels, {T}}},
                   {{"loss", OutKind::kF32, {}}},
                   {{1, {T, T}, "labels"}}});
  const Dim E = num(8);
  cases.push_back({"TopKSoftmax", "TopKSoftmax", Fields().i32("k", 2).i32("renormalize", 0),
                   {{"logits", InKind::kFloat, {B, S, E}}},
                   {{"weights", OutKind::kF32, {B, S, num(2)}}, {"indices", OutKind::kI32, {B, S, num(2)}}},
                   {{0, {B, S, num(1)}, "k"}}});
  return cases;
}

}  // namespace xpu::trt_test

namespace xpu::trt_test {

using nvinfer1::DataType;

nvinfer1::Dims dims_of(const Shape& shape, Bound bound) {
  nvinfer1::Dims d{};
  d.nbDims = static_cast<int32_t>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    const Dim& x = shape[i];
    d.d[i] = !x.symbolic           ? x.value
             : bound == Bound::kMin ? 1
             : bound == Bound::kMax ? 2 * x.value
             : bound == Bound::kDeclared ? -1
                                         : x.value;
  }
  return d;
}

std::string shape_text(const Shape& shape, bool symbolic) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + (symbolic ? shape[i].name : std::to_string(shape[i].value));
  return s + "]";
}

std::vector<Dtypes> dtype_choices(const Case& c) {
  bool tables = false, labels = false;
  for (const Input& in : c.inputs) {
    tables |= in.kind == InKind::kTable;
    labels |= in.kind == InKind::kLabels;
  }
  std::vector<Dtypes> out;
  for (DataType f : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
    std::vector<DataType> table_types{DataType::kFLOAT};
    if (tables && f != DataType::kFLOAT) table_types.push_back(f);  // f32 or x's dtype
    std::vector<DataType> label_types{DataType::kINT32};
    if (labels) label_types.push_back(DataType::kINT64);
    for (DataType t : table_types)
      for (DataType l : label_types) out.push_back({f, t, l});
  }
  return out;
}

DataType input_type(const Input& in, const Dtypes& d) {
  return in.kind == InKind::kFloat ? d.flt : in.kind == InKind::kTable ? d.table : d.labels;
}

DataType output_type(const Output& out, const Dtypes& d) {
  return out.kind == OutKind::kLike ? d.flt : out.kind == OutKind::kF32 ? DataType::kFLOAT : DataType::kINT32;
}

std::string type_text(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return "float32";
    case DataType::kHALF: return "float16";
    case DataType::kBF16: return "bfloat16";
    case DataType::kINT32: return "int32";
    case DataType::kINT64: return "int64";
    case DataType::kINT8: return "int8";
    default: return "type" + std::to_string(static_cast<int>(t));
  }
}

std::string dtypes_text(const Case& c, const Dtypes& d) {
  std::string s;
  for (const Input& in : c.inputs) s += (s.empty() ? "" : " ") + in.name + "=" + type_text(input_type(in, d));
  return s;
}

}  // namespace xpu::trt_test
