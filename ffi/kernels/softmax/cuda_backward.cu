// softmax backward on CUDA: dx = scale * y * (dy - sum(dy * y)), y recomputed from x.
// fast / deterministic: x and dy are loaded into registers as 16-byte vectors, one
//   warp per row for short rows, one CTA per row, or a thread-block cluster of
//   2-8 CTAs each holding a slice, whose (max, sum, dot) triples meet through DSMEM
//   in rank order. One read of x and dy, one write of dx. One warp, CTA or cluster a row,
//   as many as there are rows (plan_resident, cuda_common.cuh). Fixed order
//   everywhere, no atomics: `fast` is also deterministic.
// Rows longer than 8 CTAs' worth (and reference, with scalar accesses): an online
//   (max, sum, dot) pass, then a write pass that re-reads x and dy.
#include "kernels/softmax/cuda_common.cuh"

namespace xpu::ops::softmax_detail::gpu {
namespace {

using cuda::block_sum;
using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

// Layout as forward_resident (cuda.cu); v[0] holds x, v[1] dy. Each thread takes
// its exponentials against its own max, once, and keeps them in f32 while the row's
// (max, sum, dot) triple is merged (shuffles, the block, then the cluster): one
// reduction a row, as the backward from y took. dx = e * c * (dy - dot), c rescaling
// the thread's max to the row's. Why kept and why no prefetched next row:
// row_variants.py (run 20a, 8192x8192 bf16) timed one CTA a row re-evaluating the
// exponentials after the reduction at 0.124-0.130 ms with two vectors a thread,
// keeping them at 0.102 against 0.100 from y; run 19a's library walk, which
// re-evaluated them and held the next row, spilled and ran bf16 rows 17-22% slower.
// The grid covers the rows (kMaxGrid), so the walk's next row was never loaded.
// Against the thread's max rather than the warp's (run 20b): the exponentials no
// longer wait on a shuffle chain, and the row's latency is what a cluster row pays.
// CLUSTER (rows split over a cluster): the triples are pushed to the peers
// (ClusterPush) instead of cluster_reduce's barrier round trips (H200 run 16d:
// 4096x65536 bf16 fwd+bwd 0.941 -> 0.795 ms).
template <typename T, int VEC, int ITEMS, bool WARP, bool CLUSTER>
__global__ void __launch_bounds__(kMaxThreads, backward_min_blocks<T, VEC, ITEMS, WARP>())
    backward_resident(const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ x,
                      int64_t x_stride, T* __restrict__ dx, int64_t rows, int n, int slice,
                      int csize, float scale) {
  __shared__ float4 scratch[2][32];
  __shared__ cuda::PushSlots<float4> slots;
  cuda::ClusterPush<CLUSTER, float4> push(slots, csize);
  const float k = scale * kLog2e;
  const int rank = cuda::cluster_rank(csize);
  const int lane = WARP ? (threadIdx.x & 31) : threadIdx.x;
  const cuda::RowSlice sl{rank * slice + lane * VEC, (WARP ? 32 : static_cast<int>(blockDim.x)) * VEC};
  const int64_t group =
      WARP ? int64_t(blockIdx.x) * kWarpRows + (threadIdx.x >> 5) : blockIdx.x / csize;
  const int64_t groups = WARP ? int64_t(gridDim.x) * kWarpRows : gridDim.x / csize;

  using Row = cuda::RowVecs<T, VEC, ITEMS, 2>;
  const cuda::RowSources<T, 2> src{{x, dy}, {x_stride, dy_stride}};
  auto body = [&](int64_t row, Row& r, int parity) {
    float m = -INFINITY;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      if (sl.col(it) < n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) m = fmaxf(m, k * to_f(r.v[0][it].v[j]));
      }
    }
    const float tbase = m == -INFINITY ? 0.f : m;
    float e[ITEMS][VEC];
    float s = 0.f, d = 0.f;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        e[it][j] = sl.col(it) < n ? cuda::ex2_ftz(k * to_f(r.v[0][it].v[j]) - tbase) : 0.f;
        s += e[it][j];
        d += e[it][j] * to_f(r.v[1][it].v[j]);
      }
    }
    // dy stays packed through the reduction (unpacked again below), e is the row.
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) opaque(r.v[1][it]);
    // The warp's triple: its max, then each lane's sums rescaled to it.
    const float wm = cuda::warp_max(m);
    const float f = cuda::ex2_ftz(m - (wm == -INFINITY ? 0.f : wm));
    const float2 sd = cuda::warp_sum(make_float2(s * f, d * f));
    float4 t = make_float4(wm, sd.x, sd.y, 0.f);
    if constexpr (!WARP) {
      t = block_max_sum_dot(t, scratch[parity]);
      t = push.reduce(t, parity, MaxSumDot{});
    }
    // t.y >= 1 (the max's own term) or NaN, so the fast division needs no slow path;
    // a fully masked row (t.y = 0) gives NaN, as its forward does (0 * inf). A thread
    // whose values are all -inf holds e = 0 and takes factor 0, not 2^(0 - base).
    const float base = t.x == -INFINITY ? 0.f : t.x;
    const float inv = __fdividef(1.0f, t.y);
    const float dot = t.z * inv;
    const float c = (m == -INFINITY ? 0.f : scale * cuda::ex2_ftz(tbase - base)) * inv;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      const int col = sl.col(it);
      if (col < n) {
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(e[it][j] * c * (to_f(r.v[1][it].v[j]) - dot));
        store_vec<T, VEC>(dx + row * n + col, out);
      }
    }
  };
  cuda::each_row<Row>(group, rows, groups,
                      [&](int64_t row, Row& r) { cuda::load_rows(r, src, row, sl, n); }, body);
  push.finish();
}

// Any row length (and the reference with VEC = 1): an online (max, sum, dot) pass over
// x and dy (each element rescaled to the running max), then a write pass re-reading them.
template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads) backward_looped(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ x, int64_t x_stride,
    T* __restrict__ dx, int64_t rows, int n, float scale) {
  __shared__ float4 scratch[2][32];
  const float k = scale * kLog2e;
  int parity = 0;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x, parity ^= 1) {
    const T* xr = x + row * x_stride;
    const T* gr = dy + row * dy_stride;
    float4 t = make_float4(-INFINITY, 0.f, 0.f, 0.f);
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> xv = load_vec<T, VEC>(xr + col);
      const Vec<T, VEC> gv = load_vec<T, VEC>(gr + col);
#pragma unroll
      for (int j = 0; j < VEC; ++j)
        t = MaxSumDot{}(t, make_float4(k * to_f(xv.v[j]), 1.f, to_f(gv.v[j]), 0.f));
    }
    // Each lane's triple against the warp's max, then the block's.
    const float m = cuda::warp_max(t.x);
    const float f = exp2f(t.x - (m == -INFINITY ? 0.f : m));
    const float2 sd = cuda::warp_sum(make_float2(t.y * f, t.z * f));
    t = block_max_sum_dot(make_float4(m, sd.x, sd.y, 0.f), scratch[parity]);
    const float base = t.x == -INFINITY ? 0.f : t.x;
    const float inv = 1.0f / t.y;
    const float dot = t.z * inv;
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> xv = load_vec<T, VEC>(xr + col);
      const Vec<T, VEC> gv = load_vec<T, VEC>(gr + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float y = exp2f(k * to_f(xv.v[j]) - base) * inv;
        out.v[j] = from_f<T>(scale * y * (to_f(gv.v[j]) - dot));
      }
      store_vec<T, VEC>(dx + row * n + col, out);
    }
  }
}

}  // namespace

template <typename T>
Status backward(const BackwardProblem& p, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(cuda::check_row_length(kOp, p.n, "elements"));
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* dy = a.dy.as<T>();
  const T* x = a.x.as<T>();
  T* dx = a.dx.as<T>();
  const int n = static_cast<int>(p.n);
  const unsigned row_grid = cuda::grid_for(p.rows);
  if (ctx.policy == Policy::kReference) {
    backward_looped<T, 1><<<row_grid, 256, 0, stream>>>(dy, p.dy_stride, x, p.x_stride, dx,
                                                        p.rows, n, a.scale);
    return cuda::launch_status(kOp);
  }
  constexpr int kVec = 16 / sizeof(T);
  const int vec = cuda::vector_width<T>(p.n, {{dy, p.dy_stride}, {x, p.x_stride}, {dx, p.n}});
  using Kernel =
      void (*)(const T*, int64_t, const T*, int64_t, T*, int64_t, int, int, int, float);
  Kernel kernel = nullptr;
  ResidentLaunch l;
  int64_t blocks = 0;
  XPU_RETURN_IF_ERROR((plan_resident<T>(
      p.n, vec, p.rows,
      []<int V, int I, bool WARP>(ResidentTag<V, I, WARP> tag) {
        if constexpr (!WARP) {
          if (tag.cluster) return &backward_resident<T, V, I, false, true>;
        }
        return &backward_resident<T, V, I, WARP, false>;
      },
      &kernel, &l, &blocks)));
  if (blocks > 0) {
    return cuda::cuda_status(
        cuda::launch_clustered(kernel, static_cast<unsigned>(blocks), l.threads, l.cluster,
                               stream, dy, p.dy_stride, x, p.x_stride, dx, p.rows, n, l.slice,
                               l.cluster, a.scale),
        kOp, "backward launch");
  }
  const int threads = cuda::looped_threads(p.n, vec, kMaxThreads);
  if (vec == 1)
    backward_looped<T, 1><<<row_grid, threads, 0, stream>>>(dy, p.dy_stride, x, p.x_stride, dx,
                                                            p.rows, n, a.scale);
  else
    backward_looped<T, kVec><<<row_grid, threads, 0, stream>>>(dy, p.dy_stride, x, p.x_stride, dx,
                                                               p.rows, n, a.scale);
  return cuda::launch_status(kOp);
}

template Status backward<float>(const BackwardProblem&, const ExecContext&);
template Status backward<__half>(const BackwardProblem&, const ExecContext&);
template Status backward<__nv_bfloat16>(const BackwardProblem&, const ExecContext&);

}  // namespace xpu::ops::softmax_detail::gpu
