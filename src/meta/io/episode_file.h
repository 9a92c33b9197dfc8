// An indexed binary file of meta-learning episodes (Meta-IO, docs/meta.md): written once by
// `baton meta prepare` (prepare.h), then read by episode index in any order and from any number of
// threads. The index at the end lets a reader find, shuffle and shard episodes without touching
// their rows.
//
// Format, version 1. Every integer and float is little-endian, with no padding anywhere.
//
//   header   (24 bytes)  u64 magic "BATNMETA" | u32 version (1) | u32 num_dense | u32 num_sparse
//                        | u32 reserved (0)
//   records  one per episode, back to back, in the order they were appended:
//              u32 task_id_bytes | task_id (UTF-8, not NUL-terminated)
//              u32 num_support | u32 num_query
//              f32 dense[rows × num_dense]    row-major, support rows first, then query rows
//              i64 sparse[rows × num_sparse]  same row order
//              f32 labels[rows]               same row order
//              u64 checksum                   XXH3-64 (seed 0) of every byte of the record before
//              it
//            where rows = num_support + num_query.
//   index    one entry per episode, in record order:
//              u64 offset (of the record) | u64 bytes (of the record, checksum included)
//              | u32 num_support | u32 num_query | u32 task_id_bytes | task_id
//   footer   (32 bytes)  u64 index_offset | u64 episode_count | u64 index_checksum (XXH3-64 of the
//                        index bytes) | u64 magic "BATNMETA"
//
// The writer writes to a temporary file beside the target (TARGET.tmp.XXXXXX), fsyncs it and
// renames it over TARGET at Finish, so a crash never leaves a partial file under the final name.
// Open checks the header, the footer, the index checksum and that every record lies inside the
// file with the size its index entry implies; Read checks the record's checksum.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "meta/io/episode.h"

namespace baton::meta {

inline constexpr uint32_t kEpisodeFileVersion = 1;

// One episode's entry in a file's index (the writer builds it, the reader loads it).
struct EpisodeIndexEntry {
  uint64_t offset;
  uint64_t bytes;
  uint32_t num_support;
  uint32_t num_query;
  std::string task_id;
};

// Writes an episode file. Not thread-safe; one writer per file.
class EpisodeFileWriter {
 public:
  // Creates the temporary file beside `path`; every episode must have `num_dense` and
  // `num_sparse` columns. Fails if the directory is not writable.
  static Result<EpisodeFileWriter> Open(const std::string& path, uint32_t num_dense,
                                        uint32_t num_sparse);

  EpisodeFileWriter(EpisodeFileWriter&& other) noexcept;
  EpisodeFileWriter& operator=(EpisodeFileWriter&& other) noexcept;
  EpisodeFileWriter(const EpisodeFileWriter&) = delete;
  EpisodeFileWriter& operator=(const EpisodeFileWriter&) = delete;
  // Without a successful Finish, removes the temporary file; the target is left as it was.
  ~EpisodeFileWriter();

  // Appends one episode. InvalidArgument if its shape does not match the file's columns or its
  // arrays do not hold rows() rows; nothing is written then.
  Status Append(const Episode& episode);
  // Writes the index and footer, fsyncs, renames over the target and fsyncs the directory.
  // After it, Append and Finish fail with FailedPrecondition.
  Status Finish();

  size_t size() const { return index_.size(); }
  const std::string& path() const { return path_; }

 private:
  EpisodeFileWriter() = default;
  Status Flush();
  void Abandon();

  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool finished_ = false;
  uint32_t num_dense_ = 0;
  uint32_t num_sparse_ = 0;
  uint64_t offset_ = 0;  // bytes written so far, buffer included
  std::string buffer_;
  std::vector<EpisodeIndexEntry> index_;
};

// A read-only episode file. Read is thread-safe (pread on one descriptor); the index accessors
// are plain lookups. Movable, not copyable; share it with std::shared_ptr.
class EpisodeFile {
 public:
  // Opens and validates `path`: a missing, truncated or corrupt file is an error naming the file
  // and what is wrong (IoError; NotFound when the file does not exist).
  static Result<EpisodeFile> Open(const std::string& path);

  EpisodeFile(EpisodeFile&& other) noexcept;
  EpisodeFile& operator=(EpisodeFile&& other) noexcept;
  EpisodeFile(const EpisodeFile&) = delete;
  EpisodeFile& operator=(const EpisodeFile&) = delete;
  ~EpisodeFile();

  size_t size() const { return index_.size(); }
  uint32_t num_dense() const { return num_dense_; }
  uint32_t num_sparse() const { return num_sparse_; }
  const std::string& path() const { return path_; }

  // Index lookups (no I/O); `i` < size().
  const std::string& task_id(size_t i) const { return index_[i].task_id; }
  uint32_t num_support(size_t i) const { return index_[i].num_support; }
  uint32_t num_query(size_t i) const { return index_[i].num_query; }
  size_t rows(size_t i) const { return size_t{index_[i].num_support} + index_[i].num_query; }
  // Bytes of episode i's record on disk.
  uint64_t record_bytes(size_t i) const { return index_[i].bytes; }

  // Reads episode `i`: InvalidArgument when i >= size(), IoError naming the file and the
  // episode when the read fails or the record's checksum or contents do not match its index.
  Result<Episode> Read(size_t i) const;

 private:
  EpisodeFile() = default;

  std::string path_;
  int fd_ = -1;
  uint32_t num_dense_ = 0;
  uint32_t num_sparse_ = 0;
  std::vector<EpisodeIndexEntry> index_;
};

}  // namespace baton::meta
