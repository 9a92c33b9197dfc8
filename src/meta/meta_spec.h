// The `meta:` section of a `kind: meta` job spec (docs/meta.md): G-Meta under the master. The
// job's input is the index of an episode file (`baton meta prepare` writes EPISODES.index.csv:
// one line per episode, so that the DDS leases episodes as records); the section names the
// episode file, the model and the meta-learning settings. The training runtime the job runs on
// is configured from it (`runtime`): one record per task, the meta-batch as the global batch.
#pragma once

#include <string>

#include "common/status.h"
#include "meta/meta_job.h"
#include "train/train_spec.h"

namespace baton::meta {

struct MetaSpec {
  std::string episodes;  // meta.episodes: the episode file (absolute); required
  MetaJobOptions job;    // meta.order, inner_steps, inner_lr, adapt, sparse_*, init_scale, seed
  // meta.model (the TorchScript meta model), meta.save (required), meta.tasks_per_step (the
  // global meta-batch, default 16), meta.outer_lr (Adam on θ_d, default 0.003),
  // meta.intra_op_threads (default 1), meta.checkpoint.every_steps (default 50) and .dir, read
  // into the runtime's spec with the input's format.
  train::TrainSpec runtime;
};

// Reads the `meta:` section (and input.format, input.skip_header, output.dir) of the job spec at
// `spec_path`. InvalidArgument lists every problem as "FILE:LINE: key.path: expected ...".
Result<MetaSpec> LoadMetaSpec(const std::string& spec_path);
Result<MetaSpec> ParseMetaSpec(const std::string& yaml_text, const std::string& spec_path);

}  // namespace baton::meta
