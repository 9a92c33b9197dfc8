// The `meta` job kind as the control plane sees it (spec/job_kind.h): the `meta:` section, the
// default worker (baton-meta-worker next to baton), the thread environment of the model runtime,
// and the preflight (`baton-meta-worker --check`, a separate process). An object library linked
// into every program that reads job specs; it depends on the spec layer only, never on torch.
#include "spec/job_kind.h"

namespace baton::meta {
namespace {

const WorkerProgramKind kMetaKind("meta", "baton-meta-worker");
[[maybe_unused]] const bool kRegistered = RegisterJobKind(&kMetaKind);

}  // namespace
}  // namespace baton::meta
