#include "meta/evaluation.h"

#include <algorithm>

#include "train/evaluator.h"

namespace baton::meta {
namespace {

constexpr int64_t kMaxScoredRows = int64_t{1} << 28;  // per rank: far above any held-out split

}  // namespace

double Auc(const std::vector<ScoredRow>& rows) {
  std::vector<double> scores;
  std::vector<float> labels;
  for (const ScoredRow& r : rows) {
    scores.push_back(r.score);
    labels.push_back(r.label);
  }
  return train::BinaryAuc(scores, labels).value_or(0.5);
}

Result<std::vector<ScoredRow>> GatherScores(comm::ProcessGroup* group,
                                            const std::vector<ScoredRow>& mine) {
  if (group == nullptr || group->size() == 1) return mine;
  const size_t world = static_cast<size_t>(group->size());
  int64_t count = static_cast<int64_t>(mine.size());
  std::vector<int64_t> counts(world);
  BATON_RETURN_IF_ERROR(group->AllGather(&count, counts.data(), 1, comm::DataType::kInt64));
  for (int64_t c : counts) {
    if (c < 0 || c > kMaxScoredRows) {
      return Status::InvalidArgument("a rank announced " + std::to_string(c) + " scored rows");
    }
  }
  const size_t longest = static_cast<size_t>(*std::max_element(counts.begin(), counts.end()));
  std::vector<double> send(2 * longest, 0.0), all(2 * longest * world);
  for (size_t k = 0; k < mine.size(); ++k) {
    send[2 * k] = mine[k].score;
    send[2 * k + 1] = mine[k].label;
  }
  BATON_RETURN_IF_ERROR(
      group->AllGather(send.data(), all.data(), 2 * longest, comm::DataType::kFloat64));
  std::vector<ScoredRow> out;
  for (size_t r = 0; r < world; ++r) {
    for (int64_t k = 0; k < counts[r]; ++k) {
      const double* p = all.data() + 2 * (r * longest + static_cast<size_t>(k));
      out.push_back({p[0], static_cast<float>(p[1])});
    }
  }
  return out;
}

}  // namespace baton::meta
