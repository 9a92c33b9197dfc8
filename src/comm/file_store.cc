#include "comm/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/files.h"

namespace baton::comm {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Closes a descriptor on every return path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<std::unique_ptr<FileStore>> FileStore::Open(const std::string& dir) {
  BATON_RETURN_IF_ERROR(EnsureWritableDirectory(dir));
  return std::unique_ptr<FileStore>(new FileStore(dir));
}

std::string FileStore::PathOf(const std::string& key) const {
  // Keep [A-Za-z0-9._-] readable, escape the rest as %XX so that "a/b" never names a subdirectory.
  std::string name;
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      name.push_back(static_cast<char>(c));
    } else {
      static const char* kHex = "0123456789ABCDEF";
      name.push_back('%');
      name.push_back(kHex[c >> 4]);
      name.push_back(kHex[c & 15]);
    }
  }
  return dir_ + "/" + name;
}

Status FileStore::Set(const std::string& key, const std::string& value) {
  // No fsync: the store lives as long as the job's processes; a crash ends the generation anyway.
  const std::string path = PathOf(key);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(value.data(), static_cast<std::streamsize>(value.size()));
    if (!out) return Status::IoError(Errno("FileStore: cannot write " + tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError(Errno("FileStore: cannot rename " + tmp));
  }
  return Status::Ok();
}

Result<std::string> FileStore::TryGet(const std::string& key) const {
  std::ifstream in(PathOf(key), std::ios::binary);
  if (!in) return Status::NotFound("FileStore: no key " + key);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

Result<std::string> FileStore::Get(const std::string& key, std::chrono::milliseconds timeout) {
  BATON_RETURN_IF_ERROR(Wait({key}, timeout));
  return TryGet(key);
}

Status FileStore::Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  for (const auto& key : keys) {
    while (::access(PathOf(key).c_str(), F_OK) != 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::DeadlineExceeded("FileStore: key " + key + " did not appear within " +
                                        std::to_string(timeout.count()) + " ms");
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
  }
  return Status::Ok();
}

Result<int64_t> FileStore::Add(const std::string& key, int64_t delta) {
  const std::string lock_path = PathOf(key) + ".lock";
  Fd lock{::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)};
  if (lock.fd < 0) return Status::IoError(Errno("FileStore: cannot open " + lock_path));
  if (::flock(lock.fd, LOCK_EX) != 0) return Status::IoError(Errno("FileStore: flock"));
  int64_t value = 0;
  auto current = TryGet(key);
  if (current.ok() && !current->empty()) value = std::stoll(*current);
  value += delta;
  BATON_RETURN_IF_ERROR(Set(key, std::to_string(value)));
  return value;  // the lock is released when `lock` closes
}

}  // namespace baton::comm
