// Starting a worker process without fork().
//
// gRPC keeps threads and locks that a fork()ed child would inherit half-held, so the agent starts
// workers with posix_spawn, which execs directly (glibc uses a vfork-style clone). Each worker
// leads its own process group so that signals reach the programs it starts too (a `/bin/sh -c`
// wrapper and its children die together instead of leaving orphans behind).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace baton::agent {

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  // The child's environment is the caller's own, with these entries added or replacing.
  std::map<std::string, std::string> env;
  std::string working_dir;  // empty: the caller's working directory
  // Appends the child's stdout and stderr to this file (created 0644); empty: inherit the caller's.
  std::string output_path;
};

// Starts the process and returns its pid (which is also its process group id). Signal dispositions
// and the signal mask are reset to defaults in the child, whatever the agent installed for itself.
Result<pid_t> SpawnProcess(const SpawnRequest& request);

}  // namespace baton::agent
