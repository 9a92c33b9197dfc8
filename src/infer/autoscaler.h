// The intra-node stage autoscaler (AntBatchInfer §4): a pure decision function, so that its rule
// is testable without threads or timing. The engine samples queue fill levels and CPU use over a
// period and applies the decision:
//   - the first model's input queue runs dry (mean fill < 0.1): add a preprocessor if raw
//     batches are waiting for one (raw fill >= 0.1), else add a reader;
//   - a model's input queue is full (mean fill > 0.9) and the cores are not (CPU < 85%): add a
//     predictor for that model;
//   - the write queue is full (> 0.9): add a writer;
//   - a stage whose input stayed empty for 3 periods loses a thread (never below 1);
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
};

class StageAutoscaler {
 public:
  StageAutoscaler(StageCounts caps, std::size_t models);
  // The counts to run for the next period.
  StageCounts Decide(const StageLoad& load, const StageCounts& now);

 private:
  // Per stage: periods left frozen after a change, consecutive empty periods.
  struct Memo {
    int frozen = 0;
    int empty = 0;
  };
  bool Step(Memo& memo, double input_fill, bool want_more, int32_t cap, int32_t* count);

  StageCounts caps_;
  Memo readers_, preprocessors_, writers_;
  std::vector<Memo> predictors_;
};

}  // namespace baton::infer
