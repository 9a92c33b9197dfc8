#include "launch/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "common/clock.h"
#include "common/files.h"
#include "master/master.h"

namespace baton::launch {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::IoError(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

std::string RunLockPath(const std::string& state_dir) { return state_dir + "/run.lock"; }

Result<RunLock> RunLock::Acquire(const std::string& state_dir) {
  const std::string path = RunLockPath(state_dir);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open", path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err != EWOULDBLOCK) {
      errno = err;
      return Errno("lock", path);
    }
    Result<std::string> holder = ReadFile(path);
    std::string pid = holder.ok() ? holder->substr(0, holder->find('\n')) : "";
    return Status::FailedPrecondition(
        "another `baton run` " + (pid.empty() ? std::string() : "(pid " + pid + ") ") +
        "is running this job on state dir " + state_dir + "; `baton status --state-dir " +
        state_dir + "` shows its progress");
  }
  // The pid is for the message above only: the lock itself is what counts.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    Status s = Errno("write", path);
    ::close(fd);
    return s;
  }
  return RunLock(fd);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status WaitForNoMaster(const std::string& state_dir, std::chrono::milliseconds timeout) {
  const std::string path = master::MasterLockPath(state_dir);
  const int64_t deadline = MonoMillis() + timeout.count();
  while (true) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("open", path);
    const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);  // releases it at once when taken: only our own master may hold it
    if (free) return Status::Ok();
    if (MonoMillis() >= deadline) {
      return Status::FailedPrecondition(
          "a master not started by this `baton run` is serving state dir " + state_dir +
          " (it holds " + path + "); stop it first, or use `baton status --state-dir " + state_dir +
          "`");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace baton::launch
