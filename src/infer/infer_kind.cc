// The `infer` job kind as the control plane sees it (spec/job_kind.h): the `infer:` section, the
// default worker (baton-infer-worker next to baton), the thread environment of the model runtime
// (infer.intra_op_threads, and BATON_INFER_THREADS: the worker re-executes itself to set them
// when they are missing, costing a second load of libtorch), and the preflight
// (`baton-infer-worker --check`: it loads the models and compares them with the section and the
// input files). Built as an object library (baton_infer_kind) linked into every program that
// reads job specs, so that the registration below runs; it depends on the spec layer only, never
// on torch.
#include "spec/job_kind.h"

namespace baton::infer {
namespace {

const WorkerProgramKind kInferKind("infer", "baton-infer-worker", {"BATON_INFER_THREADS"});
[[maybe_unused]] const bool kRegistered = RegisterJobKind(&kInferKind);

}  // namespace
}  // namespace baton::infer
