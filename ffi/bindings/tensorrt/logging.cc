#include "bindings/tensorrt/logging.h"

#include <atomic>
#include <cstdio>

namespace xpu::trt {
namespace {
std::atomic<nvinfer1::ILoggerFinder*> g_finder{nullptr};
}  // namespace

void set_logger_finder(nvinfer1::ILoggerFinder* finder) noexcept { g_finder.store(finder); }

void log(nvinfer1::ILogger::Severity severity, const std::string& message) noexcept {
  nvinfer1::ILoggerFinder* finder = g_finder.load();
  nvinfer1::ILogger* logger = nullptr;
  try {
    logger = finder ? finder->findLogger() : nullptr;
  } catch (...) {
    logger = nullptr;  // a finder that throws must not take the caller down
  }
  if (logger) {
    logger->log(severity, message.c_str());
    return;
  }
  if (severity <= nvinfer1::ILogger::Severity::kWARNING)
    std::fprintf(stderr, "[xpuruntime TensorRT] %s\n", message.c_str());
}

}  // namespace xpu::trt
