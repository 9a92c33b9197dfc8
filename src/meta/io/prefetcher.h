// Reads episodes ahead of their consumer (Meta-IO, docs/meta.md): a background thread reads the
// given episodes of an EpisodeFile in order into a bounded queue, so a meta-step that takes the
// next episode finds it already decoded and never waits on the disk when the disk keeps up.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/status.h"
#include "meta/io/episode.h"
#include "meta/io/episode_file.h"

namespace baton::meta {

class EpisodePrefetcher {
 public:
  // Starts reading `indices` (episode numbers of `file`, in the order Next returns them; repeats
  // allowed) with at most `depth` episodes (at least 1) read and not yet taken.
  EpisodePrefetcher(std::shared_ptr<const EpisodeFile> file, std::vector<size_t> indices,
                    size_t depth = 4);
  // Stops the thread (an episode being read is finished first) and joins it.
  ~EpisodePrefetcher();
  EpisodePrefetcher(const EpisodePrefetcher&) = delete;
  EpisodePrefetcher& operator=(const EpisodePrefetcher&) = delete;

  // The next episode; nullopt after the last. If a read failed, its error, at that episode's
  // position; the prefetcher stops there and every later call returns the same error. One
  // consumer: not to be called from several threads at once.
  Result<std::optional<Episode>> Next();

  // Seconds Next has spent waiting for the reader so far (I/O stall as the consumer sees it).
  double waited_seconds() const;
  // Episodes Next has returned so far.
  size_t taken() const;

 private:
  void Run();

  const std::shared_ptr<const EpisodeFile> file_;
  const std::vector<size_t> indices_;
  const size_t depth_;

  mutable std::mutex mu_;
  std::condition_variable not_full_;   // the reader waits on it when depth_ episodes are queued
  std::condition_variable not_empty_;  // Next waits on it for the reader
  std::deque<Episode> queue_;
  std::optional<Status> error_;  // the read that failed; the reader stopped after it
  bool reader_done_ = false;     // every index read (or an error)
  bool stop_ = false;
  double waited_seconds_ = 0;
  size_t taken_ = 0;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace baton::meta
