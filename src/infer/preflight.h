// The checks of an infer job that need its data and its models, run by `baton run` and
// `baton validate` (through `baton-infer-worker --check`) before anything starts:
//   - every column the schema names exists in every input file's header (or infer.header);
//   - every model file loads as TorchScript;
//   - the first model's forward() takes as many tensors as infer.tensors declares (one image
//     tensor for images), and each model accepts a dry-run batch of two synthetic records and
//     returns one row per record; a crop-emitting parent returns (boxes [N,K,4], scores [N,K]).
// Problems come back as "SPEC:LINE: key: ..." lines, like the job spec's own.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "infer/infer_spec.h"

namespace baton::infer {

Status Preflight(const InferSpec& spec, const std::vector<std::string>& input_files);

}  // namespace baton::infer
