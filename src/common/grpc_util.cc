#include "common/grpc_util.h"

#include <thread>

#include "common/clock.h"
#include "common/secret.h"

namespace baton {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // Reconnect quickly after a master restart instead of gRPC's default multi-second back-off.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Status replies list every node and worker; requests to the master are bounded by it.
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void PrepareContext(grpc::ClientContext& ctx, const std::string& token,
                    std::chrono::milliseconds timeout) {
  ctx.AddMetadata(kTokenMetadataKey, token);
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
}

Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return Status::Ok();
  const std::string& m = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Status::InvalidArgument(m);
    case grpc::StatusCode::NOT_FOUND:
      return Status::NotFound(m);
    case grpc::StatusCode::ALREADY_EXISTS:
      return Status::AlreadyExists(m);
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Status::FailedPrecondition(m);
    case grpc::StatusCode::ABORTED:
      return Status::Fenced(m);
    case grpc::StatusCode::UNAVAILABLE:
      return Status::Unavailable(m);
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status::DeadlineExceeded(m);
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return Status::PermissionDenied(m);
    default:
      return Status::Internal(m.empty() ? "rpc failed" : m);
  }
}

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  const std::string& m = s.message();
  switch (s.code()) {
    case StatusCode::kOk:
      return grpc::Status::OK;
    case StatusCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, m};
    case StatusCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, m};
    case StatusCode::kAlreadyExists:
      return {grpc::StatusCode::ALREADY_EXISTS, m};
    case StatusCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, m};
    case StatusCode::kFenced:
      return {grpc::StatusCode::ABORTED, m};
    case StatusCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, m};
    case StatusCode::kDeadlineExceeded:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, m};
    case StatusCode::kPermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED, m};
    case StatusCode::kIoError:
    case StatusCode::kInternal:
      return {grpc::StatusCode::INTERNAL, m};
  }
  return {grpc::StatusCode::UNKNOWN, m};
}

Status RetryIdempotent(const std::function<Status()>& call, std::chrono::milliseconds total,
                       BackoffOptions backoff_options) {
  Backoff backoff(backoff_options);
  int64_t give_up_at = MonoMillis() + total.count();
  while (true) {
    Status s = call();
    bool retryable =
        s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
    if (!retryable) return s;
    auto delay = backoff.Next();
    if (MonoMillis() + delay.count() > give_up_at) {
      return s.WithContext("gave up after " + std::to_string(backoff.attempts()) + " attempts");
    }
    std::this_thread::sleep_for(delay);
  }
}

grpc::Status CheckToken(const grpc::ServerContextBase* ctx, const std::string& token) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(kTokenMetadataKey);
  if (it == md.end()) {
    return {grpc::StatusCode::UNAUTHENTICATED, "missing job token (x-baton-token)"};
  }
  std::string_view got(it->second.data(), it->second.size());
  if (!ConstantTimeEquals(got, token)) {
    return {grpc::StatusCode::UNAUTHENTICATED, "wrong job token"};
  }
  return grpc::Status::OK;
}

}  // namespace baton
