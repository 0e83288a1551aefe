// The op spec: each op and direction is described once, next to its validation,
// and every frontend (native Python, torch real and fake, JAX result types and
// batching, ONNX Runtime schemas, TensorRT plugins) is generic code over it.
//
// A spec is plain data plus two functions: `run` maps positional TensorViews and
// attribute values onto the op's Args struct and calls its one entry point;
// `workspace_bytes` sizes its scratch. Output shapes and dtypes are *rules*
// (data), not code, so that symbolic evaluators (torch fake tensors, JAX shape
// polymorphism, TensorRT's IExprBuilder) can apply them to symbolic dimensions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
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

// Allowed dtypes of an input. Every kFloat operand of one call has the same
// dtype (the op's "float dtype"); the others are checked on their own.
enum class DTypeRule : uint8_t {
  kFloat,       // f32, f16 or bf16, the float dtype of the call
  kFloatOrF32,  // f32 or the call's float dtype (rope cos/sin)
  kIndex,       // int32 or int64
  kF32,
  kI32,
};

struct InputSpec {
  const char* name;  // as in OPS.md and the error messages ("x", "weight", ...)
  Role role;
  DTypeRule dtype;
  bool optional = false;
};

// Output shape as a function of one input (`ref`) and the attributes.
enum class ShapeRule : uint8_t {
  kLike,            // ref's shape
  kLeading,         // ref's shape without its last axis (one value per row)
  kLeadingAndAttr,  // ref's leading axes + [integer attribute `attr`] (topk's k)
  kLoss,            // ref's leading axes when string attribute `attr` is "none", else []
};

enum class OutputDType : uint8_t { kLikeRef, kF32, kI32 };

// kResult outputs are what the op returns (ONNX/TensorRT outputs, in order);
// kSaved outputs exist only to feed the backward (autodiff frontends request
// them, inference frontends pass them absent).
enum class OutputUse : uint8_t { kResult, kSaved };

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

struct AttrSpec {
  const char* name;       // Python / JAX / torch keyword ("eps")
  const char* onnx_name;  // ONNX attribute and TensorRT field ("epsilon")
  AttrType type;
  double default_number = 0;         // kFloat / kInt / kBool
  const char* default_text = "";     // kString
  double min = -1e300, max = 1e300;  // inclusive range of numbers (NaN always refused)
  const char* choices = nullptr;     // kString: allowed values, '|'-separated
};

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
};

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
  double number = 0;
  std::string_view text;
};

// The one attribute rule of every frontend: an unknown name, a value of the wrong
// type, NaN, a number out of range or a string not among the choices is an
// InvalidArgument naming the op and the attribute. An int is accepted for a float
// attribute, a bool for an int attribute and an int 0/1 for a bool attribute;
// nothing else is converted. Absent attributes take their default. `onnx_names`
// selects which names the caller speaks (ONNX/TensorRT fields or Python keywords).
// The `policy` attribute, if given, is parsed into *policy.
Status parse_attrs(const OpSpec& spec, std::span<const GivenAttr> given, bool onnx_names,
                   AttrValues* out, Policy* policy);
AttrValues default_attrs(const OpSpec& spec);
int attr_index(const OpSpec& spec, std::string_view name);  // -1 when absent

// Concrete output shapes and dtypes for these inputs (an absent optional output
// gets ndim = -1). Shapes are checked by the entry point, not here.
struct OutputDesc {
  int ndim = -1;
  int64_t shape[kMaxDims] = {};
  DType dtype = DType::kInvalid;
};
Status infer_outputs(const OpSpec& spec, std::span<const TensorView> inputs,
                     const AttrValues& attrs, std::vector<OutputDesc>* out);

// Validates the counts and calls spec.run; the generic path of every adapter.
Status call_op(const OpSpec& spec, std::span<const TensorView> inputs,
               std::span<const TensorView> outputs, const TensorView& workspace,
               const AttrValues& attrs, const ExecContext& ctx);

}  // namespace xpu
