// ONNX op CrossEntropy(logits, labels) -> (loss[, lse]); attributes `ignore_index`
// (int, default -100), `label_smoothing` (float, default 0.0), `reduction` (string,
// "mean" | "sum" | "none", default "mean"). logits [T, V] in float, float16 or
// bfloat16; labels [T] int64 or int32 (one registration per combination). loss is
// float: a scalar for mean / sum, [T] for none; the optional lse output is float [T].
#include "bindings/onnxruntime/ort_adapter.h"
#include "xpuruntime/ops/cross_entropy.h"
#include "xpuruntime/runtime.h"

namespace xpu::ort {
namespace {

struct State {
  int64_t ignore_index;
  float label_smoothing;
  ops::CrossEntropyReduction reduction;
  Policy policy;
};

Status read(const OrtKernelInfo* info, State* out) {
  ops::CrossEntropyReduction r;
  XPU_RETURN_IF_ERROR(
      ops::cross_entropy_reduction_from_name(attr_string(info, "reduction", "mean"), &r));
  *out = State{attr_int(info, "ignore_index", -100), attr_float(info, "label_smoothing", 0.f),
                     r, attr_policy(info)};
  return Status::Ok();
}

Status run(const State& state, KernelCall& call) {
  const State* s = &state;
  ops::CrossEntropyForwardArgs a;
  XPU_RETURN_IF_ERROR(call.input(0, &a.logits));
  XPU_RETURN_IF_ERROR(call.input(1, &a.labels));
  if (!a.logits.present() || !a.labels.present())
    return InvalidArgument("CrossEntropy: inputs 'logits' and 'labels' are required");
  const bool none = s->reduction == ops::CrossEntropyReduction::kNone;
  XPU_RETURN_IF_ERROR(call.output(0, a.labels.shape.data(), none ? a.labels.ndim : 0, &a.loss));
  XPU_RETURN_IF_ERROR(call.output(1, a.labels.shape.data(), a.labels.ndim, &a.lse));
  a.ignore_index = s->ignore_index;
  a.label_smoothing = s->label_smoothing;
  a.reduction = s->reduction;
  // The workspace comes from the core's stream-ordered allocator on the op's device.
  const ExecContext ctx{call.stream(), s->policy};
  const int64_t rows = a.labels.numel();
  const int64_t bytes = ops::cross_entropy_forward_workspace_bytes(rows, s->reduction);
  void* ws = nullptr;
  if (bytes > 0) {
    XPU_RETURN_IF_ERROR(runtime::allocate(call.device(), bytes, ctx.stream, &ws));
    a.workspace = dense_view(ws, DType::kU8, &bytes, 1, call.device());
  }
  const Status st = ops::cross_entropy_forward(a, ctx);
  runtime::deallocate(call.device(), ws, ctx.stream);
  return st;
}

}  // namespace

void add_cross_entropy(std::vector<CustomOp*>& out) {
  constexpr auto kF32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  for (auto t : {kF32, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
                 ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16}) {
    for (auto l : {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32}) {
      auto make = [&](DeviceKind dev) {
        return typed_schema<State, read, run>("CrossEntropy", dev, {t, l}, {kF32, kF32}, {}, {false, true});
      };
      out.push_back(new CustomOp(make(DeviceKind::kCPU)));
#if XPURUNTIME_WITH_CUDA
      out.push_back(new CustomOp(make(DeviceKind::kCUDA)));
#endif
    }
  }
}

}  // namespace xpu::ort
