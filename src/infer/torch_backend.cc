// TorchScript via libtorch. The only infer translation unit that includes torch headers: they
// take ~12 s and over a GB to compile, and keeping them here keeps the rest of the worker (and
// the whole control plane) fast to build.
#include <torch/cuda.h>
#include <torch/script.h>

#include <ATen/Parallel.h>

#include <filesystem>
#include <mutex>

#include "infer/model_backend.h"

namespace baton::infer {
namespace {

std::string FirstLine(const std::string& s) {
  size_t nl = s.find('\n');
  std::string line = nl == std::string::npos ? s : s.substr(0, nl);
  return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

}  // namespace

std::string TorchErrorCause(const std::string& what) {
  size_t begin = 0;
  std::string cause;
  while (begin < what.size()) {
    size_t end = what.find('\n', begin);
    if (end == std::string::npos) end = what.size();
    std::string line = what.substr(begin, end - begin);
    if (line.find("Error: ") != std::string::npos) cause = line;
    begin = end + 1;
  }
  return cause.empty() ? FirstLine(what) : FirstLine(cause);
}

namespace {

// A torch error message without the C++ backtrace libtorch appends.
std::string TorchMessage(const c10::Error& e) {
  return TorchErrorCause(e.what_without_backtrace());
}

at::Tensor ToTorch(const HostTensor& t, const torch::Device& device) {
  // from_blob borrows the host buffer; clone() when moving to another device is done by to().
  at::Tensor out;
  if (t.type == TensorType::kFloat32) {
    out = torch::from_blob(const_cast<float*>(t.f.data()), t.shape, torch::kFloat32);
  } else {
    out = torch::from_blob(const_cast<int64_t*>(t.i.data()), t.shape, torch::kInt64);
  }
  return device.is_cpu() ? out : out.to(device);
}

Status AppendOutput(const c10::IValue& v, std::vector<HostTensor>* out) {
  if (v.isTensor()) {
    at::Tensor t = v.toTensor().detach().to(torch::kCPU).contiguous();
    HostTensor h;
    h.shape.assign(t.sizes().begin(), t.sizes().end());
    if (h.shape.empty()) return Status::InvalidArgument("the model returned a scalar tensor");
    if (t.scalar_type() == torch::kInt64 || t.scalar_type() == torch::kInt32 ||
        t.scalar_type() == torch::kBool) {
      t = t.to(torch::kInt64);
      h.type = TensorType::kInt64;
      h.i.assign(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
    } else {
      t = t.to(torch::kFloat32);
      h.type = TensorType::kFloat32;
      h.f.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
    }
    out->push_back(std::move(h));
    return Status::Ok();
  }
  if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) BATON_RETURN_IF_ERROR(AppendOutput(e, out));
    return Status::Ok();
  }
  if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) BATON_RETURN_IF_ERROR(AppendOutput(e, out));
    return Status::Ok();
  }
  return Status::InvalidArgument("the model returned " + v.tagKind() +
                                 "; expected a tensor or a tuple of tensors");
}

class TorchScriptModel : public ModelBackend {
 public:
  TorchScriptModel(torch::jit::Module module, torch::Device device)
      : module_(std::move(module)), device_(device) {
    const auto& schema = module_.get_method("forward").function().getSchema();
    for (size_t i = 1; i < schema.arguments().size(); ++i) {  // 0 is self
      input_names_.push_back(schema.arguments()[i].name());
    }
  }

  Result<std::vector<HostTensor>> Predict(const std::vector<HostTensor>& inputs) override {
    std::vector<c10::IValue> args;
    args.reserve(inputs.size());
    for (const HostTensor& t : inputs) args.emplace_back(ToTorch(t, device_));
    std::vector<HostTensor> out;
    try {
      c10::InferenceMode guard;
      c10::IValue result = module_.forward(args);
      BATON_RETURN_IF_ERROR(AppendOutput(result, &out));
    } catch (const c10::Error& e) {
      return Status::InvalidArgument(TorchMessage(e));
    } catch (const std::exception& e) {
      return Status::InvalidArgument(TorchErrorCause(e.what()));
    }
    return out;  // the callers check the row count (CheckOutputRows): the engine counts misses
  }

  const std::vector<std::string>& input_names() const override { return input_names_; }

 private:
  torch::jit::Module module_;
  torch::Device device_;
  std::vector<std::string> input_names_;
};

}  // namespace

void ConfigureRuntimeThreads(int intra_op) {
  static std::once_flag once;
  std::call_once(once, [&] {
    at::set_num_threads(std::max(1, intra_op));
    at::set_num_interop_threads(1);
  });
}

Result<std::unique_ptr<ModelBackend>> LoadModel(const std::string& path,
                                                const BackendOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound("model file " + path + " does not exist");
  }
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(options.device);
  } catch (const c10::Error& e) {
    return Status::InvalidArgument("device \"" + options.device + "\": " + TorchMessage(e));
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    return Status::FailedPrecondition("device " + options.device +
                                      " requested, but this libtorch has no usable CUDA");
  }
  try {
    torch::jit::Module module = torch::jit::load(path, device);
    module.eval();
    if (!module.find_method("forward")) {
      return Status::InvalidArgument("model " + path + " has no forward() method");
    }
    return std::unique_ptr<ModelBackend>(new TorchScriptModel(std::move(module), device));
  } catch (const c10::Error& e) {
    return Status::InvalidArgument("model " + path +
                                   " is not a loadable TorchScript file: " + TorchMessage(e));
  }
}

}  // namespace baton::infer
