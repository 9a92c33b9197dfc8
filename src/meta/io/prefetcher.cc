#include "meta/io/prefetcher.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace baton::meta {

EpisodePrefetcher::EpisodePrefetcher(std::shared_ptr<const EpisodeFile> file,
                                     std::vector<size_t> indices, size_t depth)
    : file_(std::move(file)),
      indices_(std::move(indices)),
      depth_(std::max<size_t>(depth, 1)),
      thread_([this] { Run(); }) {}

EpisodePrefetcher::~EpisodePrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  not_full_.notify_all();
  thread_.join();
}

void EpisodePrefetcher::Run() {
  for (size_t k = 0; k < indices_.size(); ++k) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      not_full_.wait(lock, [&] { return stop_ || queue_.size() < depth_; });
      if (stop_) break;
    }
    // The read runs unlocked, so Next can take queued episodes meanwhile.
    Result<Episode> e =
        file_ ? file_->Read(indices_[k])
              : Result<Episode>(Status::FailedPrecondition("episode prefetcher: no episode file"));
    std::lock_guard<std::mutex> lock(mu_);
    if (!e.ok()) {
      error_ = e.status();
      break;
    }
    queue_.push_back(std::move(e).value());
    not_empty_.notify_one();
  }
  std::lock_guard<std::mutex> lock(mu_);
  reader_done_ = true;
  not_empty_.notify_all();
}

Result<std::optional<Episode>> EpisodePrefetcher::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.empty() && !reader_done_) {
    const auto start = std::chrono::steady_clock::now();
    not_empty_.wait(lock, [&] { return !queue_.empty() || reader_done_; });
    waited_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  if (!queue_.empty()) {
    Episode e = std::move(queue_.front());
    queue_.pop_front();
    ++taken_;
    lock.unlock();
    not_full_.notify_one();
    return std::optional<Episode>(std::move(e));
  }
  if (error_) return *error_;
  return std::optional<Episode>();
}

double EpisodePrefetcher::waited_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waited_seconds_;
}

size_t EpisodePrefetcher::taken() const {
  std::lock_guard<std::mutex> lock(mu_);
  return taken_;
}

}  // namespace baton::meta
