// softmax forward on CUDA, and the registration of both directions.
// fast / deterministic: the row is held in registers as 16-byte vectors of the
//   input dtype (not f32: half the registers at bf16/f16), one warp per row for
//   short rows, one CTA per row (forward_cta, up to 1024 threads: a max and a
//   sum reduction, each exponential evaluated once and kept in f32 up to 16
//   elements a thread; H200 run 15, docs/kernels/softmax.md), or, for rows too
//   long for one CTA, a thread-block cluster of 2-8 CTAs each holding a slice
//   (forward_resident, also the warp rows and unaligned rows). One read of x, one
//   write of y. Each thread keeps its (max, sum of exp) against its warp's max,
//   and the pairs are merged once per row: shuffles in the warp, shared memory
//   across warps, DSMEM across the cluster's CTAs, always in a fixed order (one
//   block barrier and one cluster barrier a row instead of a max pass and a sum
//   pass). One warp, CTA or cluster a row, as many as there are rows (H200 run 13:
//   run 12's persistent grid with a shared-memory ring was 10-25% slower). No
//   atomics, so `fast` is also deterministic.
// Rows longer than 8 CTAs' worth (and devices without clusters, if a cluster
//   does not fit): an online (max, sum) pass, then a write pass that re-reads.
// reference: a plain scalar kernel, one block per row, exp(s - max) / sum.
// exp is evaluated as exp2(x * scale * log2(e) - max), which rounds like exp(s - max).
// Backward: cuda_backward.cu.
#include "kernels/common/cta_row.cuh"
#include "kernels/common/staged_rows.cuh"
#include "kernels/softmax/cuda_common.cuh"

namespace xpu::ops::softmax_detail::gpu {
namespace {

using cuda::block_max;
using cuda::block_sum;
using cuda::from_f;
using cuda::load_vec;
using cuda::store_vec;
using cuda::to_f;
using cuda::Vec;

// Rows of which this thread holds columns first, first + stride, ... (ITEMS
// vectors). WARP: each warp owns rows (kWarpRows warps a block, csize 1); else
// a cluster of csize CTAs owns a row and CTA `rank` holds columns
// [rank * slice, rank * slice + slice). Each exponential is evaluated twice (for
// the sum, then for the output), to keep the row packed (opaque): kept in f32,
// bf16 at two vectors a thread spilled 64 bytes at the register cap.
template <typename T, int VEC, int ITEMS, bool WARP>
__global__ void __launch_bounds__(kMaxThreads, resident_min_blocks<T, VEC, ITEMS, WARP>(1))
    forward_resident(const T* __restrict__ x, int64_t x_stride, T* __restrict__ y, int64_t rows,
                     int n, int slice, int csize, float k) {
  __shared__ float2 scratch[32];
  __shared__ float2 slot[2];
  const int rank = cuda::cluster_rank(csize);
  const int lane = WARP ? (threadIdx.x & 31) : threadIdx.x;
  const cuda::RowSlice sl{rank * slice + lane * VEC, (WARP ? 32 : static_cast<int>(blockDim.x)) * VEC};
  const int64_t group =
      WARP ? int64_t(blockIdx.x) * kWarpRows + (threadIdx.x >> 5) : blockIdx.x / csize;
  const int64_t groups = WARP ? int64_t(gridDim.x) * kWarpRows : gridDim.x / csize;

  using Row = cuda::RowVecs<T, VEC, ITEMS, 1>;
  const cuda::RowSources<T, 1> src{{x}, {x_stride}};
  // The row's (max, sum of exp2) pair, merged over the warp, the block and the
  // cluster in a fixed order; `s` is this thread's sum against its warp's max.
  auto row_max_sum = [&](float m, float s, int parity) {
    float2 ms = make_float2(m, cuda::warp_sum(s));
    if constexpr (!WARP) {
      ms = block_max_sum(ms, scratch);
      ms = cuda::cluster_reduce(ms, slot, parity, csize, MaxSum{});
    }
    return ms;
  };
  auto body = [&](int64_t row, Row r, int parity) {
    // This thread's max, then its sum against the warp's max: the warp's
    // lanes share one exponent base, so no per-thread rescale is needed.
    float m = -INFINITY;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      if (sl.col(it) < n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) m = fmaxf(m, k * to_f(r.v[0][it].v[j]));
      }
    }
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) opaque(r.v[0][it]);
    m = cuda::warp_max(m);
    const float wbase = m == -INFINITY ? 0.f : m;
    float s = 0.f;
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      if (sl.col(it) < n) {
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          s += exp2f(k * to_f(r.v[0][it].v[j]) - wbase);
        }
      }
    }
    const float2 ms = row_max_sum(m, s, parity);
    // The element at the max contributes exp2(0) = 1, so ms.y >= 1 (or NaN):
    // the fast division needs no slow path. A fully masked row (all -inf) has
    // ms.y = 0 and gives NaN, as the definition 0 / 0 does.
    const float base = ms.x == -INFINITY ? 0.f : ms.x;
    const float inv = __fdividef(1.0f, ms.y);
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) opaque(r.v[0][it]);
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) {
      const int col = sl.col(it);
      if (col < n) {
        Vec<T, VEC> out;
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          out.v[j] = from_f<T>(exp2f(k * to_f(r.v[0][it].v[j]) - base) * inv);
        }
        store_vec<T, VEC>(y + row * n + col, out);
      }
    }
  };
  walk_rows<Row>(group, rows, groups,
                 [&](int64_t row, Row& r) { cuda::load_rows(r, src, row, sl, n); }, body);
  cuda::cluster_exit(csize);
}

// The one-CTA rows that also get a form without column tests (forward_cta's FULL) for
// rows that fill every thread's vectors (n == threads x ITEMS x VEC). ptxas -v, sm_90,
// registers and SASS instructions with the tests -> without: bf16 <8, 2> 31 -> 32, 328 -> 280;
// <8, 4> 31 -> 51, 776 -> 512; f32 <4, 4> 37 -> 32, 328 -> 280; <4, 8> 48 -> 48, 640 -> 416.
// Run 24b (H200): 8192x8192 bf16 0.070 -> 0.069 ms, the 4096-column rows unchanged.
template <typename T, int ITEMS>
constexpr bool kCtaFull = true;

// One CTA a row (cta_row.cuh; rows over a cluster take forward_staged):
// ITEMS 16-byte vectors a thread at row_slice's columns; a max reduction, then a sum
// reduction (one barrier each). KEEP (at
// most 16 elements a thread): each exponential is evaluated once and kept in f32
// until the output; packed rows (128 bytes a thread) evaluate it twice. Block b is
// row row0 + b / csize: no row loop (a loop over rows raised <bf16, 8, 2> from 32
// to 52 registers, ptxas -v). FULL: every thread's ITEMS vectors lie in the row
// (kCtaFull), so nothing is tested.
template <typename T, int VEC, int ITEMS, bool FULL = false>
__global__ void __launch_bounds__(cuda::kCtaMaxThreads<ITEMS>)
    forward_cta(int64_t row0, const T* __restrict__ x, int64_t x_stride, T* __restrict__ y, int n,
                int slice, int csize, float k) {
  constexpr bool KEEP = VEC * ITEMS <= 16;
  __shared__ cuda::RowReduceShared<float> shared;
  cuda::RowReducer<false> reducer(shared, csize);
  const auto [rank, c, row] = cuda::cta_row_frame<false, VEC>(row0, slice, csize);
  Vec<T, VEC> v[ITEMS];
  cuda::load_row_clamped<T, VEC, ITEMS>(v, x + row * x_stride, c, n);
  // t = k * x; columns past n hold -inf (exp 0) where kept.
  float t[KEEP ? ITEMS : 1][VEC];
  float m = -INFINITY;
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const bool in = FULL || c.col(it) < n;
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      const float e = in ? k * to_f(v[it].v[j]) : -INFINITY;
      if constexpr (KEEP) t[it][j] = e;
      m = fmaxf(m, e);
    }
  }
  // Packed rows: the f32 values derived from v are recomputed after each
  // reduction, not kept live across it (64 instead of 32 registers of data).
  if constexpr (!KEEP) {
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) opaque(v[it]);
  }
  m = reducer.template reduce<cuda::MaxOp>(m, 0);
  // A row of -inf (fully masked) rescales against 0: its sum is 0 and its
  // output NaN (0 / 0), as the definition gives.
  const float base = m == -INFINITY ? 0.f : m;
  float s = 0.f;
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const bool in = FULL || c.col(it) < n;
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      if constexpr (KEEP) {
        t[it][j] = cuda::ex2_ftz(t[it][j] - base);
        s += t[it][j];
      } else if (in) {
        s += cuda::ex2_ftz(k * to_f(v[it].v[j]) - base);
      }
    }
  }
  if constexpr (!KEEP) {
#pragma unroll
    for (int it = 0; it < ITEMS; ++it) opaque(v[it]);
  }
  // The element at the max contributes 1, so the sum is >= 1 (or NaN, or 0 for a
  // masked row): the fast division needs no slow path.
  const float inv = __fdividef(1.0f, reducer.template reduce<cuda::SumOp>(s, 1));
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const int col = c.col(it);
    if (FULL || col < n) {
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        if constexpr (KEEP)
          out.v[j] = from_f<T>(t[it][j] * inv);
        else
          out.v[j] = from_f<T>(cuda::ex2_ftz(k * to_f(v[it].v[j]) - base) * inv);
      }
      store_vec<T, VEC>(y + row * n + col, out);
    }
  }
}

// Rows split over a cluster (packed rows too long for one CTA: 4 x 256 x 8 at 65536
// bf16 columns), each CTA's slice staged in shared memory by one TMA bulk copy
// (StagedRows, one stage) and read from there three times: max, sum of exponentials,
// output; the reductions are forward_cta's (pushed to the peers). The row in flight
// holds shared memory instead of registers, so more rows are in flight an SM: H200
// run 17a at 4096x65536 bf16, 0.2636 ms (96% of copy) against 0.3117 for forward_cta's
// register rows (the same 4 x 256 x 8 clusters; QuACK 0.260).
template <typename T, int VEC, int ITEMS>
__global__ void __launch_bounds__(cuda::kWideThreads)
    forward_staged(int64_t row0, const T* __restrict__ x, int64_t x_stride, T* __restrict__ y,
                   int n, int slice, int csize, float k) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  __shared__ cuda::RowReduceShared<float> shared;
  cuda::RowReducer<true> reducer(shared, csize);
  const auto [rank, c, row] = cuda::cta_row_frame<true, VEC>(row0, slice, csize);
  const T* xs[1];
  cuda::stage_row_slice<T, 1>({{x}, {x_stride}}, row, rank * slice, slice, n, xs);
  auto at = [&](int it) { return *reinterpret_cast<const Vec<T, VEC>*>(xs[0] + c.col(it)); };
  float m = -INFINITY;
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    if (c.col(it) < n) {
      const Vec<T, VEC> v = at(it);
#pragma unroll
      for (int j = 0; j < VEC; ++j) m = fmaxf(m, k * to_f(v.v[j]));
    }
  }
  m = reducer.template reduce<cuda::MaxOp>(m, 0);
  const float base = m == -INFINITY ? 0.f : m;  // a masked row: NaN, as forward_cta
  float s = 0.f;
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    if (c.col(it) < n) {
      const Vec<T, VEC> v = at(it);
#pragma unroll
      for (int j = 0; j < VEC; ++j) s += cuda::ex2_ftz(k * to_f(v.v[j]) - base);
    }
  }
  const float inv = __fdividef(1.0f, reducer.template reduce<cuda::SumOp>(s, 1));
#pragma unroll
  for (int it = 0; it < ITEMS; ++it) {
    const int col = c.col(it);
    if (col < n) {
      const Vec<T, VEC> v = at(it);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(cuda::ex2_ftz(k * to_f(v.v[j]) - base) * inv);
      store_vec<T, VEC>(y + row * n + col, out);
    }
  }
#endif
}

// Any row length: pass 1 keeps a running (max, sum) per thread, pass 2 re-reads and
// writes. A running max of -inf is treated as 0 when rescaling so that rows starting
// with -inf (masks) do not produce inf - inf; NaN still propagates.
template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads) forward_looped(
    const T* __restrict__ x, int64_t x_stride, T* __restrict__ y, int64_t rows, int n, float k) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * x_stride;
    float m = -INFINITY, s = 0.f;
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> v = load_vec<T, VEC>(xr + col);
      float t[VEC];
      float vm = -INFINITY;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        t[j] = k * to_f(v.v[j]);
        vm = fmaxf(vm, t[j]);
      }
      const float mn = fmaxf(m, vm);
      const float base = mn == -INFINITY ? 0.f : mn;
      float add = 0.f;
#pragma unroll
      for (int j = 0; j < VEC; ++j) add += exp2f(t[j] - base);
      s = s * exp2f(m - base) + add;
      m = mn;
    }
    const float rm = block_max(m, scratch);
    s = block_sum(s * exp2f(m - (rm == -INFINITY ? 0.f : rm)), scratch);
    const float inv = __fdividef(1.0f, s);  // s >= 1 (or NaN): no slow-path call
    for (int col = threadIdx.x * VEC; col < n; col += blockDim.x * VEC) {
      const Vec<T, VEC> v = load_vec<T, VEC>(xr + col);
      Vec<T, VEC> out;
#pragma unroll
      for (int j = 0; j < VEC; ++j) out.v[j] = from_f<T>(exp2f(k * to_f(v.v[j]) - rm) * inv);
      store_vec<T, VEC>(y + row * n + col, out);
    }
  }
}

// The plain definition, scalar accesses: max, sum of exp, then exp / sum.
template <typename T>
__global__ void forward_reference(const T* __restrict__ x, int64_t x_stride, T* __restrict__ y,
                                  int64_t rows, int n, float scale) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * x_stride;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, scale * to_f(xr[i]));
    m = block_max(m, scratch);
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += expf(scale * to_f(xr[i]) - m);
    s = block_sum(s, scratch);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
      y[row * n + i] = from_f<T>(expf(scale * to_f(xr[i]) - m) / s);
  }
}

}  // namespace

template <typename T>
Status forward(const ForwardProblem& p, const ExecContext& ctx) {
  XPU_RETURN_IF_ERROR(cuda::check_row_length(kOp, p.n, "elements"));
  const auto& a = *p.args;
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  const T* x = a.x.as<T>();
  T* y = a.y.as<T>();
  const int n = static_cast<int>(p.n);
  if (ctx.policy == Policy::kReference) {
    forward_reference<T><<<cuda::grid_for(p.rows), 256, 0, stream>>>(x, p.x_stride, y, p.rows, n,
                                                                      a.scale);
    return cuda::launch_status(kOp);
  }
  constexpr int kVec = 16 / sizeof(T);
  const float k = a.scale * kLog2e;
  const int vec = cuda::vector_width<T>(p.n, {{x, p.x_stride}, {y, p.n}});
  // 16-byte rows too long for a warp: one CTA a row (forward_cta) where it fits
  // kCtaKeepElems a thread (exponentials kept) or a packed row, else a cluster.
  if (vec == kVec && row_plan(p.n, vec, 1).warp.items == 0) {
    int max_cluster = 1;
    XPU_RETURN_IF_ERROR(cuda::max_cluster_size(&max_cluster));
    const cuda::SplitShape s = cta_row_shape(p.n, vec, max_cluster);
    void (*cta)(int64_t, const T*, int64_t, T*, int, int, int, float) = nullptr;
    int smem = 0;
    if (s.cluster > 1) {  // sm_90: staged through shared memory by TMA
      cta = &forward_staged<T, kVec, cuda::kPackedItems>;
      smem = cuda::StagedRows<T, 1>::smem_bytes(s.slice, 1);
    } else if (s.cluster == 1) {
      const bool full = cuda::row_fills_threads(p.n, 1, s.threads, s.items, kVec);
      cuda::with_vec_items<kVec, kVec * cuda::kPackedItems, 16>(vec, s.items, [&]<int V, int I>() {
        if constexpr (V == kVec) {
          cta = &forward_cta<T, V, I>;
          if constexpr (kCtaFull<T, I>)
            if (full) cta = &forward_cta<T, V, I, true>;
        }
      });
    }
    if (cta) {
      bool launched = false;
      XPU_RETURN_IF_ERROR(cuda::launch_rows_smem(cta, p.rows, s.threads, s.cluster, smem,
                                                 stream, kOp, "forward launch", &launched, x,
                                                 p.x_stride, y, n, s.slice, s.cluster, k));
      if (launched) return Status::Ok();
    }
  }
  using Kernel = void (*)(const T*, int64_t, T*, int64_t, int, int, int, float);
  Kernel kernel = nullptr;
  ResidentLaunch l;
  int64_t blocks = 0;
  XPU_RETURN_IF_ERROR((plan_resident<T>(
      p.n, vec, p.rows,
      []<int V, int I, bool WARP>(ResidentTag<V, I, WARP>) {
        return &forward_resident<T, V, I, WARP>;
      },
      &kernel, &l, &blocks)));
  if (blocks > 0) {
    return cuda::cuda_status(
        cuda::launch_clustered(kernel, static_cast<unsigned>(blocks), l.threads, l.cluster,
                               stream, x, p.x_stride, y, p.rows, n, l.slice, l.cluster, k),
        kOp, "forward launch");
  }
  const int threads = cuda::looped_threads(p.n, vec, kMaxThreads);
  const unsigned grid = cuda::grid_for(p.rows);
  if (vec == 1)
    forward_looped<T, 1><<<grid, threads, 0, stream>>>(x, p.x_stride, y, p.rows, n, k);
  else
    forward_looped<T, kVec><<<grid, threads, 0, stream>>>(x, p.x_stride, y, p.rows, n, k);
  return cuda::launch_status(kOp);
}

template Status forward<float>(const ForwardProblem&, const ExecContext&);
template Status forward<__half>(const ForwardProblem&, const ExecContext&);
template Status forward<__nv_bfloat16>(const ForwardProblem&, const ExecContext&);

}  // namespace xpu::ops::softmax_detail::gpu

namespace xpu::ops::softmax_detail {

void register_cuda(Registry& r) {
  // Fixed-order reductions, no atomics: `fast` is deterministic too.
  register_float_family<float, __half, __nv_bfloat16>(
      r, "softmax", DeviceKind::kCUDA,
      []<typename T>() { return std::pair{&gpu::forward<T>, &gpu::backward<T>}; });
}

}  // namespace xpu::ops::softmax_detail
