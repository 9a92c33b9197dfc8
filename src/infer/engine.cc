#include "infer/engine.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/files.h"
#include "common/process_stats.h"
#include "infer/bounded_queue.h"
#include "infer/image_ops.h"
#include "infer/model_backend.h"
#include "infer/output_format.h"
#include "infer/row_parser.h"
#include "infer/stage_pool.h"
#include "infer/tensor.h"
#include "infer/work_items.h"
#include "sdk/worker.h"

namespace baton::infer {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr milliseconds kPoll(50);
constexpr int kMaxThreadsPerStage = 64;
constexpr size_t kMaxModels = 8;

int CoreCount() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min<unsigned>(n, kMaxThreadsPerStage));
}

}  // namespace

struct InferEngine::Impl {
  InferSpec spec;
  sdk::Worker* worker;
  std::vector<std::vector<int>> children;  // per model
  // Per model: a model after it cuts crops, so its items must carry their decoded images.
  std::vector<bool> feeds_crops;
  std::vector<const std::string*> model_names;  // null entries for a single-model job

  // Queues (pipelined mode).
  std::unique_ptr<BoundedQueue<RawBatch>> raw;
  std::vector<std::unique_ptr<BoundedQueue<ModelBatch>>> model_in;
  std::unique_ptr<BoundedQueue<PredictedBatch>> write;

  // Model instances not in use, per model: a predictor thread takes one, gives it back on exit.
  std::mutex models_mu;
  std::vector<std::vector<std::unique_ptr<ModelBackend>>> idle_models;

  // Watchdog: when each predictor slot's current forward call began (0: idle).
  std::array<std::atomic<int64_t>, kMaxModels * kMaxThreadsPerStage> busy_since{};

  std::atomic<bool> stop{false};
  std::atomic<bool> no_more_shards{false};
  std::mutex run_mu;
  std::condition_variable run_cv;
  int64_t in_flight = 0;  // shards leased and not finished; guarded by run_mu
  Status fatal;           // guarded by run_mu

  std::atomic<uint64_t> committed{0}, failed{0}, fenced{0}, records{0}, errors{0}, scale_events{0};
  // Per model: whether this worker has logged the model returning a wrong row count / a NaN or
  // infinite output (logged once, counted every time: Worker::AddCounter, `baton status`).
  std::array<std::atomic<bool>, kMaxModels> warned_rows{}, warned_non_finite{};
  // Time each stage's threads spent working (not waiting on a queue), for the autoscaler.
  std::atomic<int64_t> preprocess_busy_us{0}, writer_busy_us{0};
  std::array<std::atomic<int64_t>, kMaxModels> predictor_busy_us{};
  StageCounts counts;  // as last applied

  Impl(InferSpec s, sdk::Worker* w) : spec(std::move(s)), worker(w) {
    for (size_t m = 0; m < spec.models.size(); ++m) {
      children.push_back(ChildrenOf(spec, static_cast<int>(m)));
      model_names.push_back(spec.models.size() > 1 ? &spec.models[m].name : nullptr);
      bool crops = false;
      for (int c : children.back()) {
        crops = crops || spec.models[static_cast<size_t>(c)].emit == EmitKind::kCrops;
      }
      feeds_crops.push_back(crops);
    }
    idle_models.resize(spec.models.size());
  }

  // ---- shared steps ----------------------------------------------------------------------

  void Fatal(Status s) {
    std::lock_guard<std::mutex> lock(run_mu);
    if (fatal.ok()) fatal = std::move(s);
    run_cv.notify_all();
  }

  Result<std::unique_ptr<ModelBackend>> TakeModel(int32_t m) {
    {
      std::lock_guard<std::mutex> lock(models_mu);
      auto& idle = idle_models[static_cast<size_t>(m)];
      if (!idle.empty()) {
        auto model = std::move(idle.back());
        idle.pop_back();
        return model;
      }
    }
    return LoadModel(spec.models[static_cast<size_t>(m)].path, BackendOptions{spec.device});
  }
  void ReturnModel(int32_t m, std::unique_ptr<ModelBackend> model) {
    std::lock_guard<std::mutex> lock(models_mu);
    idle_models[static_cast<size_t>(m)].push_back(std::move(model));
  }

  void RecordError(const ShardPtr& owner, uint64_t record, const std::string& key,
                   const std::string& stage, const std::string& message) {
    errors.fetch_add(1);
    worker->AddCounter("bad_records");
    std::string row = ErrorRow(owner->file, record, key, stage, message);
    std::lock_guard<std::mutex> lock(owner->mu);
    owner->errors += row;
    ++owner->error_count;
  }

  void Release(const ShardPtr& owner, int64_t n = 1) {
    if (owner->pending.fetch_sub(n) == n) Finish(owner);
  }

  // Writes the shard's bad records to its errors file, or removes the file an earlier attempt
  // left when this one has none: the file always describes the shard's latest attempt, committed
  // or failed (a shard failed for max_error_rate and then dead-lettered keeps its bad records).
  void WriteErrorsFile(const ShardWork& w) {
    // A worker that lost the lease must not touch the file of the attempt that took over (its
    // Commit will be FENCED anyway). Errors files are not fenced by the master like part files:
    // this narrows the window, it does not close it.
    if (w.shard->lost()) return;
    Status s = WriteShardErrors(spec.errors_dir, w.shard->id(), w.errors);
    if (!s.ok()) spdlog::warn("shard {}: errors file: {}", w.shard->id(), s.ToString());
  }

  void Finish(const ShardPtr& owner) {
    ShardWork& w = *owner;
    sdk::Shard& shard = *w.shard;
    // Blank lines are no records: 1 bad row next to 1 blank line is 1 of 1.
    const uint64_t total = shard.range().record_count - w.blank_count.load();
    Status s;
    if (total > 0 &&
        static_cast<double>(w.error_count) > spec.max_error_rate * static_cast<double>(total)) {
      const std::string reason = std::to_string(w.error_count) + " of " + std::to_string(total) +
                                 " records failed (infer.max_error_rate " +
                                 std::to_string(spec.max_error_rate) + ")";
      spdlog::warn("shard {}: {}; giving it back", shard.id(), reason);
      WriteErrorsFile(w);
      s = worker->Fail(shard, reason);
      failed.fetch_add(1);
    } else {
      std::sort(w.rows.begin(), w.rows.end(), [](const auto& a, const auto& b) {
        return std::tie(a.record, a.model, a.item) < std::tie(b.record, b.model, b.item);
      });
      std::string text;
      size_t bytes = 0;
      for (const auto& r : w.rows) bytes += r.text.size();
      text.reserve(bytes);
      for (const auto& r : w.rows) text += r.text;
      w.rows.clear();
      WriteErrorsFile(w);
      if (!text.empty()) s = shard.Write(text);
      if (s.ok()) s = worker->Commit(shard);
      if (s.code() == StatusCode::kFenced) {
        spdlog::warn("shard {} was taken over by another worker; dropping it", shard.id());
        fenced.fetch_add(1);
        s = Status::Ok();
      } else if (s.ok()) {
        committed.fetch_add(1);
      }
    }
    if (!s.ok()) Fatal(s.WithContext("shard " + std::to_string(shard.id())));
    std::lock_guard<std::mutex> lock(run_mu);
    --in_flight;
    run_cv.notify_all();
  }

  // A blank line (row_parser.h) is released as handled: no output, no error.
  bool SkipBlank(const RawBatch& raw, size_t i) {
    if (!IsBlankLine(raw.line(i))) return false;
    raw.shard->blank_count.fetch_add(1);
    worker->AddCounter("blank_lines");
    Release(raw.shard);
    return true;
  }

  // Reads `lines` into a batch for the first model; bad records are recorded and released.
  ModelBatch Preprocess(RawBatch&& raw, std::map<std::string, RowParser>& parsers) {
    ModelBatch b;
    b.model = 0;
    const size_t n = raw.size();
    const ShardPtr& owner = raw.shard;
    const bool keep_images = feeds_crops[0];
    if (spec.input == InputKind::kImages) {
      const int64_t row = 3LL * spec.image.height * spec.image.width;
      HostTensor t = ZerosTensor(TensorType::kFloat32,
                                 {static_cast<int64_t>(n), 3, spec.image.height, spec.image.width});
      const fs::path dir = fs::path(owner->file).parent_path();
      size_t kept = 0;
      for (size_t i = 0; i < n; ++i) {
        if (SkipBlank(raw, i)) continue;
        const std::string entry(raw.line(i));
        const uint64_t record = raw.first_record + i;
        const std::string path = fs::path(entry).is_absolute() ? entry : (dir / entry).string();
        auto image = DecodeImageFile(path);
        if (!image.ok()) {
          RecordError(owner, record, entry, "decode", image.status().message());
          Release(owner);
          continue;
        }
        ImageToTensorRow(**image, spec.image, t.f.data() + static_cast<ptrdiff_t>(kept) * row);
        ++kept;
        b.owners.push_back(owner);
        b.records.push_back(record);
        b.items.push_back(0);
        b.keys.push_back(entry);
        if (keep_images) b.images.push_back(*image);
      }
      t.shape[0] = static_cast<int64_t>(kept);
      t.f.resize(static_cast<size_t>(kept) * static_cast<size_t>(row));
      b.inputs.push_back(std::move(t));
      return b;
    }
    auto it = parsers.find(owner->file);
    if (it == parsers.end()) {
      Result<RowParser> p = RowParser::ForFile(spec, owner->file);
      if (!p.ok()) {
        // The whole file is unreadable by this schema: every record is an error.
        for (size_t i = 0; i < n; ++i) {
          if (SkipBlank(raw, i)) continue;
          RecordError(owner, raw.first_record + i, "", "parse", p.status().message());
          Release(owner);
        }
        return b;
      }
      it = parsers.emplace(owner->file, std::move(*p)).first;
    }
    RowParser& parser = it->second;
    b.inputs = parser.NewBatch(n);
    std::string key;
    for (size_t i = 0; i < n; ++i) {
      if (SkipBlank(raw, i)) continue;
      const uint64_t record = raw.first_record + i;
      Status s = parser.Append(raw.line(i), &key, &b.inputs);
      if (!s.ok()) {
        RecordError(owner, record, key, "parse", s.message());
        Release(owner);
        continue;
      }
      b.owners.push_back(owner);
      b.records.push_back(record);
      b.items.push_back(0);
      b.keys.push_back(key);
    }
    return b;
  }

  // Runs the model on the batch. A failing batch is retried record by record so that only the
  // records the model rejects become errors. Returns the batches that succeeded.
  std::vector<PredictedBatch> Predict(ModelBackend& model, ModelBatch&& b, size_t slot) {
    std::vector<PredictedBatch> out;
    if (b.size() == 0) return out;
    busy_since[slot].store(MonoMillis());
    auto result = model.Predict(b.inputs);
    busy_since[slot].store(0);
    const std::string& name = spec.models[static_cast<size_t>(b.model)].name;
    if (result.ok()) {
      Status rows = CheckOutputRows(*result, static_cast<int64_t>(b.size()));
      if (rows.ok()) {
        out.push_back({std::move(b), std::move(*result)});
        return out;
      }
      // Rows cannot be matched to records: retry record by record like a failing batch, but say
      // so. A model that miscounts only big batches would otherwise just run slower, unnoticed.
      worker->AddCounter(name + ".wrong_row_count_batches");
      if (!warned_rows[static_cast<size_t>(b.model)].exchange(true)) {
        spdlog::warn(
            "model {}: {}; retrying its records one by one (logged once; counted as "
            "{}.wrong_row_count_batches in `baton status`)",
            name, rows.message(), name);
      }
      result = rows;
    }
    if (b.size() > 1) {
      worker->AddCounter(name + ".batches_retried_per_record");
      for (size_t i = 0; i < b.size(); ++i) {
        ModelBatch one = SliceBatch(b, i, i + 1);
        auto part = Predict(model, std::move(one), slot);
        for (auto& p : part) out.push_back(std::move(p));
      }
      return out;
    }
    RecordError(b.owners[0], b.records[0], b.keys[0], "predict:" + name, result.status().message());
    Release(b.owners[0]);
    return out;
  }

  // The inputs the models after `p.batch.model` get from it.
  std::vector<ModelBatch> Emit(const PredictedBatch& p) {
    std::vector<ModelBatch> out;
    const ModelBatch& b = p.batch;
    for (int c : children[static_cast<size_t>(b.model)]) {
      const ModelSpec& child = spec.models[static_cast<size_t>(c)];
      ModelBatch cb;
      cb.model = c;
      const bool keep_images = feeds_crops[static_cast<size_t>(c)];
      if (child.emit == EmitKind::kOutputs) {
        const HostTensor& o = p.outputs.at(0);
        cb.inputs.push_back(o);
        cb.owners = b.owners;
        cb.records = b.records;
        cb.items = b.items;
        cb.keys = b.keys;
        if (keep_images) cb.images = b.images;
      } else {
        // (boxes [N,K,4], scores [N,K]): one crop per box at or above the threshold.
        const HostTensor& boxes = p.outputs.at(0);
        const HostTensor& scores = p.outputs.at(1);
        const int64_t k = scores.row_width();
        const int64_t row = 3LL * child.crop_height * child.crop_width;
        HostTensor t;
        t.type = TensorType::kFloat32;
        t.shape = {0, 3, child.crop_height, child.crop_width};
        for (size_t i = 0; i < b.size(); ++i) {
          for (int64_t j = 0; j < k; ++j) {
            const size_t at = i * static_cast<size_t>(k) + static_cast<size_t>(j);
            if (scores.f[at] < child.score_threshold) continue;
            t.f.resize(t.f.size() + static_cast<size_t>(row));
            CropToTensorRow(*b.images[i], &boxes.f[at * 4], child.crop_width, child.crop_height,
                            spec.image, t.f.data() + t.f.size() - static_cast<size_t>(row));
            ++t.shape[0];
            cb.owners.push_back(b.owners[i]);
            cb.records.push_back(b.records[i]);
            cb.items.push_back(static_cast<int32_t>(j));
            cb.keys.push_back(b.keys[i]);
            if (keep_images) cb.images.push_back(b.images[i]);
          }
        }
        cb.inputs.push_back(std::move(t));
      }
      for (const ShardPtr& owner : cb.owners) owner->pending.fetch_add(1);
      out.push_back(std::move(cb));
    }
    return out;
  }

  // Formats the rows of a model that writes, hands them to their shards, releases the items.
  void WriteRows(PredictedBatch&& p) {
    const ModelBatch& b = p.batch;
    const ModelSpec& m = spec.models[static_cast<size_t>(b.model)];
    if (m.write) {
      const OutputStyle style{spec.output, spec.non_finite};
      std::vector<ShardWork::Row> rows(b.size());
      std::vector<bool> written(b.size(), true);
      uint64_t non_finite = 0;  // rows with a NaN or infinite value
      for (size_t i = 0; i < b.size(); ++i) {
        rows[i] = ShardWork::Row{b.records[i], b.model, b.items[i], {}};
        auto n = AppendOutputRow(
            style, RowRef{&b.keys[i], model_names[static_cast<size_t>(b.model)], b.items[i]},
            p.outputs, static_cast<int64_t>(i), m.outputs, &rows[i].text);
        if (!n.ok()) {  // infer.non_finite: error
          RecordError(b.owners[i], b.records[i], b.keys[i], "output:" + m.name,
                      n.status().message());
          written[i] = false;
          ++non_finite;
        } else if (*n > 0) {
          ++non_finite;
        }
      }
      if (non_finite > 0) {
        worker->AddCounter("non_finite_rows", non_finite);
        if (!warned_non_finite[static_cast<size_t>(b.model)].exchange(true)) {
          spdlog::warn(
              "model {} returned NaN or infinite values; written per infer.non_finite (logged "
              "once; counted as non_finite_rows in `baton status`)",
              m.name);
        }
      }
      // Hand the rows over a run of the same shard at a time: one lock per run, not per row.
      for (size_t begin = 0; begin < b.size();) {
        size_t end = begin + 1;
        while (end < b.size() && b.owners[end] == b.owners[begin]) ++end;
        std::lock_guard<std::mutex> lock(b.owners[begin]->mu);
        auto& dst = b.owners[begin]->rows;
        for (size_t i = begin; i < end; ++i) {
          if (written[i]) dst.push_back(std::move(rows[i]));
        }
        begin = end;
      }
    }
    for (size_t i = 0; i < b.size(); ++i) Release(b.owners[i]);
  }

  // Leases the next shard; null when there are no more (or the engine is stopping).
  ShardPtr NextShard() {
    if (no_more_shards || stop) return nullptr;
    auto next = worker->NextShard();
    if (!next.ok()) {
      Fatal(next.status());
      return nullptr;
    }
    if (!*next) {
      no_more_shards = true;
      std::lock_guard<std::mutex> lock(run_mu);
      run_cv.notify_all();
      return nullptr;
    }
    auto w = std::make_shared<ShardWork>();
    w->shard = std::move(*next);
    w->file = w->shard->range().path;
    std::lock_guard<std::mutex> lock(run_mu);
    ++in_flight;
    return w;
  }

  // Reads the shard in batches of the first model's batch size, calling `emit` for each.
  Status ReadShard(const ShardPtr& w, const std::function<void(RawBatch&&)>& emit) {
    const size_t batch = static_cast<size_t>(spec.models[0].batch_size);
    RawBatch cur;
    cur.shard = w;
    cur.first_record = w->shard->range().first_record;
    uint64_t next_record = cur.first_record;
    Status s = w->shard->ForEachRecord([&](std::string_view line) {
      cur.Add(line);
      ++next_record;
      if (cur.size() == batch) {
        w->pending.fetch_add(static_cast<int64_t>(cur.size()));
        emit(std::move(cur));
        cur = RawBatch{w, next_record, {}, {}};
        if (stop) return Status::Internal("stopping");
      }
      return Status::Ok();
    });
    if (s.ok() && cur.size() > 0) {
      w->pending.fetch_add(static_cast<int64_t>(cur.size()));
      emit(std::move(cur));
    }
    records.fetch_add(w->shard->range().record_count);
    return s;
  }

  // ---- pipelined stages --------------------------------------------------------------------

  void ReaderLoop(int, const std::atomic<bool>& retire) {
    while (!stop && !retire) {
      ShardPtr w = NextShard();
      if (!w) return;
      Status s = ReadShard(w, [&](RawBatch&& b) { raw->Push(std::move(b)); });
      if (!s.ok() && !stop) {
        // The input no longer matches what the master split (a truncated file): give it back.
        spdlog::error("shard {}: {}", w->shard->id(), s.ToString());
        Fatal(s);
        return;
      }
      Release(w);  // the reader's own unit
    }
  }

  void PreprocessLoop(int, const std::atomic<bool>& retire) {
    std::map<std::string, RowParser> parsers;
    while (!stop && !retire) {
      auto raw_batch = raw->PopFor(kPoll);
      if (!raw_batch) continue;
      const int64_t start = MonoMicros();
      ModelBatch b = Preprocess(std::move(*raw_batch), parsers);
      preprocess_busy_us.fetch_add(MonoMicros() - start);
      if (b.size() > 0) model_in[0]->Push(std::move(b));
    }
  }

  void PredictLoop(int32_t m, int index, const std::atomic<bool>& retire) {
    auto model = TakeModel(m);
    if (!model.ok()) {
      Fatal(model.status());
      return;
    }
    const size_t slot = static_cast<size_t>(m) * kMaxThreadsPerStage + static_cast<size_t>(index);
    const size_t batch_size = static_cast<size_t>(spec.models[static_cast<size_t>(m)].batch_size);
    ModelBatch pending;  // re-batching for downstream models
    int64_t first_wait = 0;
    auto& in = *model_in[static_cast<size_t>(m)];
    while (!stop) {
      if (retire && pending.size() == 0) break;
      // A downstream model takes more items only while it has less than a batch: taking them
      // regardless would grow `pending` without bound (an upstream batch can bring more items
      // than one batch of this model takes) and copy all of it on every cut.
      std::optional<ModelBatch> b;
      if (m == 0 || pending.size() < batch_size) {
        b = in.PopFor(milliseconds(pending.size() > 0 ? 2 : kPoll.count()));
      }
      ModelBatch run;
      if (m == 0) {
        // The first model's batches are cut at fixed record offsets: run them as they are.
        if (!b) continue;
        run = std::move(*b);
      } else {
        if (b) {
          if (pending.size() == 0) first_wait = MonoMillis();
          AppendBatch(pending, std::move(*b));
        }
        const bool full = pending.size() >= batch_size;
        const bool waited =
            pending.size() > 0 && MonoMillis() - first_wait >= spec.pipeline.max_batch_wait_ms;
        if (!full && !waited && !retire) continue;
        if (pending.size() == 0) continue;
        const size_t take = std::min(batch_size, pending.size());
        run = SliceBatch(pending, 0, take);
        pending = take == pending.size() ? ModelBatch{} : SliceBatch(pending, take, pending.size());
        if (pending.size() > 0) first_wait = MonoMillis();
      }
      const int64_t start = MonoMicros();
      std::vector<PredictedBatch> done = Predict(**model, std::move(run), slot);
      predictor_busy_us[static_cast<size_t>(m)].fetch_add(MonoMicros() - start);
      for (PredictedBatch& p : done) Route(std::move(p));
    }
    ReturnModel(m, std::move(*model));
  }

  void Route(PredictedBatch&& p) {
    for (ModelBatch& cb : Emit(p)) {
      if (cb.size() > 0) model_in[static_cast<size_t>(cb.model)]->Push(std::move(cb));
    }
    write->Push(std::move(p));
  }

  void WriterLoop(int, const std::atomic<bool>& retire) {
    while (!stop && !retire) {
      auto p = write->PopFor(kPoll);
      if (!p) continue;
      const int64_t start = MonoMicros();
      WriteRows(std::move(*p));
      writer_busy_us.fetch_add(MonoMicros() - start);
    }
  }

  // ---- sequential mode ---------------------------------------------------------------------

  // One thread: read a batch, preprocess it, run every model on it (downstream models on the
  // items it produced, in batches of their size), write, and only then read the next batch.
  void SequentialLoop(int index, const std::atomic<bool>&) {
    std::vector<std::unique_ptr<ModelBackend>> models;
    for (size_t m = 0; m < spec.models.size(); ++m) {
      auto model = TakeModel(static_cast<int32_t>(m));
      if (!model.ok()) {
        Fatal(model.status());
        return;
      }
      models.push_back(std::move(*model));
    }
    std::map<std::string, RowParser> parsers;
    const size_t slot = static_cast<size_t>(index);
    std::function<void(ModelBatch &&)> run_model = [&](ModelBatch&& b) {
      const size_t size = static_cast<size_t>(spec.models[static_cast<size_t>(b.model)].batch_size);
      for (size_t begin = 0; begin < b.size(); begin += size) {
        ModelBatch part = begin == 0 && b.size() <= size
                              ? std::move(b)
                              : SliceBatch(b, begin, std::min(b.size(), begin + size));
        for (PredictedBatch& p :
             Predict(*models[static_cast<size_t>(part.model)], std::move(part), slot)) {
          for (ModelBatch& cb : Emit(p)) {
            if (cb.size() > 0) run_model(std::move(cb));
          }
          WriteRows(std::move(p));
        }
        if (b.size() == 0) break;  // moved from
      }
    };
    while (!stop) {
      ShardPtr w = NextShard();
      if (!w) break;
      Status s = ReadShard(w, [&](RawBatch&& raw_batch) {
        ModelBatch b = Preprocess(std::move(raw_batch), parsers);
        if (b.size() > 0) run_model(std::move(b));
      });
      if (!s.ok() && !stop) {
        Fatal(s);
        break;
      }
      Release(w);
    }
    for (size_t m = 0; m < models.size(); ++m) {
      ReturnModel(static_cast<int32_t>(m), std::move(models[m]));
    }
  }

  // ---- supervision -------------------------------------------------------------------------

  // Exits the process when a forward call hangs or memory runs past the cap: the agent restarts
  // the worker and the master re-leases its shards (see engine.h).
  void Watchdog() {
    while (!stop) {
      std::this_thread::sleep_for(milliseconds(200));
      const int64_t now = MonoMillis();
      for (size_t i = 0; i < busy_since.size(); ++i) {
        const int64_t since = busy_since[i].load();
        if (since != 0 && now - since > spec.predict_timeout_ms) {
          spdlog::error(
              "a forward call of model {} has run for {} ms (infer.predict_timeout_ms "
              "{}): the predictor hung; exiting so that the agent restarts this worker",
              spec.models[i / kMaxThreadsPerStage].name, now - since, spec.predict_timeout_ms);
          spdlog::default_logger()->flush();
          std::_Exit(kExitPredictorHung);
        }
      }
      CheckMemory();
    }
  }

  void CheckMemory() {
    if (spec.memory_limit_mb <= 0) return;
    const int64_t rss = ReadProcessStats(::getpid()).rss_bytes;
    if (rss > spec.memory_limit_mb * 1024 * 1024) {
      spdlog::error(
          "resident memory {} MiB is over infer.memory_limit_mb {}; exiting so that the "
          "agent restarts this worker",
          rss / (1024 * 1024), spec.memory_limit_mb);
      spdlog::default_logger()->flush();
      std::_Exit(kExitMemoryLimit);
    }
  }
};

InferEngine::InferEngine(InferSpec spec, sdk::Worker* worker)
    : impl_(std::make_unique<Impl>(std::move(spec), worker)) {}

InferEngine::~InferEngine() = default;

EngineStats InferEngine::stats() const {
  EngineStats s;
  s.shards_committed = impl_->committed;
  s.shards_failed = impl_->failed;
  s.shards_fenced = impl_->fenced;
  s.records = impl_->records;
  s.errors = impl_->errors;
  s.scale_events = impl_->scale_events;
  s.final_counts = impl_->counts;
  return s;
}

Status InferEngine::Run() {
  Impl& d = *impl_;
  const InferSpec& spec = d.spec;
  if (spec.models.size() > kMaxModels) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxModels) + " models");
  }
  ConfigureRuntimeThreads(spec.intra_op_threads);
  // Fail fast on a broken model, before holding any lease.
  for (size_t m = 0; m < spec.models.size(); ++m) {
    auto model = d.TakeModel(static_cast<int32_t>(m));
    if (!model.ok()) return model.status();
    d.ReturnModel(static_cast<int32_t>(m), std::move(*model));
  }
  d.CheckMemory();  // the models alone may be over the cap: say so before taking a shard
  std::thread watchdog([&] { d.Watchdog(); });

  const int cores = CoreCount();
  auto cap = [&](int32_t v) { return std::min(v == 0 ? cores : v, kMaxThreadsPerStage); };
  std::vector<std::unique_ptr<StagePool>> pools;
  StagePool* readers = nullptr;
  StagePool* preprocessors = nullptr;
  StagePool* writers = nullptr;
  std::vector<StagePool*> predictors;
  if (!spec.pipeline.pipelined) {
    pools.push_back(std::make_unique<StagePool>(
        [&](int i, const std::atomic<bool>& r) { d.SequentialLoop(i, r); }));
    pools.back()->Resize(spec.pipeline.readers);
  } else {
    const size_t q = static_cast<size_t>(spec.pipeline.queue_batches);
    d.raw = std::make_unique<BoundedQueue<RawBatch>>(q);
    for (size_t m = 0; m < spec.models.size(); ++m) {
      d.model_in.push_back(std::make_unique<BoundedQueue<ModelBatch>>(q));
    }
    d.write = std::make_unique<BoundedQueue<PredictedBatch>>(q);
    d.counts.readers = std::min(spec.pipeline.readers, kMaxThreadsPerStage);
    d.counts.preprocessors = std::min(spec.pipeline.preprocessors, kMaxThreadsPerStage);
    d.counts.writers = std::min(spec.pipeline.writers, kMaxThreadsPerStage);
    // Downstream stages first, so that nothing upstream blocks on a queue nobody drains.
    pools.push_back(std::make_unique<StagePool>(
        [&](int i, const std::atomic<bool>& r) { d.WriterLoop(i, r); }));
    writers = pools.back().get();
    writers->Resize(d.counts.writers);
    for (size_t m = spec.models.size(); m-- > 0;) {
      pools.push_back(std::make_unique<StagePool>([&d, m](int i, const std::atomic<bool>& r) {
        d.PredictLoop(static_cast<int32_t>(m), i, r);
      }));
      predictors.insert(predictors.begin(), pools.back().get());
    }
    for (size_t m = 0; m < spec.models.size(); ++m) {
      d.counts.predictors.push_back(std::min(spec.models[m].predictors, kMaxThreadsPerStage));
      predictors[m]->Resize(d.counts.predictors[m]);
    }
    pools.push_back(std::make_unique<StagePool>(
        [&](int i, const std::atomic<bool>& r) { d.PreprocessLoop(i, r); }));
    preprocessors = pools.back().get();
    preprocessors->Resize(d.counts.preprocessors);
    pools.push_back(std::make_unique<StagePool>(
        [&](int i, const std::atomic<bool>& r) { d.ReaderLoop(i, r); }));
    readers = pools.back().get();
    readers->Resize(d.counts.readers);
  }

  // The autoscaler samples queue fill levels every 100 ms and decides once a period.
  std::thread autoscaler;
  if (spec.pipeline.pipelined && spec.pipeline.autoscale) {
    autoscaler = std::thread([&] {
      StageCounts caps;
      caps.readers = cap(spec.pipeline.max_readers);
      caps.preprocessors = cap(spec.pipeline.max_preprocessors);
      caps.writers = cap(spec.pipeline.max_writers);
      caps.predictors.assign(spec.models.size(), cap(spec.pipeline.max_predictors));
      StageAutoscaler scaler(caps, spec.models.size());
      StageLoad sum;
      int samples = 0;
      int64_t period_start = MonoMillis();
      double cpu_start = ReadProcessStats(::getpid()).cpu_seconds;
      // Busy fraction of a stage over the period: its threads' working time over their time.
      auto busy = [&](std::atomic<int64_t>& us, int threads, int64_t period_ms) {
        const double worked = static_cast<double>(us.exchange(0));
        return worked / (static_cast<double>(period_ms) * 1000.0 * std::max(1, threads));
      };
      while (!d.stop) {
        std::this_thread::sleep_for(milliseconds(100));
        sum.raw_fill += d.raw->fill();
        sum.model_fill.resize(spec.models.size());
        for (size_t m = 0; m < spec.models.size(); ++m) sum.model_fill[m] += d.model_in[m]->fill();
        sum.write_fill += d.write->fill();
        ++samples;
        const int64_t now = MonoMillis();
        if (now - period_start < spec.pipeline.autoscale_period_ms) continue;
        StageLoad load = sum;
        load.raw_fill /= samples;
        for (double& f : load.model_fill) f /= samples;
        load.write_fill /= samples;
        const double cpu = ReadProcessStats(::getpid()).cpu_seconds;
        load.cpu = (cpu - cpu_start) / (static_cast<double>(now - period_start) / 1000.0) / cores;
        load.preprocess_busy =
            busy(d.preprocess_busy_us, d.counts.preprocessors, now - period_start);
        load.writer_busy = busy(d.writer_busy_us, d.counts.writers, now - period_start);
        for (size_t m = 0; m < spec.models.size(); ++m) {
          load.predictor_busy.push_back(
              busy(d.predictor_busy_us[m], d.counts.predictors[m], now - period_start));
        }
        StageCounts next = scaler.Decide(load, d.counts);
        if (!(next == d.counts)) {
          d.scale_events.fetch_add(1);
          spdlog::info(
              "autoscale: readers {} preprocessors {} predictors {} writers {} (queue fill raw "
              "{:.2f} models {:.2f} write {:.2f}; busy preprocess {:.2f} predict {:.2f} write "
              "{:.2f}; cpu {:.2f})",
              next.readers, next.preprocessors, fmt::join(next.predictors, "/"), next.writers,
              load.raw_fill, fmt::join(load.model_fill, "/"), load.write_fill, load.preprocess_busy,
              fmt::join(load.predictor_busy, "/"), load.writer_busy, load.cpu);
          if (!d.no_more_shards) readers->Resize(next.readers);
          preprocessors->Resize(next.preprocessors);
          for (size_t m = 0; m < predictors.size(); ++m) predictors[m]->Resize(next.predictors[m]);
          writers->Resize(next.writers);
          d.counts = next;
        }
        sum = StageLoad{};
        samples = 0;
        period_start = now;
        cpu_start = cpu;
      }
    });
  }

  Status result;
  {
    std::unique_lock<std::mutex> lock(d.run_mu);
    d.run_cv.wait(lock, [&] { return !d.fatal.ok() || (d.no_more_shards && d.in_flight == 0); });
    result = d.fatal;
  }
  d.stop = true;
  if (d.raw) d.raw->Close();
  for (auto& q : d.model_in) q->Close();
  if (d.write) d.write->Close();
  // Readers first (they feed everything else), then the rest.
  for (auto it = pools.rbegin(); it != pools.rend(); ++it) (*it)->JoinAll();
  if (autoscaler.joinable()) autoscaler.join();
  watchdog.join();
  return result;
}

}  // namespace baton::infer
