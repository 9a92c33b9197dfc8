// Meta-IO: the episode file (round trip, truncation, corruption), the prefetcher, `prepare`
// (CSV and JSONL, bad rows, splits, caps, order) and the real `baton meta` command.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "meta/io/episode_file.h"
#include "meta/io/prefetcher.h"
#include "meta/io/prepare.h"

namespace baton::meta {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "meta_io_test.XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

Episode MakeEpisode(const std::string& task, uint32_t support, uint32_t query, uint32_t nd,
                    uint32_t ns, int salt) {
  Episode e;
  e.task_id = task;
  e.num_support = support;
  e.num_query = query;
  e.num_dense = nd;
  e.num_sparse = ns;
  for (size_t i = 0; i < e.rows() * nd; ++i)
    e.dense.push_back(0.25f * static_cast<float>(i + salt));
  for (size_t i = 0; i < e.rows() * ns; ++i)
    e.sparse.push_back(static_cast<int64_t>((uint64_t{1} << 40) | (i * 7 + salt)));
  for (size_t i = 0; i < e.rows(); ++i) e.labels.push_back(static_cast<float>((i + salt) % 2));
  return e;
}

void ExpectSame(const Episode& a, const Episode& b) {
  EXPECT_EQ(a.task_id, b.task_id);
  EXPECT_EQ(a.num_support, b.num_support);
  EXPECT_EQ(a.num_query, b.num_query);
  EXPECT_EQ(a.num_dense, b.num_dense);
  EXPECT_EQ(a.num_sparse, b.num_sparse);
  EXPECT_EQ(a.dense, b.dense);
  EXPECT_EQ(a.sparse, b.sparse);
  EXPECT_EQ(a.labels, b.labels);
}

std::vector<Episode> SampleEpisodes() {
  return {MakeEpisode("user-1", 3, 2, 2, 3, 1), MakeEpisode("user-ü", 1, 1, 2, 3, 2),
          MakeEpisode("", 5, 7, 2, 3, 3), MakeEpisode("user-4", 0, 0, 2, 3, 4)};
}

std::string WriteSample(const TempDir& dir, const std::vector<Episode>& episodes) {
  const std::string path = dir / "sample.episodes";
  auto w = EpisodeFileWriter::Open(path, 2, 3);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  for (const Episode& e : episodes) EXPECT_TRUE(w->Append(e).ok());
  EXPECT_TRUE(w->Finish().ok());
  return path;
}

std::shared_ptr<EpisodeFile> OpenShared(const std::string& path) {
  auto f = EpisodeFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return std::make_shared<EpisodeFile>(std::move(f).value());
}

size_t FilesIn(const std::string& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// ---- Episode file ----

TEST(EpisodeFileTest, RoundTrip) {
  TempDir dir;
  const std::vector<Episode> episodes = SampleEpisodes();
  const std::string path = WriteSample(dir, episodes);
  EXPECT_EQ(FilesIn(dir.path), 1u);  // no temporary file left beside it

  auto f = EpisodeFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->size(), episodes.size());
  EXPECT_EQ(f->num_dense(), 2u);
  EXPECT_EQ(f->num_sparse(), 3u);
  for (size_t i = 0; i < episodes.size(); ++i) {
    EXPECT_EQ(f->task_id(i), episodes[i].task_id);
    EXPECT_EQ(f->num_support(i), episodes[i].num_support);
    EXPECT_EQ(f->num_query(i), episodes[i].num_query);
  }
  for (size_t i : {2, 0, 3, 1}) {  // any order
    auto e = f->Read(i);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ExpectSame(*e, episodes[i]);
  }
}

TEST(EpisodeFileTest, EmptyFileAndNoColumns) {
  TempDir dir;
  {
    auto w = EpisodeFileWriter::Open(dir / "empty", 0, 0);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Finish().ok());
    EXPECT_EQ(w->Finish().code(), StatusCode::kFailedPrecondition);
  }
  auto f = EpisodeFile::Open(dir / "empty");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->size(), 0u);
}

TEST(EpisodeFileTest, UnfinishedWriterLeavesNothing) {
  TempDir dir;
  {
    auto w = EpisodeFileWriter::Open(dir / "x.episodes", 2, 3);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Append(MakeEpisode("a", 1, 1, 2, 3, 0)).ok());
  }
  EXPECT_EQ(FilesIn(dir.path), 0u);
}

TEST(EpisodeFileTest, AppendRejectsWrongShape) {
  TempDir dir;
  auto w = EpisodeFileWriter::Open(dir / "x.episodes", 2, 3);
  ASSERT_TRUE(w.ok());
  Status s = w->Append(MakeEpisode("a", 1, 1, 1, 3, 0));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  Episode e = MakeEpisode("b", 1, 1, 2, 3, 0);
  e.labels.pop_back();
  s = w->Append(e);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("task b"), std::string::npos) << s.message();
  EXPECT_EQ(w->size(), 0u);
}

TEST(EpisodeFileTest, MissingFile) {
  TempDir dir;
  auto f = EpisodeFile::Open(dir / "nope");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_NE(f.status().message().find(dir / "nope"), std::string::npos);
}

TEST(EpisodeFileTest, TruncatedFileIsAClearError) {
  TempDir dir;
  const std::string path = WriteSample(dir, SampleEpisodes());
  const std::string bytes = ReadText(path);
  for (size_t keep :
       {bytes.size() - 1, bytes.size() - 40, bytes.size() / 2, size_t{30}, size_t{0}}) {
    WriteText(path, bytes.substr(0, keep));
    auto f = EpisodeFile::Open(path);
    ASSERT_FALSE(f.ok()) << "kept " << keep;
    EXPECT_EQ(f.status().code(), StatusCode::kIoError);
    EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
    EXPECT_NE(f.status().message().find("truncated"), std::string::npos) << f.status().message();
  }
}

TEST(EpisodeFileTest, FlippedByteInARecordFailsItsRead) {
  TempDir dir;
  const std::string path = WriteSample(dir, SampleEpisodes());
  size_t offset;
  {
    auto f = EpisodeFile::Open(path);
    ASSERT_TRUE(f.ok());
    offset = 24 + f->record_bytes(0) + 20;  // inside episode 1's rows
  }
  std::string bytes = ReadText(path);
  bytes[offset] ^= 0x10;
  WriteText(path, bytes);
  auto f = EpisodeFile::Open(path);  // the index is intact
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->Read(0).ok());
  auto e = f->Read(1);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kIoError);
  EXPECT_NE(e.status().message().find(path), std::string::npos);
  EXPECT_NE(e.status().message().find("episode 1"), std::string::npos) << e.status().message();
  EXPECT_NE(e.status().message().find("checksum"), std::string::npos) << e.status().message();
  EXPECT_TRUE(f->Read(2).ok());
}

TEST(EpisodeFileTest, FlippedByteInHeaderIndexOrFooterFailsOpen) {
  TempDir dir;
  const std::string path = WriteSample(dir, SampleEpisodes());
  const std::string good = ReadText(path);
  struct Case {
    size_t offset;
    const char* expect;
  };
  for (const Case& c :
       {Case{0, "bad magic"}, Case{8, "version"}, Case{12, "index"},
        Case{good.size() - 40, "index checksum"}, Case{good.size() - 30, "corrupt footer"},
        Case{good.size() - 1, "truncated or corrupt"}}) {
    std::string bytes = good;
    bytes[c.offset] ^= 0x01;
    WriteText(path, bytes);
    auto f = EpisodeFile::Open(path);
    ASSERT_FALSE(f.ok()) << "offset " << c.offset;
    EXPECT_NE(f.status().message().find(path), std::string::npos);
    EXPECT_NE(f.status().message().find(c.expect), std::string::npos)
        << "offset " << c.offset << ": " << f.status().message();
  }
}

TEST(EpisodeFileTest, ReadOutOfRange) {
  TempDir dir;
  const std::string path = WriteSample(dir, SampleEpisodes());
  auto f = EpisodeFile::Open(path);
  ASSERT_TRUE(f.ok());
  auto e = f->Read(4);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("out of range"), std::string::npos);
}

TEST(EpisodeFileTest, NotAnEpisodeFile) {
  TempDir dir;
  WriteText(dir / "text", std::string(100, 'x'));
  auto f = EpisodeFile::Open(dir / "text");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("bad magic"), std::string::npos);
}

// ---- Prefetcher ----

TEST(PrefetcherTest, YieldsEveryEpisodeInOrder) {
  TempDir dir;
  std::vector<Episode> episodes;
  for (int i = 0; i < 20; ++i)
    episodes.push_back(MakeEpisode("t" + std::to_string(i), 2, 3, 2, 3, i));
  auto file = OpenShared(WriteSample(dir, episodes));
  std::vector<size_t> order = {5, 3, 19, 0, 0, 7, 12, 1};
  for (size_t depth : {1, 4, 64}) {
    EpisodePrefetcher p(file, order, depth);
    for (size_t i : order) {
      auto e = p.Next();
      ASSERT_TRUE(e.ok()) << e.status().ToString();
      ASSERT_TRUE(e->has_value());
      ExpectSame(**e, episodes[i]);
    }
    for (int k = 0; k < 2; ++k) {
      auto end = p.Next();
      ASSERT_TRUE(end.ok());
      EXPECT_FALSE(end->has_value());
    }
    EXPECT_EQ(p.taken(), order.size());
    EXPECT_GE(p.waited_seconds(), 0.0);
  }
}

TEST(PrefetcherTest, ReportsAReadErrorAtItsPosition) {
  TempDir dir;
  auto file = OpenShared(WriteSample(dir, SampleEpisodes()));
  EpisodePrefetcher p(file, {0, 1, 99, 2});
  EXPECT_TRUE(p.Next().ok());
  EXPECT_TRUE(p.Next().ok());
  for (int k = 0; k < 2; ++k) {
    auto e = p.Next();
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find("episode 99"), std::string::npos);
  }
}

TEST(PrefetcherTest, StopsCleanlyWhenDroppedEarly) {
  TempDir dir;
  auto file = OpenShared(WriteSample(dir, SampleEpisodes()));
  std::vector<size_t> many(1000, 2);
  { EpisodePrefetcher p(file, many, 2); }
  {
    EpisodePrefetcher p(file, many, 2);
    EXPECT_TRUE(p.Next().ok());
  }
  { EpisodePrefetcher p(file, {}); }
}

// ---- Prepare ----

class PrepareTest : public ::testing::Test {
 protected:
  PrepareOptions Options(const std::vector<std::string>& inputs) {
    PrepareOptions o;
    o.inputs = inputs;
    o.output = dir_ / "out.episodes";
    o.task_key = "user";
    o.label = "clicked";
    o.dense = {"price"};
    o.sparse = {"item", "shop"};
    return o;
  }
  std::vector<Episode> ReadAll(const std::string& path) {
    auto f = EpisodeFile::Open(path);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    std::vector<Episode> out;
    if (!f.ok()) return out;
    for (size_t i = 0; i < f->size(); ++i) out.push_back(*f->Read(i));
    return out;
  }
  TempDir dir_;
};

TEST_F(PrepareTest, CsvWithGoodAndBadRows) {
  const std::string csv = dir_ / "rows.csv";
  WriteText(csv,
            "user,item,shop,price,clicked\n"  // 1
            "u1,a,s1,1.5,1\n"                 // 2
            "u1,b,s1,2.5,0\n"                 // 3
            "u1,c,s2,x,1\n"                   // 4 bad number
            "u2,a,s1,1.0,2\n"                 // 5 label 2
            "u2,\xff\xfe,s1,1.0,0\n"          // 6 not UTF-8
            "u2,a,s1,1.0\n"                   // 7 wrong field count
            "\n"                              // 8 blank: not a row
            "u2,\"b,1\",s1,2.0,true\r\n"      // 9 quoted comma, CRLF
            "u2,c,s2, 3.0 ,FALSE\n"           // 10
            "u3,a,s1,1.0,1\n");               // 11 a task of one row: skipped
  PrepareOptions o = Options({csv});
  auto r = Prepare(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows_read, 9u);
  EXPECT_EQ(r->bad_rows, 4u);
  EXPECT_EQ(r->tasks_written, 2u);
  EXPECT_EQ(r->tasks_skipped, 1u);
  EXPECT_EQ(r->rows_skipped, 1u);
  EXPECT_EQ(r->support_rows, 2u);
  EXPECT_EQ(r->query_rows, 2u);
  EXPECT_EQ(r->errors_path, o.output + ".errors.jsonl");

  const std::vector<std::string> errors = Lines(r->errors_path);
  ASSERT_EQ(errors.size(), 4u);
  const std::vector<std::pair<int, std::string>> expect = {
      {4, "column price"}, {5, "must be 0 or 1"}, {6, "UTF-8"}, {7, "expected 5 fields"}};
  for (size_t i = 0; i < errors.size(); ++i) {
    auto j = nlohmann::json::parse(errors[i]);
    EXPECT_EQ(j["file"], csv);
    EXPECT_EQ(j["line"], expect[i].first);
    EXPECT_NE(j["error"].get<std::string>().find(expect[i].second), std::string::npos) << errors[i];
  }
  EXPECT_EQ(errors[0].rfind("{\"file\":", 0), 0u);  // keys in the documented order

  const std::vector<Episode> eps = ReadAll(o.output);
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].task_id, "u1");  // sorted by task id
  EXPECT_EQ(eps[0].num_support, 1u);
  EXPECT_EQ(eps[0].num_query, 1u);
  EXPECT_EQ(eps[0].dense, (std::vector<float>{1.5f, 2.5f}));
  EXPECT_EQ(eps[0].labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(eps[0].sparse, (std::vector<int64_t>{SparseId(0, "a"), SparseId(1, "s1"),
                                                 SparseId(0, "b"), SparseId(1, "s1")}));
  EXPECT_EQ(eps[1].task_id, "u2");
  EXPECT_EQ(eps[1].dense, (std::vector<float>{2.0f, 3.0f}));
  EXPECT_EQ(eps[1].labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(eps[1].sparse[0], SparseId(0, "b,1"));
  // The index a kind: meta job takes as input: one line per episode, in file order.
  EXPECT_EQ(r->index_path, o.output + ".index.csv");
  EXPECT_EQ(Lines(r->index_path), (std::vector<std::string>{"episode,task", "0,u1", "1,u2"}));
  EXPECT_EQ(FilesIn(dir_.path), 4u);  // input, output, errors, index: no temporary files
}

// Task ids with commas or quotes are quoted in the index (RFC 4180), so it stays a CSV.
TEST_F(PrepareTest, TheIndexQuotesTaskIdsThatNeedIt) {
  const std::string csv = dir_ / "rows.csv";
  WriteText(csv,
            "user,item,shop,price,clicked\n"
            "\"a,b\",x,s,1.0,1\n\"a,b\",y,s,2.0,0\n"
            "\"say \"\"hi\"\"\",x,s,1.0,1\n\"say \"\"hi\"\"\",y,s,2.0,0\n");
  auto r = Prepare(Options({csv}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Lines(r->index_path),
            (std::vector<std::string>{"episode,task", "0,\"a,b\"", "1,\"say \"\"hi\"\"\""}));
}

TEST_F(PrepareTest, SparseIdsAreNonNegativeAndSaltedByField) {
  EXPECT_GE(SparseId(0, "a"), 0);
  EXPECT_NE(SparseId(0, "a"), SparseId(1, "a"));
  EXPECT_EQ(SparseId(3, "x"), SparseId(3, "x"));
  for (int i = 0; i < 1000; ++i) EXPECT_GE(SparseId(2, std::to_string(i)), 0);
}

TEST_F(PrepareTest, OrderBySplitsOlderRowsIntoSupport) {
  const std::string csv = dir_ / "rows.csv";
  // Timestamps out of order; two rows tie at 30 (file order kept).
  WriteText(csv,
            "user,item,shop,price,clicked,ts\n"
            "u,a,s,50,0,50\n"
            "u,a,s,10,0,10\n"
            "u,a,s,31,0,30\n"
            "u,a,s,20,0,20\n"
            "u,a,s,32,0,30\n");
  PrepareOptions o = Options({csv});
  o.order_by = "ts";
  o.support_fraction = 0.6;  // floor(5 * 0.6) = 3
  auto r = Prepare(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::vector<Episode> eps = ReadAll(o.output);
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].num_support, 3u);
  EXPECT_EQ(eps[0].num_query, 2u);
  EXPECT_EQ(eps[0].dense, (std::vector<float>{10, 20, 31, 32, 50}));

  // Without order_by: file order.
  o.order_by.clear();
  ASSERT_TRUE(Prepare(o).ok());
  EXPECT_EQ(ReadAll(o.output)[0].dense, (std::vector<float>{50, 10, 31, 20, 32}));

  // The support size is clamped to at least one row.
  o.support_fraction = 0.1;  // floor(0.5) = 0 -> 1
  ASSERT_TRUE(Prepare(o).ok());
  EXPECT_EQ(ReadAll(o.output)[0].num_support, 1u);
  EXPECT_EQ(ReadAll(o.output)[0].num_query, 4u);
}

TEST_F(PrepareTest, BadOrderByValueIsABadRow) {
  const std::string csv = dir_ / "rows.csv";
  WriteText(csv, "user,item,shop,price,clicked,ts\nu,a,s,1,0,1\nu,a,s,1,0,nan\nu,a,s,1,0,3\n");
  PrepareOptions o = Options({csv});
  o.order_by = "ts";
  auto r = Prepare(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bad_rows, 1u);
  EXPECT_EQ(r->tasks_written, 1u);
}

TEST_F(PrepareTest, MinRowsSkipsSmallTasks) {
  const std::string csv = dir_ / "rows.csv";
  WriteText(csv,
            "user,item,shop,price,clicked\n"
            "a,x,s,1,0\na,x,s,1,1\na,x,s,1,0\n"
            "b,x,s,1,0\nb,x,s,1,1\n"
            "c,x,s,1,0\n");
  PrepareOptions o = Options({csv});
  o.min_rows = 3;
  auto r = Prepare(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tasks_written, 1u);
  EXPECT_EQ(r->tasks_skipped, 2u);
  EXPECT_EQ(r->rows_skipped, 3u);
  const std::vector<Episode> eps = ReadAll(o.output);
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].task_id, "a");
  EXPECT_EQ(eps[0].num_support, 1u);  // floor(1.5)
  EXPECT_EQ(eps[0].num_query, 2u);
}

TEST_F(PrepareTest, CapsKeepTheRowsNextToTheBoundary) {
  const std::string csv = dir_ / "rows.csv";
  std::string text = "user,item,shop,price,clicked,ts\n";
  for (int ts : {9, 3, 0, 7, 1, 5, 8, 2, 6, 4}) {
    text += "u,x,s," + std::to_string(ts) + ",0," + std::to_string(ts) + "\n";
  }
  WriteText(csv, text);
  PrepareOptions o = Options({csv});
  o.order_by = "ts";
  o.max_support = 2;
  o.max_query = 3;
  auto r = Prepare(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows_capped, 5u);
  EXPECT_EQ(r->support_rows, 2u);
  EXPECT_EQ(r->query_rows, 3u);
  const std::vector<Episode> eps = ReadAll(o.output);
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].num_support, 2u);
  EXPECT_EQ(eps[0].num_query, 3u);
  EXPECT_EQ(eps[0].dense, (std::vector<float>{3, 4, 5, 6, 7}));
}

TEST_F(PrepareTest, JsonlInput) {
  const std::string jsonl = dir_ / "rows.jsonl";
  WriteText(
      jsonl,
      "{\"user\": \"u1\", \"item\": \"a\", \"shop\": 7, \"price\": 1.5, \"clicked\": true}\n"
      "{\"user\": \"u1\", \"item\": null, \"shop\": 7, \"price\": \"2.5\", \"clicked\": 0}\n"
      "{\"user\": \"u1\", \"item\": \"a\", \"shop\": 7, \"price\": 1, \"clicked\": \"2\"}\n"
      "not json\n"
      "{\"user\": \"u1\", \"item\": \"a\", \"shop\": 7, \"clicked\": 1}\n"
      "{\"user\": 42, \"item\": \"a\", \"shop\": \"7\", \"price\": 3, \"clicked\": 1.0}\n"
      "{\"user\": 42, \"item\": [1], \"shop\": \"7\", \"price\": 3, \"clicked\": 1}\n"
      "{\"user\": 42, \"item\": \"b\", \"shop\": \"7\", \"price\": 4, \"clicked\": \"false\"}\n");
  PrepareOptions o = Options({jsonl});
  auto r = Prepare(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows_read, 8u);
  EXPECT_EQ(r->bad_rows, 4u);
  EXPECT_EQ(r->tasks_written, 2u);
  const std::vector<std::string> errors = Lines(r->errors_path);
  ASSERT_EQ(errors.size(), 4u);
  const std::vector<std::pair<int, std::string>> expect = {
      {3, "must be 0 or 1"}, {4, "not valid JSON"}, {5, "field price: missing"}, {7, "field item"}};
  for (size_t i = 0; i < errors.size(); ++i) {
    auto j = nlohmann::json::parse(errors[i]);
    EXPECT_EQ(j["line"], expect[i].first);
    EXPECT_NE(j["error"].get<std::string>().find(expect[i].second), std::string::npos) << errors[i];
  }
  const std::vector<Episode> eps = ReadAll(o.output);
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].task_id, "42");
  EXPECT_EQ(eps[0].labels, (std::vector<float>{1, 0}));
  EXPECT_EQ(eps[0].sparse, (std::vector<int64_t>{SparseId(0, "a"), SparseId(1, "7"),
                                                 SparseId(0, "b"), SparseId(1, "7")}));
  EXPECT_EQ(eps[1].task_id, "u1");
  EXPECT_EQ(eps[1].dense, (std::vector<float>{1.5f, 2.5f}));
  EXPECT_EQ(eps[1].sparse, (std::vector<int64_t>{SparseId(0, "a"), SparseId(1, "7"),
                                                 SparseId(0, ""), SparseId(1, "7")}));
}

TEST_F(PrepareTest, SeveralInputsAndSeededOrder) {
  const std::string a = dir_ / "a.csv", b = dir_ / "b.jsonl";
  std::string text = "user,item,shop,price,clicked\n";
  for (int t = 0; t < 30; ++t) text += "t" + std::to_string(t) + ",x,s,1,0\n";
  WriteText(a, text);
  text.clear();
  for (int t = 0; t < 30; ++t) {
    text += "{\"user\":\"t" + std::to_string(t) +
            "\",\"item\":\"y\",\"shop\":\"s\",\"price\":2,\"clicked\":1}\n";
  }
  WriteText(b, text);
  PrepareOptions o = Options({a, b});
  auto r = Prepare(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tasks_written, 30u);
  std::vector<std::string> sorted;
  for (const Episode& e : ReadAll(o.output)) {
    sorted.push_back(e.task_id);
    EXPECT_EQ(e.dense, (std::vector<float>{1, 2}));  // file a's row first
  }
  EXPECT_TRUE(std::is_sorted(sorted.begin(), sorted.end()));

  auto ids = [&](uint64_t seed) {
    o.seed = seed;
    EXPECT_TRUE(Prepare(o).ok());
    std::vector<std::string> out;
    for (const Episode& e : ReadAll(o.output)) out.push_back(e.task_id);
    return out;
  };
  const std::vector<std::string> s1 = ids(1), s1again = ids(1), s2 = ids(2);
  EXPECT_EQ(s1, s1again);
  EXPECT_NE(s1, sorted);
  EXPECT_NE(s1, s2);
  EXPECT_TRUE(std::is_permutation(s1.begin(), s1.end(), sorted.begin()));
}

TEST_F(PrepareTest, MissingColumnIsAnErrorBeforeWriting) {
  const std::string csv = dir_ / "rows.csv";
  WriteText(csv, "user,item,shop,cost,clicked\nu,a,s,1,0\n");
  PrepareOptions o = Options({csv});
  auto r = Prepare(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"price\""), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(csv), std::string::npos);
  EXPECT_EQ(FilesIn(dir_.path), 1u);  // nothing written

  const std::string jsonl = dir_ / "rows.jsonl";
  WriteText(jsonl, "garbage\n{\"user\":\"u\",\"item\":\"a\",\"shop\":\"s\",\"clicked\":0}\n");
  r = Prepare(Options({jsonl}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(jsonl + ":2"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("\"price\""), std::string::npos);
  EXPECT_EQ(FilesIn(dir_.path), 2u);
}

TEST_F(PrepareTest, BadOptions) {
  const std::string csv = dir_ / "rows.csv";
  WriteText(csv, "user,item,shop,price,clicked\nu,a,s,1,0\n");
  auto fails = [&](auto change, const std::string& expect) {
    PrepareOptions o = Options({csv});
    change(o);
    auto r = Prepare(o);
    ASSERT_FALSE(r.ok()) << expect;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(expect), std::string::npos) << r.status().message();
  };
  fails([](PrepareOptions& o) { o.support_fraction = 1.0; }, "between 0 and 1");
  fails([](PrepareOptions& o) { o.min_rows = 1; }, "at least 2");
  fails([](PrepareOptions& o) { o.dense.clear(), o.sparse.clear(); }, "no feature columns");
  fails([](PrepareOptions& o) { o.dense.push_back("clicked"); }, "also a feature");
  fails([](PrepareOptions& o) { o.sparse.push_back("item"); }, "named twice");
  fails([&](PrepareOptions& o) { o.inputs = {dir_ / "rows.txt"}; }, "cannot tell its format");
  fails([&](PrepareOptions& o) { o.inputs = {dir_ / "missing.csv"}; }, "does not exist");
  fails([&](PrepareOptions& o) { o.output = csv; }, "also an output");
  EXPECT_EQ(FilesIn(dir_.path), 1u);

  PrepareOptions o = Options({csv});
  o.output = dir_ / "no-such-dir/out.episodes";
  EXPECT_EQ(Prepare(o).status().code(), StatusCode::kIoError);
}

TEST_F(PrepareTest, ExplicitFormatOverridesTheExtension) {
  const std::string txt = dir_ / "rows.txt";
  WriteText(txt, "user,item,shop,price,clicked\nu,a,s,1,0\nu,b,s,2,1\n");
  PrepareOptions o = Options({txt});
  o.format = InputFormat::kCsv;
  auto r = Prepare(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tasks_written, 1u);
}

TEST_F(PrepareTest, ReportsProgress) {
  const std::string csv = dir_ / "rows.csv";
  std::string text = "user,item,shop,price,clicked\n";
  for (int i = 0; i < 25; ++i) text += "u,a,s,1,0\n";
  WriteText(csv, text);
  PrepareOptions o = Options({csv});
  std::vector<uint64_t> seen;
  o.progress_every = 10;
  o.progress = [&](uint64_t rows) { seen.push_back(rows); };
  ASSERT_TRUE(Prepare(o).ok());
  EXPECT_EQ(seen, (std::vector<uint64_t>{10, 20}));
}

// ---- The real command ----

int RunBaton(const std::string& args, std::string* out = nullptr) {
  TempDir dir;
  const std::string capture = dir / "out.txt";
  int status =
      std::system((std::string(BATON_BIN) + " " + args + " >" + capture + " 2>&1").c_str());
  if (out) *out = ReadText(capture);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(PrepareTest, CommandLine) {
  const std::string csv = dir_ / "rows.csv";
  WriteText(csv,
            "user,item,shop,price,clicked,ts\n"
            "u1,a,s1,1.5,1,3\nu1,b,s1,2.5,0,1\nu1,c,s1,2.5,0,2\n"
            "u2,a,s1,1.0,2,1\nu2,a,s1,1.0,0,1\nu2,a,s1,1.0,1,2\n");
  const std::string out = dir_ / "out.episodes";
  const std::string base = "meta prepare --input " + csv + " --out " + out +
                           " --task-key user --label clicked --dense price --sparse item,shop";
  std::string text;
  ASSERT_EQ(RunBaton(base + " --order-by ts --support-fraction 0.5 --seed 7", &text), 0) << text;
  EXPECT_NE(text.find("tasks=2 rows=6 bad_rows=1 skipped_tasks=0"), std::string::npos) << text;
  EXPECT_NE(text.find("listed in " + out + ".errors.jsonl"), std::string::npos) << text;
  EXPECT_EQ(Lines(out + ".errors.jsonl").size(), 1u);

  ASSERT_EQ(RunBaton("meta inspect " + out + " --verify", &text), 0) << text;
  EXPECT_NE(text.find("episodes=2 num_dense=1 num_sparse=2"), std::string::npos) << text;
  EXPECT_NE(text.find("verified=2"), std::string::npos) << text;
  EXPECT_NE(text.find("u1"), std::string::npos) << text;

  // Usage errors exit 2 with a message.
  EXPECT_EQ(RunBaton(base + " --support-fraction 1.5", &text), 2);
  EXPECT_NE(text.find("between 0 and 1"), std::string::npos) << text;
  EXPECT_EQ(RunBaton(base + " --min-rows abc", &text), 2);
  EXPECT_EQ(RunBaton(base + " --format xml", &text), 2);
  EXPECT_EQ(RunBaton("meta prepare --input " + csv + " --out " + out + " --label clicked", &text),
            2);
  EXPECT_NE(text.find("--task-key"), std::string::npos) << text;
  EXPECT_EQ(RunBaton(base + " --dense cost", &text), 2);
  EXPECT_NE(text.find("no column \"cost\""), std::string::npos) << text;
  EXPECT_EQ(RunBaton("meta inspect " + dir_ / "missing", &text), 2);
  EXPECT_EQ(RunBaton("meta prepare --help", &text), 0);
  EXPECT_NE(text.find("--support-fraction"), std::string::npos);

  // A corrupt record: inspect lists the index, --verify finds it (exit 1).
  std::string bytes = ReadText(out);
  bytes[40] ^= 0x55;
  WriteText(out, bytes);
  EXPECT_EQ(RunBaton("meta inspect " + out, &text), 0) << text;
  EXPECT_EQ(RunBaton("meta inspect " + out + " --verify", &text), 1) << text;
  EXPECT_NE(text.find("checksum mismatch"), std::string::npos) << text;
}

}  // namespace
}  // namespace baton::meta
