// cross_entropy on the CPU: one row at a time, f32 arithmetic, fixed summation
// order (so all three policies share it: it is deterministic and plain). Sums over
// a row run in 8 interleaved partial sums within blocks of kBlock elements, then
// over the blocks, which keeps rounding near that of a tree for V = 256000.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/common/half.h"
#include "kernels/cross_entropy/cross_entropy_kernels.h"

namespace xpu::ops::cross_entropy_detail {
namespace {

using host::from_float;
using host::to_float;

constexpr const char* kOp = "cross_entropy";
constexpr int64_t kBlock = 1024;

// sum_i f(i) over [0, n) in the fixed order described above.
template <typename F>
float fixed_sum(int64_t n, F&& f) {
  float total = 0.f;
  for (int64_t b = 0; b < n; b += kBlock) {
    float acc[8] = {};
    const int64_t e = std::min(n, b + kBlock);
    for (int64_t i = b; i < e; ++i) acc[(i - b) & 7] += f(i);
    total += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }
  return total;
}

int64_t label_at(const TensorView& labels, bool is64, int64_t r) {
  return is64 ? labels.as<const int64_t>()[r] : labels.as<const int32_t>()[r];
}

// InvalidArgument for the first row whose label is neither ignore_index nor a class.
Status check_labels(const TensorView& labels, bool is64, int64_t rows, int64_t v,
                    int64_t ignore_index) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t lab = label_at(labels, is64, r);
    if (lab != ignore_index && (lab < 0 || lab >= v))
      return InvalidArgument(kOp, ": 'labels': label ", lab, " of row ", r, " is out of range [0, ", v,
                             ") and is not ignore_index (", ignore_index, ")");
  }
  return Status::Ok();
}

int64_t counted_rows(const TensorView& labels, bool is64, int64_t rows, int64_t ignore_index) {
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) count += label_at(labels, is64, r) != ignore_index;
  return count;
}

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  XPU_RETURN_IF_ERROR(check_labels(a.labels, p.labels64, p.rows, p.v, a.ignore_index));
  const bool none = a.reduction == CrossEntropyReduction::kNone;
  std::vector<float> per_row(none ? 0 : p.rows);
  float* losses = none ? a.loss.as<float>() : per_row.data();
  float* lse_out = a.lse.present() ? a.lse.as<float>() : nullptr;
  const float ls = a.label_smoothing;
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t lab = label_at(a.labels, p.labels64, r);
    if (lab == a.ignore_index) {
      losses[r] = 0.f;
      if (lse_out) lse_out[r] = 0.f;
      continue;
    }
    const T* x = a.logits.as<const T>() + r * p.logits_stride;
    float m = -INFINITY;
    for (int64_t i = 0; i < p.v; ++i) m = std::fmax(m, to_float(x[i]));
    const float base = m == -INFINITY ? 0.f : m;  // all -inf: lse = -inf, not NaN
    const float s = fixed_sum(p.v, [&](int64_t i) { return std::exp(to_float(x[i]) - base); });
    const float lse = base + std::log(s);
    float l = lse - (1.0f - ls) * to_float(x[lab]);
    if (ls != 0.f) {
      const float sx = fixed_sum(p.v, [&](int64_t i) { return to_float(x[i]); });
      l -= ls * (sx / static_cast<float>(p.v));
    }
    losses[r] = l;
    if (lse_out) lse_out[r] = lse;
  }
  if (!none) {
    const float total = fixed_sum(p.rows, [&](int64_t r) { return losses[r]; });
    float* out = a.loss.as<float>();
    if (a.reduction == CrossEntropyReduction::kSum) {
      *out = total;
    } else {  // mean over counted rows; 0 / 0 = NaN when none count, like torch
      const int64_t count = counted_rows(a.labels, p.labels64, p.rows, a.ignore_index);
      *out = total / static_cast<float>(count);
    }
  }
  return Status::Ok();
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext&) {
  const auto& a = *p.args;
  XPU_RETURN_IF_ERROR(check_labels(a.labels, p.labels64, p.rows, p.v, a.ignore_index));
  const float* dloss = a.dloss.as<const float>();
  float g_all = 0.f;
  if (a.reduction == CrossEntropyReduction::kSum) g_all = dloss[0];
  if (a.reduction == CrossEntropyReduction::kMean)
    g_all = dloss[0] / static_cast<float>(counted_rows(a.labels, p.labels64, p.rows,
                                                        a.ignore_index));
  const float ls = a.label_smoothing;
  const float off = ls / static_cast<float>(p.v), on = 1.0f - ls;
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t lab = label_at(a.labels, p.labels64, r);
    T* dx = a.dlogits.as<T>() + r * p.v;
    if (lab == a.ignore_index) {
      for (int64_t i = 0; i < p.v; ++i) dx[i] = from_float<T>(0.f);
      continue;
    }
    const float g = a.reduction == CrossEntropyReduction::kNone ? dloss[r] : g_all;
    const float lse = a.lse.as<const float>()[r];
    const T* x = a.logits.as<const T>() + r * p.logits_stride;
    for (int64_t i = 0; i < p.v; ++i) {
      const float sm = std::exp(to_float(x[i]) - lse);
      dx[i] = from_float<T>(g * (sm - off - (i == lab ? on : 0.f)));
    }
  }
  return Status::Ok();
}

}  // namespace

void register_cpu(Registry& r) {
  register_float_family<float, host::f16, host::bf16>(
      r, kOp, DeviceKind::kCPU, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::cross_entropy_detail
