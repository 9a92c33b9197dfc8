// The `train` job kind as the control plane sees it (spec/job_kind.h): the `train:` section, the
// default worker (baton-train-worker next to baton), the thread environment of the model
// runtime, and the preflight (`baton-train-worker --check`, a separate process). Built as an
// object library (baton_train_kind) linked into every program that reads job specs, so that the
// registration below runs; it depends on the spec layer only, never on torch.
#include "spec/job_kind.h"
#include "spec/job_spec.h"

namespace baton::train {
namespace {

constexpr std::string_view kWorkerProgram = "baton-train-worker";

class TrainKind final : public JobKind {
 public:
  std::string_view Name() const override { return "train"; }
  std::string_view Section() const override { return "train"; }

  std::vector<std::string> DefaultCommand(const JobSpec& spec) const override {
    return {SiblingProgram(kWorkerProgram), "--spec", spec.spec_path};
  }

  // OpenMP and OpenBLAS size their pools when libtorch loads, before main(): give them
  // train.intra_op_threads from the start (Debian's torch calls OpenBLAS, which torch's own
  // set_num_threads does not limit). train_spec.cc validates the value.
  std::map<std::string, std::string> WorkerEnv(const YAML::Node& section) const override {
    return ThreadEnv(section);
  }

  std::vector<std::string> PreflightCommand(const JobSpec& spec) const override {
    return {SiblingProgram(kWorkerProgram), "--check", "--spec", spec.spec_path};
  }
};

const TrainKind kTrainKind;
[[maybe_unused]] const bool kRegistered = RegisterJobKind(&kTrainKind);

}  // namespace
}  // namespace baton::train
