// Evaluator: the held-out split of train.eval, scored by the model being trained — the mean
// per-sample loss (the loss method, without gradients) and, with a score method and a binary
// label, the AUC. Rank 0 runs it every train.eval.every_steps steps and at the end; the others
// go on to the next step and wait for it there (the split is read and parsed once, at start).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "infer/tensor.h"
#include "train/model.h"
#include "train/train_spec.h"

namespace baton::train {

// The area under the ROC curve of `scores` for `labels` (> 0.5: positive), ties counted half
// (the Mann-Whitney statistic). nullopt when one class is absent.
std::optional<double> BinaryAuc(const std::vector<double>& scores,
                                const std::vector<float>& labels);

struct EvalResult {
  int64_t rows = 0;
  double mean_loss = 0;
  std::optional<double> auc;  // with train.eval.score_method, when both classes occur
};

class Evaluator {
 public:
  // Reads and parses train.eval.path with the job's record schema. InvalidArgument naming the
  // file and line for a row that does not parse (a held-out split is small and must be clean),
  // or for a score method whose inputs are not among train.tensors.
  static Result<Evaluator> Load(const TrainSpec& spec, const TrainableModel& model);

  Result<EvalResult> Run(TrainableModel& model) const;
  int64_t rows() const { return rows_; }

 private:
  const TrainSpec* spec_ = nullptr;
  std::vector<std::vector<infer::HostTensor>> batches_;
  std::vector<float> labels_;         // the label column, when scoring
  std::vector<size_t> score_inputs_;  // indexes into train.tensors of the score method's inputs
  int64_t rows_ = 0;
};

}  // namespace baton::train
