// The `train` job kind as the control plane sees it (spec/job_kind.h): the `train:` section, the
// default worker (baton-train-worker next to baton), the thread environment of the model
// runtime (train.intra_op_threads; train_spec.cc validates it), and the preflight
// (`baton-train-worker --check`, a separate process). Built as an object library
// (baton_train_kind) linked into every program that reads job specs, so that the registration
// below runs; it depends on the spec layer only, never on torch.
#include "spec/job_kind.h"

namespace baton::train {
namespace {

const WorkerProgramKind kTrainKind("train", "baton-train-worker");
[[maybe_unused]] const bool kRegistered = RegisterJobKind(&kTrainKind);

}  // namespace
}  // namespace baton::train
