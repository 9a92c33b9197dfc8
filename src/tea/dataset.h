// Loading a temporal entity-alignment dataset in the TEA-GNN file layout.
//
// A dataset folder holds two knowledge graphs that share one entity id space (`triples_1`,
// `triples_2`), the reference alignment (`sup_pairs` followed by `ref_pairs`) and, optionally,
// `ent_ids_1/2` and `time_id`. All files are tab- or space-separated without a header; CRLF line
// ends are accepted. See shared/data/tea/README.md for the format.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace baton::tea {

// One fact line. A 4-column fact (`h r t tau`) has time_end == time_begin and has_end == false;
// a 5-column fact (`h r t tau_b tau_e`) has has_end == true. Time id 0 means "unknown" in YAGO.
struct Fact {
  int32_t head = 0;
  int32_t rel = 0;
  int32_t tail = 0;
  int32_t time_begin = 0;
  int32_t time_end = 0;
  bool has_end = false;
};

struct Dataset {
  std::string dir;
  std::vector<Fact> facts;  // triples_1 then triples_2, in file order
  // Reference alignment: sup_pairs ++ ref_pairs, file order, (KG1 id, KG2 id).
  std::vector<std::pair<int32_t, int32_t>> pairs;
  // True when time id 0 stands for "unknown" (time_id maps 0 to -inf, or there is no time_id file,
  // as in the official code). Decides whether the default mode skips id 0 in the temporal
  // similarity (quirk Q12).
  bool time_zero_is_unknown = true;
  // Per entity id (size: the largest id used + 1): which graph it belongs to (1 or 2; 0 = an id
  // no file mentions) and its name from ent_ids_1/2 ("" without those files). The side comes
  // from ent_ids_1/2 when present, else from the triples file that mentions the entity.
  std::vector<int8_t> side;
  std::vector<std::string> names;
};

// Reads `dir`. Errors (kNotFound for a missing file, kInvalidArgument for a bad record) name the
// file and the 1-based line: a malformed line, a negative id, an entity id of a pair that never
// occurs in the graph or on the wrong side, a time id outside `time_id`.
Result<Dataset> LoadDataset(const std::string& dir);

// The seed/test split of the official protocol: the first `num_seeds` pairs are seeds, the rest is
// the test set. Fails unless 0 < num_seeds < pairs.size(), or <= pairs.size() with
// `allow_empty_test` (aligning entities without test labels).
struct Split {
  std::vector<std::pair<int32_t, int32_t>> seeds;
  std::vector<std::pair<int32_t, int32_t>> test;
};
Result<Split> SplitPairs(const Dataset& data, int num_seeds, bool allow_empty_test = false);

}  // namespace baton::tea
