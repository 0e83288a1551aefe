// What every check of the test program shares: the plugin library opened with
// dlopen (as TensorRT's registry opens it), a logger that records what the
// library logs, plugin fields, and a tally of checks.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "xpuruntime/op_spec.h"

namespace xpu::trt_test {

// Records every message the library logs through the logger finder.
class Logger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override;
  std::vector<std::string> take();  // the messages since the last take()

 private:
  std::mutex mu_;
  std::vector<std::string> messages_;
};

class Library {
 public:
  // Opens the library, hands it the logger and reads its creators; ok() tells.
  // With `registry` (a TensorRT runtime library, e.g. libnvinfer_lean.so.11) the
  // library is loaded by that runtime's plugin registry and its creators are the
  // registry's; otherwise it is opened with dlopen and asked with getCreators.
  Library(const std::string& path, const std::string& registry);
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // nullptr when there is no creator of that name in namespace "xpuruntime".
  nvinfer1::IPluginCreatorV3One* creator(const std::string& name) const;
  const std::map<std::string, nvinfer1::IPluginCreatorV3One*>& creators() const { return creators_; }
  Logger& logger() { return logger_; }

 private:
  struct Finder final : nvinfer1::ILoggerFinder {
    nvinfer1::ILogger* logger = nullptr;
    nvinfer1::ILogger* findLogger() override { return logger; }
  };
  Logger logger_;
  Finder finder_;
  std::map<std::string, nvinfer1::IPluginCreatorV3One*> creators_;
  std::string error_;
  void add_creators(nvinfer1::IPluginCreatorInterface* const* list, int32_t n);
};

// Plugin fields with their own storage ({"epsilon", 1e-5f}, {"reduction", "none"}).
class Fields {
 public:
  Fields& f32(const std::string& name, float v);
  Fields& i32(const std::string& name, int32_t v);
  Fields& i64(const std::string& name, int64_t v);
  Fields& text(const std::string& name, const std::string& v);
  const nvinfer1::PluginFieldCollection* collection();
  // The fields that are the op's attributes (all but has_<input>) as the core's
  // GivenAttrs (text points into this object).
  std::vector<GivenAttr> given() const;
  std::string describe() const;  // "epsilon=1e-05, policy=deterministic"

 private:
  struct Entry {
    std::string name;
    nvinfer1::PluginFieldType type;
    std::vector<char> bytes;
    std::string shown;
  };
  std::vector<Entry> entries_;
  std::vector<nvinfer1::PluginField> fields_;
  nvinfer1::PluginFieldCollection collection_{};
};

// A plugin created by the test, deleted with it.
struct Plugin {
  nvinfer1::IPluginV3* plugin = nullptr;
  ~Plugin() { delete plugin; }
  Plugin(nvinfer1::IPluginV3* p = nullptr) : plugin(p) {}
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;
  nvinfer1::IPluginV3OneCore* core() const;
  nvinfer1::IPluginV3OneBuild* build() const;
  nvinfer1::IPluginV3OneRuntime* runtime() const;
};

// A numeric field's value (or a char field's text) as text, whatever its type.
std::string field_value(const nvinfer1::PluginField& f);

// A field collection's bytes in order, for comparing serialized plugins.
std::string serialized(const nvinfer1::PluginFieldCollection* fc);

// Counts checks; prints each failure with its context.
class Checks {
 public:
  bool check(bool ok, const std::string& what);
  int total() const { return total_; }
  int failed() const { return failed_; }

 private:
  int total_ = 0, failed_ = 0;
};

}  // namespace xpu::trt_test
