#include "xpuruntime/registry.h"


namespace xpu {

void register_builtin_kernels(Registry& r);  // kernels/register_all.cc

bool parse_policy(std::string_view name, Policy* out) {
  for (Policy p : {Policy::kFast, Policy::kDeterministic, Policy::kReference}) {
    if (policy_name(p) == name) {
      *out = p;
      return true;
    }
  }
  return false;
}

bool KernelKey::operator==(const KernelKey& o) const {
  return op == o.op && direction == o.direction && device == o.device && dtype == o.dtype &&
         policy == o.policy;
}

std::string KernelKey::to_string() const {
  return str_cat(op, '/', direction_name(direction), '/', device_kind_name(device), '/',
                 dtype_name(dtype), '/', policy_name(policy));
}

Registry& Registry::global() {
  static Registry* registry = [] {
    auto* r = new Registry();  // never destroyed: kernels may run during exit
    register_builtin_kernels(*r);
    return r;
  }();
  return *registry;
}

void Registry::add(KernelKey key, AnyKernel fn) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : entries_) {
    if (e.key == key) {
      e.fn = fn;  // a later registration overrides (lets users plug in their own)
      return;
    }
  }
  entries_.push_back({std::move(key), fn});
}

namespace {
thread_local ValidationOnly* t_validation = nullptr;
}  // namespace

ValidationOnly::ValidationOnly() : outer_(t_validation) { t_validation = this; }
ValidationOnly::~ValidationOnly() { t_validation = outer_; }

Status Registry::find(const KernelKey& key, AnyKernel* out) const {
  if (t_validation) {
    t_validation->reached_ = true;
    return Status(StatusCode::kNotFound, str_cat("validation only: no kernel looked up for ",
                                                 key.to_string()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_) {
    if (e.key == key) {
      *out = e.fn;
      return Status::Ok();
    }
  }
  std::string msg = str_cat("no kernel registered for ", key.to_string(), "; registered for ",
                            key.op, ": ");
  bool any = false;
  for (const auto& e : entries_) {
    if (e.key.op != key.op) continue;
    msg += str_cat(any ? ", " : "", e.key.to_string());
    any = true;
  }
  if (!any) msg += str_cat("none (unknown op '", key.op, "')");
  return Status(StatusCode::kNotFound, msg);
}

std::vector<KernelKey> Registry::keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<KernelKey> out;
  for (const auto& e : entries_) out.push_back(e.key);
  return out;
}

}  // namespace xpu
