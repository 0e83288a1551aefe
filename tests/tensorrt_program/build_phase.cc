// Build-phase checks of one case: shapes through the test's IExprBuilder (static
// and symbolic), dtypes, format combinations, configurePlugin / onShapeChange
// accepting valid shapes and refusing bad ones with a message naming the op and
// the input, workspace sizes against the core's, fields round trip.
#include <algorithm>
#include <memory>

#include "bindings/tensorrt/descriptors.h"
#include "expr.h"
#include "suites.h"
#include "xpuruntime/op_spec.h"

namespace xpu::trt_test {

using nvinfer1::DataType;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorFormat;

namespace {

bool logged(Library& lib, const std::vector<std::string>& parts) {
  for (const std::string& m : lib.logger().take()) {
    bool all = true;
    for (const std::string& p : parts) all &= m.find(p) != std::string::npos;
    if (all) return true;
  }
  return false;
}

std::vector<DynamicPluginTensorDesc> dynamic_descs(const std::vector<nvinfer1::Dims>& value,
                                                   const std::vector<nvinfer1::Dims>& declared,
                                                   const std::vector<nvinfer1::Dims>& min,
                                                   const std::vector<nvinfer1::Dims>& max,
                                                   const std::vector<DataType>& types) {
  std::vector<DynamicPluginTensorDesc> out(types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    out[i].desc.dims = declared[i];
    out[i].desc.type = types[i];
    out[i].desc.format = TensorFormat::kLINEAR;
    out[i].desc.scale = -1.f;
    out[i].min = min[i];
    out[i].opt = value[i];
    out[i].max = max[i];
  }
  return out;
}

struct Descs {
  std::vector<DynamicPluginTensorDesc> in, out;
};

// Inputs and outputs of a case with one bound for min, opt and max (or a profile).
Descs descs(const Case& c, const Dtypes& d, bool profile, int bad = -1, const Shape* bad_shape = nullptr) {
  auto shape_of = [&](size_t i) -> const Shape& {
    return static_cast<int>(i) == bad ? *bad_shape : c.inputs[i].shape;
  };
  std::vector<nvinfer1::Dims> v, decl, lo, hi;
  std::vector<DataType> types;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    v.push_back(dims_of(shape_of(i), Bound::kValue));
    decl.push_back(dims_of(shape_of(i), profile ? Bound::kDeclared : Bound::kValue));
    lo.push_back(dims_of(shape_of(i), profile ? Bound::kMin : Bound::kValue));
    hi.push_back(dims_of(shape_of(i), profile ? Bound::kMax : Bound::kValue));
    types.push_back(input_type(c.inputs[i], d));
  }
  Descs out;
  out.in = dynamic_descs(v, decl, lo, hi, types);
  v.clear(), decl.clear(), lo.clear(), hi.clear(), types.clear();
  for (const Output& o : c.outputs) {
    v.push_back(dims_of(o.shape, Bound::kValue));
    decl.push_back(dims_of(o.shape, profile ? Bound::kDeclared : Bound::kValue));
    lo.push_back(dims_of(o.shape, profile ? Bound::kMin : Bound::kValue));
    hi.push_back(dims_of(o.shape, profile ? Bound::kMax : Bound::kValue));
    types.push_back(output_type(o, d));
  }
  out.out = dynamic_descs(v, decl, lo, hi, types);
  return out;
}

std::vector<PluginTensorDesc> plain(const std::vector<DynamicPluginTensorDesc>& d) {
  std::vector<PluginTensorDesc> out;
  for (const auto& x : d) out.push_back(x.desc);
  return out;
}

void check_shapes(const Case& c, Plugin& p, bool symbolic, Checks& checks) {
  ExprBuilder builder;
  std::vector<nvinfer1::DimsExprs> in(c.inputs.size()), out(c.outputs.size());
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    in[i].nbDims = static_cast<int32_t>(c.inputs[i].shape.size());
    for (size_t k = 0; k < c.inputs[i].shape.size(); ++k) {
      const Dim& dim = c.inputs[i].shape[k];
      in[i].d[k] = symbolic && dim.symbolic ? static_cast<const nvinfer1::IDimensionExpr*>(builder.symbol(dim.name))
                                            : builder.number(dim.value);
    }
  }
  const std::string what = c.label + (symbolic ? " symbolic" : " static") + " getOutputShapes";
  const int rc = p.build()->getOutputShapes(in.data(), static_cast<int32_t>(in.size()), nullptr, 0,
                                            out.data(), static_cast<int32_t>(out.size()), builder);
  if (!checks.check(rc == 0, what + " returned " + std::to_string(rc))) return;
  for (size_t j = 0; j < c.outputs.size(); ++j) {
    std::string got = "[";
    for (int k = 0; k < out[j].nbDims; ++k) {
      got += (k ? ", " : "") + builder.text(out[j].d[k]);
      if (!symbolic) checks.check(out[j].d[k] && out[j].d[k]->isConstant(), what + " constant dims");
    }
    got += "]";
    const std::string want = shape_text(c.outputs[j].shape, symbolic);
    checks.check(got == want, what + " '" + c.outputs[j].name + "': " + got + ", want " + want);
  }
}

void check_dtypes(Library& lib, const Case& c, Plugin& p, Checks& checks) {
  auto* build = p.build();
  const int nin = static_cast<int>(c.inputs.size()), nout = static_cast<int>(c.outputs.size());
  for (const Dtypes& d : dtype_choices(c)) {
    const std::string what = c.label + " " + dtypes_text(c, d);
    std::vector<DataType> in_types, out_types(nout);
    for (const Input& in : c.inputs) in_types.push_back(input_type(in, d));
    const int rc = build->getOutputDataTypes(out_types.data(), nout, in_types.data(), nin);
    if (checks.check(rc == 0, what + " getOutputDataTypes returned " + std::to_string(rc)))
      for (int j = 0; j < nout; ++j)
        checks.check(out_types[j] == output_type(c.outputs[j], d),
                     what + " output '" + c.outputs[j].name + "' dtype " + type_text(out_types[j]));
    Descs all = descs(c, d, false);
    std::vector<DynamicPluginTensorDesc> io = all.in;
    io.insert(io.end(), all.out.begin(), all.out.end());
    for (int pos = 0; pos < nin + nout; ++pos)
      checks.check(build->supportsFormatCombination(pos, io.data(), nin, nout),
                   what + " accepted at position " + std::to_string(pos));
    // Refused: each position with a dtype the op does not take there, and a
    // non-linear format.
    for (int pos = 0; pos < nin + nout; ++pos) {
      std::vector<DataType> wrong{DataType::kINT8, DataType::kBOOL};
      if (pos < nin) {
        const Input& in = c.inputs[pos];
        bool first_float = true;
        for (int i = 0; i < pos; ++i) first_float &= c.inputs[i].kind != InKind::kFloat;
        if (in.kind == InKind::kLabels) wrong.push_back(DataType::kFLOAT);
        for (DataType f : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16}) {
          if (in.kind == InKind::kFloat && !first_float && f != d.flt) wrong.push_back(f);
          if (in.kind == InKind::kTable && f != d.flt && f != DataType::kFLOAT) wrong.push_back(f);
        }
      } else {
        const Output& o = c.outputs[pos - nin];
        for (DataType f : {DataType::kFLOAT, DataType::kHALF, DataType::kBF16, DataType::kINT32})
          if (f != output_type(o, d)) wrong.push_back(f);
      }
      for (DataType w : wrong) {
        std::vector<DynamicPluginTensorDesc> bad = io;
        bad[pos].desc.type = w;
        checks.check(!build->supportsFormatCombination(pos, bad.data(), nin, nout),
                     what + " refuses " + type_text(w) + " at position " + std::to_string(pos));
      }
      std::vector<DynamicPluginTensorDesc> bad = io;
      bad[pos].desc.format = TensorFormat::kCHW32;
      checks.check(!build->supportsFormatCombination(pos, bad.data(), nin, nout),
                   what + " refuses kCHW32 at position " + std::to_string(pos));
    }
  }
  // A wrong input dtype makes getOutputDataTypes fail with a message naming it.
  std::vector<DataType> in_types(nin, DataType::kINT8), out_types(nout);
  lib.logger().take();
  checks.check(build->getOutputDataTypes(out_types.data(), nout, in_types.data(), nin) != 0 &&
                   logged(lib, {c.plugin, "'" + c.inputs[0].name + "'", "int8"}),
               c.label + " getOutputDataTypes refuses int8 naming '" + c.inputs[0].name + "'");
}

// The core's workspace bytes at these dims: what getWorkspaceSize must give (its max over the bounds).
int64_t core_workspace(const OpSpec& spec, const Case& c, const Dtypes& d, Bound bound,
                       const AttrValues& attrs) {
  std::vector<TensorView> views(spec.inputs.size());
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const nvinfer1::Dims dims = dims_of(c.inputs[i].shape, bound);
    views[i] = dense_view(nullptr, trt::to_dtype(input_type(c.inputs[i], d)), dims.d, dims.nbDims, Device{});
  }
  return workspace_bytes(spec, views, attrs);
}

void check_configure(Library& lib, const Case& c, Plugin& p, Checks& checks) {
  auto* build = p.build();
  auto* runtime = p.runtime();
  const int nin = static_cast<int>(c.inputs.size()), nout = static_cast<int>(c.outputs.size());
  const OpSpec* spec = find_spec_by_onnx_type(c.plugin);
  AttrValues attrs;
  Policy policy = Policy::kFast;
  Fields fields = c.fields;
  const std::vector<GivenAttr> given = fields.given();
  checks.check(parse_attrs(*spec, given, true, &attrs, &policy).ok(), c.label + " fields parse in the core");
  for (const Dtypes& d : dtype_choices(c)) {
    const std::string what = c.label + " " + dtypes_text(c, d);
    for (bool profile : {false, true}) {
      Descs io = descs(c, d, profile);
      lib.logger().take();
      checks.check(build->configurePlugin(io.in.data(), nin, io.out.data(), nout) == 0 &&
                       lib.logger().take().empty(),
                   what + (profile ? " profile" : " static") + " configurePlugin accepts");
      const size_t ws = build->getWorkspaceSize(io.in.data(), nin, io.out.data(), nout);
      int64_t want = 0;
      for (Bound b : {Bound::kMin, Bound::kValue, Bound::kMax})
        want = std::max(want, core_workspace(*spec, c, d, profile ? b : Bound::kValue, attrs));
      checks.check(static_cast<int64_t>(ws) == want,
                   what + " getWorkspaceSize " + std::to_string(ws) + ", the core's " + std::to_string(want));
    }
    Descs io = descs(c, d, false);
    std::vector<PluginTensorDesc> in = plain(io.in), out = plain(io.out);
    checks.check(runtime->onShapeChange(in.data(), nin, out.data(), nout) == 0, what + " onShapeChange accepts");
    for (const BadShape& b : c.bad) {
      const std::string bad_what = what + " '" + c.inputs[b.input].name + "' " + shape_text(b.shape, false);
      Descs bad = descs(c, d, false, b.input, &b.shape);
      lib.logger().take();
      checks.check(build->configurePlugin(bad.in.data(), nin, bad.out.data(), nout) != 0 &&
                       logged(lib, {c.plugin, "configurePlugin", b.names}),
                   bad_what + " refused by configurePlugin naming " + b.names);
      std::vector<PluginTensorDesc> bin = plain(bad.in), bout = plain(bad.out);
      checks.check(runtime->onShapeChange(bin.data(), nin, bout.data(), nout) != 0 &&
                       logged(lib, {c.plugin, "onShapeChange", b.names}),
                   bad_what + " refused by onShapeChange naming " + b.names);
    }
  }
  // Wrong counts: one input too few, one output too many.
  const Dtypes d = dtype_choices(c).front();
  Descs io = descs(c, d, false);
  lib.logger().take();
  checks.check(build->configurePlugin(io.in.data(), nin - 1, io.out.data(), nout) != 0 &&
                   logged(lib, {c.plugin, "input"}),
               c.label + " configurePlugin refuses " + std::to_string(nin - 1) + " inputs");
  io.out.push_back(io.out.back());
  checks.check(build->configurePlugin(io.in.data(), nin, io.out.data(), nout + 1) != 0 &&
                   logged(lib, {c.plugin, "outputs"}),
               c.label + " configurePlugin refuses " + std::to_string(nout + 1) + " outputs");
}

// getFieldsToSerialize -> createPlugin(kRUNTIME) -> the same fields; clone and
// attachToContext keep them; the case's fields are among them with their values.
void check_fields(Library& lib, const Case& c, Plugin& p, Checks& checks) {
  nvinfer1::IPluginCreatorV3One* creator = lib.creator(c.plugin);
  const nvinfer1::PluginFieldCollection* fc = p.runtime()->getFieldsToSerialize();
  if (!checks.check(fc != nullptr, c.label + " getFieldsToSerialize")) return;
  const std::string first = serialized(fc);
  const nvinfer1::PluginFieldCollection* names = creator->getFieldNames();
  bool same_names = names->nbFields == fc->nbFields;
  for (int i = 0; same_names && i < fc->nbFields; ++i)
    same_names = std::string(names->fields[i].name) == fc->fields[i].name;
  checks.check(same_names, c.label + " serializes every creator field, in order");
  Fields fields = c.fields;
  const nvinfer1::PluginFieldCollection* given = fields.collection();
  for (int g = 0; g < given->nbFields; ++g) {
    bool found = false;
    for (int i = 0; i < fc->nbFields; ++i)
      if (std::string(fc->fields[i].name) == given->fields[g].name)
        found = field_value(fc->fields[i]) == field_value(given->fields[g]);
    checks.check(found, c.label + " serializes field '" + given->fields[g].name + "' with its value");
  }
  Plugin runtime_plugin(creator->createPlugin(c.label.c_str(), fc, nvinfer1::TensorRTPhase::kRUNTIME));
  if (checks.check(runtime_plugin.plugin != nullptr, c.label + " createPlugin(kRUNTIME) from serialized fields")) {
    checks.check(serialized(runtime_plugin.runtime()->getFieldsToSerialize()) == first,
                 c.label + " round trip keeps the fields");
    checks.check(std::string(runtime_plugin.core()->getPluginName()) == c.plugin,
                 c.label + " runtime plugin's name");
  }
  Plugin copy(p.plugin->clone());
  checks.check(copy.plugin && serialized(copy.runtime()->getFieldsToSerialize()) == first,
               c.label + " clone keeps the fields");
  Plugin attached(p.runtime()->attachToContext(nullptr));
  checks.check(attached.plugin && serialized(attached.runtime()->getFieldsToSerialize()) == first,
               c.label + " attachToContext keeps the fields");
}

// Without a GPU, enqueue fails with a logged message and returns non-zero.
void check_enqueue_fails_cleanly(Library& lib, const Case& c, Plugin& p, Checks& checks) {
  const int nin = static_cast<int>(c.inputs.size()), nout = static_cast<int>(c.outputs.size());
  Descs io = descs(c, dtype_choices(c).front(), false);
  std::vector<PluginTensorDesc> in = plain(io.in), out = plain(io.out);
  std::vector<const void*> ins(nin, nullptr);
  std::vector<void*> outs(nout, nullptr);
  p.runtime()->onShapeChange(in.data(), nin, out.data(), nout);
  lib.logger().take();
  checks.check(p.runtime()->enqueue(in.data(), out.data(), ins.data(), outs.data(), nullptr, nullptr) != 0 &&
                   logged(lib, {c.plugin, "enqueue"}),
               c.label + " enqueue without a GPU returns non-zero and logs");
}

}  // namespace

void check_build_phase(Library& lib, const Case& c, Checks& checks) {
  nvinfer1::IPluginCreatorV3One* creator = lib.creator(c.plugin);
  if (!checks.check(creator != nullptr, c.label + ": creator " + c.plugin)) return;
  Fields fields = c.fields;
  Plugin p(creator->createPlugin(c.label.c_str(), fields.collection(), nvinfer1::TensorRTPhase::kBUILD));
  if (!checks.check(p.plugin != nullptr, c.label + " createPlugin(kBUILD, " + fields.describe() + ")")) return;
  checks.check(p.core() && p.build() && p.runtime(), c.label + " has core, build and runtime capabilities");
  checks.check(std::string(p.core()->getPluginName()) == c.plugin &&
                   std::string(p.core()->getPluginVersion()) == "1" &&
                   std::string(p.core()->getPluginNamespace()) == "xpuruntime",
               c.label + " name, version, namespace");
  checks.check(p.build()->getNbOutputs() == static_cast<int>(c.outputs.size()), c.label + " getNbOutputs");
  check_shapes(c, p, false, checks);
  check_shapes(c, p, true, checks);
  check_dtypes(lib, c, p, checks);
  check_configure(lib, c, p, checks);
  check_fields(lib, c, p, checks);
  if (!have_gpu()) check_enqueue_fails_cleanly(lib, c, p, checks);
}

}  // namespace xpu::trt_test
