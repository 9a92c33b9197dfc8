#include "spec/job_kind.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <system_error>

#include "spec/job_spec.h"
#include "spec/schema_reader.h"

namespace baton {
namespace {

// The built-in kind: the workers run worker.command, which the spec must give.
class CommandKind final : public JobKind {
 public:
  std::string_view Name() const override { return "command"; }
};

// Function-local, so that kinds registering from other translation units' static initializers
// never see it unconstructed. Registration happens before main() (single-threaded); afterwards it
// is only read.
std::map<std::string_view, const JobKind*>& Registry() {
  static std::map<std::string_view, const JobKind*> registry = [] {
    static const CommandKind command;
    return std::map<std::string_view, const JobKind*>{{command.Name(), &command}};
  }();
  return registry;
}

}  // namespace

bool RegisterJobKind(const JobKind* kind) {
  if (!Registry().emplace(kind->Name(), kind).second) {
    std::fprintf(stderr, "baton: job kind \"%.*s\" registered twice\n",
                 static_cast<int>(kind->Name().size()), kind->Name().data());
    std::abort();
  }
  return true;
}

const JobKind* FindJobKind(std::string_view name) {
  auto it = Registry().find(name);
  return it == Registry().end() ? nullptr : it->second;
}

std::vector<const JobKind*> JobKinds() {
  std::vector<const JobKind*> out;
  for (const auto& [name, kind] : Registry()) out.push_back(kind);
  return out;
}

std::map<std::string, std::string> ThreadEnv(const YAML::Node& section,
                                             const std::vector<std::string>& extra) {
  std::string threads = "1";
  if (section.IsMap()) {
    const YAML::Node t = section["intra_op_threads"];
    if (std::optional<int64_t> v = t ? schema::ParseInt(t) : std::nullopt; v && *v >= 1) {
      threads = std::to_string(*v);
    }
  }
  std::map<std::string, std::string> env;
  for (const char* var : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
    env.emplace(var, threads);
  }
  for (const std::string& var : extra) env.emplace(var, threads);
  return env;
}

std::vector<std::string> WorkerProgramKind::DefaultCommand(const JobSpec& spec) const {
  return {SiblingProgram(program_), "--spec", spec.spec_path};
}

std::map<std::string, std::string> WorkerProgramKind::WorkerEnv(const YAML::Node& section) const {
  return ThreadEnv(section, extra_thread_vars_);
}

std::vector<std::string> WorkerProgramKind::PreflightCommand(const JobSpec& spec) const {
  return {SiblingProgram(program_), "--check", "--spec", spec.spec_path};
}

std::string SiblingProgram(std::string_view name) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return std::string(name);
  return (self.parent_path() / name).string();
}

}  // namespace baton
