// The `infer` job kind as the control plane sees it (spec/job_kind.h): the `infer:` section, the
// default worker (baton-infer-worker next to baton), the thread environment of the model runtime,
// and the preflight (`baton-infer-worker --check`, a separate process). Built as an object library
// (baton_infer_kind) linked into every program that reads job specs, so that the registration
// below runs; it depends on the spec layer only, never on torch.
#include "spec/job_kind.h"
#include "spec/job_spec.h"

namespace baton::infer {
namespace {

constexpr std::string_view kWorkerProgram = "baton-infer-worker";

class InferKind final : public JobKind {
 public:
  std::string_view Name() const override { return "infer"; }
  std::string_view Section() const override { return "infer"; }

  std::vector<std::string> DefaultCommand(const JobSpec& spec) const override {
    return {SiblingProgram(kWorkerProgram), "--spec", spec.spec_path};
  }

  // The math libraries under libtorch size their thread pools from the environment when they
  // load, before the worker's main() runs: give them infer.intra_op_threads from the start (the
  // worker re-executes itself to set them when they are missing, costing a second load of
  // libtorch). infer_spec.cc validates the value; a bad one is left to its message.
  std::map<std::string, std::string> WorkerEnv(const YAML::Node& section) const override {
    return ThreadEnv(section, {"BATON_INFER_THREADS"});
  }

  // Loads the models and compares them with the section and the input files.
  std::vector<std::string> PreflightCommand(const JobSpec& spec) const override {
    return {SiblingProgram(kWorkerProgram), "--check", "--spec", spec.spec_path};
  }
};

const InferKind kInferKind;
[[maybe_unused]] const bool kRegistered = RegisterJobKind(&kInferKind);

}  // namespace
}  // namespace baton::infer
