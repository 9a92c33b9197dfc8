// The per-job secret token that every RPC carries.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace baton {

// Name of the environment variable that hands the token to agents and workers.
inline constexpr const char* kTokenEnv = "BATON_JOB_TOKEN";
// gRPC metadata key under which clients send the token.
inline constexpr const char* kTokenMetadataKey = "x-baton-token";

// 32 random bytes from the kernel, hex encoded.
Result<std::string> GenerateSecret();

// Reads the token at `path`, creating it (mode 0600) with a fresh secret if absent. Refuses a file
// that group or others can read, since the token is the job's only credential.
Result<std::string> LoadOrCreateSecret(const std::string& path);

// Reads an existing token file (for agents and `baton status`).
Result<std::string> LoadSecret(const std::string& path);

// Compares in time independent of where the strings differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace baton
