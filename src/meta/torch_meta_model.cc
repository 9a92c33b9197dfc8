// MAML on a TorchScript DLRM through libtorch: the only meta translation unit that includes torch.
//
// Per task, the inner loop runs on views of θ_d and on the task's own rows of the fetched table;
// each SGD step's gradient comes from torch::autograd::grad, with create_graph for second-order
// MAML. Without it the step's gradient is a constant to autograd, so the query loss's backward
// through φ = θ − α·g reaches θ along the identity only: exactly the first-order (FOMAML)
// gradient, with no special case.
#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>

#include "infer/model_backend.h"
#include "meta/meta_model.h"
#include "meta/task_batch.h"

namespace baton::meta {
namespace {

std::string TorchMessage(const c10::Error& e) {
  return infer::TorchErrorCause(e.what_without_backtrace());
}

// A task's tensors: its distinct rows among the fetched ones, and where each support and query
// row's ids sit among those.
struct TaskTensors {
  at::Tensor rows;                    // [u] positions in the fetched rows
  at::Tensor support_pos, query_pos;  // [n_s · F], [n_q · F] positions in `rows`
  at::Tensor support_dense, query_dense, support_labels, query_labels;
  int64_t num_support = 0, num_query = 0;
};

class TorchMetaModel final : public MetaModel {
 public:
  TorchMetaModel(torch::jit::Module module, std::vector<at::Tensor> initial, at::ScalarType type,
                 std::vector<int64_t> shape)
      : module_(std::move(module)),
        type_(type),
        num_dense_(static_cast<int>(shape[0])),
        num_sparse_(static_cast<int>(shape[1])),
        dim_(static_cast<int>(shape[2])),
        batched_(module_.find_method("batched_loss").has_value()) {
    int64_t total = 0;
    for (const at::Tensor& p : initial) {
      shapes_.push_back(p.sizes().vec());
      offsets_.push_back(total);
      total += p.numel();
    }
    flat_ = torch::empty({total}, torch::TensorOptions().dtype(type_));
    for (size_t i = 0; i < initial.size(); ++i) {
      flat_.narrow(0, offsets_[i], initial[i].numel()).copy_(initial[i].reshape({-1}));
    }
  }

  comm::DataType dtype() const override {
    return type_ == torch::kFloat64 ? comm::DataType::kFloat64 : comm::DataType::kFloat32;
  }
  int num_dense() const override { return num_dense_; }
  int num_sparse() const override { return num_sparse_; }
  int embedding_dim() const override { return dim_; }
  size_t size() const override { return static_cast<size_t>(flat_.numel()); }
  void* params() override { return flat_.data_ptr(); }

  Result<double> MetaGradient(const std::vector<TaskRows>& tasks, const void* rows, size_t num_rows,
                              const MamlSpec& spec, void* dense_grad, void* row_grads) override {
    return Accumulate(tasks, rows, num_rows, &spec, dense_grad, row_grads);
  }

  Result<double> PlainGradient(const std::vector<TaskRows>& tasks, const void* rows,
                               size_t num_rows, void* dense_grad, void* row_grads) override {
    return Accumulate(tasks, rows, num_rows, nullptr, dense_grad, row_grads);
  }

  Result<std::vector<double>> AdaptAndScore(const TaskRows& task, const void* rows, size_t num_rows,
                                            const MamlSpec& spec) override {
    try {
      BATON_ASSIGN_OR_RETURN(TaskTensors t, Prepare(task));
      at::Tensor theta = flat_.detach().requires_grad_(true);
      at::Tensor table = Table(rows, num_rows).detach().requires_grad_(true);
      std::vector<at::Tensor> phi = Views(theta);
      at::Tensor e = table.index_select(0, t.rows);
      Adapt(TaskSupportLoss(t), spec, /*create_graph=*/false, &phi, &e);
      torch::NoGradGuard no_grad;
      at::Tensor logits = Logits(phi, Gather(e, t.query_pos, t.num_query), t.query_dense);
      at::Tensor p = torch::sigmoid(logits).to(torch::kFloat64).contiguous();
      return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
    } catch (const c10::Error& e) {
      return Status::InvalidArgument("scoring a task failed: " + TorchMessage(e));
    }
  }

  Status Save(const std::string& path) override {
    try {
      torch::NoGradGuard no_grad;
      std::vector<at::Tensor> weights = module_.get_method("initial_params")({}).toTensorVector();
      const std::vector<at::Tensor> trained = Views(flat_);
      if (weights.size() != trained.size()) {
        return Status::Internal("initial_params() changed its length");
      }
      for (size_t i = 0; i < weights.size(); ++i) weights[i].copy_(trained[i]);
      const std::string tmp = path + ".tmp";
      module_.save(tmp);
      if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        return Status::IoError("cannot rename " + tmp + " to " + path);
      }
      return Status::Ok();
    } catch (const c10::Error& e) {
      return Status::IoError("saving the meta model to " + path + ": " + TorchMessage(e));
    }
  }

 private:
  // MAML when `spec` is set, the plain loss over all rows otherwise.
  Result<double> Accumulate(const std::vector<TaskRows>& tasks, const void* rows, size_t num_rows,
                            const MamlSpec* spec, void* dense_grad, void* row_grads) {
    if (batched_ && (spec == nullptr || spec->batched)) {
      return AccumulateBatched(tasks, rows, num_rows, spec, dense_grad, row_grads);
    }
    try {
      at::Tensor theta = flat_.detach().requires_grad_(true);
      at::Tensor table = Table(rows, num_rows).detach().requires_grad_(true);
      double loss_sum = 0;
      for (const TaskRows& task : tasks) {
        BATON_ASSIGN_OR_RETURN(TaskTensors t, Prepare(task));
        std::vector<at::Tensor> phi = Views(theta);
        at::Tensor e = table.index_select(0, t.rows);
        at::Tensor loss;
        if (spec != nullptr) {
          Adapt(TaskSupportLoss(t), *spec, spec->second_order, &phi, &e);
          loss = Loss(phi, Gather(e, t.query_pos, t.num_query), t.query_dense, t.query_labels);
        } else {
          at::Tensor all_pos = torch::cat({t.support_pos, t.query_pos});
          loss = Loss(phi, Gather(e, all_pos, t.num_support + t.num_query),
                      torch::cat({t.support_dense, t.query_dense}),
                      torch::cat({t.support_labels, t.query_labels}));
        }
        loss.backward();
        loss_sum += loss.item<double>();
      }
      CopyGrad(theta, dense_grad);
      CopyGrad(table, row_grads);
      return loss_sum;
    } catch (const c10::Error& e) {
      return Status::InvalidArgument("the meta-gradient failed: " + TorchMessage(e));
    }
  }

  // Accumulate for the whole meta-batch in one pass of the model's batched methods: θ_d expanded
  // to one copy per task, the fetched rows copied into per-task slots (task_batch.h).
  Result<double> AccumulateBatched(const std::vector<TaskRows>& tasks, const void* rows,
                                   size_t num_rows, const MamlSpec* spec, void* dense_grad,
                                   void* row_grads) {
    try {
      BATON_ASSIGN_OR_RETURN(TaskBatch b,
                             BuildTaskBatch(tasks, num_dense_, num_sparse_, spec == nullptr));
      at::Tensor theta = flat_.detach().requires_grad_(true);
      at::Tensor table = Table(rows, num_rows).detach().requires_grad_(true);
      if (b.tasks == 0) {
        CopyGrad(theta, dense_grad);
        CopyGrad(table, row_grads);
        return 0.0;
      }
      std::vector<at::Tensor> phi;
      for (const at::Tensor& v : Views(theta)) {
        std::vector<int64_t> sizes = {b.tasks};
        for (int64_t d : v.sizes()) sizes.push_back(d);
        phi.push_back(v.unsqueeze(0).expand(sizes));
      }
      at::Tensor slots = torch::from_blob(b.rows.data(), {b.tasks * b.row_slots}, torch::kInt64);
      at::Tensor e = table.index_select(0, slots);  // [tasks · row_slots, D]
      at::Tensor losses;
      if (spec != nullptr) {
        const Side support = Wrap(b.support, b.tasks);
        Adapt([&](const std::vector<at::Tensor>& p,
                  const at::Tensor& ev) { return BatchedLoss(p, ev, support, b.tasks).sum(); },
              *spec, spec->second_order, &phi, &e);
        losses = BatchedLoss(phi, e, Wrap(b.query, b.tasks), b.tasks);
      } else {
        losses = BatchedLoss(phi, e, Wrap(b.all, b.tasks), b.tasks);
      }
      at::Tensor total = losses.sum();
      total.backward();
      CopyGrad(theta, dense_grad);
      CopyGrad(table, row_grads);
      return total.item<double>();
    } catch (const c10::Error& e) {
      return Status::InvalidArgument("the batched meta-gradient failed: " + TorchMessage(e));
    }
  }

  // One padded side of a TaskBatch as tensors over its arrays (no copy for float32 models).
  struct Side {
    at::Tensor positions, dense, labels, mask;
    int64_t rows = 0;
  };
  Side Wrap(PaddedRows& p, int64_t tasks) const {
    Side s;
    s.rows = p.rows;
    s.positions =
        torch::from_blob(p.positions.data(), {tasks * p.rows * num_sparse_}, torch::kInt64);
    s.dense =
        torch::from_blob(p.dense.data(), {tasks, p.rows, num_dense_}, torch::kFloat32).to(type_);
    s.labels = torch::from_blob(p.labels.data(), {tasks, p.rows}, torch::kFloat32).to(type_);
    s.mask = torch::from_blob(p.mask.data(), {tasks, p.rows}, torch::kFloat32).to(type_);
    return s;
  }

  // Each task's mean loss over its real rows: [tasks].
  at::Tensor BatchedLoss(const std::vector<at::Tensor>& phi, const at::Tensor& e, const Side& s,
                         int64_t tasks) {
    at::Tensor emb = e.index_select(0, s.positions).view({tasks, s.rows, num_sparse_, dim_});
    return module_
        .get_method("batched_loss")({c10::List<at::Tensor>(phi), emb, s.dense, s.labels, s.mask})
        .toTensor();
  }

  // spec.inner_steps SGD steps on `support_loss` (a scalar: one task's loss, or the sum of a
  // batch's), replacing *phi and/or *e (per spec.adapt).
  using SupportLoss =
      std::function<at::Tensor(const std::vector<at::Tensor>& phi, const at::Tensor& e)>;
  void Adapt(const SupportLoss& support_loss, const MamlSpec& spec, bool create_graph,
             std::vector<at::Tensor>* phi, at::Tensor* e) {
    const bool dense = spec.adapt != InnerParams::kEmbedding;
    const bool embedding = spec.adapt != InnerParams::kDense;
    for (int s = 0; s < spec.inner_steps; ++s) {
      at::Tensor loss = support_loss(*phi, *e);
      std::vector<at::Tensor> inputs;
      if (dense) inputs = *phi;
      if (embedding) inputs.push_back(*e);
      std::vector<at::Tensor> g = torch::autograd::grad({loss}, inputs, {},
                                                        /*retain_graph=*/true, create_graph,
                                                        /*allow_unused=*/true);
      size_t next = 0;
      if (dense) {
        for (at::Tensor& p : *phi) {
          if (g[next].defined()) p = p - spec.inner_lr * g[next];
          ++next;
        }
      }
      if (embedding && g[next].defined()) *e = *e - spec.inner_lr * g[next];
    }
  }

  SupportLoss TaskSupportLoss(const TaskTensors& t) {
    return [this, &t](const std::vector<at::Tensor>& phi, const at::Tensor& e) {
      return Loss(phi, Gather(e, t.support_pos, t.num_support), t.support_dense, t.support_labels);
    };
  }

  Result<TaskTensors> Prepare(const TaskRows& task) const {
    const Episode& ep = *task.episode;
    BATON_RETURN_IF_ERROR(CheckTaskShape(ep, num_dense_, num_sparse_));
    // The task's distinct rows, and each id's place among them.
    std::vector<int32_t> distinct(task.row_of);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::vector<int64_t> local(task.row_of.size());
    for (size_t k = 0; k < local.size(); ++k) {
      local[k] =
          std::lower_bound(distinct.begin(), distinct.end(), task.row_of[k]) - distinct.begin();
    }
    TaskTensors t;
    t.num_support = ep.num_support;
    t.num_query = ep.num_query;
    t.rows = torch::tensor(std::vector<int64_t>(distinct.begin(), distinct.end()), torch::kInt64);
    const int64_t split = t.num_support * num_sparse_;
    at::Tensor pos = torch::tensor(local, torch::kInt64);
    t.support_pos = pos.narrow(0, 0, split);
    t.query_pos = pos.narrow(0, split, pos.numel() - split);
    at::Tensor dense =
        torch::from_blob(const_cast<float*>(ep.dense.data()),
                         {static_cast<int64_t>(ep.rows()), num_dense_}, torch::kFloat32)
            .to(type_);
    at::Tensor labels = torch::from_blob(const_cast<float*>(ep.labels.data()),
                                         {static_cast<int64_t>(ep.rows())}, torch::kFloat32)
                            .to(type_);
    t.support_dense = dense.narrow(0, 0, t.num_support);
    t.query_dense = dense.narrow(0, t.num_support, t.num_query);
    t.support_labels = labels.narrow(0, 0, t.num_support);
    t.query_labels = labels.narrow(0, t.num_support, t.num_query);
    return t;
  }

  at::Tensor Table(const void* rows, size_t num_rows) const {
    return torch::from_blob(const_cast<void*>(rows), {static_cast<int64_t>(num_rows), dim_},
                            torch::TensorOptions().dtype(type_));
  }

  std::vector<at::Tensor> Views(const at::Tensor& theta) const {
    std::vector<at::Tensor> views;
    views.reserve(shapes_.size());
    for (size_t i = 0; i < shapes_.size(); ++i) {
      int64_t n = 1;
      for (int64_t s : shapes_[i]) n *= s;
      views.push_back(theta.narrow(0, offsets_[i], n).view(shapes_[i]));
    }
    return views;
  }

  at::Tensor Gather(const at::Tensor& e, const at::Tensor& pos, int64_t rows) const {
    return e.index_select(0, pos).view({rows, num_sparse_, dim_});
  }

  at::Tensor Loss(const std::vector<at::Tensor>& phi, const at::Tensor& emb,
                  const at::Tensor& dense, const at::Tensor& labels) {
    return module_.get_method("loss")({c10::List<at::Tensor>(phi), emb, dense, labels}).toTensor();
  }

  at::Tensor Logits(const std::vector<at::Tensor>& phi, const at::Tensor& emb,
                    const at::Tensor& dense) {
    return module_.get_method("logits")({c10::List<at::Tensor>(phi), emb, dense}).toTensor();
  }

  void CopyGrad(const at::Tensor& leaf, void* out) const {
    const at::Tensor& g = leaf.grad();
    const size_t bytes = static_cast<size_t>(leaf.numel()) * leaf.element_size();
    if (!g.defined()) {
      std::memset(out, 0, bytes);
    } else {
      std::memcpy(out, g.contiguous().data_ptr(), bytes);
    }
  }

  torch::jit::Module module_;
  at::ScalarType type_;
  int num_dense_, num_sparse_, dim_;
  bool batched_;  // the model has batched_loss: a meta-batch in one pass
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<int64_t> offsets_;
  at::Tensor flat_;
};

}  // namespace

void ConfigureMetaTorch(int intra_op_threads) {
  static std::once_flag once;
  std::call_once(once, [&] {
    at::set_num_threads(std::max(1, intra_op_threads));
    at::set_num_interop_threads(1);
  });
}

Result<std::unique_ptr<MetaModel>> LoadMetaModel(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound("model file " + path + " does not exist");
  }
  try {
    torch::jit::Module module = torch::jit::load(path);
    module.eval();
    for (const char* method : {"shape", "initial_params", "loss", "logits"}) {
      if (!module.find_method(method)) {
        return Status::InvalidArgument(path + " has no method " + method +
                                       "() (see src/meta/meta_model.h for what a meta model "
                                       "provides)");
      }
    }
    std::vector<int64_t> shape = module.get_method("shape")({}).toIntVector();
    if (shape.size() != 3 || shape[0] < 0 || shape[1] < 1 || shape[2] < 1) {
      return Status::InvalidArgument(path +
                                     ": shape() must return [num_dense >= 0, num_sparse >= 1, "
                                     "embedding_dim >= 1]");
    }
    std::vector<at::Tensor> initial = module.get_method("initial_params")({}).toTensorVector();
    if (initial.empty()) return Status::InvalidArgument(path + ": initial_params() is empty");
    const at::ScalarType type = initial[0].scalar_type();
    for (const at::Tensor& p : initial) {
      if (p.scalar_type() != type || (type != torch::kFloat32 && type != torch::kFloat64)) {
        return Status::InvalidArgument(path +
                                       ": initial_params() must be all float32 or all float64");
      }
    }
    std::vector<at::Tensor> copies;
    for (const at::Tensor& p : initial) copies.push_back(p.detach().clone());
    return std::unique_ptr<MetaModel>(
        std::make_unique<TorchMetaModel>(std::move(module), std::move(copies), type, shape));
  } catch (const c10::Error& e) {
    return Status::InvalidArgument("cannot load " + path + " as a meta model: " + TorchMessage(e));
  }
}

}  // namespace baton::meta
