// A set of threads running one pipeline stage's loop, resized at run time by the autoscaler. A
// thread told to retire finishes its current item and returns; JoinAll retires and joins them all.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace baton::infer {

class StagePool {
 public:
  using Body = std::function<void(int index, const std::atomic<bool>& retire)>;
  explicit StagePool(Body body) : body_(std::move(body)) {}
  ~StagePool() { JoinAll(); }

  void Resize(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    while (static_cast<int>(active_.size()) < n) {
      auto slot = std::make_unique<Slot>();
      Slot* s = slot.get();
      int index = static_cast<int>(active_.size());
      s->thread = std::thread([this, s, index] { body_(index, s->retire); });
      active_.push_back(std::move(slot));
    }
    while (static_cast<int>(active_.size()) > n && active_.size() > 1) {
      active_.back()->retire = true;
      retired_.push_back(std::move(active_.back()));
      active_.pop_back();
    }
  }
  int size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(active_.size());
  }
  void JoinAll() {
    std::vector<std::unique_ptr<Slot>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& s : active_) all.push_back(std::move(s));
      for (auto& s : retired_) all.push_back(std::move(s));
      active_.clear();
      retired_.clear();
    }
    for (auto& s : all) {
      s->retire = true;
      if (s->thread.joinable()) s->thread.join();
    }
  }

 private:
  struct Slot {
    std::thread thread;
    std::atomic<bool> retire{false};
  };
  Body body_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Slot>> active_, retired_;
};

}  // namespace baton::infer
