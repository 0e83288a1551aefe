// validate_op: an op's checks without running it, for adapters that know shapes
// and dtypes before any data exists (TensorRT's configurePlugin and
// onShapeChange). The views carry shapes, dtypes and placeholder data pointers
// that are never read; the Status is the one call_op gives for the same
// arguments, so a bad shape reads the same at build time as at run time.
#pragma once

#include <span>

#include "xpuruntime/op_spec.h"

namespace xpu {

// A non-null address for views that describe a tensor without its data. It is
// never dereferenced: only validation sees such views.
void* placeholder_data();

// Runs call_op inside a ValidationOnly scope (registry.h): the entry point checks
// everything and stops at its kernel lookup. Use CPU views (Device{}): the checks
// do not depend on the device, and a CUDA device would make call_op's DeviceGuard
// touch the driver.
Status validate_op(const OpSpec& spec, std::span<const TensorView> inputs,
                   std::span<const TensorView> outputs, const TensorView& workspace,
                   const AttrValues& attrs);

}  // namespace xpu
