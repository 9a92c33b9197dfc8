#include "train/flat_optimizer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace baton::train {

template <typename T>
FlatOptimizer<T>::FlatOptimizer(const OptimizerSpec& spec, size_t size) : spec_(spec) {
  const bool momentum = spec.kind != OptimizerKind::kSgd || spec.momentum != 0.0;
  if (momentum) m_.assign(size, T(0));
  if (spec.kind != OptimizerKind::kSgd) v_.assign(size, T(0));
}

template <typename T>
std::vector<std::vector<T>*> FlatOptimizer<T>::StateBuffers() {
  std::vector<std::vector<T>*> out;
  if (!m_.empty()) out.push_back(&m_);
  if (!v_.empty()) out.push_back(&v_);
  return out;
}

template <typename T>
void FlatOptimizer<T>::Update(T* params, const T* grads, size_t begin, size_t end, double lr) {
  const T wd = static_cast<T>(spec_.weight_decay);
  if (spec_.kind == OptimizerKind::kSgd) {
    const T mu = static_cast<T>(spec_.momentum);
    const T step = static_cast<T>(lr);
    for (size_t i = begin; i < end; ++i) {
      T g = grads[i] + wd * params[i];
      if (!m_.empty()) {
        // torch starts the buffer at the first gradient; mu * 0 + g is the same.
        m_[i] = steps_ == 0 ? g : mu * m_[i] + g;
        g = m_[i];
      }
      params[i] -= step * g;
    }
    return;
  }
  const double t = static_cast<double>(steps_ + 1);
  const T b1 = static_cast<T>(spec_.beta1), b2 = static_cast<T>(spec_.beta2);
  const double bc1 = 1.0 - std::pow(spec_.beta1, t);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(spec_.beta2, t));
  const T step_size = static_cast<T>(lr / bc1);
  const T bc2_root = static_cast<T>(bc2_sqrt);
  const T eps = static_cast<T>(spec_.eps);
  const bool decoupled = spec_.kind == OptimizerKind::kAdamW;
  const T decay = static_cast<T>(1.0 - lr * spec_.weight_decay);
  for (size_t i = begin; i < end; ++i) {
    T g = grads[i];
    if (decoupled) {
      params[i] *= decay;
    } else {
      g += wd * params[i];
    }
    m_[i] = b1 * m_[i] + (T(1) - b1) * g;
    v_[i] = b2 * v_[i] + (T(1) - b2) * g * g;
    const T denom = std::sqrt(v_[i]) / bc2_root + eps;
    params[i] -= step_size * m_[i] / denom;
  }
}

double ScheduledLr(const OptimizerSpec& optimizer, const ScheduleSpec& schedule, int64_t step) {
  const double lr = optimizer.lr;
  if (step < schedule.warmup_steps) {
    return lr * static_cast<double>(step + 1) / static_cast<double>(schedule.warmup_steps);
  }
  if (schedule.decay == LrDecay::kConstant || schedule.decay_steps <= 0) return lr;
  const double progress = std::min(1.0, static_cast<double>(step - schedule.warmup_steps) /
                                            static_cast<double>(schedule.decay_steps));
  const double span = lr - schedule.min_lr;
  if (schedule.decay == LrDecay::kLinear) return lr - span * progress;
  return schedule.min_lr + span * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

template <typename T>
double ClipGradNorm(T* grads, size_t size, double max_norm) {
  double sum = 0;
  for (size_t i = 0; i < size; ++i) sum += static_cast<double>(grads[i]) * grads[i];
  const double norm = std::sqrt(sum);
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      const T c = static_cast<T>(coef);
      for (size_t i = 0; i < size; ++i) grads[i] *= c;
    }
  }
  return norm;
}

template class FlatOptimizer<float>;
template class FlatOptimizer<double>;
template double ClipGradNorm<float>(float*, size_t, double);
template double ClipGradNorm<double>(double*, size_t, double);

}  // namespace baton::train
