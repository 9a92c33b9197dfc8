// The model being trained, behind an interface free of torch headers (the TorchScript
// implementation, torch_model.cc, is the only train translation unit that includes torch).
//
// Its parameters live in one flat buffer (every parameter tensor of the module is a view into
// it), and each backward pass leaves the gradient in a second flat buffer of the same layout: the
// trainer all-reduces the gradient in one call and the flat optimizer updates the parameters in
// place, which the module then uses directly.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "comm/types.h"
#include "common/status.h"
#include "infer/tensor.h"

namespace baton::train {

class TrainableModel {
 public:
  virtual ~TrainableModel() = default;

  // kFloat32 or kFloat64: every trainable parameter has this type.
  virtual comm::DataType dtype() const = 0;
  // Elements of the flat buffers.
  virtual size_t size() const = 0;
  virtual void* params() = 0;
  virtual void* grads() = 0;

  // Forward and backward on one local batch (the loss method's inputs in order, float32 inputs
  // converted to the parameters' type): grads() becomes the SUM over the batch's samples of the
  // per-sample loss gradients (not the mean: the trainer divides by the global batch). Returns the
  // sum of the per-sample losses. InvalidArgument when forward fails or does not return
  // per-sample losses ([batch], or a tuple whose first element is that).
  virtual Result<double> ForwardBackward(const std::vector<infer::HostTensor>& batch) = 0;
  virtual void ZeroGrads() = 0;

  // Evaluation, in eval mode and without gradients: the sum of the loss method's per-sample
  // losses over `batch` (laid out as for ForwardBackward).
  virtual Result<double> EvalLossSum(const std::vector<infer::HostTensor>& batch) = 0;
  // `method`'s outputs over `inputs` (its arguments in order), one score per row: a [rows] or
  // [rows, 1] float tensor. InvalidArgument otherwise.
  virtual Result<std::vector<double>> Score(const std::string& method,
                                            const std::vector<infer::HostTensor>& inputs) = 0;
  // `method`'s parameter names, without self; InvalidArgument if the model has no such method.
  virtual Result<std::vector<std::string>> MethodInputs(const std::string& method) const = 0;
  // Writes the module with its current parameters as TorchScript to `path` (temporary file,
  // fsync, rename: a reader sees the old model or the new one).
  virtual Status Save(const std::string& path) = 0;
  // The loss method's parameter names, without self.
  virtual const std::vector<std::string>& input_names() const = 0;
};

// Loads a TorchScript file for training (train mode); `loss_method` is the method that takes the
// batch and returns the per-sample losses ("forward", or e.g. "loss" for a model whose forward()
// predicts, so that `kind: infer` can run the trained file unchanged). NotFound when the file is
// missing; InvalidArgument when it is not TorchScript, lacks the method, has no trainable
// parameters or mixes parameter types.
Result<std::unique_ptr<TrainableModel>> LoadTrainableModel(
    const std::string& path, const std::string& loss_method = "forward");

// Sizes torch's intra-op pool and seeds its generator, once per process, before loading.
void ConfigureTorch(int intra_op_threads, uint64_t seed);

}  // namespace baton::train
