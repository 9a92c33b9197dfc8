// Few-shot evaluation of a meta-learned (or plain) model: the AUC of the query rows' scores over
// all ranks' held-out tasks.
#pragma once

#include <vector>

#include "comm/process_group.h"
#include "common/status.h"
#include "meta/meta_trainer.h"

namespace baton::meta {

// The rows' AUC (train::BinaryAuc); 0.5 when either class is absent.
double Auc(const std::vector<ScoredRow>& rows);

// Every rank's rows, concatenated in rank order, on every rank (a collective; `group` may be
// null for one process).
Result<std::vector<ScoredRow>> GatherScores(comm::ProcessGroup* group,
                                            const std::vector<ScoredRow>& mine);

}  // namespace baton::meta
