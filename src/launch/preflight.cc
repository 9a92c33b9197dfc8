#include "launch/preflight.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "agent/spawn.h"
#include "common/files.h"
#include "spec/job_kind.h"

namespace baton::launch {

Status PreflightJob(const JobSpec& spec) {
  const JobKind* kind = FindJobKind(spec.kind);
  if (kind == nullptr) return Status::InvalidArgument("unknown job kind \"" + spec.kind + "\"");
  const std::vector<std::string> argv = kind->PreflightCommand(spec);
  if (argv.empty()) return Status::Ok();
  const std::string& program = argv[0];
  const std::string checker = "the " + spec.kind + " checker " + program;
  // The checker's messages go to a temporary file: they are this call's result.
  char log[] = "/tmp/baton-check-XXXXXX";
  int fd = ::mkstemp(log);
  if (fd < 0) return Status::IoError(std::string("mkstemp: ") + std::strerror(errno));
  ::close(fd);
  agent::SpawnRequest request;
  request.argv = argv;
  request.output_path = log;
  Result<pid_t> pid = agent::SpawnProcess(request);
  if (!pid.ok()) {
    ::unlink(log);
    return Status::FailedPrecondition("cannot run " + checker + ": " + pid.status().message());
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
  return Status::FailedPrecondition(checker + " failed (" +
                                    (WIFEXITED(status)
                                         ? "exit " + std::to_string(WEXITSTATUS(status))
                                         : "signal " + std::to_string(WTERMSIG(status))) +
                                    ")" + (output.empty() ? "" : ": " + output));
}

}  // namespace baton::launch
