// Which `baton run` owns a job's state dir.
//
// `baton run` holds STATE_DIR/run.lock (flock, with its pid written inside) for its whole life,
// and takes it before it touches anything else there: a second `baton run` of the same job is
// refused without disturbing the first (its master.addr, its master, its agents). The kernel
// drops the lock when its holder dies, however it dies, so a SIGKILLed `baton run` never blocks
// the next one; its master and agents die with it (they are started with --supervisor-pid).
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace baton::launch {

std::string RunLockPath(const std::string& state_dir);

class RunLock {
 public:
  // Takes the lock. FailedPrecondition naming the holder's pid when another process holds it.
  static Result<RunLock> Acquire(const std::string& state_dir);

  RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunLock& operator=(RunLock&&) = delete;
  RunLock(const RunLock&) = delete;
  ~RunLock();

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_ = -1;  // close-on-exec: the processes `baton run` starts do not inherit it
};

// Waits up to `timeout` until no master holds STATE_DIR/master.lock: the master of a `baton run`
// that was just killed is dying with it. FailedPrecondition when one still holds it then (a
// master started by hand with `baton master`, or one that outlived its `baton run`).
Status WaitForNoMaster(const std::string& state_dir, std::chrono::milliseconds timeout);

}  // namespace baton::launch
