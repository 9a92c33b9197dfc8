#include "train/batch_split.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "train/straggler/balance.h"

namespace baton::train {

void BatchSplit::Reset(const sdk::Generation& gen) {
  const uint64_t version = plan_.version;
  plan_ = EqualPlan(global_batch_, gen.size(), static_cast<uint64_t>(gen.id));
  if (straggler_.speeds.size() == static_cast<size_t>(gen.size()) && gen.size() > 0) {
    plan_.rows =
        ProportionalShares(std::max<int64_t>(global_batch_, gen.size()), straggler_.speeds, 1, 0);
    plan_.reason = "train.straggler.speeds";
  }
  // The version the ranks ran last: a plan the master published for this generation before it
  // formed here is still new (versions only grow), a stale one is ignored by generation.
  plan_.version = version;
}

int64_t BatchSplit::micro(int rank) const {
  const int64_t m = plan_.micro[static_cast<size_t>(rank)];
  return m > 0 ? m : straggler_.micro_batch;
}

bool BatchSplit::Pending(const BatchPlan& latest) {
  if (latest.version == 0 || latest.version == plan_.version ||
      latest.generation != plan_.generation || latest.version == rejected_version_) {
    return false;
  }
  if (Status s = CheckBatchPlan(latest, static_cast<int>(plan_.rows.size()), global_batch_);
      !s.ok()) {
    spdlog::error("ignoring the master's batch plan: {}", s.ToString());
    rejected_version_ = latest.version;
    return false;
  }
  return true;
}

Status BatchSplit::Exchange(comm::Collectives& group, int rank, const BatchPlan& latest,
                            int64_t step) {
  const size_t world = plan_.rows.size();
  // [version, rows..., micro...] from rank 0, zeros from the others, summed: rank 0's values.
  // Exact in float64 for any realistic version and batch.
  std::vector<double> msg(1 + 2 * world, 0.0);
  if (rank == 0) {
    msg[0] = static_cast<double>(latest.version);
    for (size_t r = 0; r < world; ++r) {
      msg[1 + r] = static_cast<double>(latest.rows[r]);
      msg[1 + world + r] = static_cast<double>(latest.micro[r]);
    }
  }
  BATON_RETURN_IF_ERROR(
      group.AllReduce(msg.data(), msg.size(), comm::DataType::kFloat64, comm::ReduceOp::kSum));
  plan_.version = static_cast<uint64_t>(msg[0]);
  for (size_t r = 0; r < world; ++r) {
    plan_.rows[r] = static_cast<int64_t>(msg[1 + r]);
    plan_.micro[r] = static_cast<int64_t>(msg[1 + world + r]);
  }
  if (rank == 0) {
    plan_.reason = latest.reason;
    spdlog::info("step {}: batch plan v{} from the master, from the next step ({})", step,
                 plan_.version, plan_.reason);
  }
  return Status::Ok();
}

}  // namespace baton::train
