// The epilogue of an SN dense layer in one pass: y = act(xw * scale + bias),
// and its gradient in one pass.
//
// TensorFlow runs the same epilogue as three ops (Mul, BiasAdd, Elu), each a
// pass over the batch x units output, with Eigen's Exp for the ELU; in a
// plain Dense layer oneDNN fuses them into the matmul, which the SN layer
// cannot use (its output scale is a tensor and the gradient through
// sigma_hat needs xw). Built and loaded by layers/epilogue.py; float32,
// CPU, single-threaded.
//
//   NsrSnEpilogue(xw [rows, n], scale [], bias [n]) -> y [rows, n]
//   NsrSnEpilogueGrad(gy, y, xw, scale) -> (g_xw, g_scale, g_bias)
//
// with g_pre = gy * act'(pre) read off y as TensorFlow's EluGrad / ReluGrad
// do, g_xw = g_pre * scale, g_scale = sum(g_pre * xw) (accumulated in double)
// and g_bias = column sums of g_pre.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace nsr_tf {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::TensorShapeUtils;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

enum Activation { kLinear = 0, kRelu = 1, kElu = 2 };

// exp(x) for x <= 0 (larger x is not used). Cephes' single-precision
// polynomial after the reduction x = n ln2 + r, |r| <= ln2 / 2; at most
// 1.4 ulp from the exact value on [-87, 0]. Written without branches so that
// the compiler vectorizes the loops that call it.
inline float ExpNonPositive(float x) {
  x = std::max(x, -87.0f);
  const float kShifter = 12582912.0f;  // 1.5 * 2^23: x + kShifter rounds x.
  const float n = (x * 1.44269504088896341f + kShifter) - kShifter;
  float r = x - n * 0.693359375f;  // ln 2 in two parts, high ...
  r = r + n * 2.12194440e-4f;      // ... and low.
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // Multiply by 2^n by adding n to the exponent bits (n >= -126 here).
  uint32_t bits;
  std::memcpy(&bits, &p, sizeof(bits));
  bits += static_cast<uint32_t>(static_cast<int32_t>(n)) << 23;
  std::memcpy(&p, &bits, sizeof(p));
  return p;
}

template <Activation kAct>
void Forward(const float* __restrict xw, float scale,
             const float* __restrict bias, float* __restrict y, int64_t rows,
             int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = xw + r * n;
    float* out = y + r * n;
    for (int64_t j = 0; j < n; ++j) {
      const float pre = in[j] * scale + bias[j];
      if (kAct == kElu) {
        // As Eigen's ELU: exp(pre) - 1 below 0, pre otherwise (NaN stays).
        const float e = ExpNonPositive(std::min(pre, 0.0f));
        out[j] = pre < 0.0f ? e - 1.0f : pre;
      } else if (kAct == kRelu) {
        out[j] = pre < 0.0f ? 0.0f : pre;
      } else {
        out[j] = pre;
      }
    }
  }
}

// g_pre = gy * act'(pre), read off y as TensorFlow's EluGrad / ReluGrad do.
template <Activation kAct>
inline float PreGradient(float gy, float y) {
  if (kAct == kElu) return y < 0.0f ? gy * (y + 1.0f) : gy;
  if (kAct == kRelu) return y > 0.0f ? gy : 0.0f;
  return gy;
}

template <Activation kAct>
double Backward(const float* __restrict gy, const float* __restrict y,
                const float* __restrict xw, float scale,
                float* __restrict g_xw, float* __restrict g_bias,
                int64_t rows, int64_t n) {
  // sum(g_pre * xw): kLanes float partial sums per row (so that the loop
  // vectorizes without reassociating), added up in double.
  constexpr int64_t kLanes = 16;
  std::fill(g_bias, g_bias + n, 0.0f);
  double dot = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* g_row = gy + r * n;
    const float* y_row = y + r * n;
    const float* x_row = xw + r * n;
    float* out = g_xw + r * n;
    float lanes[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes) {
      for (int64_t l = 0; l < kLanes; ++l) {
        const float g = PreGradient<kAct>(g_row[j + l], y_row[j + l]);
        out[j + l] = g * scale;
        g_bias[j + l] += g;
        lanes[l] += g * x_row[j + l];
      }
    }
    double row_dot = 0.0;
    for (; j < n; ++j) {
      const float g = PreGradient<kAct>(g_row[j], y_row[j]);
      out[j] = g * scale;
      g_bias[j] += g;
      row_dot += static_cast<double>(g * x_row[j]);
    }
    for (int64_t l = 0; l < kLanes; ++l) row_dot += lanes[l];
    dot += row_dot;
  }
  return dot;
}

// Both kernels read the "activation" attribute once, at construction.
class EpilogueKernel : public OpKernel {
 public:
  explicit EpilogueKernel(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string name;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("activation", &name));
    act_ = name == "elu" ? kElu : name == "relu" ? kRelu : kLinear;
  }

 protected:
  Activation act_ = kLinear;
};

// xw must be a matrix, scale a scalar and bias (if given) a vector of
// xw's column count.
::tensorflow::Status CheckShapes(const Tensor& xw, const Tensor& scale,
                                 const Tensor* bias) {
  if (!TensorShapeUtils::IsMatrix(xw.shape())) {
    return ::tensorflow::errors::InvalidArgument(
        "xw must be a matrix, got shape ", xw.shape().DebugString());
  }
  if (!TensorShapeUtils::IsScalar(scale.shape())) {
    return ::tensorflow::errors::InvalidArgument(
        "scale must be a scalar, got shape ", scale.shape().DebugString());
  }
  if (bias != nullptr && (!TensorShapeUtils::IsVector(bias->shape()) ||
                          bias->dim_size(0) != xw.dim_size(1))) {
    return ::tensorflow::errors::InvalidArgument(
        "bias must have shape [", xw.dim_size(1), "], got ",
        bias->shape().DebugString());
  }
  return ::tensorflow::OkStatus();
}

class SnEpilogueOp : public EpilogueKernel {
 public:
  using EpilogueKernel::EpilogueKernel;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& xw = ctx->input(0);
    const Tensor& scale = ctx->input(1);
    const Tensor& bias = ctx->input(2);
    OP_REQUIRES_OK(ctx, CheckShapes(xw, scale, &bias));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, xw.shape(), &y));
    const int64_t rows = xw.dim_size(0), n = xw.dim_size(1);
    const float s = scale.scalar<float>()();
    const float* in = xw.flat<float>().data();
    const float* b = bias.flat<float>().data();
    float* out = y->flat<float>().data();
    switch (act_) {
      case kElu:
        Forward<kElu>(in, s, b, out, rows, n);
        break;
      case kRelu:
        Forward<kRelu>(in, s, b, out, rows, n);
        break;
      default:
        Forward<kLinear>(in, s, b, out, rows, n);
    }
  }
};

class SnEpilogueGradOp : public EpilogueKernel {
 public:
  using EpilogueKernel::EpilogueKernel;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gy = ctx->input(0);
    const Tensor& y = ctx->input(1);
    const Tensor& xw = ctx->input(2);
    const Tensor& scale = ctx->input(3);
    OP_REQUIRES_OK(ctx, CheckShapes(xw, scale, nullptr));
    OP_REQUIRES(ctx, gy.shape() == xw.shape() && y.shape() == xw.shape(),
                ::tensorflow::errors::InvalidArgument(
                    "gy, y and xw must have the same shape, got ",
                    gy.shape().DebugString(), ", ", y.shape().DebugString(),
                    ", ", xw.shape().DebugString()));
    const int64_t rows = xw.dim_size(0), n = xw.dim_size(1);
    Tensor *g_xw = nullptr, *g_scale = nullptr, *g_bias = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, xw.shape(), &g_xw));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({}), &g_scale));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({n}), &g_bias));
    const float s = scale.scalar<float>()();
    const float* g = gy.flat<float>().data();
    const float* yv = y.flat<float>().data();
    const float* in = xw.flat<float>().data();
    float* gx = g_xw->flat<float>().data();
    float* gb = g_bias->flat<float>().data();
    double dot;
    switch (act_) {
      case kElu:
        dot = Backward<kElu>(g, yv, in, s, gx, gb, rows, n);
        break;
      case kRelu:
        dot = Backward<kRelu>(g, yv, in, s, gx, gb, rows, n);
        break;
      default:
        dot = Backward<kLinear>(g, yv, in, s, gx, gb, rows, n);
    }
    g_scale->scalar<float>()() = static_cast<float>(dot);
  }
};

::tensorflow::Status SameAsFirstInput(InferenceContext* c) {
  c->set_output(0, c->input(0));
  return ::tensorflow::OkStatus();
}

::tensorflow::Status GradShapes(InferenceContext* c) {
  ShapeHandle xw;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 2, &xw));
  c->set_output(0, xw);
  c->set_output(1, c->Scalar());
  c->set_output(2, c->Vector(c->Dim(xw, 1)));
  return ::tensorflow::OkStatus();
}

}  // namespace

REGISTER_OP("NsrSnEpilogue")
    .Input("xw: float")
    .Input("scale: float")
    .Input("bias: float")
    .Output("y: float")
    .Attr("activation: {'linear', 'relu', 'elu'}")
    .SetShapeFn(SameAsFirstInput);

REGISTER_OP("NsrSnEpilogueGrad")
    .Input("gy: float")
    .Input("y: float")
    .Input("xw: float")
    .Input("scale: float")
    .Output("g_xw: float")
    .Output("g_scale: float")
    .Output("g_bias: float")
    .Attr("activation: {'linear', 'relu', 'elu'}")
    .SetShapeFn(GradShapes);

REGISTER_KERNEL_BUILDER(
    Name("NsrSnEpilogue").Device(::tensorflow::DEVICE_CPU), SnEpilogueOp);
REGISTER_KERNEL_BUILDER(
    Name("NsrSnEpilogueGrad").Device(::tensorflow::DEVICE_CPU),
    SnEpilogueGradOp);

}  // namespace nsr_tf
