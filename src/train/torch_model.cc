// TorchScript training through libtorch: the only train translation unit that includes torch.
#include <fcntl.h>
#include <unistd.h>

#include <torch/script.h>

#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>

#include "infer/model_backend.h"
#include "train/model.h"

namespace baton::train {
namespace {

std::string TorchMessage(const c10::Error& e) {
  return infer::TorchErrorCause(e.what_without_backtrace());
}

at::Tensor ToTorch(const infer::HostTensor& t, at::ScalarType float_type) {
  if (t.type == infer::TensorType::kInt64) {
    return torch::from_blob(const_cast<int64_t*>(t.i.data()), t.shape, torch::kInt64);
  }
  at::Tensor f = torch::from_blob(const_cast<float*>(t.f.data()), t.shape, torch::kFloat32);
  return float_type == torch::kFloat32 ? f : f.to(float_type);
}

std::vector<int64_t> ContiguousStrides(at::IntArrayRef sizes) {
  std::vector<int64_t> strides(sizes.size());
  int64_t s = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    strides[d] = s;
    s *= sizes[d];
  }
  return strides;
}

// Eval mode (dropout off, batch-norm statistics used) for one scope; training mode after.
class EvalMode {
 public:
  explicit EvalMode(torch::jit::Module& m) : m_(m) { m_.eval(); }
  ~EvalMode() { m_.train(); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  torch::jit::Module& m_;
};

class TorchScriptTrainable final : public TrainableModel {
 public:
  TorchScriptTrainable(torch::jit::Module module, std::string method,
                       std::vector<at::Tensor> params, at::ScalarType type)
      : module_(std::move(module)),
        method_(std::move(method)),
        params_(std::move(params)),
        type_(type) {
    int64_t total = 0;
    for (const at::Tensor& p : params_) total += p.numel();
    flat_params_ = torch::empty({total}, torch::TensorOptions().dtype(type_));
    flat_grads_ = torch::zeros({total}, torch::TensorOptions().dtype(type_));
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (at::Tensor& p : params_) {
      const int64_t n = p.numel();
      flat_params_.narrow(0, offset, n).copy_(p.reshape({-1}));
      // The parameter becomes a view of the flat buffer (as `p.data = flat[...]` in Python): the
      // optimizer's in-place update is what forward() reads next.
      p.set_data(flat_params_.as_strided(p.sizes(), ContiguousStrides(p.sizes()), offset));
      p.mutable_grad() = flat_grads_.as_strided(p.sizes(), ContiguousStrides(p.sizes()), offset);
      offsets_.push_back(offset);
      offset += n;
    }
    for (const auto& arg : module_.get_method(method_).function().getSchema().arguments()) {
      if (arg.name() != "self") input_names_.push_back(arg.name());
    }
  }

  comm::DataType dtype() const override {
    return type_ == torch::kFloat64 ? comm::DataType::kFloat64 : comm::DataType::kFloat32;
  }
  size_t size() const override { return static_cast<size_t>(flat_params_.numel()); }
  void* params() override { return flat_params_.data_ptr(); }
  void* grads() override { return flat_grads_.data_ptr(); }
  void ZeroGrads() override { flat_grads_.zero_(); }
  const std::vector<std::string>& input_names() const override { return input_names_; }

  Result<double> ForwardBackward(const std::vector<infer::HostTensor>& batch) override {
    ZeroGrads();
    try {
      const int64_t rows = batch.empty() ? -1 : batch.back().rows();
      c10::IValue out = Call(method_, batch);
      if (!out.isTensor()) {
        return Status::InvalidArgument(
            method_ +
            "() must return the per-sample losses (a [batch] tensor, or a tuple whose "
            "first element is one), got " +
            out.tagKind());
      }
      at::Tensor losses = out.toTensor();
      if (losses.dim() != 1 || losses.size(0) != rows || !losses.is_floating_point()) {
        return Status::InvalidArgument(
            method_ + "() must return the per-sample losses, a float tensor of shape [" +
            std::to_string(rows) + "], got " + std::string(c10::toString(losses.scalar_type())) +
            " of shape " + c10::str(losses.sizes()));
      }
      at::Tensor sum = losses.sum();
      sum.backward();
      RebindGrads();
      return sum.item<double>();
    } catch (const c10::Error& e) {
      return Status::InvalidArgument(method_ + "()/backward failed: " + TorchMessage(e));
    }
  }

  Result<double> EvalLossSum(const std::vector<infer::HostTensor>& batch) override {
    try {
      torch::NoGradGuard no_grad;
      EvalMode eval(module_);
      c10::IValue out = Call(method_, batch);
      if (!out.isTensor()) return Status::InvalidArgument(method_ + "() returned no tensor");
      return out.toTensor().sum().item<double>();
    } catch (const c10::Error& e) {
      return Status::InvalidArgument(method_ + "() failed in evaluation: " + TorchMessage(e));
    }
  }

  Result<std::vector<double>> Score(const std::string& method,
                                    const std::vector<infer::HostTensor>& inputs) override {
    try {
      torch::NoGradGuard no_grad;
      EvalMode eval(module_);
      const int64_t rows = inputs.empty() ? 0 : inputs.back().rows();
      c10::IValue out = Call(method, inputs);
      if (!out.isTensor()) return Status::InvalidArgument(method + "() returned no tensor");
      at::Tensor scores = out.toTensor().to(torch::kFloat64).contiguous();
      if (scores.dim() == 2 && scores.size(1) == 1) scores = scores.squeeze(1);
      if (scores.dim() != 1 || scores.size(0) != rows) {
        return Status::InvalidArgument(method + "() must return one score per row ([" +
                                       std::to_string(rows) + "] or [" + std::to_string(rows) +
                                       ", 1]), got shape " + c10::str(out.toTensor().sizes()));
      }
      const double* p = scores.data_ptr<double>();
      return std::vector<double>(p, p + rows);
    } catch (const c10::Error& e) {
      return Status::InvalidArgument(method + "() failed: " + TorchMessage(e));
    }
  }

  Result<std::vector<std::string>> MethodInputs(const std::string& method) const override {
    auto m = module_.find_method(method);
    if (!m) return Status::InvalidArgument("the model has no " + method + "() method");
    std::vector<std::string> names;
    for (const auto& arg : m->function().getSchema().arguments()) {
      if (arg.name() != "self") names.push_back(arg.name());
    }
    return names;
  }

  Status Save(const std::string& path) override {
    const std::string tmp = path + ".tmp";
    try {
      std::filesystem::create_directories(std::filesystem::path(path).parent_path());
      module_.save(tmp);
    } catch (const std::exception& e) {
      return Status::IoError("saving the model to " + tmp + ": " + e.what());
    }
    int fd = ::open(tmp.c_str(), O_RDONLY);
    if (fd < 0 || ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      return Status::IoError("fsync " + tmp + " failed");
    }
    ::close(fd);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      return Status::IoError("renaming " + tmp + " to " + path + " failed");
    }
    // The rename is durable only with its directory: the job's last commit follows this save.
    const std::string dir = std::filesystem::path(path).parent_path().string();
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    const bool synced = dfd >= 0 && ::fsync(dfd) == 0;
    if (dfd >= 0) ::close(dfd);
    if (!synced) return Status::IoError("fsync of directory " + dir + " failed");
    return Status::Ok();
  }

 private:
  // `method` on the tensors of `inputs` (converted to the parameters' type); a tuple's first
  // element (the losses or scores by the contract).
  c10::IValue Call(const std::string& method, const std::vector<infer::HostTensor>& inputs) {
    std::vector<c10::IValue> args;
    for (const infer::HostTensor& t : inputs) args.emplace_back(ToTorch(t, type_));
    c10::IValue out = module_.get_method(method)(args);
    if (out.isTuple() && !out.toTupleRef().elements().empty()) {
      out = out.toTupleRef().elements()[0];
    }
    return out;
  }

  // Autograd accumulates into a defined gradient in place, so the flat buffer normally holds the
  // result already; where it replaced a gradient tensor instead, copy it back and re-bind.
  void RebindGrads() {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      at::Tensor& p = params_[i];
      at::Tensor view =
          flat_grads_.as_strided(p.sizes(), ContiguousStrides(p.sizes()), offsets_[i]);
      if (!p.grad().defined()) continue;  // unused in this forward: zero
      if (p.grad().data_ptr() != view.data_ptr()) {
        view.copy_(p.grad());
        p.mutable_grad() = view;
      }
    }
  }

  torch::jit::Module module_;
  std::string method_;
  std::vector<at::Tensor> params_;
  std::vector<int64_t> offsets_;
  at::ScalarType type_;
  at::Tensor flat_params_, flat_grads_;
  std::vector<std::string> input_names_;
};

}  // namespace

void ConfigureTorch(int intra_op_threads, uint64_t seed) {
  static std::once_flag once;
  std::call_once(once, [&] {
    at::set_num_threads(std::max(1, intra_op_threads));
    at::set_num_interop_threads(1);
    torch::manual_seed(seed);
  });
}

Result<std::unique_ptr<TrainableModel>> LoadTrainableModel(const std::string& path,
                                                           const std::string& loss_method) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound("model file " + path + " does not exist");
  }
  try {
    torch::jit::Module module = torch::jit::load(path);
    module.train();
    if (!module.find_method(loss_method)) {
      return Status::InvalidArgument("model " + path + " has no " + loss_method + "() method");
    }
    std::vector<at::Tensor> params;
    std::set<const void*> seen;  // a tied parameter appears once per module that holds it
    for (const at::Tensor& p : module.parameters()) {
      if (p.requires_grad() && seen.insert(p.unsafeGetTensorImpl()).second) params.push_back(p);
    }
    if (params.empty()) {
      return Status::InvalidArgument("model " + path + " has no trainable parameters");
    }
    const at::ScalarType type = params[0].scalar_type();
    if (type != torch::kFloat32 && type != torch::kFloat64) {
      return Status::InvalidArgument("model " + path + ": parameters must be float32 or float64, " +
                                     "got " + std::string(c10::toString(type)));
    }
    for (const at::Tensor& p : params) {
      if (p.scalar_type() != type) {
        return Status::InvalidArgument(
            "model " + path + ": every parameter must have one type, found " + c10::toString(type) +
            " and " + c10::toString(p.scalar_type()));
      }
    }
    return std::unique_ptr<TrainableModel>(
        new TorchScriptTrainable(std::move(module), loss_method, std::move(params), type));
  } catch (const c10::Error& e) {
    return Status::InvalidArgument("model " + path +
                                   " is not a loadable TorchScript file: " + TorchMessage(e));
  }
}

}  // namespace baton::train
