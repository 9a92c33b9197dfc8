#include "train/evaluator.h"

#include <algorithm>
#include <fstream>
#include <numeric>

#include "infer/row_parser.h"

namespace baton::train {
namespace {

constexpr size_t kBatchRows = 4096;

}  // namespace

std::optional<double> BinaryAuc(const std::vector<double>& scores,
                                const std::vector<float>& labels) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0;
  double positives = 0;
  // Ranks from 1; a run of tied scores shares the mean of its ranks.
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;  // past i whatever it holds, so that a NaN score cannot stall the loop
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (labels[order[k]] > 0.5f) {
        positive_rank_sum += mean_rank;
        positives += 1;
      }
    }
    i = j;
  }
  const double negatives = static_cast<double>(scores.size()) - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  return (positive_rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives);
}

Result<Evaluator> Evaluator::Load(const TrainSpec& spec, const TrainableModel& model) {
  Evaluator e;
  e.spec_ = &spec;
  const std::string& path = spec.eval.path;
  const std::string where = "train.eval.path " + path;
  if (!spec.eval.score_method.empty()) {
    BATON_ASSIGN_OR_RETURN(std::vector<std::string> inputs,
                           model.MethodInputs(spec.eval.score_method));
    for (const std::string& name : inputs) {
      auto it = std::find_if(spec.tensors.begin(), spec.tensors.end(),
                             [&](const infer::TensorSpec& t) { return t.name == name; });
      if (it == spec.tensors.end()) {
        return Status::InvalidArgument("train.eval.score_method: " + spec.eval.score_method +
                                       "() takes " + name + ", which is not in train.tensors");
      }
      e.score_inputs_.push_back(static_cast<size_t>(it - spec.tensors.begin()));
    }
  }
  Result<infer::RowParser> parser = infer::RowParser::ForFile(spec, path);
  if (!parser.ok()) return parser.status().WithContext(where);
  std::ifstream in(path);
  if (!in) return Status::NotFound(where + ": cannot open");
  std::string line, key;
  int64_t line_no = 0;
  std::vector<infer::HostTensor> batch = parser->NewBatch(kBatchRows);
  size_t in_batch = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1 && spec.input_has_header) continue;
    if (infer::IsBlankLine(line)) continue;
    if (Status s = parser->Append(line, &key, &batch); !s.ok()) {
      return Status::InvalidArgument(path + ":" + std::to_string(line_no) + ": " + s.message());
    }
    ++e.rows_;
    if (++in_batch == kBatchRows) {
      e.batches_.push_back(std::move(batch));
      batch = parser->NewBatch(kBatchRows);
      in_batch = 0;
    }
  }
  if (in_batch > 0) e.batches_.push_back(std::move(batch));
  if (e.rows_ == 0) return Status::InvalidArgument(where + ": no rows");
  if (!spec.eval.score_method.empty()) {
    const auto label =
        std::find_if(spec.tensors.begin(), spec.tensors.end(),
                     [&](const infer::TensorSpec& t) { return t.name == spec.eval.label; }) -
        spec.tensors.begin();
    for (const auto& b : e.batches_) {
      const infer::HostTensor& t = b[static_cast<size_t>(label)];
      if (t.row_width() != 1 || t.type != infer::TensorType::kFloat32) {
        return Status::InvalidArgument("train.eval.label: " + spec.eval.label +
                                       " must be one float32 column");
      }
      e.labels_.insert(e.labels_.end(), t.f.begin(), t.f.end());
    }
  }
  return e;
}

Result<EvalResult> Evaluator::Run(TrainableModel& model) const {
  EvalResult r;
  std::vector<double> scores;
  double loss_sum = 0;
  for (const auto& batch : batches_) {
    BATON_ASSIGN_OR_RETURN(double sum, model.EvalLossSum(batch));
    loss_sum += sum;
    if (!score_inputs_.empty()) {
      std::vector<infer::HostTensor> inputs;
      for (size_t i : score_inputs_) inputs.push_back(batch[i]);
      BATON_ASSIGN_OR_RETURN(std::vector<double> s, model.Score(spec_->eval.score_method, inputs));
      scores.insert(scores.end(), s.begin(), s.end());
    }
  }
  r.rows = rows_;
  r.mean_loss = loss_sum / static_cast<double>(rows_);
  if (!score_inputs_.empty()) r.auc = BinaryAuc(scores, labels_);
  return r;
}

}  // namespace baton::train
