#include "master/request_limits.h"

#include <string>

#include "common/safe_text.h"

namespace baton::master {
namespace {

bool NodeIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '@' || c == '-';
}

}  // namespace

Status CheckNodeId(std::string_view field, std::string_view node_id) {
  if (node_id.empty() || node_id.size() > kMaxNodeIdBytes) {
    return Status::InvalidArgument(std::string(field) + " must be 1 to " +
                                   std::to_string(kMaxNodeIdBytes) + " bytes, got " +
                                   std::to_string(node_id.size()));
  }
  for (char c : node_id) {
    if (!NodeIdChar(c)) {
      return Status::InvalidArgument(std::string(field) + " '" + SafeText(node_id, 64) +
                                     "' may hold only letters, digits and . _ : @ -");
    }
  }
  return Status::Ok();
}

Status CheckWorkerId(std::string_view field, std::string_view worker_id) {
  size_t slash = worker_id.rfind('/');
  auto bad = [&] {
    return Status::InvalidArgument(std::string(field) + " '" + SafeText(worker_id, 64) +
                                   "' must be <node_id>/<local_rank> with a local rank below " +
                                   std::to_string(kMaxWorkersPerNode));
  };
  if (slash == std::string_view::npos) return bad();
  BATON_RETURN_IF_ERROR(CheckNodeId(field, worker_id.substr(0, slash)));
  std::string_view rank = worker_id.substr(slash + 1);
  if (rank.empty() || rank.size() > 4 || (rank.size() > 1 && rank[0] == '0')) return bad();
  int32_t value = 0;
  for (char c : rank) {
    if (c < '0' || c > '9') return bad();
    value = value * 10 + (c - '0');
  }
  if (value >= kMaxWorkersPerNode) return bad();
  return Status::Ok();
}

Status CheckCounterName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxCounterNameBytes;
  for (char c : name) ok = ok && NodeIdChar(c) && c != '@';
  if (!ok) {
    return Status::InvalidArgument("counter name '" + SafeText(name, 64) + "' must be 1 to " +
                                   std::to_string(kMaxCounterNameBytes) +
                                   " bytes of letters, digits and . _ : -");
  }
  return Status::Ok();
}

}  // namespace baton::master
