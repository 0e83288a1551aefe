// Host side of cluster.cuh: device capabilities and occupancy, queried once and
// cached, so that per-call launch choices cost a lookup, not a driver query.
#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/common/cluster.cuh"

namespace xpu::cuda {
namespace {

constexpr const char* kWhere = "cluster launch";

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

// *out = attr's value on the current device, cached per (attribute, device).
static Status device_attribute(cudaDeviceAttr attr, const char* what, int* out) {
  int dev = 0;
  XPU_RETURN_IF_ERROR(cuda_status(cudaGetDevice(&dev), kWhere, "cudaGetDevice"));
  static std::map<std::pair<int, int>, int> cache;
  const std::pair<int, int> key{static_cast<int>(attr), dev};
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    if (auto it = cache.find(key); it != cache.end()) {
      *out = it->second;
      return Status::Ok();
    }
  }
  XPU_RETURN_IF_ERROR(cuda_status(cudaDeviceGetAttribute(out, attr, dev), kWhere, what));
  std::lock_guard<std::mutex> lock(cache_mutex());
  cache[key] = *out;
  return Status::Ok();
}

Status max_cluster_size(int* out) {
  int major = 0;
  XPU_RETURN_IF_ERROR(device_attribute(cudaDevAttrComputeCapabilityMajor,
                                       "cudaDeviceGetAttribute(compute capability)", &major));
  *out = major >= 9 ? kMaxCluster : 1;
  return Status::Ok();
}

Status multiprocessor_count(int* out) {
  return device_attribute(cudaDevAttrMultiProcessorCount,
                          "cudaDeviceGetAttribute(multiprocessor count)", out);
}

Status allow_dynamic_smem(const void* kernel, int bytes, bool* ok) {
  *ok = true;
  int dev = 0;
  XPU_RETURN_IF_ERROR(cuda_status(cudaGetDevice(&dev), kWhere, "cudaGetDevice"));
  using Key = std::tuple<const void*, int>;
  static std::map<Key, int> cache;
  const Key key{kernel, dev};
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    if (auto it = cache.find(key); it != cache.end() && it->second >= bytes) return Status::Ok();
  }
  int optin = 0;
  XPU_RETURN_IF_ERROR(cuda_status(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), kWhere,
      "cudaDeviceGetAttribute(max shared memory per block, opt-in)"));
  if (bytes > optin) {
    *ok = false;
    return Status::Ok();
  }
  XPU_RETURN_IF_ERROR(cuda_status(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), kWhere,
      "cudaFuncSetAttribute(max dynamic shared memory)"));
  std::lock_guard<std::mutex> lock(cache_mutex());
  cache[key] = std::max(cache[key], bytes);
  return Status::Ok();
}

Status resident_count(const void* kernel, int threads, int cluster, int* out, int smem) {
  int dev = 0;
  XPU_RETURN_IF_ERROR(cuda_status(cudaGetDevice(&dev), kWhere, "cudaGetDevice"));
  using Key = std::tuple<const void*, int, int, int, int>;
  static std::map<Key, int> cache;
  const Key key{kernel, threads, cluster, smem, dev};
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    if (auto it = cache.find(key); it != cache.end()) {
      *out = it->second;
      return Status::Ok();
    }
  }
  int count = 0;
  if (cluster <= 1) {
    int per_sm = 0, sms = 0;
    XPU_RETURN_IF_ERROR(cuda_status(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads,
                                                      static_cast<size_t>(smem)), kWhere,
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor"));
    XPU_RETURN_IF_ERROR(cuda_status(
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), kWhere,
        "cudaDeviceGetAttribute(multiprocessor count)"));
    count = per_sm * sms;
  } else {
    cudaLaunchAttribute attr[1] = {};
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = static_cast<unsigned>(cluster);
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(static_cast<unsigned>(cluster));
    cfg.blockDim = dim3(static_cast<unsigned>(threads));
    cfg.dynamicSmemBytes = static_cast<size_t>(smem);
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    XPU_RETURN_IF_ERROR(cuda_status(cudaOccupancyMaxActiveClusters(&count, kernel, &cfg), kWhere,
                                    "cudaOccupancyMaxActiveClusters"));
  }
  *out = count;
  std::lock_guard<std::mutex> lock(cache_mutex());
  cache[key] = count;
  return Status::Ok();
}

}  // namespace xpu::cuda
