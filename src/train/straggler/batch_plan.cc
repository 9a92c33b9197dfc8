#include "train/straggler/batch_plan.h"

#include <charconv>
#include <numeric>

#include "common/text_list.h"

namespace baton::train {
namespace {

std::string Join(const std::vector<int64_t>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(v[i]);
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseList(std::string_view s, std::vector<int64_t>* out) {
  out->clear();
  for (std::string_view piece : SplitOn(s, ',')) {
    int64_t v = 0;
    if (!ParseNumber(piece, &v)) return false;
    out->push_back(v);
  }
  return true;
}

}  // namespace

int64_t EqualPart(int64_t global, int rank, int world) {
  return std::max<int64_t>(1, global / world + (rank < global % world ? 1 : 0));
}

BatchPlan EqualPlan(int64_t global, int world, uint64_t generation) {
  BatchPlan plan;
  plan.generation = generation;
  for (int r = 0; r < world; ++r) plan.rows.push_back(EqualPart(global, r, world));
  plan.micro.assign(static_cast<size_t>(world), 0);
  plan.reason = "equal split";
  return plan;
}

std::string EncodeBatchPlan(const BatchPlan& plan) {
  return "version=" + std::to_string(plan.version) +
         " generation=" + std::to_string(plan.generation) + " rows=" + Join(plan.rows) +
         " micro=" + Join(plan.micro) + " reason=" + plan.reason;
}

Result<BatchPlan> DecodeBatchPlan(std::string_view text) {
  BatchPlan plan;
  // The four fixed fields, then the reason (free text) to the end.
  constexpr std::string_view kFields[] = {"version=", "generation=", "rows=", "micro="};
  for (std::string_view field : kFields) {
    const size_t space = text.find(' ');
    std::string_view token = text.substr(0, space);
    if (!token.starts_with(field)) {
      return Status::InvalidArgument("batch plan: expected " + std::string(field) + "..., got '" +
                                     std::string(token.substr(0, 40)) + "'");
    }
    token.remove_prefix(field.size());
    bool ok = false;
    if (field == "version=") ok = ParseNumber(token, &plan.version);
    if (field == "generation=") ok = ParseNumber(token, &plan.generation);
    if (field == "rows=") ok = ParseList(token, &plan.rows);
    if (field == "micro=") ok = ParseList(token, &plan.micro);
    if (!ok) {
      return Status::InvalidArgument("batch plan: bad " + std::string(field) + " '" +
                                     std::string(token.substr(0, 40)) + "'");
    }
    if (space == std::string_view::npos) {
      text = {};
      break;
    }
    text.remove_prefix(space + 1);
  }
  if (!text.starts_with("reason=")) {
    return Status::InvalidArgument("batch plan: expected reason=... after micro=");
  }
  plan.reason = std::string(text.substr(7));
  return plan;
}

Status CheckBatchPlan(const BatchPlan& plan, int world, int64_t global) {
  const auto w = static_cast<size_t>(world);
  if (plan.rows.size() != w || plan.micro.size() != w) {
    return Status::InvalidArgument("batch plan v" + std::to_string(plan.version) + " has " +
                                   std::to_string(plan.rows.size()) + " parts for " +
                                   std::to_string(world) + " ranks");
  }
  for (size_t r = 0; r < w; ++r) {
    if (plan.rows[r] < 1 || plan.micro[r] < 0) {
      return Status::InvalidArgument("batch plan v" + std::to_string(plan.version) + ": rank " +
                                     std::to_string(r) + " gets " + std::to_string(plan.rows[r]) +
                                     " rows, micro-batch " + std::to_string(plan.micro[r]));
    }
  }
  const int64_t sum = std::accumulate(plan.rows.begin(), plan.rows.end(), int64_t{0});
  if (sum != std::max<int64_t>(global, world)) {
    return Status::InvalidArgument("batch plan v" + std::to_string(plan.version) +
                                   ": parts sum to " + std::to_string(sum) +
                                   ", the global batch is " + std::to_string(global));
  }
  return Status::Ok();
}

}  // namespace baton::train
