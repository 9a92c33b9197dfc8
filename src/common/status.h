// Status and Result: errors as values across module boundaries.
//
// A Status is cheap on success (no allocation) and carries a code plus a human-readable message on
// failure. Result<T> holds either a value or a non-OK Status. Exceptions never cross a module
// boundary or an RPC; code that calls a throwing library converts at the edge.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace baton {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input: a spec, a flag, a record; the message names what and where
  kNotFound,            // a file, shard, node or key that does not exist
  kAlreadyExists,       // creating something that is already there
  kFailedPrecondition,  // the system is not in a state where the call makes sense
  kFenced,              // a lease token is stale: another worker owns the shard now
  kUnavailable,         // a peer (usually the master) cannot be reached; retrying may help
  kDeadlineExceeded,    // a call or wait ran past its deadline
  kPermissionDenied,    // missing or wrong job token, unwritable directory
  kIoError,             // the operating system refused a read, write or rename
  kInternal,            // a bug or an unexpected library failure
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status Fenced(std::string m) { return {StatusCode::kFenced, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) {
    return {StatusCode::kDeadlineExceeded, std::move(m)};
  }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  const std::string& message() const;
  // "CODE: message", or "OK".
  std::string ToString() const;
  // Returns a copy whose message is "context: original message"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;  // null means OK; shared so copies stay cheap
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace baton

#define BATON_CONCAT_INNER(a, b) a##b
#define BATON_CONCAT(a, b) BATON_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define BATON_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::baton::Status baton_status_ = (expr);        \
    if (!baton_status_.ok()) return baton_status_; \
  } while (0)

// `lhs = value of expr`, or returns its Status from the enclosing function.
#define BATON_ASSIGN_OR_RETURN(lhs, expr)                  \
  auto BATON_CONCAT(baton_result_, __LINE__) = (expr);     \
  if (!BATON_CONCAT(baton_result_, __LINE__).ok())         \
    return BATON_CONCAT(baton_result_, __LINE__).status(); \
  lhs = std::move(BATON_CONCAT(baton_result_, __LINE__)).value()
