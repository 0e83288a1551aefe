// The test's own IExprBuilder: dimension expressions that print as text
// ("B", "64", "(B*S)"), so output shapes can be compared with what OPS.md says.
// TensorRT's expression classes forward to implementation objects (apiv::V*), which
// is what is implemented here.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

namespace xpu::trt_test {

class Expr final : public nvinfer1::IDimensionExpr {
 public:
  // A constant (symbol empty) or a named symbolic dimension.
  Expr(std::string text, bool constant, int64_t value);
  ~Expr() noexcept override = default;
  const std::string& text() const { return impl_.text; }

 private:
  struct Impl final : nvinfer1::apiv::VDimensionExpr {
    std::string text;
    bool constant = false;
    int64_t value = 0;
    bool isConstant() const override { return constant; }
    int64_t getConstantValue() const override;
    bool isSizeTensor() const override { return false; }
  } impl_;
};

class ExprBuilder final : public nvinfer1::IExprBuilder {
 public:
  ExprBuilder();
  ~ExprBuilder() noexcept override = default;
  const Expr* symbol(const std::string& name);
  const Expr* number(int64_t value);
  // The text of an expression this builder made ("?" for one it did not).
  std::string text(const nvinfer1::IDimensionExpr* e) const;

 private:
  struct Impl final : nvinfer1::apiv::VExprBuilder {
    ExprBuilder* owner = nullptr;
    const nvinfer1::IDimensionExpr* constant(int64_t value) override;
    const nvinfer1::IDimensionExpr* operation(nvinfer1::DimensionOperation op,
                                              const nvinfer1::IDimensionExpr& first,
                                              const nvinfer1::IDimensionExpr& second) override;
    const nvinfer1::IDimensionExpr* declareSizeTensor(int32_t, const nvinfer1::IDimensionExpr&,
                                                      const nvinfer1::IDimensionExpr&) override {
      return nullptr;  // no op of the library has data-dependent output sizes
    }
  } impl_;
  std::deque<std::unique_ptr<Expr>> exprs_;
  const Expr* add(std::string text, bool constant, int64_t value);
};

}  // namespace xpu::trt_test
