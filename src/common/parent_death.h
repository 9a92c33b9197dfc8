// Tying a child process's life to its supervisor's.
//
// A process started by a supervisor (a worker by its agent, a master or agent by `baton run`)
// calls DieWithParent early: the kernel then SIGKILLs it as soon as the supervisor dies, however
// it dies (SIGKILL included), so no process of a job outlives the one that was watching it.
#pragma once

#include <sys/types.h>

#include "common/status.h"

namespace baton {

// Asks the kernel to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), then checks
// that `parent` is still the parent: if it died before the request, the signal would never come.
// FailedPrecondition when it is gone; Internal when the kernel refuses the request.
//
// The kernel ties the signal to the parent *thread* that started this process: the supervisor
// must start its children from a thread that lives as long as it does (its main thread).
Status DieWithParent(pid_t parent);

}  // namespace baton
