#include "train/paro/sharded_step.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "comm/topology.h"

namespace baton::train::paro {

Grid GridOf(const sdk::Generation& gen) {
  std::vector<int64_t> node_of_rank;
  for (const sdk::GenerationMember& m : gen.members) node_of_rank.push_back(m.node_rank);
  const comm::Topology t = comm::Topology::FromNodeIds(node_of_rank);
  const int n = gen.size();
  if (!t.uniform()) return {n, 1};
  const int m = t.ranks_per_node();
  for (int r = 0; r < n; ++r) {
    if (t.node_of(r) != r / m) return {n, 1};  // not node-major
  }
  return {t.num_nodes(), m};
}

template <typename T>
Result<std::unique_ptr<ShardedStep<T>>> ShardedStep<T>::Create(
    comm::ProcessGroup& group, const sdk::Generation& gen, Strategy strategy,
    AllReduceMode world_path, size_t elements, const OptimizerSpec& optimizer) {
  if (strategy.p != Granularity::kNone) {
    return Status::InvalidArgument("train.sharding: " + StrategyName(strategy) +
                                   " shards the parameters, which kind: train does not do");
  }
  std::unique_ptr<ShardedStep> s(new ShardedStep());
  ShardGroupsOptions options;
  options.name = "train-paro";
  // As the trainer's HO-Ring: ranks of a node exchange over loopback sockets, not shared memory,
  // so that a node-mate leaving the group alive fails the others at once (docs/train.md).
  options.intra_node = comm::IntraNode::kDirect;
  if (world_path == AllReduceMode::kHierarchical) options.hierarchical_threshold_bytes = 0;
  if (world_path == AllReduceMode::kFlat) {
    options.hierarchical_threshold_bytes = std::numeric_limits<size_t>::max();
  }
  BATON_ASSIGN_OR_RETURN(s->groups_, ShardGroups::Create(group, GridOf(gen), options));
  BATON_ASSIGN_OR_RETURN(
      s->engine_, ShardedEngine<T>::Create(*s->groups_, strategy, {{elements, true}}, optimizer));
  s->elements_ = elements;
  s->moments_ = FlatOptimizer<T>(optimizer, 1).StateBuffers().size();
  return s;
}

template <typename T>
Result<double> ShardedStep<T>::Apply(T* params, T* grad_sum, int64_t total_rows, double lr,
                                     double max_grad_norm) {
  // The engine averages over the world: scaled by world / rows here, the result is the sum over
  // the step's rows divided by them, as the all-reduce path computes (unequal parts included).
  const T scale = static_cast<T>(static_cast<double>(groups_->grid().world()) /
                                 static_cast<double>(total_rows));
  for (size_t i = 0; i < elements_; ++i) grad_sum[i] *= scale;
  BATON_RETURN_IF_ERROR(engine_->AccumulateGradient(0, grad_sum));
  BATON_ASSIGN_OR_RETURN(double norm, engine_->Step(lr, 1, max_grad_norm));
  BATON_ASSIGN_OR_RETURN(const T* updated, engine_->GatherLayer(0));  // p = N: no communication
  std::memcpy(params, updated, elements_ * sizeof(T));
  return norm;
}

template <typename T>
Result<TrainingBuffers> ShardedStep<T>::ExportForSnapshot(T* params) {
  BATON_ASSIGN_OR_RETURN(FullLayerState<T> state, engine_->ReadLayer(0));
  staging_ = std::move(state.moments);
  return Staged(params);
}

template <typename T>
TrainingBuffers ShardedStep<T>::BuffersForRestore(T* params) {
  staging_.assign(moments_, std::vector<T>(elements_, T(0)));
  return Staged(params);
}

template <typename T>
TrainingBuffers ShardedStep<T>::Staged(T* params) {
  TrainingBuffers b{std::is_same_v<T, double> ? comm::DataType::kFloat64 : comm::DataType::kFloat32,
                    elements_,
                    params,
                    {}};
  for (auto& m : staging_) b.optimizer_state.push_back(m.data());
  return b;
}

template <typename T>
Status ShardedStep<T>::LoadRestored(const T* params, int64_t optimizer_steps) {
  FullLayerState<T> state;
  state.params.assign(params, params + elements_);
  state.moments = std::move(staging_);
  staging_.clear();
  return engine_->LoadLayer(0, state, optimizer_steps);
}

template class ShardedStep<float>;
template class ShardedStep<double>;

}  // namespace baton::train::paro
