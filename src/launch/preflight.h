// Checks a job's data-plane settings before anything starts, by running its job kind's checker
// program (JobKind::PreflightCommand in spec/job_kind.h) as a separate process: the control plane
// does not link any kind's runtime (e.g. a model runtime).
#pragma once

#include "common/status.h"
#include "spec/job_spec.h"

namespace baton::launch {

// Ok when the kind has no checker (kind: command) or the checker exits 0. InvalidArgument with the
// checker's "FILE:LINE: ..." lines when it exits 2, FailedPrecondition when it cannot be run or
// fails otherwise.
Status PreflightJob(const JobSpec& spec);

}  // namespace baton::launch
