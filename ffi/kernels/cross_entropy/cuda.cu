// cross_entropy on CUDA.
// forward, fast / deterministic: one block per row (grid-stride over rows), one pass
//   over the row keeping a running (max, sum of exp, sum) per thread, 16-byte vectors
//   where aligned; then fixed-order block reductions. Any V (up to INT_MAX / 2).
// forward, reference: a plain scalar kernel, a max pass and then a sum pass.
// mean / sum: per-row losses go to the workspace, then one block sums them (and
//   counts the non-ignored labels) in a fixed order: no atomics anywhere.
// backward: g * (exp(x - lse) - (1 - ls) [v == label] - ls / V) in one pass from the
//   logits and the saved lse: one read, one write. One block a row, or several column
//   blocks a row when rows alone cannot fill the device; 2 vectors loaded a thread
//   before any is stored (reference: the same kernel, scalar, with expf).
//   For mean, one block first computes g = dloss / count into the workspace.
// Labels are read once per row, and a label outside [0, V) (other than ignore_index)
// is never used as an index: its row's loss, lse and gradient are NaN.
#include <algorithm>
#include <climits>

#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/row_launch.cuh"
#include "kernels/cross_entropy/cross_entropy_kernels.h"

namespace xpu::ops::cross_entropy_detail {
namespace {

using cuda::block_max;
using cuda::block_sum;
using cuda::block_sum2;
using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

constexpr const char* kOp = "cross_entropy";
constexpr int kMaxThreads = 512;  // launch bounds of the row kernels
constexpr int kFinishThreads = 512;
// Backward: vectors a thread loads before computing (16 bytes each; with 3 blocks of
// 512 threads a SM at <= 40 registers, 48 KiB in flight a SM), and the blocks that
// fill an H100 several times over (132 SMs x 3 resident blocks = 396).
constexpr int kUnroll = 2;
constexpr int64_t kFillBlocks = 2048;
// Forward: vectors a thread loads before folding them (forward_online).
constexpr int kForwardUnroll = 4;
constexpr float kLog2e = 1.4426950408889634f;

struct Labels {
  const void* data;
  bool is64;
  int64_t ignore_index;
  __device__ __forceinline__ int64_t at(int64_t row) const {
    return is64 ? static_cast<const int64_t*>(data)[row]
                : static_cast<int64_t>(static_cast<const int32_t*>(data)[row]);
  }
};

// What a forward row kernel writes.
struct RowOut {
  float* losses;  // [rows]: the `none` output or the workspace
  float* lse;     // [rows] or null
  float ls;       // label smoothing
};

// Thread 0's epilogue of a counted row with a valid label.
template <typename T>
__device__ __forceinline__ void write_row(const RowOut& o, int64_t row, const T* xr, int64_t lab,
                                          float lse, float sx, int v) {
  const float xl = to_f(xr[lab]);
  float l = lse - (1.0f - o.ls) * xl;
  if (o.ls != 0.f) l -= o.ls * (sx / static_cast<float>(v));
  o.losses[row] = l;
  if (o.lse) o.lse[row] = lse;
}

// Ignored rows give 0; out-of-range labels give NaN. Returns true when the row is done.
__device__ __forceinline__ bool special_row(const RowOut& o, int64_t row, int64_t lab,
                                            int64_t ignore_index, int v) {
  if (lab == ignore_index) {
    if (threadIdx.x == 0) {
      o.losses[row] = 0.f;
      if (o.lse) o.lse[row] = 0.f;
    }
    return true;
  }
  if (lab < 0 || lab >= v) {
    if (threadIdx.x == 0) {
      o.losses[row] = __int_as_float(0x7fc00000);
      if (o.lse) o.lse[row] = __int_as_float(0x7fc00000);
    }
    return true;
  }
  return false;
}

// A thread's running (max m, sum of exp(x - m) s, sum of x sx) over its columns.
struct OnlineRow {
  float m = -INFINITY, s = 0.f, sx = 0.f;

  // Folds N vectors loaded together: one rescale for all of them, each exponential one
  // FFMA + EX2 (exp(t - base) = 2^(t log2 e - base log2 e)).
  template <typename T, int VEC, int N>
  __device__ __forceinline__ void add(const Vec<T, VEC> (&x)[N]) {
    float vm = -INFINITY;
#pragma unroll
    for (int u = 0; u < N; ++u) {
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float t = to_f(x[u].v[j]);
        vm = fmaxf(vm, t);
        sx += t;
      }
    }
    const float mn = fmaxf(m, vm);
    const float base = mn == -INFINITY ? 0.f : mn;  // rows starting with -inf: no inf - inf
    const float nb = -base * kLog2e;
    float acc = 0.f;
#pragma unroll
    for (int u = 0; u < N; ++u) {
#pragma unroll
      for (int j = 0; j < VEC; ++j) acc += exp2f(fmaf(to_f(x[u].v[j]), kLog2e, nb));
    }
    s = s * exp2f((m - base) * kLog2e) + acc;
    m = mn;
  }
};

// One block a row; each thread loads kForwardUnroll vectors before it folds any of them
// (64 bytes a thread at 16-byte vectors: 128 KiB in flight an SM at 4 blocks of 512, where
// one vector at a time left 32 KiB and the H200 ran the row at 75% of copy, run 17b), then
// the row's tail one vector at a time.
template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads) forward_online(
    const T* __restrict__ logits, int64_t stride, Labels labels, RowOut o, int64_t rows, int v) {
  __shared__ float scratch[32];
  __shared__ float2 scratch2[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t lab = labels.at(row);  // uniform over the block
    if (special_row(o, row, lab, labels.ignore_index, v)) continue;
    const T* xr = logits + row * stride;
    OnlineRow acc;
    const int step = static_cast<int>(blockDim.x) * VEC;
    int col = static_cast<int>(threadIdx.x) * VEC;
    for (; col + (kForwardUnroll - 1) * step < v; col += kForwardUnroll * step) {
      Vec<T, VEC> x[kForwardUnroll];
#pragma unroll
      for (int u = 0; u < kForwardUnroll; ++u) x[u] = load_vec<T, VEC>(xr + col + u * step);
      acc.add(x);
    }
    for (; col < v; col += step) {
      const Vec<T, VEC> x[1] = {load_vec<T, VEC>(xr + col)};
      acc.add(x);
    }
    const float rm = block_max(acc.m, scratch);
    const float rbase = rm == -INFINITY ? 0.f : rm;
    const float2 tot = block_sum2(acc.s * exp2f((acc.m - rbase) * kLog2e), acc.sx, scratch2);
    if (threadIdx.x == 0) write_row(o, row, xr, lab, rbase + logf(tot.x), tot.y, v);
  }
}

// The plain definition, scalar accesses: max, then the sums of exp(x - max) and of x.
template <typename T>
__global__ void __launch_bounds__(kMaxThreads) forward_reference(
    const T* __restrict__ logits, int64_t stride, Labels labels, RowOut o, int64_t rows, int v) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t lab = labels.at(row);
    if (special_row(o, row, lab, labels.ignore_index, v)) continue;
    const T* xr = logits + row * stride;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < v; i += blockDim.x) m = fmaxf(m, to_f(xr[i]));
    m = block_max(m, scratch);
    const float base = m == -INFINITY ? 0.f : m;
    float s = 0.f, sx = 0.f;
    for (int i = threadIdx.x; i < v; i += blockDim.x) {
      s += expf(to_f(xr[i]) - base);
      sx += to_f(xr[i]);
    }
    s = block_sum(s, scratch);
    sx = block_sum(sx, scratch);
    if (threadIdx.x == 0) write_row(o, row, xr, lab, base + logf(s), sx, v);
  }
}

// Integer sum over the block in a fixed order; `scratch` holds 32 values.
__device__ __forceinline__ long long block_count(long long c, long long* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
  if (lane == 0) scratch[warp] = c;
  __syncthreads();
  c = lane < warps ? scratch[lane] : 0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
  __syncthreads();
  return c;
}

// One block: out[0] = total, or total / (rows whose label is not ignore_index) when
// `divide`. total = the fixed-order sum of losses[0, rows) when `sum_losses`, else
// numerator[0] (the backward's dloss).
__global__ void __launch_bounds__(kFinishThreads) finish(const float* __restrict__ losses,
                                                         const float* __restrict__ numerator,
                                                         Labels labels, int64_t rows,
                                                         bool sum_losses, bool divide,
                                                         float* __restrict__ out) {
  __shared__ float scratch[32];
  __shared__ long long counts[32];
  float s = 0.f;
  long long c = 0;
  for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) {
    if (sum_losses) s += losses[i];
    if (divide) c += labels.at(i) != labels.ignore_index;
  }
  const float total = sum_losses ? block_sum(s, scratch) : numerator[0];
  if (divide) c = block_count(c, counts);
  if (threadIdx.x == 0) out[0] = divide ? total / static_cast<float>(c) : total;
}

// What the backward kernel reads besides logits.
struct BackwardRows {
  Labels labels;
  const float* lse;
  const float* g;  // per row (g_per_row) or g[0] for every row
  bool g_per_row;
  float ls;        // label smoothing
};

// dlogits = g * (exp(x - lse) - ls / V - (1 - ls) [col == label]): one read of the
// logits and one write of dlogits, with the forward's lse (no reduction at all).
// Grid: x = column blocks of a row (more than one only when rows are too few to
// fill the device), y = rows (grid-stride). Each thread loads U vectors before it
// computes and stores any, so U * 16 bytes a thread are in flight (v1 had one, and
// wrote each vector as 8 two-byte stores: see store_vec).
// REF (the reference policy, VEC = U = 1): expf(x - lse) as written.
template <typename T, int VEC, int U, bool REF>
__global__ void __launch_bounds__(kMaxThreads, 3) backward_rows(
    const T* __restrict__ logits, int64_t stride, BackwardRows b, T* __restrict__ dlogits,
    int64_t rows, int v) {
  const float off = b.ls / static_cast<float>(v), on = 1.0f - b.ls;
  const int64_t step = int64_t(gridDim.x) * blockDim.x * VEC;  // between a thread's vectors
  const int64_t first = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * VEC;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const int64_t lab = b.labels.at(row);
    T* dr = dlogits + row * int64_t(v);
    if (lab == b.labels.ignore_index) {
      Vec<T, VEC> zero;
#pragma unroll
      for (int j = 0; j < VEC; ++j) zero.v[j] = from_f<T>(0.f);
      for (int64_t col = first; col < v; col += step) store_vec<T, VEC>(dr + col, zero);
      continue;
    }
    const bool bad = lab < 0 || lab >= v;  // never used as an index: NaN gradients
    const float gr = bad ? __int_as_float(0x7fc00000) : b.g[b.g_per_row ? row : 0];
    // exp(x - lse) as exp2(x * log2(e) - lse * log2(e)): one FFMA and one MUFU.EX2.
    const float l = b.lse[row], shift = l * kLog2e;
    const T* xr = logits + row * stride;
    for (int64_t col = first; col < v; col += U * step) {
      Vec<T, VEC> x[U];
#pragma unroll
      for (int k = 0; k < U; ++k)
        if (col + k * step < v) x[k] = load_vec<T, VEC>(xr + col + k * step);
#pragma unroll
      for (int k = 0; k < U; ++k) {
        const int64_t c = col + k * step;
        if (c >= v) break;
        const int at = lab - c >= 0 && lab - c < VEC ? static_cast<int>(lab - c) : -1;
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          const float sm = REF ? expf(to_f(x[k].v[j]) - l)
                               : exp2f(fmaf(to_f(x[k].v[j]), kLog2e, -shift));
          out.v[j] = from_f<T>(gr * (sm - off - (j == at ? on : 0.f)));
        }
        store_vec<T, VEC>(dr + c, out);
      }
    }
  }
}

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(cuda::check_row_length(kOp, p.v, "classes"));
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const bool none = a.reduction == CrossEntropyReduction::kNone;
  const Labels labels{a.labels.data, p.labels64, a.ignore_index};
  const RowOut o{none ? a.loss.as<float>() : a.workspace.as<float>(),
                 a.lse.present() ? a.lse.as<float>() : nullptr, a.label_smoothing};
  const T* x = a.logits.as<const T>();
  const int v = static_cast<int>(p.v);
  if (p.rows > 0) {
    const unsigned grid = cuda::grid_for(p.rows);
    if (ctx.policy == Policy::kReference) {
      forward_reference<T><<<grid, 256, 0, stream>>>(x, p.logits_stride, labels, o, p.rows, v);
    } else {
      constexpr int kVec = 16 / sizeof(T);
      const int vec = cuda::vector_width<T>(p.v, {{x, p.logits_stride}});
      const int threads = cuda::looped_threads(p.v, vec, kMaxThreads);
      if (vec == 1)
        forward_online<T, 1><<<grid, threads, 0, stream>>>(x, p.logits_stride, labels, o, p.rows, v);
      else
        forward_online<T, kVec>
            <<<grid, threads, 0, stream>>>(x, p.logits_stride, labels, o, p.rows, v);
    }
  }
  if (!none)
    finish<<<1, kFinishThreads, 0, stream>>>(o.losses, nullptr, labels, p.rows, true,
                                             a.reduction == CrossEntropyReduction::kMean,
                                             a.loss.as<float>());
  return cuda::launch_status(kOp);
}

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(cuda::check_row_length(kOp, p.v, "classes"));
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const Labels labels{a.labels.data, p.labels64, a.ignore_index};
  const float* g = a.dloss.as<const float>();
  if (a.reduction == CrossEntropyReduction::kMean) {
    float* scale = a.workspace.as<float>();
    finish<<<1, kFinishThreads, 0, stream>>>(nullptr, g, labels, p.rows, false, true, scale);
    g = scale;
  }
  const BackwardRows rows_in{labels, a.lse.as<const float>(), g,
                             a.reduction == CrossEntropyReduction::kNone, a.label_smoothing};
  const T* x = a.logits.as<const T>();
  T* dx = a.dlogits.as<T>();
  const int v = static_cast<int>(p.v);
  constexpr int kVec = 16 / sizeof(T);
  const int vec = ctx.policy == Policy::kReference
                      ? 1
                      : cuda::vector_width<T>(p.v, {{x, p.logits_stride}, {dx, p.v}});
  const int threads = cuda::looped_threads(p.v, vec, kMaxThreads);
  // Rows fill the device on their own from kFillBlocks rows up (4096 rows of 128256:
  // one block a row, as v1); fewer rows split each row over column blocks, at
  // least one pass of the block's vectors each.
  const int64_t col_blocks = std::clamp<int64_t>(
      (kFillBlocks + p.rows - 1) / p.rows, 1, (p.v + threads * vec - 1) / (threads * vec));
  const dim3 grid(static_cast<unsigned>(col_blocks),
                  static_cast<unsigned>(std::min<int64_t>(p.rows, 65535)));
  if (ctx.policy == Policy::kReference)
    backward_rows<T, 1, 1, true>
        <<<grid, threads, 0, stream>>>(x, p.logits_stride, rows_in, dx, p.rows, v);
  else if (vec == 1)
    backward_rows<T, 1, 1, false>
        <<<grid, threads, 0, stream>>>(x, p.logits_stride, rows_in, dx, p.rows, v);
  else
    backward_rows<T, kVec, kUnroll, false>
        <<<grid, threads, 0, stream>>>(x, p.logits_stride, rows_in, dx, p.rows, v);
  return cuda::launch_status(kOp);
}

}  // namespace

void register_cuda(Registry& r) {
  // Fixed-order reductions, no atomics: `fast` is deterministic too.
  register_float_family<float, __half, __nv_bfloat16>(
      r, kOp, DeviceKind::kCUDA, []<typename T>() { return std::pair{&forward<T>, &backward<T>}; });
}

}  // namespace xpu::ops::cross_entropy_detail
