// swiglu / geglu on CUDA: one elementwise kernel per direction, templated on the
// activation and the vector width.
// fast / deterministic: dense inputs are treated as one long row; each row splits
//   into whole 16-byte vectors (when every pointer and row stride allows them) and
//   a scalar tail handled by a second launch of the same kernel with VEC = 1.
// reference: the same kernel with VEC = 1 over the rows as given.
// Every output element is written by exactly one thread: no reductions, no atomics.
#include "kernels/common/cuda_utils.cuh"
#include "kernels/common/row_launch.cuh"
#include "kernels/glu/activations.h"
#include "kernels/glu/glu_kernels.h"

namespace xpu::ops::glu_detail {
namespace {

using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

constexpr int kThreads = 256;

// Columns [c0, c0 + nv * VEC) of every row, nv vectors a row. Rows run along
// grid.y and vectors along grid.x, both grid-stride (no index division).
struct Cols {
  int64_t rows, nv, c0;
};

#define XPU_GLU_FOR_EACH(c, VEC, row, col)                                               \
  for (int64_t row = blockIdx.y; row < (c).rows; row += gridDim.y)                       \
    for (int64_t v_ = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, col = 0;           \
         v_ < (c).nv && ((col = (c).c0 + v_ * (VEC)), true);                             \
         v_ += int64_t(gridDim.x) * blockDim.x)

template <typename T, typename Act, int VEC>
__global__ void __launch_bounds__(kThreads) forward_kernel(
    const T* __restrict__ gate, int64_t gate_stride, const T* __restrict__ up, int64_t up_stride,
    T* __restrict__ y, int64_t y_stride, Cols c) {
  XPU_GLU_FOR_EACH(c, VEC, row, col) {
    const Vec<T, VEC> g = load_vec<T, VEC>(gate + row * gate_stride + col);
    const Vec<T, VEC> u = load_vec<T, VEC>(up + row * up_stride + col);
    Vec<T, VEC> out;
#pragma unroll
    for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(Act::act(to_f(g.v[j])) * to_f(u.v[j]));
    store_vec<T, VEC>(y + row * y_stride + col, out);
  }
}

template <typename T, typename Act, int VEC>
__global__ void __launch_bounds__(kThreads) backward_kernel(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ gate, int64_t gate_stride,
    const T* __restrict__ up, int64_t up_stride, T* __restrict__ dgate, T* __restrict__ dup,
    int64_t out_stride, Cols c) {
  XPU_GLU_FOR_EACH(c, VEC, row, col) {
    const Vec<T, VEC> d = load_vec<T, VEC>(dy + row * dy_stride + col);
    const Vec<T, VEC> g = load_vec<T, VEC>(gate + row * gate_stride + col);
    const Vec<T, VEC> u = load_vec<T, VEC>(up + row * up_stride + col);
    Vec<T, VEC> dg, du;
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      float act, dact;
      Act::act_grad(to_f(g.v[j]), &act, &dact);
      const float dv = to_f(d.v[j]);
      dg.v[j] = from_f<T>(dv * to_f(u.v[j]) * dact);
      du.v[j] = from_f<T>(dv * act);
    }
    store_vec<T, VEC>(dgate + row * out_stride + col, dg);
    store_vec<T, VEC>(dup + row * out_stride + col, du);
  }
}

struct Launch {
  dim3 grid;
  int threads;
};

// Threads cover one row's vectors (fewer for short rows); rows spread over grid.y.
Launch launch_for(const Cols& c) {
  const int threads = static_cast<int>(std::clamp<int64_t>((c.nv + 31) / 32 * 32, 32, kThreads));
  const int64_t gy = std::min<int64_t>(c.rows, 65535);
  const int64_t gx = std::min<int64_t>((c.nv + threads - 1) / threads,
                                       std::max<int64_t>(1, cuda::kMaxGrid / gy));
  return {dim3(cuda::grid_for(gx), static_cast<unsigned>(gy)), threads};
}

// How one call splits into launches: the rows (collapsed to one when every tensor
// is dense), the vector width, and the vector / scalar-tail column ranges.
struct Plan {
  int64_t rows, n;      // rows as walked (n = row length)
  bool collapsed;       // all dense: strides below are n
  int vec;
  Cols main, tail;      // tail.nv == 0: no tail launch
};

template <typename T>
Plan plan(int64_t rows, int64_t n, bool reference,
          std::initializer_list<std::pair<const void*, int64_t>> inputs,
          std::initializer_list<const void*> outputs) {
  Plan p{rows, n, false, 1, {}, {}};
  bool dense = true;
  for (auto [ptr, stride] : inputs) dense = dense && stride == n;
  if (!reference && dense && rows > 1) {
    p.rows = 1;
    p.n = rows * n;
    p.collapsed = true;
  }
  if (!reference) {
    // Input strides only matter between rows; outputs are dense (stride n).
    int vec = cuda::aligned_width<T>({});
    for (auto [ptr, stride] : inputs)
      if (!cuda::aligned16(ptr) || (p.rows > 1 && stride % vec)) vec = 1;
    for (const void* ptr : outputs)
      if (!cuda::aligned16(ptr) || (p.rows > 1 && p.n % vec)) vec = 1;
    p.vec = vec;
  }
  const int64_t nv = p.n / p.vec;
  p.main = {p.rows, nv, 0};
  p.tail = {p.rows, p.n - nv * p.vec, nv * p.vec};
  return p;
}

template <typename T, typename Act>
Status forward(const ForwardProblem& p, const ExecContext& ctx) {
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* g = a.gate.as<T>();
  const T* u = a.up.as<T>();
  T* y = a.y.as<T>();
  const Plan pl = plan<T>(p.rows, p.n, ctx.policy == Policy::kReference,
                          {{g, p.gate_stride}, {u, p.up_stride}}, {y});
  const int64_t gs = pl.collapsed ? pl.n : p.gate_stride, us = pl.collapsed ? pl.n : p.up_stride;
  constexpr int kVec = 16 / sizeof(T);
  if (pl.main.nv > 0) {
    if (pl.vec == kVec && kVec > 1)
      forward_kernel<T, Act, kVec><<<launch_for(pl.main).grid, launch_for(pl.main).threads, 0, stream>>>(
          g, gs, u, us, y, pl.n, pl.main);
    else
      forward_kernel<T, Act, 1><<<launch_for(pl.main).grid, launch_for(pl.main).threads, 0, stream>>>(
          g, gs, u, us, y, pl.n, pl.main);
  }
  if (pl.tail.nv > 0)
    forward_kernel<T, Act, 1><<<launch_for(pl.tail).grid, launch_for(pl.tail).threads, 0, stream>>>(
        g, gs, u, us, y, pl.n, pl.tail);
  return cuda::launch_status(Act::kOp);
}

template <typename T, typename Act>
Status backward(const BackwardProblem& p, const ExecContext& ctx) {
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* dy = a.dy.as<T>();
  const T* g = a.gate.as<T>();
  const T* u = a.up.as<T>();
  T* dg = a.dgate.as<T>();
  T* du = a.dup.as<T>();
  const Plan pl = plan<T>(p.rows, p.n, ctx.policy == Policy::kReference,
                          {{dy, p.dy_stride}, {g, p.gate_stride}, {u, p.up_stride}}, {dg, du});
  const int64_t ds = pl.collapsed ? pl.n : p.dy_stride;
  const int64_t gs = pl.collapsed ? pl.n : p.gate_stride, us = pl.collapsed ? pl.n : p.up_stride;
  constexpr int kVec = 16 / sizeof(T);
  if (pl.main.nv > 0) {
    if (pl.vec == kVec && kVec > 1)
      backward_kernel<T, Act, kVec><<<launch_for(pl.main).grid, launch_for(pl.main).threads, 0, stream>>>(
          dy, ds, g, gs, u, us, dg, du, pl.n, pl.main);
    else
      backward_kernel<T, Act, 1><<<launch_for(pl.main).grid, launch_for(pl.main).threads, 0, stream>>>(
          dy, ds, g, gs, u, us, dg, du, pl.n, pl.main);
  }
  if (pl.tail.nv > 0)
    backward_kernel<T, Act, 1><<<launch_for(pl.tail).grid, launch_for(pl.tail).threads, 0, stream>>>(
        dy, ds, g, gs, u, us, dg, du, pl.n, pl.tail);
  return cuda::launch_status(Act::kOp);
}

// Registers the kernels of the one activation whose op is `op` (swiglu or geglu).
template <typename Act>
void register_if(Registry& r, std::string_view op) {
  if (op != Act::kOp) return;
  register_float_family<float, __half, __nv_bfloat16>(
      r, Act::kOp, DeviceKind::kCUDA, []<typename T>() { return std::pair{&forward<T, Act>, &backward<T, Act>}; });
}

}  // namespace

void register_cuda(Registry& r, std::string_view op) {
  register_if<Silu>(r, op);
  register_if<GeluTanh>(r, op);
}

}  // namespace xpu::ops::glu_detail
