// softmax backward on CUDA: dx = scale * y * (dy - sum(dy * y)).
// fast / deterministic: y and dy are held in registers as 16-byte vectors, one
//   warp per row for short rows, one CTA per row, or a thread-block cluster of
//   2-8 CTAs each holding a slice, whose dot products meet through DSMEM in rank
//   order. One read of y and dy, one write of dx. One warp, CTA or cluster a row,
//   as many as there are rows (plan_resident, cuda_common.cuh). Fixed order
//   everywhere, no atomics: `fast` is also deterministic.
//   16-byte rows split over a cluster stage each CTA's slices of y and dy in
//   shared memory by TMA bulk copies instead (backward_staged).
// Rows longer than 8 CTAs' worth (and reference, with scalar accesses): a dot
//   pass, then a write pass that re-reads y and dy.
#include "kernels/common/staged_rows.cuh"
#include "kernels/softmax/cuda_common.cuh"

namespace xpu::ops::softmax_detail::gpu {
namespace {

using cuda::block_sum;
using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

// Layout and row walk as forward_resident (cuda.cu). CLUSTER (rows split over a
// cluster): the dot products are pushed to the peers (ClusterPush) instead of
// cluster_sum's barrier round trips (H200 run 16d: 4096x65536 bf16 fwd+bwd 0.941 ->
// 0.795 ms).
template <typename T, int VEC, int ITEMS, bool WARP, bool CLUSTER>
__global__ void __launch_bounds__(kMaxThreads, resident_min_blocks<T, VEC, ITEMS, WARP>(2))
    backward_resident(const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ y,
                      int64_t y_stride, T* __restrict__ dx, int64_t rows, int n, int slice,
                      int csize, float scale) {
  __shared__ float scratch[32];
  __shared__ float slot[2];
  __shared__ cuda::RowReduceShared<float> shared;
  cuda::RowReducer<CLUSTER> reducer(shared, csize);
  const int rank = cuda::cluster_rank(csize);
  const int lane = WARP ? (threadIdx.x & 31) : threadIdx.x;
  const cuda::RowSlice sl{rank * slice + lane * VEC, (WARP ? 32 : static_cast<int>(blockDim.x)) * VEC};
  const int64_t group =
      WARP ? int64_t(blockIdx.x) * kWarpRows + (threadIdx.x >> 5) : blockIdx.x / csize;
  const int64_t groups = WARP ? int64_t(gridDim.x) * kWarpRows : gridDim.x / csize;

  using Row = cuda::RowVecs<T, VEC, ITEMS, 2>;  // v[0]: y, v[1]: dy
  const cuda::RowSources<T, 2> src{{y, dy}, {y_stride, dy_stride}};
  auto body = [&](int64_t row, Row r, int parity) {
    float dot = 0.f;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      if (sl.col(it) < n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) dot += to_f(r.v[1][it].v[j]) * to_f(r.v[0][it].v[j]);
      }
    }
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      opaque(r.v[0][it]);
      opaque(r.v[1][it]);
    }
    if constexpr (WARP) {
      dot = cuda::warp_sum(dot);
    } else if constexpr (CLUSTER) {
      dot = reducer.template reduce<cuda::SumOp>(dot, parity);
    } else {
      dot = cuda::cluster_sum(block_sum(dot, scratch), slot, parity, csize);
    }
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      const int col = sl.col(it);
      if (col < n) {
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j)
          out.v[j] = from_f<T>(scale * to_f(r.v[0][it].v[j]) * (to_f(r.v[1][it].v[j]) - dot));
        store_vec<T, VEC>(dx + row * n + col, out);
      }
    }
  };
  walk_rows<Row>(group, rows, groups,
                 [&](int64_t row, Row& r) { cuda::load_rows(r, src, row, sl, n); }, body);
  if constexpr (CLUSTER)
    reducer.finish();
  else
    cuda::cluster_exit(csize);
}

// Rows split over a cluster (packed rows too long for one CTA: 4 x 256 x 8 at 65536
// bf16 columns, as forward_staged), each CTA's slices of y and dy staged in shared
// memory by TMA bulk copies (StagedRows, one stage) and read from there twice: the dot,
// then dx; the dot is pushed to the peers (RowReducer). Why not backward_resident's
// register rows: their loads are in flight only until a CTA's row lands, so an SM of two
// 512-thread CTAs keeps at most 64 KB in flight and none while it reduces and stores
// (H200 run 21f, 4096x65536 bf16: ~0.48 ms against a three-pass floor of 0.379); a
// staged slice is 64 KB a CTA, three CTAs an SM.
template <typename T, int VEC, int ITEMS>
__global__ void __launch_bounds__(cuda::kWideThreads)
    backward_staged(int64_t row0, const T* __restrict__ dy, int64_t dy_stride,
                    const T* __restrict__ y, int64_t y_stride, T* __restrict__ dx, int n,
                    int slice, int csize, float scale) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  __shared__ cuda::RowReduceShared<float> shared;
  cuda::RowReducer<true> reducer(shared, csize);
  const auto [rank, c, row] = cuda::cta_row_frame<true, VEC>(row0, slice, csize);
  const T* staged[2];  // y, dy
  cuda::stage_row_slice<T, 2>({{y, dy}, {y_stride, dy_stride}}, row, rank * slice, slice, n,
                              staged);
  const T *ys = staged[0], *gs = staged[1];
  auto at = [&](const T* base, int it) {
    return *reinterpret_cast<const Vec<T, VEC>*>(base + c.col(it));
  };
  float dot = 0.f;
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    if (c.col(it) < n) {
      const Vec<T, VEC> yv = at(ys, it), gv = at(gs, it);
#pragma unroll
      for (int j = 0; j < VEC; ++j) dot += to_f(gv.v[j]) * to_f(yv.v[j]);
    }
  }
  dot = reducer.template reduce<cuda::SumOp>(dot, 0);
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const int col = c.col(it);
    if (col < n) {
      const Vec<T, VEC> yv = at(ys, it), gv = at(gs, it);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(scale * to_f(yv.v[j]) * (to_f(gv.v[j]) - dot));
      store_vec<T, VEC>(dx + row * n + col, out);
    }
  }
#endif
}

// Any row length (and the reference with VEC = 1): the rows are read twice.
template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads) backward_looped(
    const T* __restrict__ dy, int64_t dy_stride, const T* __restrict__ y, int64_t y_stride,
    T* __restrict__ dx, int64_t rows, int n, float scale) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* yr = y + row * y_stride;
    const T* gr = dy + row * dy_stride;
    float dot = 0.f;
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> yv = load_vec<T, VEC>(yr + col);
      const Vec<T, VEC> gv = load_vec<T, VEC>(gr + col);
#pragma unroll
      for (int j = 0; j < VEC; ++j) dot += to_f(gv.v[j]) * to_f(yv.v[j]);
    }
    dot = block_sum(dot, scratch);
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> yv = load_vec<T, VEC>(yr + col);
      const Vec<T, VEC> gv = load_vec<T, VEC>(gr + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j)
        out.v[j] = from_f<T>(scale * to_f(yv.v[j]) * (to_f(gv.v[j]) - dot));
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
  const T* y = a.y.as<T>();
  T* dx = a.dx.as<T>();
  const int n = static_cast<int>(p.n);
  const unsigned row_grid = cuda::grid_for(p.rows);
  if (ctx.policy == Policy::kReference) {
    backward_looped<T, 1><<<row_grid, 256, 0, stream>>>(dy, p.dy_stride, y, p.y_stride, dx,
                                                        p.rows, n, a.scale);
    return cuda::launch_status(kOp);
  }
  constexpr int kVec = 16 / sizeof(T);
  const int vec = cuda::vector_width<T>(p.n, {{dy, p.dy_stride}, {y, p.y_stride}, {dx, p.n}});
  if (vec == kVec && row_plan(p.n, vec, 1).warp.items == 0) {
    int max_cluster = 1;
    XPU_RETURN_IF_ERROR(cuda::max_cluster_size(&max_cluster));
    const cuda::SplitShape s = cta_row_shape(p.n, vec, max_cluster);
    if (s.cluster > 1) {  // sm_90: staged through shared memory by TMA
      bool launched = false;
      XPU_RETURN_IF_ERROR(cuda::launch_rows_smem(
          &backward_staged<T, kVec, cuda::kPackedItems>, p.rows, s.threads, s.cluster,
          cuda::StagedRows<T, 2>::smem_bytes(s.slice, 1), stream, kOp, "backward launch",
          &launched, dy, p.dy_stride, y, p.y_stride, dx, n, s.slice, s.cluster, a.scale));
      if (launched) return Status::Ok();
    }
  }
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
                               stream, dy, p.dy_stride, y, p.y_stride, dx, p.rows, n, l.slice,
                               l.cluster, a.scale),
        kOp, "backward launch");
  }
  const int threads = cuda::looped_threads(p.n, vec, kMaxThreads);
  if (vec == 1)
    backward_looped<T, 1><<<row_grid, threads, 0, stream>>>(dy, p.dy_stride, y, p.y_stride, dx,
                                                            p.rows, n, a.scale);
  else
    backward_looped<T, kVec><<<row_grid, threads, 0, stream>>>(dy, p.dy_stride, y, p.y_stride, dx,
                                                               p.rows, n, a.scale);
  return cuda::launch_status(kOp);
}

template Status backward<float>(const BackwardProblem&, const ExecContext&);
template Status backward<__half>(const BackwardProblem&, const ExecContext&);
template Status backward<__nv_bfloat16>(const BackwardProblem&, const ExecContext&);

}  // namespace xpu::ops::softmax_detail::gpu
