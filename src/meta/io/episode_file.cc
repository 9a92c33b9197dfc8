#include "meta/io/episode_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "common/files.h"
#include "common/safe_text.h"

namespace baton::meta {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the episode file format is little-endian; a big-endian build must byte-swap");

constexpr uint64_t kMagic = 0x4154454d4e544142ULL;  // "BATNMETA" read little-endian
constexpr size_t kHeaderBytes = 24;
constexpr size_t kFooterBytes = 32;
constexpr size_t kMinIndexEntryBytes = 8 + 8 + 4 + 4 + 4;
constexpr size_t kFlushBytes = size_t{4} << 20;

std::string Errno(int err) { return std::strerror(err); }

template <typename T>
void Put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(value));
}

// Reads fixed-size values from a byte range, failing (instead of reading past it) at the end.
class Cursor {
 public:
  Cursor(const char* p, size_t n) : p_(p), end_(p + n) {}
  template <typename T>
  bool Get(T* value) {
    if (static_cast<size_t>(end_ - p_) < sizeof(T)) return false;
    std::memcpy(value, p_, sizeof(T));
    p_ += sizeof(T);
    return true;
  }
  bool GetBytes(size_t n, std::string* out) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    out->assign(p_, n);
    p_ += n;
    return true;
  }
  template <typename T>
  bool GetArray(size_t n, std::vector<T>* out) {
    if (static_cast<size_t>(end_ - p_) / sizeof(T) < n) return false;
    out->resize(n);
    if (n > 0) std::memcpy(out->data(), p_, n * sizeof(T));
    p_ += n * sizeof(T);
    return true;
  }
  size_t left() const { return static_cast<size_t>(end_ - p_); }

 private:
  const char* p_;
  const char* end_;
};

// Bytes of a record with these dimensions, or false when that overflows 64 bits.
bool RecordBytes(uint64_t task_id_bytes, uint64_t num_support, uint64_t num_query,
                 uint64_t num_dense, uint64_t num_sparse, uint64_t* out) {
  const uint64_t rows = num_support + num_query;  // each < 2^32: no overflow
  const uint64_t row_bytes = 4 * num_dense + 8 * num_sparse + 4;
  uint64_t body;
  if (__builtin_mul_overflow(rows, row_bytes, &body)) return false;
  return !__builtin_add_overflow(body, 4 + task_id_bytes + 4 + 4 + 8, out);
}

Status PreadAll(int fd, char* buf, size_t n, uint64_t offset, const std::string& what) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(what + ": read failed: " + Errno(errno));
    }
    if (r == 0) {
      return Status::IoError(what + ": unexpected end of file at byte " +
                             std::to_string(offset + done) + " (the file shrank while open?)");
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace

// ---- EpisodeFileWriter ----

Result<EpisodeFileWriter> EpisodeFileWriter::Open(const std::string& path, uint32_t num_dense,
                                                  uint32_t num_sparse) {
  if (path.empty()) return Status::InvalidArgument("episode file: empty output path");
  EpisodeFileWriter w;
  w.path_ = path;
  std::string tmpl = path + ".tmp.XXXXXX";
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) {
    return Status::IoError("cannot create a temporary file beside " + path + ": " + Errno(errno));
  }
  w.fd_ = fd;
  w.tmp_path_ = tmpl;
  if (::fchmod(fd, 0644) != 0) {
    Status s = Status::IoError("chmod " + tmpl + ": " + Errno(errno));
    w.Abandon();
    return s;
  }
  w.num_dense_ = num_dense;
  w.num_sparse_ = num_sparse;
  Put(&w.buffer_, kMagic);
  Put(&w.buffer_, kEpisodeFileVersion);
  Put(&w.buffer_, num_dense);
  Put(&w.buffer_, num_sparse);
  Put(&w.buffer_, uint32_t{0});
  w.offset_ = w.buffer_.size();
  return w;
}

EpisodeFileWriter::EpisodeFileWriter(EpisodeFileWriter&& other) noexcept {
  *this = std::move(other);
}

EpisodeFileWriter& EpisodeFileWriter::operator=(EpisodeFileWriter&& other) noexcept {
  if (this != &other) {
    Abandon();
    path_ = std::move(other.path_);
    tmp_path_ = std::move(other.tmp_path_);
    fd_ = other.fd_;
    finished_ = other.finished_;
    num_dense_ = other.num_dense_;
    num_sparse_ = other.num_sparse_;
    offset_ = other.offset_;
    buffer_ = std::move(other.buffer_);
    index_ = std::move(other.index_);
    other.fd_ = -1;
    other.tmp_path_.clear();
  }
  return *this;
}

EpisodeFileWriter::~EpisodeFileWriter() { Abandon(); }

void EpisodeFileWriter::Abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  tmp_path_.clear();
}

Status EpisodeFileWriter::Flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t r = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("writing " + tmp_path_ + " (for " + path_ + "): " + Errno(errno));
    }
    done += static_cast<size_t>(r);
  }
  buffer_.clear();
  return Status::Ok();
}

Status EpisodeFileWriter::Append(const Episode& e) {
  if (finished_ || fd_ < 0) {
    return Status::FailedPrecondition("episode file " + path_ + ": Append after Finish");
  }
  auto what = [&] {
    return "episode file " + path_ + ": episode " + std::to_string(index_.size()) + " (task " +
           SafeText(e.task_id, 80) + ")";
  };
  if (e.num_dense != num_dense_ || e.num_sparse != num_sparse_) {
    return Status::InvalidArgument(what() + ": has " + std::to_string(e.num_dense) + " dense and " +
                                   std::to_string(e.num_sparse) + " sparse columns, the file " +
                                   std::to_string(num_dense_) + " and " +
                                   std::to_string(num_sparse_));
  }
  const size_t rows = e.rows();
  if (e.dense.size() != rows * num_dense_ || e.sparse.size() != rows * num_sparse_ ||
      e.labels.size() != rows) {
    return Status::InvalidArgument(what() + ": arrays do not hold " + std::to_string(rows) +
                                   " rows (dense " + std::to_string(e.dense.size()) + ", sparse " +
                                   std::to_string(e.sparse.size()) + ", labels " +
                                   std::to_string(e.labels.size()) + " values)");
  }
  if (e.task_id.size() > std::numeric_limits<uint32_t>::max()) {
    return Status::InvalidArgument(what() + ": task id longer than 4 GiB");
  }
  uint64_t bytes = 0;
  if (!RecordBytes(e.task_id.size(), e.num_support, e.num_query, num_dense_, num_sparse_, &bytes)) {
    return Status::InvalidArgument(what() + ": too large");
  }
  const size_t start = buffer_.size();
  buffer_.reserve(start + bytes);
  Put(&buffer_, static_cast<uint32_t>(e.task_id.size()));
  buffer_.append(e.task_id);
  Put(&buffer_, e.num_support);
  Put(&buffer_, e.num_query);
  buffer_.append(reinterpret_cast<const char*>(e.dense.data()), e.dense.size() * sizeof(float));
  buffer_.append(reinterpret_cast<const char*>(e.sparse.data()), e.sparse.size() * sizeof(int64_t));
  buffer_.append(reinterpret_cast<const char*>(e.labels.data()), e.labels.size() * sizeof(float));
  Put(&buffer_, XXH3_64bits(buffer_.data() + start, buffer_.size() - start));
  index_.push_back({offset_, bytes, e.num_support, e.num_query, e.task_id});
  offset_ += bytes;
  if (buffer_.size() >= kFlushBytes) return Flush();
  return Status::Ok();
}

Status EpisodeFileWriter::Finish() {
  if (finished_ || fd_ < 0) {
    return Status::FailedPrecondition("episode file " + path_ + ": Finish called twice");
  }
  BATON_RETURN_IF_ERROR(Flush());
  const uint64_t index_offset = offset_;
  for (const EpisodeIndexEntry& x : index_) {
    Put(&buffer_, x.offset);
    Put(&buffer_, x.bytes);
    Put(&buffer_, x.num_support);
    Put(&buffer_, x.num_query);
    Put(&buffer_, static_cast<uint32_t>(x.task_id.size()));
    buffer_.append(x.task_id);
  }
  const uint64_t index_checksum = XXH3_64bits(buffer_.data(), buffer_.size());
  Put(&buffer_, index_offset);
  Put(&buffer_, static_cast<uint64_t>(index_.size()));
  Put(&buffer_, index_checksum);
  Put(&buffer_, kMagic);
  BATON_RETURN_IF_ERROR(Flush());
  if (::fsync(fd_) != 0) return Status::IoError("fsync " + tmp_path_ + ": " + Errno(errno));
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::IoError("close " + tmp_path_ + ": " + Errno(errno));
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return Status::IoError("rename " + tmp_path_ + " to " + path_ + ": " + Errno(errno));
  }
  finished_ = true;
  tmp_path_.clear();
  std::string dir = std::filesystem::path(path_).parent_path().string();
  return SyncDirectory(dir.empty() ? "." : dir);
}

// ---- EpisodeFile ----

Result<EpisodeFile> EpisodeFile::Open(const std::string& path) {
  EpisodeFile f;
  f.path_ = path;
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd_ < 0) {
    if (errno == ENOENT) return Status::NotFound("episode file " + path + ": does not exist");
    return Status::IoError("episode file " + path + ": cannot open: " + Errno(errno));
  }
  const std::string what = "episode file " + path;
  struct stat st;
  if (::fstat(f.fd_, &st) != 0) return Status::IoError(what + ": stat: " + Errno(errno));
  if (!S_ISREG(st.st_mode)) return Status::IoError(what + ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kHeaderBytes + kFooterBytes) {
    return Status::IoError(what + ": truncated or not an episode file: " + std::to_string(size) +
                           " bytes, less than a header and footer (" +
                           std::to_string(kHeaderBytes + kFooterBytes) + ")");
  }

  char header[kHeaderBytes];
  BATON_RETURN_IF_ERROR(PreadAll(f.fd_, header, sizeof(header), 0, what));
  Cursor h(header, sizeof(header));
  uint64_t magic = 0;
  uint32_t version = 0, reserved = 0;
  (void)h.Get(&magic);
  (void)h.Get(&version);
  (void)h.Get(&f.num_dense_);
  (void)h.Get(&f.num_sparse_);
  (void)h.Get(&reserved);
  if (magic != kMagic) return Status::IoError(what + ": not a baton episode file (bad magic)");
  if (version != kEpisodeFileVersion) {
    return Status::IoError(what + ": format version " + std::to_string(version) +
                           ", this baton reads version " + std::to_string(kEpisodeFileVersion));
  }
  if (reserved != 0) return Status::IoError(what + ": corrupt header (reserved field is not 0)");

  char footer[kFooterBytes];
  BATON_RETURN_IF_ERROR(PreadAll(f.fd_, footer, sizeof(footer), size - kFooterBytes, what));
  Cursor t(footer, sizeof(footer));
  uint64_t index_offset = 0, count = 0, index_checksum = 0, end_magic = 0;
  (void)t.Get(&index_offset);
  (void)t.Get(&count);
  (void)t.Get(&index_checksum);
  (void)t.Get(&end_magic);
  if (end_magic != kMagic) {
    return Status::IoError(what + ": truncated or corrupt: no footer at the end of its " +
                           std::to_string(size) +
                           " bytes (was the file cut short, or its writer stopped before Finish?)");
  }
  if (index_offset < kHeaderBytes || index_offset > size - kFooterBytes) {
    return Status::IoError(what + ": corrupt footer: index offset " + std::to_string(index_offset) +
                           " outside the file's " + std::to_string(size) + " bytes");
  }
  const uint64_t index_bytes = size - kFooterBytes - index_offset;
  if (count > index_bytes / kMinIndexEntryBytes) {
    return Status::IoError(what + ": corrupt footer: " + std::to_string(count) +
                           " episodes cannot fit in an index of " + std::to_string(index_bytes) +
                           " bytes");
  }
  std::string index(index_bytes, '\0');
  BATON_RETURN_IF_ERROR(PreadAll(f.fd_, index.data(), index.size(), index_offset, what));
  if (XXH3_64bits(index.data(), index.size()) != index_checksum) {
    return Status::IoError(what + ": index checksum mismatch (the file is corrupt)");
  }

  Cursor c(index.data(), index.size());
  f.index_.resize(count);
  uint64_t expected_offset = kHeaderBytes;
  for (uint64_t i = 0; i < count; ++i) {
    EpisodeIndexEntry& x = f.index_[i];
    uint32_t id_bytes = 0;
    if (!c.Get(&x.offset) || !c.Get(&x.bytes) || !c.Get(&x.num_support) || !c.Get(&x.num_query) ||
        !c.Get(&id_bytes) || !c.GetBytes(id_bytes, &x.task_id)) {
      return Status::IoError(what + ": corrupt index: entry " + std::to_string(i) + " of " +
                             std::to_string(count) + " runs past its end");
    }
    uint64_t bytes = 0;
    if (x.offset != expected_offset ||
        !RecordBytes(id_bytes, x.num_support, x.num_query, f.num_dense_, f.num_sparse_, &bytes) ||
        bytes != x.bytes || x.bytes > index_offset - x.offset) {
      return Status::IoError(what + ": corrupt index: episode " + std::to_string(i) + " (offset " +
                             std::to_string(x.offset) + ", " + std::to_string(x.bytes) +
                             " bytes) does not fit the records");
    }
    expected_offset += x.bytes;
  }
  if (c.left() != 0 || expected_offset != index_offset) {
    return Status::IoError(what + ": corrupt index: it does not describe the records exactly");
  }
  return f;
}

EpisodeFile::EpisodeFile(EpisodeFile&& other) noexcept { *this = std::move(other); }

EpisodeFile& EpisodeFile::operator=(EpisodeFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    num_dense_ = other.num_dense_;
    num_sparse_ = other.num_sparse_;
    index_ = std::move(other.index_);
    other.fd_ = -1;
  }
  return *this;
}

EpisodeFile::~EpisodeFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Episode> EpisodeFile::Read(size_t i) const {
  if (i >= index_.size()) {
    return Status::InvalidArgument("episode file " + path_ + ": episode " + std::to_string(i) +
                                   " out of range (" + std::to_string(index_.size()) +
                                   " episodes)");
  }
  const EpisodeIndexEntry& x = index_[i];
  const std::string what = "episode file " + path_ + ": episode " + std::to_string(i);
  std::string record(x.bytes, '\0');
  BATON_RETURN_IF_ERROR(PreadAll(fd_, record.data(), record.size(), x.offset, what));
  uint64_t stored = 0;
  std::memcpy(&stored, record.data() + record.size() - sizeof(stored), sizeof(stored));
  if (XXH3_64bits(record.data(), record.size() - sizeof(stored)) != stored) {
    return Status::IoError(what + ": checksum mismatch (the record is corrupt)");
  }
  Episode e;
  e.num_dense = num_dense_;
  e.num_sparse = num_sparse_;
  Cursor c(record.data(), record.size() - sizeof(stored));
  uint32_t id_bytes = 0;
  bool ok = c.Get(&id_bytes) && c.GetBytes(id_bytes, &e.task_id) && c.Get(&e.num_support) &&
            c.Get(&e.num_query) && e.task_id == x.task_id && e.num_support == x.num_support &&
            e.num_query == x.num_query && c.GetArray(e.rows() * num_dense_, &e.dense) &&
            c.GetArray(e.rows() * num_sparse_, &e.sparse) && c.GetArray(e.rows(), &e.labels) &&
            c.left() == 0;
  if (!ok) return Status::IoError(what + ": the record does not match its index entry");
  // What prepare writes, and what the trainer relies on (a written file's checksum matches
  // whatever bytes its writer chose).
  for (int64_t id : e.sparse) {
    if (id < 0) return Status::IoError(what + ": a negative sparse id");
  }
  for (float label : e.labels) {
    if (label != 0.0f && label != 1.0f) return Status::IoError(what + ": a label other than 0/1");
  }
  return e;
}

}  // namespace baton::meta
