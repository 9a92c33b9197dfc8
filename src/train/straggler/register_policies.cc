// Registers AntDT's straggler policy for `kind: train` jobs (master/policy_registry.h). Built as
// an object library (baton_train_policies) linked into `baton`, so that the registration runs; it
// depends on the master and the spec layer, never on torch.
#include "master/policy_registry.h"
#include "train/straggler/straggler_policy.h"

namespace baton::train {
namespace {

Result<std::vector<std::unique_ptr<master::Policy>>> TrainPolicies(const JobSpec& spec,
                                                                   master::PolicyHost& host) {
  int64_t global_batch = kDefaultGlobalBatch;
  BATON_ASSIGN_OR_RETURN(StragglerSpec straggler, LoadStragglerSpec(spec.spec_path, &global_batch));
  std::vector<std::unique_ptr<master::Policy>> policies;
  if (straggler.on()) {
    policies.push_back(std::make_unique<StragglerPolicy>(std::move(straggler), global_batch, host));
  }
  return policies;
}

[[maybe_unused]] const bool kRegistered = master::RegisterPolicies("train", TrainPolicies);

}  // namespace
}  // namespace baton::train
