// CUDA streams and events as raw handles (cudaStream_t / cudaEvent_t), for the
// runtime API (xpuruntime.Stream / Event). The CPU device has no streams: the
// Python layer makes its streams and events no-ops. In a build without CUDA
// every call returns kUnimplemented (destroy calls do nothing).
#pragma once

#include "xpuruntime/status.h"

namespace xpu::runtime {

// A non-blocking stream on CUDA device `device`. Lower priority numbers are more
// urgent (as in CUDA); the value is clamped into the device's range.
Status stream_create(int device, int priority, void** out);
// Retires the stream from every memory pool (memory bound to it stays usable),
// then destroys it. Errors are cleared, not reported: nothing can be done.
void stream_destroy(int device, void* stream);
Status stream_synchronize(int device, void* stream);
// *done: all work queued on the stream so far has finished.
Status stream_query(int device, void* stream, bool* done);
// Work queued on `stream` afterwards waits for `event` (the host does not).
Status stream_wait_event(int device, void* stream, void* event);

// timing: the event can measure elapsed time (costs a little at record time).
Status event_create(int device, bool timing, void** out);
void event_destroy(int device, void* event);
Status event_record(int device, void* event, void* stream);
Status event_query(void* event, bool* done);
Status event_synchronize(void* event);
Status event_elapsed_ms(void* start, void* end, float* ms);

}  // namespace xpu::runtime
