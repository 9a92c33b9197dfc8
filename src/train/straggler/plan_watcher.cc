#include "train/straggler/plan_watcher.h"

#include <spdlog/spdlog.h>

namespace baton::train {

PlanWatcher::PlanWatcher(Read read, std::chrono::milliseconds period)
    : read_(std::move(read)), period_(period), thread_([this] { Loop(); }) {}

PlanWatcher::~PlanWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

BatchPlan PlanWatcher::latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latest_;
}

void PlanWatcher::Loop() {
  std::string last_text, last_error;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    Result<std::optional<std::string>> text = read_();
    lock.lock();
    if (text.ok()) last_error.clear();  // an outage that comes again is said again
    if (text.ok() && text->has_value() && **text != last_text) {
      last_text = **text;
      Result<BatchPlan> plan = DecodeBatchPlan(last_text);
      if (plan.ok()) {
        latest_ = std::move(*plan);
      } else {
        spdlog::error("ignoring the master's batch plan: {}", plan.status().ToString());
      }
    } else if (!text.ok() && text.status().ToString() != last_error) {
      // The master is away (restarting): the ranks keep the split they run; said once.
      last_error = text.status().ToString();
      spdlog::warn("cannot read the batch plan: {}", last_error);
    }
    stop_cv_.wait_for(lock, period_, [this] { return stop_; });
  }
}

}  // namespace baton::train
