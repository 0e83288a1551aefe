// Host side of row_pipe.cuh: the ring depth and grid of a pipelined row kernel,
// from device properties queried once and cached, so that a call costs a lookup.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/common/row_pipe.cuh"

namespace xpu::cuda {
namespace {

constexpr const char* kWhere = "row pipeline";

std::mutex& pipe_mutex() {
  static std::mutex m;
  return m;
}

struct DeviceInfo {
  int sms = 0, smem_sm = 0, smem_block = 0, reserved = 0;
  double peak_bytes_per_s = 0;  // reads + writes, from the memory clock and bus width
};

Status device_info(int dev, DeviceInfo* out) {
  static std::map<int, DeviceInfo> cache;
  {
    std::lock_guard<std::mutex> lock(pipe_mutex());
    if (auto it = cache.find(dev); it != cache.end()) {
      *out = it->second;
      return Status::Ok();
    }
  }
  DeviceInfo d;
  int clock_khz = 0, bus_bits = 0;
  const std::pair<cudaDeviceAttr, int*> attrs[] = {
      {cudaDevAttrMultiProcessorCount, &d.sms},
      {cudaDevAttrMaxSharedMemoryPerMultiprocessor, &d.smem_sm},
      {cudaDevAttrMaxSharedMemoryPerBlockOptin, &d.smem_block},
      {cudaDevAttrReservedSharedMemoryPerBlock, &d.reserved},
      {cudaDevAttrMemoryClockRate, &clock_khz},
      {cudaDevAttrGlobalMemoryBusWidth, &bus_bits}};
  for (auto [attr, dst] : attrs)
    XPU_RETURN_IF_ERROR(cuda_status(cudaDeviceGetAttribute(dst, attr, dev), kWhere,
                                    "cudaDeviceGetAttribute"));
  // Double data rate: two transfers a clock over the bus.
  d.peak_bytes_per_s = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0);
  std::lock_guard<std::mutex> lock(pipe_mutex());
  cache[dev] = d;
  *out = d;
  return Status::Ok();
}

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::max(0, std::atoi(v)) : 0;
}

// Bytes each SM keeps in flight: read bandwidth x kPipeCoverNs / SMs (Little's
// law), 64 KiB where the device reports no memory clock.
int64_t inflight_target(const DeviceInfo& d) {
  if (const int kb = env_int("XPURUNTIME_ROW_INFLIGHT_KB")) return int64_t{kb} * 1024;
  if (d.peak_bytes_per_s <= 0 || d.sms <= 0) return 64 * 1024;
  return static_cast<int64_t>(d.peak_bytes_per_s / 2 * kPipeCoverNs * 1e-9 / d.sms);
}

struct Cached {
  int stages = 0, smem = 0, resident = 0;
};

}  // namespace

SplitShape pipe_split(int64_t n, int vec, int max_cluster, int max_items) {
  if (const int e = env_int("XPURUNTIME_ROW_ITEMS")) max_items = std::min(max_items, e >= 4 ? 4 : e >= 2 ? 2 : 1);
  const int64_t nvec = (n + vec - 1) / vec;
  for (int c = 1; c <= max_cluster; c *= 2) {
    const int64_t per = (nvec + c - 1) / c;  // vectors a CTA
    if (per > int64_t{kMaxRowThreads} * max_items) continue;
    int items = max_items;
    while (items > 1 && (per + items - 1) / items < 32) items /= 2;  // at least one full warp
    const int threads = static_cast<int>(((per + items - 1) / items + 31) / 32 * 32);
    return {c, items, threads, threads * items * vec};
  }
  return {0, 0, 0, 0};
}

Status plan_row_pipe(const void* kernel, int threads, int cluster, int stage_bytes, int64_t rows,
                     PipePlan* plan) {
  *plan = {};
  if (rows <= 0 || stage_bytes <= 0) return Status::Ok();
  int dev = 0;
  XPU_RETURN_IF_ERROR(cuda_status(cudaGetDevice(&dev), kWhere, "cudaGetDevice"));
  DeviceInfo d;
  XPU_RETURN_IF_ERROR(device_info(dev, &d));
  const int64_t want = inflight_target(d);
  const int cta_cap = env_int("XPURUNTIME_ROW_CTAS");
  using Key = std::tuple<const void*, int, int, int, int, int64_t, int>;
  static std::map<Key, Cached> cache;
  const Key key{kernel, threads, cluster, stage_bytes, dev, want, cta_cap};
  Cached c;
  bool hit = false;
  {
    std::lock_guard<std::mutex> lock(pipe_mutex());
    if (auto it = cache.find(key); it != cache.end()) {
      c = it->second;
      hit = true;
    }
  }
  if (!hit) {
    cudaFuncAttributes fa{};
    XPU_RETURN_IF_ERROR(cuda_status(cudaFuncGetAttributes(&fa, kernel), kWhere,
                                    "cudaFuncGetAttributes"));
    int by_regs = 0;  // CTAs an SM that registers, threads and static shared memory allow
    XPU_RETURN_IF_ERROR(cuda_status(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&by_regs, kernel, threads, 0), kWhere,
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor"));
    if (cta_cap > 0) by_regs = std::min(by_regs, cta_cap);
    const int fixed = static_cast<int>(fa.sharedSizeBytes) + d.reserved;
    int best_k = 0, best_s = 0;
    int64_t best_ahead = 0;
    for (int k = by_regs; k >= 1; --k) {
      const int room = std::min(d.smem_sm / k - fixed, d.smem_block - static_cast<int>(fa.sharedSizeBytes));
      const int fit = std::min(kMaxPipeStages, room / stage_bytes);
      if (fit < 2) continue;
      const int64_t per_stage = int64_t{k} * stage_bytes;  // an SM's bytes of one stage
      const int need = static_cast<int>(std::max<int64_t>(2, 1 + (want + per_stage - 1) / per_stage));
      if (fit >= need) {
        best_k = k;
        best_s = need;
        break;
      }
      if (const int64_t ahead = per_stage * (fit - 1); ahead > best_ahead) {
        best_ahead = ahead;
        best_k = k;
        best_s = fit;
      }
    }
    if (best_k > 0) {
      c.stages = best_s;
      c.smem = best_s * stage_bytes;
      bool ok = true;
      XPU_RETURN_IF_ERROR(allow_dynamic_smem(kernel, c.smem, &ok));
      if (ok) XPU_RETURN_IF_ERROR(resident_count(kernel, threads, cluster, &c.resident, c.smem));
      if (!ok || c.resident <= 0) c = Cached{};
    }
    std::lock_guard<std::mutex> lock(pipe_mutex());
    cache[key] = c;
  }
  if (c.stages == 0) return Status::Ok();
  plan->stages = c.stages;
  plan->smem = c.smem;
  // As many groups as are resident, then as few as keep the same number of rounds,
  // so that every group walks the same number of rows (e.g. 32768 rows over 1056
  // resident groups: 32 rounds, the last with 32 rows; over 1024 groups every round is
  // full and each group's share of the bandwidth larger).
  const int64_t most = std::min<int64_t>({rows, int64_t{c.resident}, kMaxGrid / cluster});
  const int64_t rounds = (rows + most - 1) / most;
  plan->groups = (rows + rounds - 1) / rounds;
  return Status::Ok();
}

}  // namespace xpu::cuda
