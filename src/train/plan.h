// The sharding plan of a `kind: train` job (`baton train plan JOB.yaml`, run by
// `baton-train-worker --plan`): the PaRO-DP cost model (paro/cost_model.h) filled from the job's
// model (its size and element type), a measured step of it on the job's first rows and a measured
// optimizer update on this machine, with the cluster's shape and link speeds given by the user
// (one machine cannot measure a cluster's links; bench/paro measures an emulated one). Prints
// every strategy's model state (the paper's memory column), what a kind: train rank holds under
// it (more: the model's own buffers, and the sharded step's copies), the predicted step time, and
// picks the fastest that kind: train can run (the parameters stay whole: NNN, NNG, NGG, NIG, NII)
// whose kind: train footprint fits the memory budget.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "common/status.h"
#include "train/model.h"
#include "train/train_spec.h"

namespace baton::train {

struct PlanOptions {
  int nodes = 0;                  // 0: the spec's nodes
  int per_node = 0;               // 0: the spec's workers per node
  double intra_gbit_per_s = 100;  // between ranks of a node; default 100 (NVLink-class or memory)
  double inter_gbit_per_s = 10;   // a node's link; default 10 (10 GbE)
  double intra_latency_us = 5;    // per ring step inside a node; default 5
  double inter_latency_us = 30;   // per ring step across nodes; default 30
  double memory_gb = 0;           // per rank for model state; 0 (default): no limit
};

// Measures the model's step on `batch` (the rows one rank trains a step) and an optimizer update,
// predicts, and writes the table and the pick to `out`. InvalidArgument for bad options or when
// nothing kind: train can run fits.
Status PrintPlan(const TrainSpec& spec, int spec_nodes, int spec_workers, TrainableModel& model,
                 const std::vector<infer::HostTensor>& batch, int64_t batch_rows,
                 const PlanOptions& options, std::FILE* out);

}  // namespace baton::train
