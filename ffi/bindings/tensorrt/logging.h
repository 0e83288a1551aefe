// Messages of the plugin library go to the logger TensorRT hands over through
// setLoggerFinder (the logger of the builder or runtime that called us), or to
// stderr before TensorRT has given one.
#pragma once

#include <NvInferRuntime.h>

#include <string>

namespace xpu::trt {

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept;
void log(nvinfer1::ILogger::Severity severity, const std::string& message) noexcept;
inline void log_error(const std::string& message) noexcept {
  log(nvinfer1::ILogger::Severity::kERROR, message);
}

}  // namespace xpu::trt
