#include "train/paro/sharded_engine.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

namespace baton::train::paro {
namespace {

template <typename T>
constexpr comm::DataType kType =
    std::is_same_v<T, double> ? comm::DataType::kFloat64 : comm::DataType::kFloat32;

// Elements [offset, offset + out.size()) of the padded image of `full` (`size` elements, zeros
// beyond).
template <typename T>
void CopyPaddedSlice(const T* full, size_t size, size_t offset, std::vector<T>& out) {
  for (size_t k = 0; k < out.size(); ++k) {
    out[k] = offset + k < size ? full[offset + k] : T(0);
  }
}

}  // namespace

template <typename T>
ShardedEngine<T>::ShardedEngine(ShardGroups& groups, Strategy strategy,
                                const OptimizerSpec& optimizer)
    : groups_(groups), strategy_(strategy), optimizer_spec_(optimizer) {}

template <typename T>
Result<std::unique_ptr<ShardedEngine<T>>> ShardedEngine<T>::Create(ShardGroups& groups,
                                                                   Strategy strategy,
                                                                   std::vector<LayerShape> layers,
                                                                   const OptimizerSpec& optimizer) {
  const auto& supported = SupportedStrategies();
  if (std::find(supported.begin(), supported.end(), strategy) == supported.end()) {
    return Status::InvalidArgument("sharding strategy " + StrategyName(strategy) +
                                   " is not supported");
  }
  std::unique_ptr<ShardedEngine> e(new ShardedEngine(groups, strategy, optimizer));
  for (size_t l = 0; l < layers.size(); ++l) {
    if (layers[l].size == 0) {
      return Status::InvalidArgument("layer " + std::to_string(l) + " has no parameters");
    }
    Layer layer{.shape = layers[l],
                .layout = groups.LayoutOf(layers[l].size),
                .params = {},
                .grads = {},
                .gathered = {},
                .optimizer = nullptr};
    layer.params.assign(layer.layout.ShardSize(strategy.p), T(0));
    if (layer.shape.trainable) {
      layer.grads.assign(layer.layout.ShardSize(strategy.g), T(0));
      layer.optimizer =
          std::make_unique<FlatOptimizer<T>>(optimizer, layer.layout.ShardSize(strategy.os));
    }
    e->layers_.push_back(std::move(layer));
  }
  return e;
}

template <typename T>
void ShardedEngine<T>::SetParameters(size_t l, const T* full) {
  Layer& layer = layers_[l];
  CopyPaddedSlice(full, layer.shape.size, layer.layout.ShardOffset(strategy_.p), layer.params);
}

template <typename T>
void ShardedEngine<T>::Track(long delta) {
  transient_ = static_cast<size_t>(static_cast<long>(transient_) + delta);
  peak_transient_ = std::max(peak_transient_, transient_);
}

template <typename T>
Result<const T*> ShardedEngine<T>::GatherLayer(size_t l) {
  Layer& layer = layers_[l];
  if (strategy_.p == Granularity::kNone) return layer.params.data();
  if (!layer.gathered.empty()) return layer.gathered.data();
  const ShardLayout& lay = layer.layout;
  layer.gathered.assign(lay.padded(), T(0));
  Track(static_cast<long>(layer.gathered.capacity() * sizeof(T)));
  std::copy(layer.params.begin(), layer.params.end(),
            layer.gathered.begin() + static_cast<long>(lay.ShardOffset(strategy_.p)));
  if (strategy_.p == Granularity::kIntra) {
    BATON_RETURN_IF_ERROR(groups_.IntraAllGather(layer.gathered.data(), lay, kType<T>));
  } else {
    BATON_RETURN_IF_ERROR(groups_.WorldAllGather(layer.gathered.data(), lay, kType<T>));
  }
  return layer.gathered.data();
}

template <typename T>
void ShardedEngine<T>::ReleaseLayer(size_t l) {
  Layer& layer = layers_[l];
  if (layer.gathered.capacity() == 0) return;
  Track(-static_cast<long>(layer.gathered.capacity() * sizeof(T)));
  std::vector<T>().swap(layer.gathered);
}

template <typename T>
Status ShardedEngine<T>::AccumulateGradient(size_t l, const T* grad) {
  Layer& layer = layers_[l];
  if (!layer.shape.trainable) {
    return Status::InvalidArgument("layer " + std::to_string(l) + " is frozen: it has no gradient");
  }
  const ShardLayout& lay = layer.layout;
  if (strategy_.g == Granularity::kNone) {
    for (size_t k = 0; k < lay.size; ++k) layer.grads[k] += grad[k];
    return Status::Ok();
  }
  // Reduce-scatter works in place on a full padded buffer: the caller's gradient is const and
  // unpadded, so it goes through the scratch bucket (kept until Step, freed there).
  if (scratch_.size() < lay.padded()) {
    Track(-static_cast<long>(scratch_.capacity() * sizeof(T)));
    std::vector<T>().swap(scratch_);
    scratch_.resize(lay.padded());
    Track(static_cast<long>(scratch_.capacity() * sizeof(T)));
  }
  std::copy(grad, grad + lay.size, scratch_.begin());
  std::fill(scratch_.begin() + static_cast<long>(lay.size),
            scratch_.begin() + static_cast<long>(lay.padded()), T(0));
  if (strategy_.g == Granularity::kIntra) {
    BATON_RETURN_IF_ERROR(groups_.IntraReduceScatter(scratch_.data(), lay, kType<T>));
  } else {
    BATON_RETURN_IF_ERROR(groups_.WorldReduceScatter(scratch_.data(), lay, kType<T>));
  }
  const T* mine = scratch_.data() + lay.ShardOffset(strategy_.g);
  for (size_t k = 0; k < layer.grads.size(); ++k) layer.grads[k] += mine[k];
  return Status::Ok();
}

// Finishes the gradient reduction at the boundary; *slice = the summed gradient of the
// optimizer's slice.
template <typename T>
Status ShardedEngine<T>::ReduceGradients(Layer& layer, T** slice) {
  const ShardLayout& lay = layer.layout;
  T* grads = layer.grads.data();
  const Granularity g = strategy_.g, os = strategy_.os;
  if (g == os) {
    if (g == Granularity::kNone)
      BATON_RETURN_IF_ERROR(groups_.WorldAllReduce(grads, lay, kType<T>));
    if (g == Granularity::kIntra)
      BATON_RETURN_IF_ERROR(groups_.InterAllReduce(grads, lay, kType<T>));
    *slice = grads;                      // g = G: reduce-scattered every micro-step already
  } else if (g == Granularity::kNone) {  // os = G (NNG, ING)
    BATON_RETURN_IF_ERROR(groups_.WorldReduceScatter(grads, lay, kType<T>));
    *slice = grads + lay.own_chunk_offset();
  } else {  // g = I, os = G (NIG, IIG): the intra shard's chunks over INTER
    BATON_RETURN_IF_ERROR(groups_.InterReduceScatter(grads, lay, kType<T>));
    *slice = grads + lay.own_chunk_offset() - lay.intra_offset();
  }
  return Status::Ok();
}

// After the update of the optimizer's slice, brings the parameter shard (p) up to date.
template <typename T>
Status ShardedEngine<T>::DistributeParameters(Layer& layer) {
  const ShardLayout& lay = layer.layout;
  T* params = layer.params.data();
  if (strategy_.p == strategy_.os) return Status::Ok();
  if (strategy_.p == Granularity::kNone) {
    return strategy_.os == Granularity::kIntra ? groups_.IntraAllGather(params, lay, kType<T>)
                                               : groups_.WorldAllGather(params, lay, kType<T>);
  }
  return groups_.InterAllGather(params, lay, kType<T>);  // p = I, os = G
}

template <typename T>
Result<double> ShardedEngine<T>::Step(double lr, int micro_steps, double max_grad_norm) {
  if (micro_steps < 1) return Status::InvalidArgument("Step needs at least one micro-step");
  const T scale = T(1) / static_cast<T>(static_cast<double>(groups_.grid().world()) * micro_steps);
  // Finish every layer's reduction first: clipping needs the norm over all of them.
  std::vector<T*> slices(layers_.size(), nullptr);
  double sum_of_squares = 0;
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    if (!layer.shape.trainable) continue;
    BATON_RETURN_IF_ERROR(ReduceGradients(layer, &slices[l]));
    T* grad = slices[l];
    const size_t n = layer.layout.ShardSize(strategy_.os);
    for (size_t k = 0; k < n; ++k) {
      grad[k] *= scale;
      sum_of_squares += static_cast<double>(grad[k]) * static_cast<double>(grad[k]);
    }
  }
  double norm = 0;
  if (max_grad_norm > 0) {
    // The optimizer slices partition the gradient over INTRA (os = I) or the world (os = G).
    BATON_RETURN_IF_ERROR(groups_.SumScalar(&sum_of_squares, strategy_.os));
    norm = std::sqrt(sum_of_squares);
    const double coef = max_grad_norm / (norm + 1e-6);  // as torch's clip_grad_norm_
    if (coef < 1.0) {
      for (size_t l = 0; l < layers_.size(); ++l) {
        if (slices[l] == nullptr) continue;
        const size_t n = layers_[l].layout.ShardSize(strategy_.os);
        for (size_t k = 0; k < n; ++k) slices[l][k] *= static_cast<T>(coef);
      }
    }
  }
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    if (slices[l] == nullptr) continue;
    const size_t n = layer.layout.ShardSize(strategy_.os);
    T* params = layer.params.data() +
                (layer.layout.ShardOffset(strategy_.os) - layer.layout.ShardOffset(strategy_.p));
    layer.optimizer->Update(params, slices[l], 0, n, lr);
    layer.optimizer->EndStep();
    BATON_RETURN_IF_ERROR(DistributeParameters(layer));
    std::fill(layer.grads.begin(), layer.grads.end(), T(0));
  }
  Track(-static_cast<long>(scratch_.capacity() * sizeof(T)));
  std::vector<T>().swap(scratch_);
  ++steps_;
  return norm;
}

template <typename T>
Result<FullLayerState<T>> ShardedEngine<T>::ReadLayer(size_t l) {
  Layer& layer = layers_[l];
  const ShardLayout& lay = layer.layout;
  FullLayerState<T> state;
  const bool was_gathered = !layer.gathered.empty();
  BATON_ASSIGN_OR_RETURN(const T* full, GatherLayer(l));
  state.params.assign(full, full + lay.size);
  if (!was_gathered) ReleaseLayer(l);
  if (!layer.optimizer) return state;
  for (std::vector<T>* moment : layer.optimizer->StateBuffers()) {
    std::vector<T> padded(lay.padded(), T(0));
    std::copy(moment->begin(), moment->end(),
              padded.begin() + static_cast<long>(lay.ShardOffset(strategy_.os)));
    if (strategy_.os == Granularity::kIntra) {
      BATON_RETURN_IF_ERROR(groups_.IntraAllGather(padded.data(), lay, kType<T>));
    } else if (strategy_.os == Granularity::kGlobal) {
      BATON_RETURN_IF_ERROR(groups_.WorldAllGather(padded.data(), lay, kType<T>));
    }
    padded.resize(lay.size);
    state.moments.push_back(std::move(padded));
  }
  return state;
}

template <typename T>
Status ShardedEngine<T>::LoadLayer(size_t l, const FullLayerState<T>& state,
                                   int64_t optimizer_steps) {
  Layer& layer = layers_[l];
  const size_t size = layer.shape.size;
  const std::string where = "layer " + std::to_string(l) + ": ";
  if (state.params.size() != size) {
    return Status::InvalidArgument(where + "the saved state has " +
                                   std::to_string(state.params.size()) + " parameters, the model " +
                                   std::to_string(size));
  }
  const size_t moments = layer.optimizer ? layer.optimizer->StateBuffers().size() : 0;
  if (state.moments.size() != moments) {
    return Status::InvalidArgument(where + "the saved state has " +
                                   std::to_string(state.moments.size()) +
                                   " optimizer buffers, this optimizer " + std::to_string(moments));
  }
  for (const auto& m : state.moments) {
    if (m.size() != size)
      return Status::InvalidArgument(where + "an optimizer buffer's size differs");
  }
  ReleaseLayer(l);  // a gathered copy would hold the old weights
  std::fill(layer.grads.begin(), layer.grads.end(), T(0));
  SetParameters(l, state.params.data());
  if (!layer.optimizer) return Status::Ok();
  auto buffers = layer.optimizer->StateBuffers();
  for (size_t k = 0; k < buffers.size(); ++k) {
    CopyPaddedSlice(state.moments[k].data(), size, layer.layout.ShardOffset(strategy_.os),
                    *buffers[k]);
  }
  layer.optimizer->set_steps(optimizer_steps);
  steps_ = optimizer_steps;
  return Status::Ok();
}

template <typename T>
StateBytes ShardedEngine<T>::HeldBytes() const {
  StateBytes held;
  for (const Layer& layer : layers_) {
    held.params += static_cast<double>(layer.params.capacity() * sizeof(T));
    held.grads += static_cast<double>(layer.grads.capacity() * sizeof(T));
    if (layer.optimizer) {
      for (std::vector<T>* m : layer.optimizer->StateBuffers()) {
        held.optimizer += static_cast<double>(m->capacity() * sizeof(T));
      }
    }
  }
  return held;
}

template class ShardedEngine<float>;
template class ShardedEngine<double>;

}  // namespace baton::train::paro
