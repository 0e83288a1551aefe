#include "bindings/onnxruntime/node_attributes.h"

#include <cstdlib>
#include <deque>
#include <vector>

#include "bindings/onnxruntime/ort_adapter.h"

namespace xpu::ort {
namespace {

// OrtStatus -> whether the call succeeded (the status is released).
bool ok(OrtStatus* st) {
  if (!st) return true;
  g_api->ReleaseStatus(st);
  return false;
}

enum class Found { kAbsent, kScalar, kOther };

// One attribute, typed as the model stored it. KernelInfo has no type query:
// each typed getter checks the stored type, so the one that succeeds names it;
// the array getters succeed for an attribute of any type, so they tell a list,
// tensor or graph from an absent attribute.
Found probe(const OrtKernelInfo* info, const char* name, GivenAttr* given, std::string* text) {
  float f = 0;
  if (ok(g_api->KernelInfoGetAttribute_float(info, name, &f))) {
    *given = {name, GivenType::kFloat, f};
    return Found::kScalar;
  }
  int64_t i = 0;
  if (ok(g_api->KernelInfoGetAttribute_int64(info, name, &i))) {
    *given = {name, GivenType::kInt};
    set_given_int(given, i);
    return Found::kScalar;
  }
  size_t size = 0;
  if (ok(g_api->KernelInfoGetAttribute_string(info, name, nullptr, &size))) {
    text->assign(size, '\0');
    if (size > 0 && !ok(g_api->KernelInfoGetAttribute_string(info, name, text->data(), &size)))
      return Found::kOther;
    while (!text->empty() && text->back() == '\0') text->pop_back();
    *given = {name, GivenType::kString, 0, *text};
    return Found::kScalar;
  }
  size_t count = 0;
  if (ok(g_api->KernelInfoGetAttributeArray_float(info, name, nullptr, &count)) ||
      ok(g_api->KernelInfoGetAttributeArray_int64(info, name, nullptr, &count)))
    return Found::kOther;
  return Found::kAbsent;
}

std::string node_name(const OrtKernelInfo* info) {
  size_t size = 0;
  if (!ok(g_api->KernelInfo_GetNodeName(info, nullptr, &size)) || size == 0) return "";
  std::string name(size, '\0');
  if (!ok(g_api->KernelInfo_GetNodeName(info, name.data(), &size))) return "";
  while (!name.empty() && name.back() == '\0') name.pop_back();
  return name;
}

// "a float", as the core's attribute errors say it.
std::string_view expected_type(const OpSpec& spec, std::string_view name) {
  for (const AttrSpec& a : spec.attrs) {
    if (name != a.onnx_name) continue;
    switch (a.type) {
      case AttrType::kFloat: return "a float";
      case AttrType::kInt: return "an int";
      case AttrType::kBool: return "a bool (or int 0/1)";
      default: return "a string";
    }
  }
  return "a string";  // policy
}

// The node's attributes through parse_attrs, then XPURUNTIME_POLICY when the node
// names no policy.
Status read_attributes(const OrtKernelInfo* info, const OpSpec& spec, NodeAttributes* out) {
  std::vector<GivenAttr> given;
  std::deque<std::string> texts;  // stable: GivenAttr::text points here
  bool has_policy = false;
  auto read = [&](const char* name, bool known) -> Status {
    GivenAttr g;
    const Found found = probe(info, name, &g, &texts.emplace_back());
    if (found == Found::kAbsent) return Status::Ok();
    if (found == Found::kOther && known)
      return InvalidArgument(spec.op, ": attribute '", name, "' must be ",
                             expected_type(spec, name), ", got a list, tensor or graph");
    if (found == Found::kOther) g = {name, GivenType::kString};  // unknown: refused by name
    has_policy |= g.name == "policy";
    given.push_back(g);
    return Status::Ok();
  };
  for (const AttrSpec& a : spec.attrs) {
    XPU_RETURN_IF_ERROR(read(a.onnx_name, true));
    // The Python keyword in an ONNX node is the likeliest misspelling (eps for epsilon).
    if (std::string_view(a.name) != a.onnx_name) XPU_RETURN_IF_ERROR(read(a.name, false));
  }
  XPU_RETURN_IF_ERROR(read("policy", true));
  out->policy = Policy::kFast;
  XPU_RETURN_IF_ERROR(parse_attrs(spec, given, /*onnx_names=*/true, &out->values, &out->policy));

  const char* env = std::getenv("XPURUNTIME_POLICY");
  if (has_policy || !env || !*env) return Status::Ok();
  const Status s = parse_policy(spec, env, &out->policy);
  return s.ok() ? s : Status(s.code(), str_cat(s.message(), " (from XPURUNTIME_POLICY)"));
}

}  // namespace

Status read_node_attributes(const OrtKernelInfo* info, const OpSpec& spec, NodeAttributes* out) {
  out->label = str_cat(spec.onnx_type, " node '", node_name(info), "'");
  const Status s = read_attributes(info, spec, out);
  return s.ok() ? s : Status(s.code(), str_cat(out->label, ": ", s.message()));
}

}  // namespace xpu::ort
