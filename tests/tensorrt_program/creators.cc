// Every forward op of the core has a creator and a case, with the fields the
// spec gives (ONNX names and types, the OPS.md defaults), policy and the has_
// declarations of outputs that exist only with an optional input.
#include <cstring>

#include "suites.h"
#include "xpuruntime/op_spec.h"

namespace xpu::trt_test {

namespace {

nvinfer1::PluginFieldType field_type(AttrType t) {
  switch (t) {
    case AttrType::kFloat: return nvinfer1::PluginFieldType::kFLOAT32;
    case AttrType::kString: return nvinfer1::PluginFieldType::kCHAR;
    default: return nvinfer1::PluginFieldType::kINT32;
  }
}

std::string default_text(const AttrSpec& a) {
  char buf[64];
  switch (a.type) {
    case AttrType::kString: return a.default_text;
    case AttrType::kFloat: std::snprintf(buf, sizeof buf, "%.9g", static_cast<float>(a.default_number)); return buf;
    default: return std::to_string(static_cast<int64_t>(a.default_number));
  }
}

}  // namespace

void check_creators(Library& lib, const std::vector<Case>& cases, Checks& checks) {
  int forwards = 0;
  for (const OpSpec* spec : all_specs()) {
    if (spec->direction != Direction::kForward) continue;
    ++forwards;
    const std::string name = spec->onnx_type;
    nvinfer1::IPluginCreatorV3One* c = lib.creator(name);
    if (!checks.check(c != nullptr, "a creator for " + name)) continue;
    checks.check(std::string(c->getPluginVersion()) == "1" && std::string(c->getPluginNamespace()) == "xpuruntime",
                 name + " creator version 1, namespace xpuruntime");
    bool has_case = false;
    for (const Case& k : cases) has_case |= k.plugin == name;
    checks.check(has_case, "a test case for " + name);
    // Expected fields: attributes, policy, has_<input> for inputs that decide a result.
    std::vector<std::string> names, values;
    std::vector<nvinfer1::PluginFieldType> types;
    for (const AttrSpec& a : spec->attrs) {
      names.push_back(a.onnx_name);
      types.push_back(field_type(a.type));
      values.push_back(default_text(a));
    }
    names.push_back("policy"), types.push_back(nvinfer1::PluginFieldType::kCHAR), values.push_back("fast");
    for (size_t i = 0; i < spec->inputs.size(); ++i) {
      bool decides = false;
      for (const OutputSpec& o : spec->outputs)
        decides |= o.use == OutputUse::kResult && o.present_if == static_cast<int>(i);
      if (!decides) continue;
      names.push_back(std::string("has_") + spec->inputs[i].name);
      types.push_back(nvinfer1::PluginFieldType::kINT32);
      values.push_back("0");
    }
    const nvinfer1::PluginFieldCollection* fc = c->getFieldNames();
    if (!checks.check(fc && fc->nbFields == static_cast<int>(names.size()),
                      name + " has " + std::to_string(names.size()) + " fields"))
      continue;
    for (size_t i = 0; i < names.size(); ++i) {
      const nvinfer1::PluginField& f = fc->fields[i];
      checks.check(names[i] == f.name && types[i] == f.type && field_value(f) == values[i],
                   name + " field " + std::to_string(i) + ": " + f.name + "=" + field_value(f) + ", want " +
                       names[i] + "=" + values[i]);
    }
  }
  checks.check(static_cast<int>(lib.creators().size()) == forwards,
               "one creator per forward op: " + std::to_string(lib.creators().size()) + " for " +
                   std::to_string(forwards));
}

}  // namespace xpu::trt_test
