// Policies as plug-ins of job kinds. The master asks the registry for its job's policies when it
// starts (PoliciesFor) and adds them to its controller (controller.h); a kind registers a factory
// from its own folder (src/train/straggler/ registers AntDT's straggler policies for `train`), so
// the master never tests a kind's name. Like job kinds (spec/job_kind.h), registrations are linked
// into `baton` as object libraries so that they run.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "master/controller.h"
#include "spec/job_spec.h"

namespace baton::master {

// What a policy may do besides returning agent actions. Called on the monitor thread only.
class PolicyHost {
 public:
  virtual ~PolicyHost() = default;
  // Sets `key` in the job-scoped KV (master::kJobScope), where the job's workers read it (e.g.
  // train's batch plan). Made durable in the background: a master restart may lose the last
  // values, and a policy that needs them republishes.
  virtual void SetJobValue(const std::string& key, const std::string& value) = 0;
  // `key` of the job-scoped KV; nullopt when it is not set. What a restarted master's policy
  // reads back of what its earlier life published.
  virtual std::optional<std::string> GetJobValue(const std::string& key) = 0;
  // A value the master computed about a worker (e.g. straggler.ratio), shown with the worker's
  // own gauges by `baton status`, its --json and the metrics; kept until set again.
  virtual void SetWorkerNote(const std::string& worker_id, const std::string& name,
                             double value) = 0;
};

// Makes the policies of a job from its spec, or InvalidArgument naming the problem (the master
// does not start). An empty list: the job runs without policies.
using PolicyFactory = std::function<Result<std::vector<std::unique_ptr<Policy>>>(
    const JobSpec& spec, PolicyHost& host)>;

// Registers `factory` for jobs of kind `kind`; returns true, for namespace-scope initializers.
// A second factory for one kind is a programming error: it aborts.
bool RegisterPolicies(std::string_view kind, PolicyFactory factory);
// The policies of `spec`'s kind (none when it registered no factory).
Result<std::vector<std::unique_ptr<Policy>>> PoliciesFor(const JobSpec& spec, PolicyHost& host);

}  // namespace baton::master
