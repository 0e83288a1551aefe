#include "bindings/tensorrt/fields.h"

#include <cstring>
#include <limits>

#include "bindings/tensorrt/signature.h"

namespace xpu::trt {

using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

namespace {

constexpr const char* kPolicy = "policy";

std::string_view field_type_name(PluginFieldType t) {
  switch (t) {
    case PluginFieldType::kFLOAT16: return "float16";
    case PluginFieldType::kFLOAT32: return "float32";
    case PluginFieldType::kFLOAT64: return "float64";
    case PluginFieldType::kINT8: return "int8";
    case PluginFieldType::kINT16: return "int16";
    case PluginFieldType::kINT32: return "int32";
    case PluginFieldType::kCHAR: return "char";
    case PluginFieldType::kDIMS: return "dims";
    case PluginFieldType::kBF16: return "bfloat16";
    case PluginFieldType::kINT64: return "int64";
    case PluginFieldType::kFP8: return "fp8";
    case PluginFieldType::kINT4: return "int4";
    case PluginFieldType::kFP4: return "fp4";
    default: return "unknown";
  }
}

template <typename T>
T read(const void* data) {
  T v;
  std::memcpy(&v, data, sizeof(T));  // field data need not be aligned
  return v;
}

// One field as the core's GivenAttr (text points into the field's data). Only
// the types that hold an attribute's value exactly are read: floats as float32
// or float64, integers as int8..int64, strings as char (trailing NULs dropped).
Status given_of(const OpSpec& spec, const PluginField& f, GivenAttr* out) {
  out->name = f.name;
  if (f.length < 0 || (f.length > 0 && f.data == nullptr))
    return InvalidArgument(spec.op, ": field '", f.name, "' has no data (length ", f.length, ")");
  if (f.type == PluginFieldType::kCHAR) {
    std::string_view text(static_cast<const char*>(f.data), f.data ? f.length : 0);
    while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
    out->type = GivenType::kString;
    out->text = text;
    return Status::Ok();
  }
  if (f.length != 1)
    return InvalidArgument(spec.op, ": field '", f.name, "' must hold one value, got ", f.length);
  switch (f.type) {
    case PluginFieldType::kFLOAT32: out->type = GivenType::kFloat; out->number = read<float>(f.data); break;
    case PluginFieldType::kFLOAT64: out->type = GivenType::kFloat; out->number = read<double>(f.data); break;
    case PluginFieldType::kINT8: out->type = GivenType::kInt; out->number = read<int8_t>(f.data); break;
    case PluginFieldType::kINT16: out->type = GivenType::kInt; out->number = read<int16_t>(f.data); break;
    case PluginFieldType::kINT32: out->type = GivenType::kInt; out->number = read<int32_t>(f.data); break;
    case PluginFieldType::kINT64: set_given_int(out, read<int64_t>(f.data)); break;
    default:
      return InvalidArgument(spec.op, ": field '", f.name, "' has type ", field_type_name(f.type),
                             "; expected float32, float64, int8..int64 or char");
  }
  return Status::Ok();
}

// A has_<input> declaration: int 0 or 1.
Status read_declaration(const OpSpec& spec, const GivenAttr& g, bool* out) {
  if (g.type != GivenType::kInt || (g.number != 0 && g.number != 1))
    return InvalidArgument(spec.op, ": field '", g.name, "' must be an int 0 or 1");
  *out = g.number == 1;
  return Status::Ok();
}

}  // namespace

PluginConfig default_config(const OpSpec& spec) {
  PluginConfig c;
  c.spec = &spec;
  c.attrs = default_attrs(spec);
  c.declared.assign(declared_inputs(spec).size(), false);
  return c;
}

Status parse_fields(const OpSpec& spec, const nvinfer1::PluginFieldCollection* fc,
                    PluginConfig* out) {
  *out = default_config(spec);
  const int n = fc ? fc->nbFields : 0;
  if (n < 0 || (n > 0 && fc->fields == nullptr))
    return InvalidArgument(spec.op, ": the field collection has ", n, " fields and no array");
  const std::vector<int> declared = declared_inputs(spec);
  std::vector<bool> seen(declared.size(), false);
  std::vector<GivenAttr> given;
  for (int i = 0; i < n; ++i) {
    const PluginField& f = fc->fields[i];
    if (f.name == nullptr) return InvalidArgument(spec.op, ": field ", i, " has no name");
    GivenAttr g;
    XPU_RETURN_IF_ERROR(given_of(spec, f, &g));
    size_t d = 0;
    while (d < declared.size() && g.name != declared_field_name(spec, declared[d])) ++d;
    if (d == declared.size()) {
      given.push_back(g);  // an attribute or the policy: the core's rule decides
      continue;
    }
    if (seen[d]) return InvalidArgument(spec.op, ": field '", g.name, "' given twice");
    seen[d] = true;
    bool present = false;
    XPU_RETURN_IF_ERROR(read_declaration(spec, g, &present));
    out->declared[d] = present;
  }
  XPU_RETURN_IF_ERROR(parse_attrs(spec, given, /*onnx_names=*/true, &out->attrs, &out->policy));
  return Status::Ok();
}

FieldList::FieldList(const PluginConfig& config) {
  const OpSpec& spec = *config.spec;
  const std::vector<int> declared = declared_inputs(spec);
  const size_t n = spec.attrs.size() + 1 + declared.size();
  // Sized once: the fields point into these vectors.
  names_.reserve(n);
  texts_.reserve(n);
  numbers_.reserve(n);
  fields_.reserve(n);
  auto add_text = [&](std::string name, std::string text) {
    names_.push_back(std::move(name));
    texts_.push_back(std::move(text));
    fields_.emplace_back(names_.back().c_str(), texts_.back().c_str(), PluginFieldType::kCHAR,
                         static_cast<int32_t>(texts_.back().size()));
  };
  auto add_number = [&](std::string name, PluginFieldType type, Number value) {
    names_.push_back(std::move(name));
    numbers_.push_back(value);
    fields_.emplace_back(names_.back().c_str(), &numbers_.back(), type, 1);
  };
  for (size_t i = 0; i < spec.attrs.size(); ++i) {
    const AttrSpec& a = spec.attrs[i];
    const double v = config.attrs[i].number;
    Number num{};
    switch (a.type) {
      case AttrType::kString:
        add_text(a.onnx_name, config.attrs[i].text);
        continue;
      case AttrType::kFloat:
        num.f32 = static_cast<float>(v);
        add_number(a.onnx_name, PluginFieldType::kFLOAT32, num);
        continue;
      case AttrType::kInt:
      case AttrType::kBool:
        if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) {
          num.i32 = static_cast<int32_t>(v);
          add_number(a.onnx_name, PluginFieldType::kINT32, num);
        } else {
          num.i64 = static_cast<int64_t>(v);
          add_number(a.onnx_name, PluginFieldType::kINT64, num);
        }
        continue;
    }
  }
  add_text(kPolicy, std::string(policy_name(config.policy)));
  for (size_t d = 0; d < declared.size(); ++d) {
    Number num{};
    num.i32 = config.declared[d] ? 1 : 0;
    add_number(declared_field_name(spec, declared[d]), PluginFieldType::kINT32, num);
  }
  collection_.nbFields = static_cast<int32_t>(fields_.size());
  collection_.fields = fields_.data();
}

}  // namespace xpu::trt
