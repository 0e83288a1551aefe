// The plugins as OPS.md describes them, written here independently of the
// library: for each case, the fields, the inputs (shapes with symbolic dims and
// the kind of dtype each takes), the outputs the op must give, and shapes the op
// must refuse (naming the input). Every creator of the library needs a case.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "harness.h"

namespace xpu::trt_test {

// A dimension: symbolic ones get a symbol (name) in symbolic shapes, their value
// in concrete ones; constants are the same in both.
struct Dim {
  std::string name;
  int64_t value = 0;
  bool symbolic = false;
};
using Shape = std::vector<Dim>;
Dim sym(const std::string& name, int64_t value);
Dim num(int64_t value);

enum class InKind { kFloat, kTable, kLabels };  // the call's float dtype; f32 or it; int32 or int64
enum class OutKind { kLike, kF32, kI32 };        // the call's float dtype; f32; int32

struct Input {
  std::string name;
  InKind kind;
  Shape shape;
};
struct Output {
  std::string name;
  OutKind kind;
  Shape shape;
};
// `input` given `shape` must be refused with a message naming `names`.
struct BadShape {
  int input;
  Shape shape;
  std::string names;
};

struct Case {
  std::string label;   // "RMSNorm with residual"
  std::string plugin;  // the creator's name
  Fields fields;
  std::vector<Input> inputs;
  std::vector<Output> outputs;
  std::vector<BadShape> bad;
};

std::vector<Case> all_cases();

}  // namespace xpu::trt_test

namespace xpu::trt_test {

// Which shape of a dimension: its value, a profile's min (symbolic dims 1) or max
// (symbolic dims twice their value), or as declared to TensorRT (symbolic: -1).
enum class Bound { kValue, kMin, kMax, kDeclared };
nvinfer1::Dims dims_of(const Shape& shape, Bound bound);
std::string shape_text(const Shape& shape, bool symbolic);  // "[B, S, 64]"

// One dtype choice for a case: the call's float dtype, the tables', the labels'.
struct Dtypes {
  nvinfer1::DataType flt, table, labels;
};
std::vector<Dtypes> dtype_choices(const Case& c);  // every valid combination
nvinfer1::DataType input_type(const Input& in, const Dtypes& d);
nvinfer1::DataType output_type(const Output& out, const Dtypes& d);
std::string dtypes_text(const Case& c, const Dtypes& d);  // "x=float16 cos=float32"
std::string type_text(nvinfer1::DataType t);

}  // namespace xpu::trt_test
