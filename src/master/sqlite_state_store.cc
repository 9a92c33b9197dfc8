// SQLite implementation of StateStore with group commit.
#include <sqlite3.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <variant>
#include <vector>

#include "master/state_store.h"

namespace baton::master {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (idx INTEGER PRIMARY KEY, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shards (
  id INTEGER PRIMARY KEY,
  epoch INTEGER NOT NULL,
  file_idx INTEGER NOT NULL,
  byte_begin INTEGER NOT NULL,
  byte_end INTEGER NOT NULL,
  first_record INTEGER NOT NULL,
  record_count INTEGER NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  token INTEGER NOT NULL,
  worker TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY, rank INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (scope INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                               PRIMARY KEY (scope, key));
)sql";

struct MetaWrite {
  std::string key, value;
};
struct NodeRankWrite {
  std::string node_id;
  int32_t rank;
};
struct KvWrite {
  int64_t scope;
  std::string key, value;
};
struct KvEraseBelow {
  int64_t scope;
};
using PendingWrite = std::variant<ShardUpdate, MetaWrite, NodeRankWrite, KvWrite, KvEraseBelow>;

class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }
  Status Prepare(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      return Status::Internal(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
    }
    return Status::Ok();
  }
  sqlite3_stmt* get() { return stmt_; }
  void Finalize() {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteStateStore final : public StateStore {
 public:
  SqliteStateStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  ~SqliteStateStore() override {
    (void)WaitDurable(appended_);  // whatever was appended and not yet written
    update_.Finalize();
    upsert_meta_.Finalize();
    insert_node_.Finalize();
    upsert_kv_.Finalize();
    erase_kv_.Finalize();
    sqlite3_close(db_);
  }

  Status Init(const SqliteStoreOptions& options) {
    // The master holds an exclusive lock on its state dir, so SQLite need not take file locks per
    // transaction; a larger checkpoint interval keeps fsyncs (checkpoints) rare.
    BATON_RETURN_IF_ERROR(Exec("PRAGMA locking_mode=EXCLUSIVE"));
    BATON_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    BATON_RETURN_IF_ERROR(Exec("PRAGMA wal_autocheckpoint=10000"));
    BATON_RETURN_IF_ERROR(
        Exec(options.fsync_each_commit ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
    BATON_RETURN_IF_ERROR(Exec(kSchema));
    BATON_RETURN_IF_ERROR(
        update_.Prepare(db_,
                        "UPDATE shards SET state=?1, attempts=?2, token=?3, worker=?4, "
                        "error=CASE WHEN ?5 = '' THEN error ELSE ?5 END WHERE id=?6"));
    BATON_RETURN_IF_ERROR(
        upsert_meta_.Prepare(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)"));
    BATON_RETURN_IF_ERROR(
        insert_node_.Prepare(db_, "INSERT OR REPLACE INTO nodes(node_id, rank) VALUES (?1, ?2)"));
    BATON_RETURN_IF_ERROR(upsert_kv_.Prepare(
        db_, "INSERT OR REPLACE INTO kv(scope, key, value) VALUES (?1, ?2, ?3)"));
    BATON_RETURN_IF_ERROR(erase_kv_.Prepare(db_, "DELETE FROM kv WHERE scope > 0 AND scope < ?1"));
    return Status::Ok();
  }

  Result<std::optional<JobMeta>> LoadMeta() override {
    JobMeta meta;
    bool found = false;
    {
      Statement st;
      BATON_RETURN_IF_ERROR(st.Prepare(db_, "SELECT key, value FROM meta"));
      while (sqlite3_step(st.get()) == SQLITE_ROW) {
        std::string key = Text(st.get(), 0), value = Text(st.get(), 1);
        if (key == "job_id") meta.job_id = value, found = true;
        if (key == "fingerprint") meta.fingerprint = value;
      }
    }
    if (!found) return std::optional<JobMeta>();
    Statement st;
    BATON_RETURN_IF_ERROR(st.Prepare(db_, "SELECT path FROM files ORDER BY idx"));
    while (sqlite3_step(st.get()) == SQLITE_ROW) meta.files.push_back(Text(st.get(), 0));
    return std::optional<JobMeta>(std::move(meta));
  }

  Status CreateJob(const JobMeta& meta, const std::vector<Shard>& shards) override {
    BATON_RETURN_IF_ERROR(Exec("BEGIN"));
    Status s = InsertJob(meta, shards);
    if (!s.ok()) {
      (void)Exec("ROLLBACK");
      return s;
    }
    return Exec("COMMIT");
  }

  Status LoadShards(const std::function<void(StoredShard&&)>& sink) override {
    Statement st;
    BATON_RETURN_IF_ERROR(st.Prepare(
        db_,
        "SELECT id, epoch, file_idx, byte_begin, byte_end, first_record, record_count, state, "
        "attempts, token, worker, error FROM shards ORDER BY id"));
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      StoredShard s;
      sqlite3_stmt* q = st.get();
      s.shard.id = static_cast<uint64_t>(sqlite3_column_int64(q, 0));
      s.shard.epoch = static_cast<uint32_t>(sqlite3_column_int64(q, 1));
      s.shard.range.file_index = static_cast<uint32_t>(sqlite3_column_int64(q, 2));
      s.shard.range.byte_begin = static_cast<uint64_t>(sqlite3_column_int64(q, 3));
      s.shard.range.byte_end = static_cast<uint64_t>(sqlite3_column_int64(q, 4));
      s.shard.range.first_record = static_cast<uint64_t>(sqlite3_column_int64(q, 5));
      s.shard.range.record_count = static_cast<uint32_t>(sqlite3_column_int64(q, 6));
      s.shard.state = static_cast<ShardState>(sqlite3_column_int(q, 7));
      s.shard.attempts = static_cast<uint16_t>(sqlite3_column_int(q, 8));
      s.shard.token = static_cast<uint64_t>(sqlite3_column_int64(q, 9));
      s.worker = Text(q, 10);
      s.error = Text(q, 11);
      sink(std::move(s));
    }
    if (rc != SQLITE_DONE)
      return Status::Internal(std::string("sqlite load: ") + sqlite3_errmsg(db_));
    return Status::Ok();
  }

  uint64_t Append(ShardUpdate update) override { return Queue(std::move(update)); }
  uint64_t AppendMeta(std::string key, std::string value) override {
    return Queue(MetaWrite{std::move(key), std::move(value)});
  }
  uint64_t AppendNodeRank(std::string node_id, int32_t rank) override {
    return Queue(NodeRankWrite{std::move(node_id), rank});
  }

  uint64_t AppendKv(int64_t scope, std::string key, std::string value) override {
    return Queue(KvWrite{scope, std::move(key), std::move(value)});
  }
  uint64_t AppendKvEraseBelow(int64_t scope) override { return Queue(KvEraseBelow{scope}); }

  Status LoadKv(const std::function<void(int64_t, std::string, std::string)>& sink) override {
    Statement st;
    BATON_RETURN_IF_ERROR(st.Prepare(db_, "SELECT scope, key, value FROM kv"));
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      sink(sqlite3_column_int64(st.get(), 0), Blob(st.get(), 1), Blob(st.get(), 2));
    }
    return rc == SQLITE_DONE ? Status::Ok() : Err("load kv");
  }

  Result<std::map<std::string, std::string>> LoadMetaValues() override {
    std::map<std::string, std::string> values;
    Statement st;
    BATON_RETURN_IF_ERROR(
        st.Prepare(db_, "SELECT key, value FROM meta WHERE key NOT IN ('job_id', 'fingerprint')"));
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      values[Text(st.get(), 0)] = Text(st.get(), 1);
    }
    if (rc != SQLITE_DONE) return Err("load meta values");
    return values;
  }

  // Called before serving starts (no writer can be running), like LoadShards.
  Result<std::map<std::string, int32_t>> LoadNodeRanks() override {
    std::map<std::string, int32_t> ranks;
    Statement st;
    BATON_RETURN_IF_ERROR(st.Prepare(db_, "SELECT node_id, rank FROM nodes"));
    int rc;
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      ranks[Text(st.get(), 0)] = sqlite3_column_int(st.get(), 1);
    }
    if (rc != SQLITE_DONE) return Err("load node ranks");
    return ranks;
  }

  Status WaitDurable(uint64_t seq) override {
    std::unique_lock<std::mutex> lock(mu_);
    while (durable_ < seq && failure_.ok()) {
      if (writing_) {
        durable_cv_.wait(lock);
      } else {
        DrainLocked(lock);
      }
    }
    return durable_ >= seq ? Status::Ok() : failure_;
  }

  void WhenDurable(uint64_t seq, std::function<void(const Status&)> done) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (durable_ >= seq || !failure_.ok()) {
      Status now = durable_ >= seq ? Status::Ok() : failure_;
      lock.unlock();
      done(now);
      return;
    }
    callbacks_.emplace(seq, std::move(done));
    if (!writing_) DrainLocked(lock);  // else the caller already writing picks it up
  }

 private:
  uint64_t Queue(PendingWrite write) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(write));
    return ++appended_;
  }

  static std::string Blob(sqlite3_stmt* q, int col) {
    const void* b = sqlite3_column_blob(q, col);
    const int n = sqlite3_column_bytes(q, col);
    return b ? std::string(static_cast<const char*>(b), static_cast<size_t>(n)) : std::string();
  }

  static std::string Text(sqlite3_stmt* q, int col) {
    const unsigned char* t = sqlite3_column_text(q, col);
    return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return Status::IoError("sqlite " + path_ + ": " + msg);
    }
    return Status::Ok();
  }

  Status InsertJob(const JobMeta& meta, const std::vector<Shard>& shards) {
    {
      Statement st;
      BATON_RETURN_IF_ERROR(st.Prepare(db_, "INSERT INTO meta(key, value) VALUES (?1, ?2)"));
      for (auto [k, v] : {std::pair{"job_id", meta.job_id}, {"fingerprint", meta.fingerprint}}) {
        sqlite3_bind_text(st.get(), 1, k, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st.get(), 2, v.c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st.get()) != SQLITE_DONE) return Err("insert meta");
        sqlite3_reset(st.get());
      }
    }
    {
      Statement st;
      BATON_RETURN_IF_ERROR(st.Prepare(db_, "INSERT INTO files(idx, path) VALUES (?1, ?2)"));
      for (size_t i = 0; i < meta.files.size(); ++i) {
        sqlite3_bind_int64(st.get(), 1, static_cast<int64_t>(i));
        sqlite3_bind_text(st.get(), 2, meta.files[i].c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st.get()) != SQLITE_DONE) return Err("insert file");
        sqlite3_reset(st.get());
      }
    }
    Statement st;
    BATON_RETURN_IF_ERROR(st.Prepare(
        db_,
        "INSERT INTO shards(id, epoch, file_idx, byte_begin, byte_end, first_record, "
        "record_count, state, attempts, token) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"));
    for (const Shard& s : shards) {
      sqlite3_stmt* q = st.get();
      sqlite3_bind_int64(q, 1, static_cast<int64_t>(s.id));
      sqlite3_bind_int64(q, 2, s.epoch);
      sqlite3_bind_int64(q, 3, s.range.file_index);
      sqlite3_bind_int64(q, 4, static_cast<int64_t>(s.range.byte_begin));
      sqlite3_bind_int64(q, 5, static_cast<int64_t>(s.range.byte_end));
      sqlite3_bind_int64(q, 6, static_cast<int64_t>(s.range.first_record));
      sqlite3_bind_int64(q, 7, s.range.record_count);
      sqlite3_bind_int(q, 8, static_cast<int>(s.state));
      sqlite3_bind_int(q, 9, s.attempts);
      sqlite3_bind_int64(q, 10, static_cast<int64_t>(s.token));
      if (sqlite3_step(q) != SQLITE_DONE) return Err("insert shard");
      sqlite3_reset(q);
    }
    return Status::Ok();
  }

  Status Err(const std::string& what) {
    return Status::IoError("sqlite " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
  }

  // Group commit without a writer thread: the caller that finds no transaction in progress becomes
  // the writer. It commits everything appended so far in one transaction, answers every caller it
  // covered (their callbacks finish gRPC replies), and repeats while more arrived meanwhile. With
  // one client this costs no thread hand-off at all; under load each transaction carries many
  // updates. Called and returns with `lock` held.
  void DrainLocked(std::unique_lock<std::mutex>& lock) {
    writing_ = true;
    while (!pending_.empty() && failure_.ok()) {
      std::deque<PendingWrite> batch;
      batch.swap(pending_);
      uint64_t last = appended_;
      lock.unlock();
      Status s = WriteBatch(batch);
      lock.lock();
      if (s.ok()) {
        durable_ = last;
      } else {
        failure_ = s;
      }
      Status outcome = failure_;
      auto end = failure_.ok() ? callbacks_.upper_bound(durable_) : callbacks_.end();
      std::vector<std::function<void(const Status&)>> ready;
      for (auto it = callbacks_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
      callbacks_.erase(callbacks_.begin(), end);
      durable_cv_.notify_all();
      lock.unlock();
      for (auto& cb : ready) cb(outcome);
      lock.lock();
    }
    writing_ = false;
    durable_cv_.notify_all();
  }

  Status WriteBatch(const std::deque<PendingWrite>& batch) {
    BATON_RETURN_IF_ERROR(Exec("BEGIN"));
    for (const PendingWrite& w : batch) {
      Status s = std::visit([this](const auto& write) { return Write(write); }, w);
      if (!s.ok()) {
        (void)Exec("ROLLBACK");
        return s;
      }
    }
    return Exec("COMMIT");
  }

  Status Write(const ShardUpdate& u) {
    sqlite3_stmt* q = update_.get();
    sqlite3_bind_int(q, 1, static_cast<int>(u.state));
    sqlite3_bind_int(q, 2, u.attempts);
    sqlite3_bind_int64(q, 3, static_cast<int64_t>(u.token));
    sqlite3_bind_text(q, 4, u.worker.c_str(), static_cast<int>(u.worker.size()), SQLITE_STATIC);
    sqlite3_bind_text(q, 5, u.error.c_str(), static_cast<int>(u.error.size()), SQLITE_STATIC);
    sqlite3_bind_int64(q, 6, static_cast<int64_t>(u.id));
    return Step(q, "update shard " + std::to_string(u.id));
  }

  Status Write(const MetaWrite& m) {
    sqlite3_stmt* q = upsert_meta_.get();
    sqlite3_bind_text(q, 1, m.key.c_str(), static_cast<int>(m.key.size()), SQLITE_STATIC);
    sqlite3_bind_text(q, 2, m.value.c_str(), static_cast<int>(m.value.size()), SQLITE_STATIC);
    return Step(q, "write meta " + m.key);
  }

  Status Write(const NodeRankWrite& n) {
    sqlite3_stmt* q = insert_node_.get();
    sqlite3_bind_text(q, 1, n.node_id.c_str(), static_cast<int>(n.node_id.size()), SQLITE_STATIC);
    sqlite3_bind_int(q, 2, n.rank);
    return Step(q, "write rank of node " + n.node_id);
  }

  Status Write(const KvWrite& w) {
    sqlite3_stmt* q = upsert_kv_.get();
    sqlite3_bind_int64(q, 1, w.scope);
    sqlite3_bind_blob(q, 2, w.key.data(), static_cast<int>(w.key.size()), SQLITE_STATIC);
    sqlite3_bind_blob(q, 3, w.value.data(), static_cast<int>(w.value.size()), SQLITE_STATIC);
    return Step(q, "write kv key of scope " + std::to_string(w.scope));
  }

  Status Write(const KvEraseBelow& e) {
    sqlite3_stmt* q = erase_kv_.get();
    sqlite3_bind_int64(q, 1, e.scope);
    return Step(q, "erase kv scopes below " + std::to_string(e.scope));
  }

  Status Step(sqlite3_stmt* q, const std::string& what) {
    int rc = sqlite3_step(q);
    Status s = rc == SQLITE_DONE ? Status::Ok() : Err(what);
    sqlite3_reset(q);
    return s;
  }

  sqlite3* db_;
  std::string path_;
  Statement update_;
  Statement upsert_meta_;
  Statement insert_node_;
  Statement upsert_kv_;
  Statement erase_kv_;
  std::mutex mu_;
  std::condition_variable durable_cv_;
  std::multimap<uint64_t, std::function<void(const Status&)>> callbacks_;  // by seq
  std::deque<PendingWrite> pending_;
  uint64_t appended_ = 0;
  uint64_t durable_ = 0;
  Status failure_;
  bool writing_ = false;  // some caller is committing (see DrainLocked)
};

}  // namespace

Result<std::unique_ptr<StateStore>> OpenSqliteStateStore(const std::string& path,
                                                         SqliteStoreOptions options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::IoError("cannot open state database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStateStore>(db, path);
  BATON_RETURN_IF_ERROR(store->Init(options));
  return std::unique_ptr<StateStore>(std::move(store));
}

}  // namespace baton::master
