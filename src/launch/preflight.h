// Checks a job's data-plane settings before anything starts. For kind: infer this runs
// `baton-infer-worker --check --spec FILE` (the control plane does not link the model runtime),
// which loads the models and compares them with the schema and the input files.
#pragma once

#include "common/status.h"
#include "spec/job_spec.h"

namespace baton::launch {

// Ok for kind: command. For kind: infer: InvalidArgument with the checker's "FILE:LINE: ..."
// lines when it finds problems, FailedPrecondition when the checker cannot be run.
Status PreflightJob(const JobSpec& spec);

}  // namespace baton::launch
