#include "master/policy_registry.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>

namespace baton::master {
namespace {

std::map<std::string, PolicyFactory, std::less<>>& Factories() {
  static auto* factories = new std::map<std::string, PolicyFactory, std::less<>>();
  return *factories;
}

}  // namespace

bool RegisterPolicies(std::string_view kind, PolicyFactory factory) {
  if (!Factories().emplace(std::string(kind), std::move(factory)).second) {
    spdlog::critical("two policy factories for job kind {}", kind);
    std::abort();
  }
  return true;
}

Result<std::vector<std::unique_ptr<Policy>>> PoliciesFor(const JobSpec& spec, PolicyHost& host) {
  auto it = Factories().find(spec.kind);
  if (it == Factories().end()) return std::vector<std::unique_ptr<Policy>>{};
  return it->second(spec, host);
}

}  // namespace baton::master
