// gRPC glue shared by every client and the master: authenticated contexts with deadlines, and the
// mapping between baton::Status and grpc::Status (exceptions never cross an RPC).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/backoff.h"
#include "common/status.h"

namespace baton {

// Default deadline of one control-plane call. Calls are small; a master that does not answer within
// this is treated as unavailable and idempotent calls are retried.
inline constexpr std::chrono::milliseconds kDefaultRpcDeadline{5000};

// An insecure channel to `address` ("host:port"); the job token, not TLS, authenticates callers.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);

// Fills `ctx` with the job token and a deadline `timeout` from now.
void PrepareContext(grpc::ClientContext& ctx, const std::string& token,
                    std::chrono::milliseconds timeout = kDefaultRpcDeadline);

Status FromGrpc(const grpc::Status& s);
grpc::Status ToGrpc(const Status& s);

// Runs `call` (one attempt of an idempotent RPC) until it succeeds, fails with a non-retryable
// error, or `total` has passed; retries only UNAVAILABLE and DEADLINE_EXCEEDED, with back-off.
Status RetryIdempotent(const std::function<Status()>& call, std::chrono::milliseconds total,
                       BackoffOptions backoff = {});

// Server side: OK if the call's metadata carries `token`, UNAUTHENTICATED otherwise (missing or
// wrong token alike; FromGrpc maps it to kPermissionDenied).
grpc::Status CheckToken(const grpc::ServerContextBase* ctx, const std::string& token);

}  // namespace baton
