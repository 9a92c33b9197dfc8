#include "common/parent_death.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace baton {

Status DieWithParent(pid_t parent) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    return Status::Internal(std::string("prctl(PR_SET_PDEATHSIG): ") + std::strerror(errno));
  }
  // Checked after the request: a parent that dies from now on triggers the signal.
  if (::getppid() != parent) {
    return Status::FailedPrecondition("the process that started this one (pid " +
                                      std::to_string(parent) + ") is gone");
  }
  return Status::Ok();
}

}  // namespace baton
