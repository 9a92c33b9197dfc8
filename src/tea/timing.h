// Wall time per named phase, accumulated over a run.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace baton::tea {

class PhaseTimes {
 public:
  void Add(const std::string& phase, double seconds) {
    for (auto& [name, s] : phases_) {
      if (name == phase) {
        s += seconds;
        return;
      }
    }
    phases_.emplace_back(phase, seconds);
  }
  const std::vector<std::pair<std::string, double>>& phases() const { return phases_; }

 private:
  std::vector<std::pair<std::string, double>> phases_;  // in first-seen order
};

// Adds the time between construction and destruction to `times[phase]` (if times is not null).
class ScopedPhase {
 public:
  ScopedPhase(PhaseTimes* times, std::string phase)
      : times_(times), phase_(std::move(phase)), start_(std::chrono::steady_clock::now()) {}
  ~ScopedPhase() {
    if (times_) {
      times_->Add(phase_,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
  }
  ScopedPhase(const ScopedPhase&) = delete;
  ScopedPhase& operator=(const ScopedPhase&) = delete;

 private:
  PhaseTimes* times_;
  std::string phase_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace baton::tea
