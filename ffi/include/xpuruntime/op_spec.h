// The op spec: each op and direction is described once, next to its validation,
// and every frontend (native Python, torch real and fake, JAX result types and
// batching, ONNX Runtime schemas, TensorRT plugins) is generic code over it.
//
// A spec is plain data plus two functions: `run` maps positional TensorViews and
// attribute values onto the op's Args struct and calls its one entry point;
// `workspace_bytes` sizes its scratch. Output shapes and dtypes are *rules*
// (data), not code, so that symbolic evaluators (torch fake tensors, JAX shape
// polymorphism, TensorRT's IExprBuilder) can apply them to symbolic dimensions.
//
// Conventions every spec follows (frontends rely on them):
// - Forward outputs: the kResult outputs first (what the op returns, in OPS.md /
//   ONNX order), then the kSaved outputs (row statistics for the backward).
// - Backward inputs: the gradient of the forward's first result, then the forward
//   inputs the backward reads (forward order), then the forward outputs it reads
//   (saved or result, forward order), then gradients of further, optional results
//   (rms_norm's dh). E.g. rms_norm (dy, x, weight, dh?), layer_norm
//   (dy, x, weight, mean, rstd), softmax (dy, y), rope (dy, cos, sin), swiglu /
//   geglu (dy, gate, up), cross_entropy (dloss, logits, labels, lse). rms_norm's
//   backward recomputes rstd from x (no extra bytes: it reads the row anyway) so that
//   JAX can drop a forward whose outputs are dead.
// - Backward outputs: gradients of the forward inputs that get one, in forward
//   order ("d" + the input's name): rms_norm (dx, dweight), layer_norm
//   (dx, dweight, dbias), rope (dx), cross_entropy (dlogits).
// - A backward spec takes the same attributes as its forward (the same list, so
//   autodiff frontends pass the forward's attributes unchanged), used or not.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "xpuruntime/exec_context.h"
#include "xpuruntime/registry.h"
#include "xpuruntime/status.h"
#include "xpuruntime/tensor_view.h"

namespace xpu {

// What an operand is to the op. Adapters use it for batching (vmap folds extra
// leading axes only into kRows/kRowStat/kLabels/kGrad operands), sharding and
// type constraints.
enum class Role : uint8_t {
  kRows,       // [..., N]: leading axes fold into rows (x, gate, up, logits, dy)
  kParameter,  // [N]: one value per column, shared by every row (weight, bias)
  kTable,      // [S, D/2]: rope's cos/sin, broadcast over batch and heads
  kLabels,     // [...]: one integer per row
  kRowStat,    // [...] f32, one per row: saved by the forward for the backward
  kScalar,     // a 0-d or loss-shaped f32 (cross_entropy's dloss)
};
constexpr std::string_view role_name(Role r) {
  switch (r) {
    case Role::kRows: return "rows";
    case Role::kParameter: return "parameter";
    case Role::kTable: return "table";
    case Role::kLabels: return "labels";
    case Role::kRowStat: return "row_stat";
    default: return "scalar";
  }
}

// Allowed dtypes of an input. Every kFloat operand of one call has the same
// dtype (the op's "float dtype"); the others are checked on their own.
enum class DTypeRule : uint8_t {
  kFloat,       // f32, f16 or bf16, the float dtype of the call
  kFloatOrF32,  // f32 or the call's float dtype (rope cos/sin)
  kIndex,       // int32 or int64
  kF32,
  kI32,
};
constexpr std::string_view dtype_rule_name(DTypeRule r) {
  switch (r) {
    case DTypeRule::kFloat: return "float";
    case DTypeRule::kFloatOrF32: return "float_or_f32";
    case DTypeRule::kIndex: return "index";
    case DTypeRule::kF32: return "f32";
    default: return "i32";
  }
}
// Whether `t` may be given for an input of this rule (the rule on its own: the
// "same float dtype" part of kFloat / kFloatOrF32 is checked by the entry point).
constexpr bool dtype_allowed(DTypeRule r, DType t) {
  switch (r) {
    case DTypeRule::kFloat: case DTypeRule::kFloatOrF32: return is_op_float(t);
    case DTypeRule::kIndex: return t == DType::kI32 || t == DType::kI64;
    case DTypeRule::kF32: return t == DType::kF32;
    default: return t == DType::kI32;
  }
}

struct OpSpec;
// The dtype rules of a spec on their own, for adapters that know dtypes before
// shapes (ONNX Runtime's kernel creation, TensorRT's format negotiation, JAX at
// trace time); the entry points enforce the same rules when they run.
// Whether input `pos` may have dtype `t` when the inputs before it have `before`
// (all present): its DTypeRule, every kFloat input of the call's float dtype (the
// first kFloat input's), kFloatOrF32 inputs float32 or that dtype.
bool input_dtype_ok(const OpSpec& spec, size_t pos, DType t, std::span<const DType> before);
// The same for a whole call (`present[i]` false: input i absent; empty: all present):
// InvalidArgument naming the op and the first input whose dtype breaks its rule,
// "softmax: 'x' must be float32, float16 or bfloat16, got int32".
Status check_dtypes(const OpSpec& spec, std::span<const DType> dtypes,
                    std::span<const bool> present = {});

struct InputSpec {
  const char* name;  // as in OPS.md and the error messages ("x", "weight", ...)
  Role role;
  DTypeRule dtype;
  bool optional = false;
  // The entry point reads this input through any strides of its leading axes (the
  // last axis contiguous), so adapters pass such a view as it is; otherwise a kRows
  // input must be walkable as rows (leading axes collapsing to one row stride) and
  // adapters copy other layouts.
  bool strided = false;
};

// Output shape as a function of one input (`ref`) and the attributes.
enum class ShapeRule : uint8_t {
  kLike,            // ref's shape
  kLeading,         // ref's shape without its last axis (one value per row)
  kLeadingAndAttr,  // ref's leading axes + [integer attribute `attr`] (topk's k)
  kLoss,            // ref's leading axes when string attribute `attr` is "none", else []
};
constexpr std::string_view shape_rule_name(ShapeRule r) {
  switch (r) {
    case ShapeRule::kLike: return "like";
    case ShapeRule::kLeading: return "leading";
    case ShapeRule::kLeadingAndAttr: return "leading_and_attr";
    default: return "loss";
  }
}

enum class OutputDType : uint8_t { kLikeRef, kF32, kI32 };
constexpr std::string_view output_dtype_name(OutputDType d) {
  return d == OutputDType::kLikeRef ? "like_ref" : d == OutputDType::kF32 ? "f32" : "i32";
}

// kResult outputs are what the op returns (ONNX/TensorRT outputs, in order);
// kSaved outputs exist only to feed the backward (autodiff frontends request
// them, inference frontends pass them absent).
enum class OutputUse : uint8_t { kResult, kSaved };
constexpr std::string_view output_use_name(OutputUse u) {
  return u == OutputUse::kResult ? "result" : "saved";
}

struct OutputSpec {
  const char* name;
  ShapeRule shape;
  int ref;  // index into the spec's inputs
  OutputDType dtype;
  OutputUse use = OutputUse::kResult;
  int present_if = -1;        // >= 0: exists only when that (optional) input is present
  const char* attr = nullptr;  // for kLeadingAndAttr / kLoss
};

enum class AttrType : uint8_t { kFloat, kInt, kBool, kString };
constexpr std::string_view attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::kFloat: return "float";
    case AttrType::kInt: return "int";
    case AttrType::kBool: return "bool";
    default: return "string";
  }
}
inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();

struct AttrSpec {
  const char* name;       // Python / JAX / torch keyword ("eps")
  const char* onnx_name;  // ONNX attribute and TensorRT field ("epsilon")
  AttrType type;
  double default_number = 0;         // kFloat / kInt / kBool
  const char* default_text = "";     // kString
  double min = -kUnbounded, max = kUnbounded;  // inclusive range (NaN always refused)
  const char* choices = nullptr;     // kString: allowed values, '|'-separated
};

// An attribute whose default lies outside its own range has no usable default
// (topk's k): parse_attrs refuses a call that leaves it out.
constexpr bool attr_required(const AttrSpec& a) {
  return a.type != AttrType::kString && !(a.default_number >= a.min && a.default_number <= a.max);
}

// One attribute value; numbers and bools live in `number`, strings in `text`.
struct AttrValue {
  double number = 0;
  std::string text;
};
using AttrValues = std::vector<AttrValue>;  // index-aligned with OpSpec::attrs

struct OpSpec;
using RunFn = Status (*)(const OpSpec& spec, std::span<const TensorView> inputs,
                         std::span<const TensorView> outputs, const TensorView& workspace,
                         const AttrValues& attrs, const ExecContext& ctx);
// Scratch bytes for these inputs (shapes only are read); nullptr: no workspace.
using WorkspaceFn = int64_t (*)(std::span<const TensorView> inputs, const AttrValues& attrs);

struct OpSpec {
  const char* op;         // "rms_norm"
  const char* onnx_type;  // "RMSNorm" (the forward's ONNX op type / TensorRT plugin name)
  Direction direction;
  std::span<const InputSpec> inputs;
  std::span<const OutputSpec> outputs;
  std::span<const AttrSpec> attrs;  // the policy is not listed: every op takes one
  WorkspaceFn workspace_bytes = nullptr;
  RunFn run = nullptr;
  // Revision of this direction's operands and outputs, bumped when they change
  // meaning (rms_norm's backward no longer reading a saved rstd): serialized programs
  // (jax.export) name their targets, so a program made against the old operands then
  // finds no target instead of computing something else. Part of the XLA target name.
  int revision = 1;
};

// The XLA custom-call target of a spec: "xpuruntime_<op>_fwd" / "_bwd", and "_v<revision>"
// past the first revision.
std::string xla_target_name(const OpSpec& spec);

// Every spec, forward and backward of every op in ffi/ops.def, in that order.
std::span<const OpSpec* const> all_specs();
// nullptr when there is no such op.
const OpSpec* find_spec(std::string_view op, Direction direction);
const OpSpec* find_spec_by_onnx_type(std::string_view onnx_type);  // forwards only

// One attribute given by a frontend, before checking: what the caller passed.
enum class GivenType : uint8_t { kFloat, kInt, kBool, kString };
struct GivenAttr {
  std::string_view name;
  GivenType type;
  double number = 0;  // an integer beyond a double's range: +-inf
  std::string_view text;
  bool exact = true;  // false: an integer the double does not hold exactly (beyond +-2^53)
};

// An integer value as a given attribute (every adapter's integers come through here,
// so that one beyond +-2^53, which the double rounds, is refused by parse_attrs).
template <typename Int>
  requires std::is_integral_v<Int>
void set_given_int(GivenAttr* g, Int v) {
  constexpr int64_t kExact = int64_t{1} << 53;
  g->type = GivenType::kInt;
  g->number = static_cast<double>(v);
  if constexpr (std::is_signed_v<Int>)
    g->exact = static_cast<int64_t>(v) >= -kExact && static_cast<int64_t>(v) <= kExact;
  else
    g->exact = static_cast<uint64_t>(v) <= static_cast<uint64_t>(kExact);
}

// The one attribute rule of every frontend: an unknown name, a value of the wrong
// type, NaN, a number out of range or a string not among the choices is an
// InvalidArgument naming the op and the attribute. An int is accepted for a float
// attribute, a bool for an int attribute and an int 0/1 for a bool attribute;
// nothing else is converted. Integer attributes hold integers in [-2^53, 2^53]
// (exact in the double they travel in; see set_given_int). Absent attributes take their default, except a
// required one (attr_required), which is an InvalidArgument "op: attribute 'k' is
// required". `onnx_names`
// selects which names the caller speaks (ONNX/TensorRT fields or Python keywords).
// The `policy` attribute, if given, is parsed into *policy.
Status parse_attrs(const OpSpec& spec, std::span<const GivenAttr> given, bool onnx_names,
                   AttrValues* out, Policy* policy);
AttrValues default_attrs(const OpSpec& spec);
// The policy rule of parse_attrs on its own (for a policy from the environment):
// InvalidArgument "op: unknown policy 'x'; expected fast, deterministic or reference".
Status parse_policy(const OpSpec& spec, std::string_view text, Policy* out);
int attr_index(const OpSpec& spec, std::string_view name);  // -1 when absent

// spec.workspace_bytes for these inputs, 0 when the spec has none. The workspace
// an adapter passes is a uint8 tensor of (at least) that many bytes on the op's
// device, or absent when 0.
int64_t workspace_bytes(const OpSpec& spec, std::span<const TensorView> inputs,
                        const AttrValues& attrs);

// Concrete output shapes and dtypes for these inputs (an absent optional output
// gets ndim = -1). Shapes are checked by the entry point, not here.
struct OutputDesc {
  int ndim = -1;
  int64_t shape[kMaxDims] = {};
  DType dtype = DType::kInvalid;
};
Status infer_outputs(const OpSpec& spec, std::span<const TensorView> inputs,
                     const AttrValues& attrs, std::vector<OutputDesc>* out);

// The generic path of every adapter: checks the counts (inputs, outputs and
// attributes as the spec lists them), that required inputs are present and that
// every present tensor (workspace included) is on one device, makes that device
// current for the call (DeviceGuard), then calls spec.run, whose entry point
// validates shapes and dtypes.
Status call_op(const OpSpec& spec, std::span<const TensorView> inputs,
               std::span<const TensorView> outputs, const TensorView& workspace,
               const AttrValues& attrs, const ExecContext& ctx);

// call_op's checks without running the op, for adapters that know shapes and
// dtypes before any data exists (TensorRT's configurePlugin and onShapeChange):
// the entry point validates everything and stops at its kernel lookup (a
// ValidationOnly scope, registry.h), so a bad shape reads the same at build time
// as at run time. Use CPU views (Device{}; the checks do not depend on the device,
// and a CUDA device would make the DeviceGuard touch the driver) whose data is
// placeholder_data() (never dereferenced) or real.
Status validate_op(const OpSpec& spec, std::span<const TensorView> inputs,
                   std::span<const TensorView> outputs, const TensorView& workspace,
                   const AttrValues& attrs);
void* placeholder_data();

}  // namespace xpu
