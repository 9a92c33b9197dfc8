// The `meta` job kind as the control plane sees it (spec/job_kind.h): the `meta:` section, the
// default worker (baton-meta-worker next to baton), the thread environment of the model runtime,
// and the preflight (`baton-meta-worker --check`, a separate process). An object library linked
// into every program that reads job specs; it depends on the spec layer only, never on torch.
#include "spec/job_kind.h"
#include "spec/job_spec.h"

namespace baton::meta {
namespace {

constexpr std::string_view kWorkerProgram = "baton-meta-worker";

class MetaKind final : public JobKind {
 public:
  std::string_view Name() const override { return "meta"; }
  std::string_view Section() const override { return "meta"; }

  std::vector<std::string> DefaultCommand(const JobSpec& spec) const override {
    return {SiblingProgram(kWorkerProgram), "--spec", spec.spec_path};
  }

  // OpenMP and OpenBLAS size their pools when libtorch loads: meta.intra_op_threads from the
  // start (meta_spec.cc validates the value).
  std::map<std::string, std::string> WorkerEnv(const YAML::Node& section) const override {
    return ThreadEnv(section);
  }

  std::vector<std::string> PreflightCommand(const JobSpec& spec) const override {
    return {SiblingProgram(kWorkerProgram), "--check", "--spec", spec.spec_path};
  }
};

const MetaKind kMetaKind;
[[maybe_unused]] const bool kRegistered = RegisterJobKind(&kMetaKind);

}  // namespace
}  // namespace baton::meta
