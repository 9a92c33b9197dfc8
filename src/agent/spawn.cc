#include "agent/spawn.h"

#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cstring>

extern char** environ;

namespace baton::agent {
namespace {

// Owns the posix_spawn attribute objects so that every exit path destroys them.
struct SpawnAttrs {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnAttrs() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnAttrs() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

std::map<std::string, std::string> MergedEnvironment(
    const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    env[std::string(*e, static_cast<size_t>(eq - *e))] = std::string(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  return env;
}

}  // namespace

Result<pid_t> SpawnProcess(const SpawnRequest& request) {
  if (request.argv.empty()) return Status::InvalidArgument("worker argv is empty");

  SpawnAttrs sa;
  // Own process group (pgid = pid), default signal handling, nothing blocked: the agent may
  // ignore or block signals for itself, and the worker must not inherit that.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setflags(&sa.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&sa.attr, 0);
  posix_spawnattr_setsigdefault(&sa.attr, &all);
  posix_spawnattr_setsigmask(&sa.attr, &none);
  if (!request.working_dir.empty()) {
    int rc = posix_spawn_file_actions_addchdir_np(&sa.actions, request.working_dir.c_str());
    if (rc != 0) return Status::Internal(std::string("addchdir: ") + std::strerror(rc));
  }

  if (!request.output_path.empty()) {
    int rc = posix_spawn_file_actions_addopen(&sa.actions, STDOUT_FILENO, request.output_path.c_str(),
                                              O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&sa.actions, STDOUT_FILENO, STDERR_FILENO);
    if (rc != 0) return Status::Internal(std::string("redirect output: ") + std::strerror(rc));
  }

  std::vector<char*> argv;
  for (const auto& a : request.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : MergedEnvironment(request.env)) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &sa.actions, &sa.attr, argv.data(), envp.data());
  if (rc != 0) {
    return Status::IoError("cannot start " + request.argv[0] +
                           (request.working_dir.empty() ? "" : " in " + request.working_dir) +
                           ": " + std::strerror(rc));
  }
  return pid;
}

}  // namespace baton::agent
