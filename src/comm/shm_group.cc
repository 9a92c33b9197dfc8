#include "comm/shm_group.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>

#include "comm/reduce.h"

namespace baton::comm {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kHeaderBytes = 4096;
constexpr int kMaxRanks = 256;  // pids fit in the header page
// How long a waiter sleeps before it checks that every member is still alive.
constexpr auto kLivenessPeriod = std::chrono::milliseconds(50);

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
  // Not FUTEX_PRIVATE_FLAG: the word is shared between processes. EAGAIN (the word already
  // changed), EINTR and ETIMEDOUT all just send the caller back to re-check.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// Whether `pid` has exited: gone, or a zombie its parent has not reaped yet (kill(pid, 0) still
// succeeds on those).
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t paren = line.rfind(')');  // the command name may contain spaces and parentheses
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

uint64_t PidNamespace() {
  struct stat st {};
  return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

std::string SegmentName(const ProcessGroup& group, const std::string& name) {
  // Unique per (group prefix, name) and per creating process, so that two jobs on one host that
  // happen to use the same prefix do not collide.
  const size_t h = std::hash<std::string>{}(group.options().prefix + "/" + name);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "/baton-%016zx-%d", h, static_cast<int>(::getpid()));
  return buf;
}

}  // namespace

struct NodeShm::Header {
  alignas(64) std::atomic<uint32_t> arrived{0};
  alignas(64) std::atomic<uint32_t> generation{0};
  alignas(64) int32_t pids[kMaxRanks] = {};
  // Inode of each member's pid namespace: a pid means something only within its namespace, so the
  // liveness check skips members in another one (they are left to the timeout).
  uint64_t pid_namespaces[kMaxRanks] = {};
};
static_assert(sizeof(NodeShm::Header) <= kHeaderBytes);

NodeShm::NodeShm(int rank, int size, size_t slot_bytes, void* base, size_t bytes)
    : rank_(rank),
      size_(size),
      slot_bytes_(slot_bytes),
      base_(base),
      bytes_(bytes),
      header_(static_cast<Header*>(base)) {}

NodeShm::~NodeShm() { ::munmap(base_, bytes_); }

Result<std::unique_ptr<NodeShm>> NodeShm::Create(ProcessGroup& group, const std::string& name,
                                                 size_t slot_bytes) {
  const int m = group.size();
  const int r = group.rank();
  if (m > kMaxRanks) {
    return Status::InvalidArgument("node shared memory: at most " + std::to_string(kMaxRanks) +
                                   " ranks per node, got " + std::to_string(m));
  }
  slot_bytes = std::max<size_t>(slot_bytes, 4096) / 64 * 64;
  const size_t bytes = kHeaderBytes + 2 * static_cast<size_t>(m) * slot_bytes;

  // Rank 0 creates and sizes the segment, then broadcasts its name (empty: it failed).
  std::string error;
  void* base = MAP_FAILED;
  std::vector<int64_t> name_words(8, 0);  // 64 bytes
  std::string seg;
  if (r == 0) {
    seg = SegmentName(group, name);
    const int fd = ::shm_open(seg.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
      error = "shm_open(" + seg + "): " + std::strerror(errno);
    } else {
      // Reserve the pages now: a tmpfs too small for a sparse segment would raise SIGBUS on first
      // touch, mid-collective, instead of failing here.
      const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
      if (rc != 0) {
        error = "reserving " + std::to_string(bytes >> 20) + " MiB for " + seg + ": " +
                std::strerror(rc) +
                " (/dev/shm too small? lower shm_slot_bytes or use IntraNode::kDirect)";
      } else {
        base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED) error = "mapping " + seg + ": " + std::strerror(errno);
      }
      ::close(fd);
      if (base != MAP_FAILED) new (base) Header();
    }
    if (error.empty()) std::memcpy(name_words.data(), seg.data(), std::min<size_t>(seg.size(), 63));
  }
  BATON_RETURN_IF_ERROR(group.Broadcast(name_words.data(), name_words.size(), DataType::kInt64, 0));
  if (r != 0) {
    seg.assign(reinterpret_cast<const char*>(name_words.data()));
    if (seg.empty()) {
      error = "rank 0 could not create the segment";
    } else {
      const int fd = ::shm_open(seg.c_str(), O_RDWR, 0600);
      if (fd < 0) {
        error = "shm_open(" + seg + "): " + std::strerror(errno) +
                " (do all ranks of this node share /dev/shm, i.e. one host?)";
      } else {
        base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED) error = "mapping " + seg + ": " + std::strerror(errno);
        ::close(fd);
      }
    }
  }
  if (base != MAP_FAILED) {
    static_cast<Header*>(base)->pids[r] = static_cast<int32_t>(::getpid());
    static_cast<Header*>(base)->pid_namespaces[r] = PidNamespace();
  }
  // Everyone mapped (or someone failed): agree, then the name is no longer needed.
  int64_t ok = error.empty() ? 1 : 0;
  Status agreed = group.AllReduce(&ok, 1, DataType::kInt64, ReduceOp::kMin);
  if (r == 0 && !seg.empty()) ::shm_unlink(seg.c_str());
  if (agreed.ok() && ok == 0 && error.empty()) error = "another rank of the node failed to map it";
  if (!agreed.ok() || !error.empty()) {
    if (base != MAP_FAILED) ::munmap(base, bytes);
    if (!agreed.ok()) return agreed;
    return Status::FailedPrecondition("node shared memory (rank " + std::to_string(r) + "/" +
                                      std::to_string(m) + "): " + error);
  }
  return std::unique_ptr<NodeShm>(new NodeShm(r, m, slot_bytes, base, bytes));
}

char* NodeShm::Slot(int rank) const {
  const size_t half = static_cast<size_t>(round_ % 2) * static_cast<size_t>(size_) * slot_bytes_;
  return static_cast<char*>(base_) + kHeaderBytes + half + static_cast<size_t>(rank) * slot_bytes_;
}

Status NodeShm::Fail(Status s) {
  broken_ = s;
  return s;
}

Status NodeShm::Barrier(Clock::time_point deadline) {
  ++round_;
  const uint32_t gen = header_->generation.load(std::memory_order_acquire);
  if (header_->arrived.fetch_add(1, std::memory_order_acq_rel) + 1 ==
      static_cast<uint32_t>(size_)) {
    header_->arrived.store(0, std::memory_order_relaxed);
    header_->generation.store(gen + 1, std::memory_order_release);
    FutexWakeAll(&header_->generation);
    return Status::Ok();
  }
  for (int spin = 0; spin < 200; ++spin) {  // a short spin: the last arriver is often running
    if (header_->generation.load(std::memory_order_acquire) != gen) return Status::Ok();
    __builtin_ia32_pause();
  }
  while (header_->generation.load(std::memory_order_acquire) == gen) {
    const auto now = Clock::now();
    if (now >= deadline) {
      return Fail(Status::DeadlineExceeded("node shared memory barrier (rank " +
                                           std::to_string(rank_) + "/" + std::to_string(size_) +
                                           "): not all ranks of the node arrived in time"));
    }
    FutexWait(&header_->generation, gen,
              std::min<std::chrono::nanoseconds>(kLivenessPeriod, deadline - now));
    if (header_->generation.load(std::memory_order_acquire) != gen) break;
    for (int q = 0; q < size_; ++q) {
      const pid_t pid = header_->pids[q];
      if (pid > 0 && header_->pid_namespaces[q] == header_->pid_namespaces[rank_] &&
          ProcessGone(pid)) {
        return Fail(Status::Unavailable("node shared memory barrier (rank " +
                                        std::to_string(rank_) + "/" + std::to_string(size_) +
                                        "): local rank " + std::to_string(q) + " (pid " +
                                        std::to_string(pid) + ") died"));
      }
    }
  }
  return Status::Ok();
}

Status NodeShm::CheckCall(const std::vector<Block>& blocks, const char* what) const {
  if (!broken_.ok()) {
    return Status::FailedPrecondition("node shared memory is broken (" + broken_.ToString() + ")");
  }
  if (blocks.size() != static_cast<size_t>(size_)) {
    return Status::InvalidArgument(std::string(what) + ": need one block per rank");
  }
  return Status::Ok();
}

Status NodeShm::ReduceScatterBlocks(void* buf, const std::vector<Block>& blocks, DataType type,
                                    ReduceOp op, std::chrono::milliseconds timeout) {
  BATON_RETURN_IF_ERROR(CheckCall(blocks, "reduce_scatter"));
  if (size_ == 1) return Status::Ok();
  const auto deadline = Clock::now() + timeout;
  const size_t esize = ElementSize(type);
  // Each rank's slot holds one piece of every block, so a piece is at most slot/size bytes.
  const size_t piece = std::max<size_t>(1, slot_bytes_ / static_cast<size_t>(size_) / esize);
  const size_t largest = LargestCount(blocks);
  char* base = static_cast<char*>(buf);
  const Block& mine = blocks[static_cast<size_t>(rank_)];
  for (size_t start = 0; start < largest; start += piece) {
    char* out = Slot(rank_);
    for (int b = 0; b < size_; ++b) {
      const Block& blk = blocks[static_cast<size_t>(b)];
      if (b == rank_ || start >= blk.count) continue;
      const size_t n = std::min(piece, blk.count - start);
      std::memcpy(out + static_cast<size_t>(b) * piece * esize, base + (blk.offset + start) * esize,
                  n * esize);
    }
    std::vector<const char*> peers;
    for (int k = 1; k < size_; ++k) peers.push_back(Slot((rank_ + k) % size_));
    BATON_RETURN_IF_ERROR(Barrier(deadline));
    if (start < mine.count) {
      const size_t n = std::min(piece, mine.count - start);
      for (const char* slot : peers) {
        ReduceInto(base + (mine.offset + start) * esize,
                   slot + static_cast<size_t>(rank_) * piece * esize, n, type, op);
      }
    }
  }
  return Status::Ok();
}

Status NodeShm::AllGatherBlocks(void* buf, const std::vector<Block>& blocks, DataType type,
                                std::chrono::milliseconds timeout) {
  BATON_RETURN_IF_ERROR(CheckCall(blocks, "all_gather"));
  if (size_ == 1) return Status::Ok();
  const auto deadline = Clock::now() + timeout;
  const size_t esize = ElementSize(type);
  const size_t piece = std::max<size_t>(1, slot_bytes_ / esize);
  const size_t largest = LargestCount(blocks);
  char* base = static_cast<char*>(buf);
  const Block& mine = blocks[static_cast<size_t>(rank_)];
  for (size_t start = 0; start < largest; start += piece) {
    if (start < mine.count) {
      std::memcpy(Slot(rank_), base + (mine.offset + start) * esize,
                  std::min(piece, mine.count - start) * esize);
    }
    std::vector<const char*> slots;
    for (int q = 0; q < size_; ++q) slots.push_back(Slot(q));
    BATON_RETURN_IF_ERROR(Barrier(deadline));
    for (int q = 0; q < size_; ++q) {
      const Block& blk = blocks[static_cast<size_t>(q)];
      if (q == rank_ || start >= blk.count) continue;
      std::memcpy(base + (blk.offset + start) * esize, slots[static_cast<size_t>(q)],
                  std::min(piece, blk.count - start) * esize);
    }
  }
  return Status::Ok();
}

}  // namespace baton::comm
