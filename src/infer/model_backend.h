// The model runtime behind one interface, so that the pipeline does not know which library runs
// the model. The implementation is TorchScript through libtorch (torch_backend.cc, the only
// translation unit of the infer worker that includes torch); device "cpu" by default, "cuda[:N]"
// when libtorch was built with CUDA.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "infer/tensor.h"

namespace baton::infer {

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  // Runs forward() on one batch. `inputs` are the forward() arguments in order, each with the
  // batch as its first dimension. Returns the outputs (a tensor, or the tensors of a returned
  // tuple/list) as float32 or int64 host tensors, as many rows as the model returned (the caller
  // checks that they match the batch: CheckOutputRows in tensor.h). A model error (a bad input
  // value, a shape it rejects) is an InvalidArgument with the runtime's first message line; it
  // leaves the model usable for the next batch.
  virtual Result<std::vector<HostTensor>> Predict(const std::vector<HostTensor>& inputs) = 0;
  // forward()'s parameter names, without self.
  virtual const std::vector<std::string>& input_names() const = 0;
};

struct BackendOptions {
  std::string device = "cpu";
};

// Loads a TorchScript file for inference (eval mode, no autograd). NotFound or InvalidArgument
// with the reason when the file is missing or not a TorchScript module, or FailedPrecondition
// when the device is not available in this build.
Result<std::unique_ptr<ModelBackend>> LoadModel(const std::string& path,
                                                const BackendOptions& options);

// Sizes the runtime's thread pools for this process: `intra_op` threads inside one operator,
// one inter-op thread (the pipeline provides the parallelism between calls). Call once, before
// the first LoadModel.
void ConfigureRuntimeThreads(int intra_op);

// The line of a torch error message that says what went wrong. TorchScript wraps an error in a
// traceback ("The following operation failed in the TorchScript interpreter. ... RuntimeError:
// index out of range"): the last "...Error: " line is the cause; otherwise the first line.
std::string TorchErrorCause(const std::string& what);

}  // namespace baton::infer
