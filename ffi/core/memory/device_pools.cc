#include "xpuruntime/memory/device_pools.h"

#include <mutex>
#include <unordered_map>
#include <vector>

namespace xpu::memory {
namespace {
std::mutex g_pools_mu;
CachingPool* g_cpu_pool = nullptr;
std::unordered_map<int, CachingPool*> g_cuda_pools;
CachingPool* g_pinned_pool = nullptr;
bool g_pinned_tried = false;
}  // namespace

Status device_pool(Device device, CachingPool** out) {
  *out = nullptr;
  std::lock_guard<std::mutex> lock(g_pools_mu);
  if (device.kind == DeviceKind::kCPU) {
    if (device.index != 0)
      return InvalidArgument("invalid CPU device index ", device.index, " (only cpu:0 exists)");
    if (!g_cpu_pool) g_cpu_pool = new CachingPool(make_host_resource());
    *out = g_cpu_pool;
    return Status::Ok();
  }
  auto it = g_cuda_pools.find(device.index);
  if (it != g_cuda_pools.end()) {
    *out = it->second;
    return Status::Ok();
  }
  Status s;
  auto upstream = make_cuda_resource(device.index, &s);
  if (!upstream) return s;
  *out = g_cuda_pools[device.index] = new CachingPool(std::move(upstream));
  return Status::Ok();
}

void retire_stream_everywhere(void* stream) {
  std::vector<CachingPool*> pools;
  {
    std::lock_guard<std::mutex> lock(g_pools_mu);
    for (auto& [index, pool] : g_cuda_pools) pools.push_back(pool);
    if (g_pinned_pool) pools.push_back(g_pinned_pool);
  }
  if (pools.empty()) return;
  pools.front()->upstream().synchronize_stream(stream);
  for (CachingPool* pool : pools) pool->retire_stream(stream);
}

Status pinned_pool(CachingPool** out, bool* is_pinned) {
  {
    std::lock_guard<std::mutex> lock(g_pools_mu);
    if (!g_pinned_tried) {
      g_pinned_tried = true;
      Status s;
      auto upstream = make_pinned_host_resource(&s);
      if (upstream) g_pinned_pool = new CachingPool(std::move(upstream));
    }
    if (g_pinned_pool) {
      *out = g_pinned_pool;
      *is_pinned = true;
      return Status::Ok();
    }
  }
  *is_pinned = false;
  return device_pool({DeviceKind::kCPU, 0}, out);
}

}  // namespace xpu::memory
