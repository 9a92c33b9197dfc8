#include "meta/evaluation.h"

#include <algorithm>

namespace baton::meta {
namespace {

constexpr int64_t kMaxScoredRows = int64_t{1} << 28;  // per rank: far above any held-out split

}  // namespace

double Auc(std::vector<ScoredRow> rows) {
  std::sort(rows.begin(), rows.end(),
            [](const ScoredRow& a, const ScoredRow& b) { return a.score < b.score; });
  double positives = 0, rank_sum = 0;
  for (size_t i = 0; i < rows.size();) {
    size_t j = i + 1;  // i itself, whatever it holds, so that the loop always advances
    double tied_positives = rows[i].label;
    while (j < rows.size() && rows[j].score == rows[i].score) tied_positives += rows[j++].label;
    rank_sum += tied_positives * (static_cast<double>(i + 1 + j) / 2);  // ranks i+1..j, averaged
    positives += tied_positives;
    i = j;
  }
  const double negatives = static_cast<double>(rows.size()) - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
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
