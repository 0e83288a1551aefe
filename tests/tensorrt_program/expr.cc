#include "expr.h"

#include <algorithm>
#include <limits>

namespace xpu::trt_test {

Expr::Expr(std::string text, bool constant, int64_t value) {
  impl_.text = std::move(text);
  impl_.constant = constant;
  impl_.value = value;
  mImpl = &impl_;
}

int64_t Expr::Impl::getConstantValue() const {
  return constant ? value : std::numeric_limits<int64_t>::min();
}

ExprBuilder::ExprBuilder() {
  impl_.owner = this;
  mImpl = &impl_;
}

const Expr* ExprBuilder::add(std::string text, bool constant, int64_t value) {
  exprs_.push_back(std::make_unique<Expr>(std::move(text), constant, value));
  return exprs_.back().get();
}

const Expr* ExprBuilder::symbol(const std::string& name) { return add(name, false, 0); }
const Expr* ExprBuilder::number(int64_t value) { return add(std::to_string(value), true, value); }

std::string ExprBuilder::text(const nvinfer1::IDimensionExpr* e) const {
  for (const auto& x : exprs_)
    if (x.get() == e) return x->text();
  return "?";
}

const nvinfer1::IDimensionExpr* ExprBuilder::Impl::constant(int64_t value) {
  return owner->number(value);
}

const nvinfer1::IDimensionExpr* ExprBuilder::Impl::operation(nvinfer1::DimensionOperation op,
                                                             const nvinfer1::IDimensionExpr& a,
                                                             const nvinfer1::IDimensionExpr& b) {
  using nvinfer1::DimensionOperation;
  if (a.isConstant() && b.isConstant()) {
    const int64_t x = a.getConstantValue(), y = b.getConstantValue();
    switch (op) {
      case DimensionOperation::kSUM: return owner->number(x + y);
      case DimensionOperation::kPROD: return owner->number(x * y);
      case DimensionOperation::kMAX: return owner->number(std::max(x, y));
      case DimensionOperation::kMIN: return owner->number(std::min(x, y));
      case DimensionOperation::kSUB: return owner->number(x - y);
      case DimensionOperation::kEQUAL: return owner->number(x == y);
      case DimensionOperation::kLESS: return owner->number(x < y);
      case DimensionOperation::kFLOOR_DIV: return y ? owner->number(x / y) : nullptr;
      case DimensionOperation::kCEIL_DIV: return y ? owner->number((x + y - 1) / y) : nullptr;
    }
    return nullptr;
  }
  static const char* names[] = {"+", "*", " max ", " min ", "-", "==", "<", "/", " ceildiv "};
  const int i = static_cast<int>(op);
  if (i < 0 || i > 8) return nullptr;
  return owner->add("(" + owner->text(&a) + names[i] + owner->text(&b) + ")", false, 0);
}

}  // namespace xpu::trt_test
