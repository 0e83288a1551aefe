#include "harness.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstring>

namespace xpu::trt_test {

void Logger::log(Severity severity, const char* msg) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  messages_.emplace_back(msg ? msg : "");
  (void)severity;
}

std::vector<std::string> Logger::take() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.swap(messages_);
  return out;
}

Library::Library(const std::string& path, const std::string& registry) {
  using SetFinder = void (*)(nvinfer1::ILoggerFinder*);
  using GetCreators = nvinfer1::IPluginCreatorInterface* const* (*)(int32_t&);
  finder_.logger = &logger_;
  if (!registry.empty()) {
    void* runtime = dlopen(registry.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!runtime) {
      error_ = std::string("dlopen of the TensorRT runtime failed: ") + dlerror();
      return;
    }
    using GetRegistry = nvinfer1::IPluginRegistry* (*)();
    auto get_registry = reinterpret_cast<GetRegistry>(dlsym(runtime, "getPluginRegistry"));
    nvinfer1::IPluginRegistry* reg = get_registry ? get_registry() : nullptr;
    if (!reg) {
      error_ = registry + " has no plugin registry";
      return;
    }
    if (!reg->loadLibrary(path.c_str())) {
      error_ = "the TensorRT plugin registry did not load " + path;
      return;
    }
    int32_t n = 0;
    nvinfer1::IPluginCreatorInterface* const* list = reg->getAllCreators(&n);
    add_creators(list, n);
    // The registry gave the library its own logger finder; ours records messages.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
    auto set_finder = handle ? reinterpret_cast<SetFinder>(dlsym(handle, "setLoggerFinder")) : nullptr;
    if (!set_finder) {
      error_ = "the registry loaded the library but it is not in the process";
      return;
    }
    set_finder(&finder_);
    return;
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    error_ = std::string("dlopen failed: ") + dlerror();
    return;
  }
  auto set_finder = reinterpret_cast<SetFinder>(dlsym(handle, "setLoggerFinder"));
  auto get_creators = reinterpret_cast<GetCreators>(dlsym(handle, "getCreators"));
  if (!set_finder || !get_creators) {
    error_ = "the library does not export setLoggerFinder and getCreators";
    return;
  }
  set_finder(&finder_);
  int32_t n = 0;
  nvinfer1::IPluginCreatorInterface* const* list = get_creators(n);
  add_creators(list, n);
}

void Library::add_creators(nvinfer1::IPluginCreatorInterface* const* list, int32_t n) {
  for (int32_t i = 0; i < n; ++i) {
    if (std::strcmp(list[i]->getInterfaceInfo().kind, "PLUGIN CREATOR_V3ONE") != 0) continue;
    auto* c = static_cast<nvinfer1::IPluginCreatorV3One*>(list[i]);
    if (std::string(c->getPluginNamespace()) == "xpuruntime") creators_[c->getPluginName()] = c;
  }
}

nvinfer1::IPluginCreatorV3One* Library::creator(const std::string& name) const {
  auto it = creators_.find(name);
  return it == creators_.end() ? nullptr : it->second;
}

namespace {
template <typename T>
std::vector<char> bytes_of(T v) {
  std::vector<char> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  return b;
}
}  // namespace

Fields& Fields::f32(const std::string& name, float v) {
  entries_.push_back({name, nvinfer1::PluginFieldType::kFLOAT32, bytes_of(v), std::to_string(v)});
  return *this;
}
Fields& Fields::i32(const std::string& name, int32_t v) {
  entries_.push_back({name, nvinfer1::PluginFieldType::kINT32, bytes_of(v), std::to_string(v)});
  return *this;
}
Fields& Fields::i64(const std::string& name, int64_t v) {
  entries_.push_back({name, nvinfer1::PluginFieldType::kINT64, bytes_of(v), std::to_string(v)});
  return *this;
}
Fields& Fields::text(const std::string& name, const std::string& v) {
  entries_.push_back({name, nvinfer1::PluginFieldType::kCHAR, std::vector<char>(v.begin(), v.end()), v});
  return *this;
}

const nvinfer1::PluginFieldCollection* Fields::collection() {
  fields_.clear();
  for (const Entry& e : entries_)
    fields_.emplace_back(e.name.c_str(), e.bytes.data(), e.type,
                         e.type == nvinfer1::PluginFieldType::kCHAR ? static_cast<int32_t>(e.bytes.size()) : 1);
  collection_.nbFields = static_cast<int32_t>(fields_.size());
  collection_.fields = fields_.data();
  return &collection_;
}

std::vector<GivenAttr> Fields::given() const {
  std::vector<GivenAttr> out;
  for (const Entry& e : entries_) {
    if (e.name.rfind("has_", 0) == 0) continue;  // declarations of the plugin, not attributes
    GivenAttr g;
    g.name = e.name;
    if (e.type == nvinfer1::PluginFieldType::kCHAR) {
      g.type = GivenType::kString;
      g.text = std::string_view(e.bytes.data(), e.bytes.size());
    } else {
      nvinfer1::PluginField f(e.name.c_str(), e.bytes.data(), e.type, 1);
      g.type = e.type == nvinfer1::PluginFieldType::kFLOAT32 ? GivenType::kFloat : GivenType::kInt;
      g.number = std::stod(field_value(f));
    }
    out.push_back(g);
  }
  return out;
}

std::string field_value(const nvinfer1::PluginField& f) {
  using T = nvinfer1::PluginFieldType;
  auto read = [&](auto v) {
    std::memcpy(&v, f.data, sizeof(v));
    return v;
  };
  char buf[64];
  switch (f.type) {
    case T::kCHAR: {
      std::string s(static_cast<const char*>(f.data), f.length);
      while (!s.empty() && s.back() == '\0') s.pop_back();
      return s;
    }
    case T::kFLOAT32: std::snprintf(buf, sizeof buf, "%.9g", read(float{})); return buf;
    case T::kFLOAT64: std::snprintf(buf, sizeof buf, "%.17g", read(double{})); return buf;
    case T::kINT32: return std::to_string(read(int32_t{}));
    case T::kINT64: return std::to_string(read(int64_t{}));
    default: return "?";
  }
}

std::string Fields::describe() const {
  std::string s;
  for (const Entry& e : entries_) s += (s.empty() ? "" : ", ") + e.name + "=" + e.shown;
  return s.empty() ? "defaults" : s;
}

nvinfer1::IPluginV3OneCore* Plugin::core() const {
  return static_cast<nvinfer1::IPluginV3OneCore*>(
      plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kCORE));
}
nvinfer1::IPluginV3OneBuild* Plugin::build() const {
  return static_cast<nvinfer1::IPluginV3OneBuild*>(
      plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kBUILD));
}
nvinfer1::IPluginV3OneRuntime* Plugin::runtime() const {
  return static_cast<nvinfer1::IPluginV3OneRuntime*>(
      plugin->getCapabilityInterface(nvinfer1::PluginCapabilityType::kRUNTIME));
}

std::string serialized(const nvinfer1::PluginFieldCollection* fc) {
  if (!fc) return "<null>";
  std::string s;
  for (int i = 0; i < fc->nbFields; ++i) {
    const nvinfer1::PluginField& f = fc->fields[i];
    using T = nvinfer1::PluginFieldType;
    const size_t width = f.type == T::kCHAR || f.type == T::kINT8                        ? 1
                         : f.type == T::kINT16 || f.type == T::kFLOAT16 || f.type == T::kBF16 ? 2
                         : f.type == T::kINT64 || f.type == T::kFLOAT64                   ? 8
                                                                                          : 4;
    const size_t n = width * static_cast<size_t>(f.length);
    s += std::string(f.name) + ":" + std::to_string(static_cast<int>(f.type)) + ":" +
         std::string(static_cast<const char*>(f.data), n) + ";";
  }
  return s;
}

bool Checks::check(bool ok, const std::string& what) {
  ++total_;
  if (!ok) {
    ++failed_;
    std::printf("FAIL %s\n", what.c_str());
  }
  return ok;
}

}  // namespace xpu::trt_test
