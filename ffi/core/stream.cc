#include "xpuruntime/stream.h"

#include "core/cuda_error.h"
#include "xpuruntime/devices.h"
#include "xpuruntime/memory/device_pools.h"
#include "xpuruntime/runtime.h"

namespace xpu::runtime {

#if XPURUNTIME_WITH_CUDA
using detail::clear_cuda_error;
using detail::cuda_status;

namespace {
Device cuda(int index) { return {DeviceKind::kCUDA, index}; }
cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }
cudaEvent_t as_event(void* e) { return static_cast<cudaEvent_t>(e); }

// cudaSuccess: done; cudaErrorNotReady: pending; anything else is an error.
Status query_status(cudaError_t err, const char* what, bool* done) {
  *done = err == cudaSuccess;
  if (err == cudaSuccess || err == cudaErrorNotReady) {
    if (err != cudaSuccess) clear_cuda_error();
    return Status::Ok();
  }
  return cuda_status(err, what);
}
}  // namespace

Status stream_create(int device, int priority, void** out) {
  *out = nullptr;
  XPU_RETURN_IF_ERROR(check_cuda_index(device));
  DeviceGuard guard(cuda(device));
  int least = 0, greatest = 0;
  XPU_RETURN_IF_ERROR(cuda_status(cudaDeviceGetStreamPriorityRange(&least, &greatest),
                                  "cudaDeviceGetStreamPriorityRange"));
  // CUDA: lower numbers are higher priority; clamp into the device's range.
  if (priority > least) priority = least;
  if (priority < greatest) priority = greatest;
  cudaStream_t s = nullptr;
  XPU_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority),
                                  "cudaStreamCreateWithPriority"));
  *out = s;
  return Status::Ok();
}

void stream_destroy(int device, void* stream) {
  DeviceGuard guard(cuda(device));
  // Memory still tied to the stream must not record on the dead handle later.
  memory::retire_stream_everywhere(stream);
  if (cudaStreamDestroy(as_stream(stream)) != cudaSuccess) clear_cuda_error();
}

Status stream_synchronize(int device, void* stream) {
  DeviceGuard guard(cuda(device));
  return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
}

Status stream_query(int device, void* stream, bool* done) {
  DeviceGuard guard(cuda(device));
  return query_status(cudaStreamQuery(as_stream(stream)), "cudaStreamQuery", done);
}

Status stream_wait_event(int device, void* stream, void* event) {
  DeviceGuard guard(cuda(device));
  return cuda_status(cudaStreamWaitEvent(as_stream(stream), as_event(event), 0), "cudaStreamWaitEvent");
}

Status event_create(int device, bool timing, void** out) {
  *out = nullptr;
  XPU_RETURN_IF_ERROR(check_cuda_index(device));
  DeviceGuard guard(cuda(device));
  cudaEvent_t e = nullptr;
  XPU_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming),
                                  "cudaEventCreate"));
  *out = e;
  return Status::Ok();
}

void event_destroy(int device, void* event) {
  DeviceGuard guard(cuda(device));
  if (cudaEventDestroy(as_event(event)) != cudaSuccess) clear_cuda_error();
}

Status event_record(int device, void* event, void* stream) {
  DeviceGuard guard(cuda(device));
  return cuda_status(cudaEventRecord(as_event(event), as_stream(stream)), "cudaEventRecord");
}

Status event_query(void* event, bool* done) {
  return query_status(cudaEventQuery(as_event(event)), "cudaEventQuery", done);
}

Status event_synchronize(void* event) {
  return cuda_status(cudaEventSynchronize(as_event(event)), "cudaEventSynchronize");
}

Status event_elapsed_ms(void* start, void* end, float* ms) {
  *ms = 0;
  return cuda_status(cudaEventElapsedTime(ms, as_event(start), as_event(end)), "cudaEventElapsedTime");
}

#else  // !XPURUNTIME_WITH_CUDA

using detail::no_cuda;

Status stream_create(int, int, void** out) {
  *out = nullptr;
  return no_cuda("stream_create");
}
void stream_destroy(int, void*) {}
Status stream_synchronize(int, void*) { return no_cuda("stream_synchronize"); }
Status stream_query(int, void*, bool* done) {
  *done = true;
  return no_cuda("stream_query");
}
Status stream_wait_event(int, void*, void*) { return no_cuda("stream_wait_event"); }
Status event_create(int, bool, void** out) {
  *out = nullptr;
  return no_cuda("event_create");
}
void event_destroy(int, void*) {}
Status event_record(int, void*, void*) { return no_cuda("event_record"); }
Status event_query(void*, bool* done) {
  *done = true;
  return no_cuda("event_query");
}
Status event_synchronize(void*) { return no_cuda("event_synchronize"); }
Status event_elapsed_ms(void*, void*, float* ms) {
  *ms = 0;
  return no_cuda("event_elapsed_ms");
}

#endif

}  // namespace xpu::runtime
