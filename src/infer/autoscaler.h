// The intra-node stage autoscaler (AntBatchInfer §4): a pure decision function, so that its rule
// is testable without threads or timing. The engine samples queue fill levels and CPU use over a
// period and applies the decision:
//   - the first model's input queue runs dry (mean fill < 0.1): add a preprocessor if they hold
//     it back (raw batches wait for them, fill >= 0.1, or they are busy > 70% of the time), else
//     add a reader;
//   - a model's input queue is full (mean fill > 0.9) and the cores are not (CPU < 85%): add a
//     predictor for that model;
//   - the write queue is full (> 0.9): add a writer;
//   - a stage whose threads were busy < 25% of the time for 3 periods loses a thread (never below
//     1; readers never shrink). Busy time, not an empty input queue: a downstream predictor
//     drains its queue into its re-batching buffer at once and still works all the time;
//   - a stage that just changed is left alone for the next 2 periods (hysteresis).
// Every count stays within its cap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace baton::infer {

struct StageCounts {
  int32_t readers = 1, preprocessors = 1, writers = 1;
  std::vector<int32_t> predictors;  // per model

  bool operator==(const StageCounts&) const = default;
};

// Mean fill levels (0..1) over one period, and CPU use of this process over it as a fraction of
// the cores (0..1).
struct StageLoad {
  double raw_fill = 0;
  std::vector<double> model_fill;  // per model: its input queue
  double write_fill = 0;
  double cpu = 0;
  // Fraction of the stage's thread time spent working (not waiting on a queue), 0..1.
  double preprocess_busy = 0;
  std::vector<double> predictor_busy;  // per model
  double writer_busy = 0;
};

class StageAutoscaler {
 public:
  StageAutoscaler(StageCounts caps, std::size_t models);
  // The counts to run for the next period.
  StageCounts Decide(const StageLoad& load, const StageCounts& now);

 private:
  // Per stage: periods left frozen after a change, consecutive idle periods.
  struct Memo {
    int frozen = 0;
    int idle = 0;
  };
  bool Step(Memo& memo, bool idle, bool want_more, int32_t cap, int32_t* count);

  StageCounts caps_;
  Memo readers_, preprocessors_, writers_;
  std::vector<Memo> predictors_;
};

}  // namespace baton::infer
