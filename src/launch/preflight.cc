#include "launch/preflight.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "agent/spawn.h"
#include "common/files.h"

namespace baton::launch {

Status PreflightJob(const JobSpec& spec) {
  if (spec.kind != JobKind::kInfer) return Status::Ok();
  const std::string program = InferWorkerPath();
  // The checker's messages go to a temporary file: they are this call's result.
  char log[] = "/tmp/baton-check-XXXXXX";
  int fd = ::mkstemp(log);
  if (fd < 0) return Status::IoError(std::string("mkstemp: ") + std::strerror(errno));
  ::close(fd);
  agent::SpawnRequest request;
  request.argv = {program, "--check", "--spec", spec.spec_path};
  request.output_path = log;
  Result<pid_t> pid = agent::SpawnProcess(request);
  if (!pid.ok()) {
    ::unlink(log);
    return Status::FailedPrecondition("cannot run the infer checker " + program + ": " +
                                      pid.status().message());
  }
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  Result<std::string> text = ReadFile(log);
  ::unlink(log);
  std::string output = text.ok() ? *text : "";
  while (!output.empty() && output.back() == '\n') output.pop_back();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) return Status::InvalidArgument(output);
  return Status::FailedPrecondition("the infer checker " + program + " failed (" +
                                    (WIFEXITED(status)
                                         ? "exit " + std::to_string(WEXITSTATUS(status))
                                         : "signal " + std::to_string(WTERMSIG(status))) +
                                    ")" + (output.empty() ? "" : ": " + output));
}

}  // namespace baton::launch
