#include "spec/job_kind.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

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

std::string SiblingProgram(std::string_view name) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return std::string(name);
  return (self.parent_path() / name).string();
}

}  // namespace baton
