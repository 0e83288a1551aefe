// The one generic op binding: the specs as plain Python data, and call_op /
// workspace_bytes / output_descs for any op and direction of ffi/ops.def. The
// Python layer (xpuruntime/ops.py) allocates outputs and workspace from the spec
// in the caller's framework; this file only translates.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bindings/python/python_adapter.h"
#include "xpuruntime/dense_operands.h"
#include "xpuruntime/op_spec.h"

namespace xpu::python {
namespace {

Direction direction_of(const std::string& name) {
  if (name == "forward") return Direction::kForward;
  if (name != "backward")
    throw_if_error(InvalidArgument("unknown direction '", name, "'; expected forward or backward"));
  return Direction::kBackward;
}

const OpSpec& spec_of(const std::string& op, const std::string& direction) {
  const OpSpec* spec = find_spec(op, direction_of(direction));
  if (!spec) {
    std::string known;
    for (const OpSpec* s : all_specs())
      if (s->direction == Direction::kForward) known += str_cat(known.empty() ? "" : ", ", s->op);
    throw_if_error(InvalidArgument("unknown op '", op, "'; known ops: ", known));
  }
  return *spec;
}

// A Python int as a given attribute: beyond int64 its nearest double (+-inf beyond
// a double's range), marked inexact, which the core refuses naming the attribute.
void set_int(GivenAttr* g, PyObject* index) {
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(index, &overflow);
  if (overflow == 0) return set_given_int(g, static_cast<int64_t>(n));
  g->type = GivenType::kInt;
  g->exact = false;
  g->number = PyLong_AsDouble(index);
  if (g->number == -1.0 && PyErr_Occurred()) {  // beyond a double
    PyErr_Clear();
    g->number = overflow > 0 ? std::numeric_limits<double>::infinity()
                             : -std::numeric_limits<double>::infinity();
  }
}

// Python keyword values as given attributes. bool is checked before int (a
// Python bool is an int); numpy scalars come through __index__ / __float__.
// The strings stay owned by `keep` while the views are parsed.
// tp_name's form ("int", "numpy.bool") from __module__ and __name__: PyTypeObject
// is opaque in the stable ABI (abi3 builds), and nb::type_name drops the module.
std::string python_type_name(nb::handle value) {
  nb::handle type = value.type();
  const std::string name = nb::cast<std::string>(nb::str(nb::getattr(type, "__name__", nb::str("?"))));
  const std::string module = nb::cast<std::string>(nb::str(nb::getattr(type, "__module__", nb::str(""))));
  return module.empty() || module == "builtins" ? name : module + "." + name;
}

std::vector<GivenAttr> given_attrs(const OpSpec& spec, const nb::dict& attrs,
                                   std::deque<std::string>* keep) {
  std::vector<GivenAttr> out;
  for (auto [key, value] : attrs) {
    keep->push_back(nb::cast<std::string>(nb::str(key)));
    GivenAttr g{keep->back(), GivenType::kFloat};
    PyObject* v = value.ptr();
    const std::string type_name = python_type_name(value);
    auto refuse = [&](std::string_view why) {  // a Python type no attribute takes
      throw_type_error(str_cat(spec.op, ": attribute '", keep->back(), "' ", why, ", got ", type_name));
    };
    if (keep->back() == "policy" && !PyUnicode_Check(v)) refuse("must be a string");
    if (PyBool_Check(v) || type_name == "numpy.bool" || type_name == "numpy.bool_") {
      g.type = GivenType::kBool;  // numpy's bool is no int (and has __float__)
      g.number = PyObject_IsTrue(v) == 1 ? 1 : 0;
    } else if (PyLong_Check(v) || (!PyFloat_Check(v) && PyIndex_Check(v))) {
      nb::object index = nb::steal(PyNumber_Index(v));
      if (!index.is_valid()) {
        PyErr_Clear();
        refuse("must be a bool, int, float or str (its __index__ failed)");
      }
      set_int(&g, index.ptr());
    } else if (PyFloat_Check(v) || PyObject_HasAttrString(v, "__float__")) {
      g.number = PyFloat_AsDouble(v);
      if (g.number == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        refuse("must be a bool, int, float or str (its __float__ failed)");
      }
    } else if (PyUnicode_Check(v)) {
      g.type = GivenType::kString;
      keep->push_back(nb::cast<std::string>(value));
      g.text = keep->back();
    } else {
      refuse("must be a bool, int, float or str");
    }
    out.push_back(g);
  }
  return out;
}

AttrValues parse(const OpSpec& spec, const nb::dict& attrs, const std::string* policy,
                 Policy* parsed, bool onnx_names = false) {
  std::deque<std::string> keep;  // stable addresses for the string views
  std::vector<GivenAttr> given = given_attrs(spec, attrs, &keep);
  if (policy) given.push_back({"policy", GivenType::kString, 0, *policy});
  AttrValues values;
  throw_if_error(parse_attrs(spec, given, onnx_names, &values, parsed));
  return values;
}

// One parsed value as the Python type of its attribute.
nb::object attr_value(const AttrSpec& a, const AttrValue& v) {
  switch (a.type) {
    case AttrType::kFloat: return nb::float_(v.number);
    case AttrType::kInt: return nb::int_(static_cast<int64_t>(v.number));
    case AttrType::kBool: return nb::bool_(v.number != 0);
    default: return nb::str(v.text.c_str());
  }
}

// Every attribute of the spec (defaults filled in) after the one attribute rule,
// plus "policy" when one was given.
nb::dict parse_to_dict(const std::string& op, const std::string& direction,
                       const nb::dict& attrs, bool onnx_names) {
  const OpSpec& spec = spec_of(op, direction);
  Policy policy = Policy::kFast;
  bool has_policy = attrs.contains("policy");
  const AttrValues values = parse(spec, attrs, nullptr, &policy, onnx_names);
  nb::dict out;
  for (size_t i = 0; i < spec.attrs.size(); ++i)
    out[onnx_names ? spec.attrs[i].onnx_name : spec.attrs[i].name] =
        attr_value(spec.attrs[i], values[i]);
  if (has_policy) out["policy"] = std::string(policy_name(policy));
  return out;
}

// The arrays of one call (None: absent) as operands of any rank, kept alive (the
// imports and their dims) while the op runs.
struct Imported {
  std::vector<Array> keep;
  std::deque<ArrayDims> dims;  // stable addresses: the tensors' spans point here
  std::vector<DenseTensor> tensors;
};
void import(const OpSpec& spec, const nb::list& arrays, const char* what, Imported* out) {
  for (nb::handle item : arrays) {
    const size_t k = out->tensors.size();
    DenseTensor& t = out->tensors.emplace_back();
    if (item.is_none()) continue;
    Array a;
    if (!nb::try_cast(item, a))
      throw_if_error(InvalidArgument(spec.op, ": ", what, " ", k, " is not a DLPack array (got ",
                                     nb::cast<std::string>(nb::str(item.type())), ")"));
    out->keep.push_back(a);
    if (Status s = tensor_of(a, &out->dims.emplace_back(), &t); !s.ok())
      throw_if_error(Status(s.code(), str_cat(spec.op, ": ", what, " ", k, ": ", s.message())));
  }
}

// Shapes (and dtypes) of one call as the adapters see them: operands that carry no
// data (workspace sizes, output inference and validation read none), leading axes
// past kMaxDims folded by DenseOperands.
struct ShapeOnlyCall {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<DenseTensor> dense;
  DenseOperands operands;
};
void shape_views(const OpSpec& spec, const nb::list& shapes, const nb::list* dtypes,
                 ShapeOnlyCall* call) {
  if (shapes.size() != spec.inputs.size() || (dtypes && dtypes->size() != shapes.size()))
    throw_if_error(InvalidArgument(spec.op, ": expected ", spec.inputs.size(),
                                   " input shapes and dtypes, got ", shapes.size()));
  call->dense.assign(shapes.size(), DenseTensor{});
  call->shapes.assign(shapes.size(), {});
  for (size_t i = 0; i < shapes.size(); ++i) {
    nb::handle item = shapes[i];
    if (item.is_none()) continue;
    DenseTensor& t = call->dense[i];
    call->shapes[i] = nb::cast<std::vector<int64_t>>(item);
    t.shape = call->shapes[i];
    t.present = true;
    if (!dtypes) continue;
    const std::string name = nb::cast<std::string>((*dtypes)[i]);
    t.dtype = dtype_from_name(name);
    if (t.dtype == DType::kInvalid)
      throw_type_error(str_cat(spec.op, ": '", spec.inputs[i].name, "' has dtype ", name,
                               ", which no xpuruntime op takes"));
  }
  throw_if_error(call->operands.set_inputs(spec, call->dense));
}

nb::object number_or_none(double v) {
  if (v == kUnbounded || v == -kUnbounded) return nb::none();
  return nb::float_(v);
}

nb::dict attr_dict(const AttrSpec& a) {
  nb::dict d;
  d["name"] = a.name;
  d["onnx_name"] = a.onnx_name;
  d["type"] = std::string(attr_type_name(a.type));
  switch (a.type) {
    case AttrType::kFloat: d["default"] = nb::float_(a.default_number); break;
    case AttrType::kInt: d["default"] = nb::int_(static_cast<int64_t>(a.default_number)); break;
    case AttrType::kBool: d["default"] = nb::bool_(a.default_number != 0); break;
    case AttrType::kString: d["default"] = nb::str(a.default_text); break;
  }
  d["required"] = attr_required(a);
  d["min"] = number_or_none(a.min);
  d["max"] = number_or_none(a.max);
  if (a.choices) {
    nb::list choices;
    std::string_view all = a.choices;
    size_t start = 0;
    for (size_t bar; (bar = all.find('|', start)) != std::string_view::npos; start = bar + 1)
      choices.append(nb::str(all.data() + start, bar - start));
    choices.append(nb::str(all.data() + start, all.size() - start));
    d["choices"] = nb::tuple(choices);
  } else {
    d["choices"] = nb::none();
  }
  return d;
}

nb::list op_specs() {
  nb::list out;
  for (const OpSpec* s : all_specs()) {
    nb::dict d;
    d["op"] = s->op;
    d["onnx_type"] = s->onnx_type;
    d["direction"] = std::string(direction_name(s->direction));
    d["revision"] = s->revision;
    d["xla_target"] = xla_target_name(*s);
    nb::list inputs, outputs, attrs;
    for (const InputSpec& i : s->inputs) {
      nb::dict e;
      e["name"] = i.name;
      e["role"] = std::string(role_name(i.role));
      e["dtype"] = std::string(dtype_rule_name(i.dtype));
      e["optional"] = i.optional;
      e["strided"] = i.strided;
      inputs.append(e);
    }
    for (const OutputSpec& o : s->outputs) {
      nb::dict e;
      e["name"] = o.name;
      e["shape"] = std::string(shape_rule_name(o.shape));
      e["ref"] = o.ref;
      e["dtype"] = std::string(output_dtype_name(o.dtype));
      e["use"] = std::string(output_use_name(o.use));
      e["present_if"] = o.present_if >= 0 ? nb::object(nb::int_(o.present_if)) : nb::none();
      e["attr"] = o.attr ? nb::object(nb::str(o.attr)) : nb::none();
      outputs.append(e);
    }
    for (const AttrSpec& a : s->attrs) attrs.append(attr_dict(a));
    d["inputs"] = inputs;
    d["outputs"] = outputs;
    d["attrs"] = attrs;
    d["has_workspace"] = s->workspace_bytes != nullptr;
    out.append(d);
  }
  return out;
}

void call(const std::string& op, const std::string& direction, const nb::list& inputs,
          const nb::list& outputs, nb::handle workspace, const nb::dict& attrs,
          const std::string& policy, uintptr_t stream) {
  const OpSpec& spec = spec_of(op, direction);
  ExecContext ctx;
  ctx.stream = reinterpret_cast<void*>(stream);
  const AttrValues values = parse(spec, attrs, &policy, &ctx.policy);
  Imported in, out, ws;
  import(spec, inputs, "input", &in);
  import(spec, outputs, "output", &out);
  nb::list ws_list;
  ws_list.append(workspace);
  import(spec, ws_list, "workspace", &ws);
  // Leading axes past kMaxDims fold here, as in every adapter (DenseOperands).
  DenseOperands operands;
  throw_if_error(operands.set_inputs(spec, in.tensors));
  std::vector<TensorView> out_views(out.tensors.size());
  for (size_t j = 0; j < out_views.size() && j < spec.outputs.size(); ++j)
    throw_if_error(operands.output_view(spec, j, out.tensors[j], &out_views[j]));
  TensorView ws_view;
  const DenseTensor& w = ws.tensors[0];
  if (w.present && !strided_view_folded(w.data, w.dtype, w.shape.data(), w.strides.data(),
                                        static_cast<int>(w.shape.size()), 0, w.device, &ws_view))
    throw_if_error(InvalidArgument(spec.op, ": the workspace must be a 1-d array"));
  const std::vector<TensorView>& in_views = operands.inputs();
  nogil([&] { return call_op(spec, in_views, out_views, ws_view, values, ctx); });
}

int64_t workspace(const std::string& op, const std::string& direction,
                  const nb::list& input_shapes, const nb::dict& attrs) {
  const OpSpec& spec = spec_of(op, direction);
  const AttrValues values = parse(spec, attrs, nullptr, nullptr);
  ShapeOnlyCall call;
  shape_views(spec, input_shapes, nullptr, &call);
  return workspace_bytes(spec, call.operands.inputs(), values);
}

nb::list output_descs(const std::string& op, const std::string& direction,
                      const nb::list& input_shapes, const nb::list& input_dtypes,
                      const nb::dict& attrs) {
  const OpSpec& spec = spec_of(op, direction);
  const AttrValues values = parse(spec, attrs, nullptr, nullptr);
  ShapeOnlyCall call;
  shape_views(spec, input_shapes, &input_dtypes, &call);
  std::vector<OutputDesc> descs;
  throw_if_error(infer_outputs(spec, call.operands.inputs(), values, &descs));
  nb::list out;
  for (size_t j = 0; j < descs.size(); ++j) {
    const OutputDesc& d = descs[j];
    if (d.ndim < 0) {
      out.append(nb::none());
      continue;
    }
    nb::list shape;
    for (int64_t n : call.operands.output_shape(spec, j, d)) shape.append(n);
    out.append(nb::make_tuple(nb::tuple(shape), std::string(dtype_name(d.dtype))));
  }
  return out;
}

// {rule name: [the dtype names dtype_allowed admits]} for every DTypeRule.
nb::dict dtype_rules() {
  nb::dict out;
  for (DTypeRule r : {DTypeRule::kFloat, DTypeRule::kFloatOrF32, DTypeRule::kIndex,
                      DTypeRule::kF32, DTypeRule::kI32}) {
    nb::list names;
    for (DType t : kAllDTypes)
      if (dtype_allowed(r, t)) names.append(std::string(dtype_name(t)));
    out[std::string(dtype_rule_name(r)).c_str()] = nb::tuple(names);
  }
  return out;
}

// check_dtypes for dtype names (None: absent); its message, or None when they fit.
nb::object dtype_error(const std::string& op, const std::string& direction,
                       const nb::list& dtype_names) {
  const OpSpec& spec = spec_of(op, direction);
  std::vector<DType> dtypes(dtype_names.size(), DType::kInvalid);
  std::unique_ptr<bool[]> present(new bool[dtype_names.size()]);
  for (size_t i = 0; i < dtype_names.size(); ++i) {
    present[i] = !dtype_names[i].is_none();
    if (!present[i]) continue;
    dtypes[i] = dtype_from_name(nb::cast<std::string>(dtype_names[i]));
  }
  const Status s = check_dtypes(spec, dtypes, {present.get(), dtype_names.size()});
  return s.ok() ? nb::none() : nb::object(nb::str(s.message().c_str()));
}

// Whether a strided tensor of any rank is walkable as rows (as_rows, after the
// leading axes past kMaxDims fold as DenseOperands folds them).
bool walkable_as_rows(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  if (shape.size() != strides.size()) return false;
  TensorView v;
  RowLayout rows;
  return strided_view_folded(nullptr, DType::kF32, shape.data(), strides.data(),
                             static_cast<int>(shape.size()), 0, Device{}, &v) &&
         as_rows(v, &rows);
}

// The core's checks of one call from shapes and dtypes alone: the spec's dtype
// rules (InvalidArgumentTypeError), then everything else the entry point checks
// (InvalidArgumentError), in the words of a run-time error.
void validate(const std::string& op, const std::string& direction, const nb::list& input_shapes,
              const nb::list& input_dtypes, const nb::dict& attrs) {
  const OpSpec& spec = spec_of(op, direction);
  const AttrValues values = parse(spec, attrs, nullptr, nullptr);
  ShapeOnlyCall call;
  shape_views(spec, input_shapes, &input_dtypes, &call);
  std::vector<DType> dtypes;
  std::unique_ptr<bool[]> present(new bool[call.dense.size()]);
  for (size_t i = 0; i < call.dense.size(); ++i) {
    dtypes.push_back(call.dense[i].dtype);
    present[i] = call.dense[i].present;
  }
  if (Status s = check_dtypes(spec, dtypes, {present.get(), call.dense.size()}); !s.ok())
    throw_type_error(s.message());
  throw_if_error(validate_call(spec, call.dense, values));
}

}  // namespace

void bind_op_call(nb::module_& m) {
  m.def("op_specs", &op_specs,
        "Every op spec (forward and backward of each op of ffi/ops.def) as plain dicts.");
  m.def("call_op", &call, nb::arg("op"), nb::arg("direction"), nb::arg("inputs"),
        nb::arg("outputs"), nb::arg("workspace").none(), nb::arg("attrs"), nb::arg("policy"),
        nb::arg("stream"),
        "Runs one op and direction on DLPack arrays (None: absent), writing into `outputs`. "
        "`attrs` holds Python keywords; an unknown or invalid one raises InvalidArgumentError.");
  m.def("parse_attrs", &parse_to_dict, nb::arg("op"), nb::arg("direction"), nb::arg("attrs"),
        nb::arg("onnx_names") = false,
        "Every attribute of the spec after the one attribute rule (defaults filled in, values "
        "as float / int / bool / str), plus 'policy' when given; raises InvalidArgumentError.");
  m.def("workspace_bytes", &workspace, nb::arg("op"), nb::arg("direction"),
        nb::arg("input_shapes"), nb::arg("attrs"),
        "Scratch bytes of one call, from the input shapes (None: absent) and attributes.");
  m.def("output_descs", &output_descs, nb::arg("op"), nb::arg("direction"),
        nb::arg("input_shapes"), nb::arg("input_dtypes"), nb::arg("attrs"),
        "[(shape, dtype) or None per output], inferred by the C++ core from the spec.");
  m.def("dtype_rules", &dtype_rules,
        "{dtype rule: the dtype names it admits} (the rule on its own; kFloat inputs of one "
        "call also share one dtype).");
  m.def("dtype_error", &dtype_error, nb::arg("op"), nb::arg("direction"), nb::arg("dtypes"),
        "The error of the spec's dtype rules for these input dtype names (None: absent), or "
        "None when they fit.");
  m.def("walkable_as_rows", &walkable_as_rows, nb::arg("shape"), nb::arg("strides"),
        "Whether the core reads a tensor of this shape and strides (in elements) as rows "
        "without a copy.");
  m.def("validate", &validate, nb::arg("op"), nb::arg("direction"), nb::arg("input_shapes"),
        nb::arg("input_dtypes"), nb::arg("attrs"),
        "Every check of one call its input shapes and dtypes (None: absent) decide, as the op "
        "makes them when it runs: InvalidArgumentTypeError for a dtype its rules refuse, "
        "InvalidArgumentError for the rest.");
}

}  // namespace xpu::python
