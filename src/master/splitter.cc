#include "master/splitter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace baton::master {

LineFileSplitter::LineFileSplitter(std::vector<std::string> files, uint32_t records_per_shard,
                                   bool skip_header)
    : files_(std::move(files)), records_per_shard_(records_per_shard), skip_header_(skip_header) {}

Result<std::vector<RecordRange>> LineFileSplitter::Split() {
  std::vector<RecordRange> out;
  std::vector<char> buf(1 << 20);
  for (uint32_t fi = 0; fi < files_.size(); ++fi) {
    int fd = ::open(files_[fi].c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Status::NotFound("input file " + files_[fi] + ": " + std::strerror(errno));
    }
    // One pass with memchr: the cost is reading the file once at job creation.
    uint64_t offset = 0;       // bytes consumed so far
    uint64_t line_index = 0;   // lines seen so far (including a skipped header)
    uint64_t shard_begin = 0;  // byte where the current shard starts
    uint64_t shard_first = 0;  // record index of its first record
    uint32_t in_shard = 0;
    bool open_line = false;  // bytes after the last newline
    auto close_shard = [&](uint64_t end) {
      out.push_back(RecordRange{fi, shard_begin, end, shard_first, in_shard});
      shard_begin = end;
      shard_first += in_shard;
      in_shard = 0;
    };
    while (true) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        Status s = Status::IoError("read " + files_[fi] + ": " + std::strerror(errno));
        ::close(fd);
        return s;
      }
      if (n == 0) break;
      const char* p = buf.data();
      const char* end = p + n;
      while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
        if (nl == nullptr) {
          open_line = true;
          break;
        }
        uint64_t line_end = offset + static_cast<uint64_t>(nl - buf.data()) + 1;
        open_line = false;
        if (skip_header_ && line_index == 0) {
          shard_begin = line_end;  // the header belongs to no shard
        } else {
          ++in_shard;
          if (in_shard == records_per_shard_) close_shard(line_end);
        }
        ++line_index;
        p = nl + 1;
      }
      offset += static_cast<uint64_t>(n);
    }
    ::close(fd);
    if (open_line && !(skip_header_ && line_index == 0)) ++in_shard;
    if (in_shard > 0) close_shard(offset);
  }
  return out;
}

}  // namespace baton::master
