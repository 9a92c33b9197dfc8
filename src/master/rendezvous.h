// Rendezvous: how the workers of a job agree on who trains together. The master is the one party
// that knows which workers exist (its agents start them, its monitor sees them die), so it decides
// membership here instead of letting workers wait out timeouts for each other.
//
// A *generation* is one membership: its members, in rank order (node rank, then local rank, so a
// rank's node and local index are known to topology-aware collectives), and an id that grows by
// one each time a generation forms. Workers Join; the next generation forms as soon as every
// planned worker has joined (the workers the live nodes' agents run, once every node the job
// expects has registered at least once; a dead node plans none), or `timeout_ms` after the first
// join with at least `min_workers` joined. The active generation ends on a membership change: a
// member exits or its node dies (Leave), a worker that is not a member joins (a node came back,
// `baton scale` up), or a member joins again without knowing the generation (it restarted and lost
// its state). Survivors see the end on their next poll and join the next generation: nobody waits
// out a timeout for a peer the master knows to be dead.
//
// Not thread-safe: the master serializes calls (master_core.cc). Times are the master's run clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace baton::master {

struct RendezvousOptions {
  // With fewer than every planned worker joined, form anyway this long after the first join...
  int64_t timeout_ms = 30000;
  // ...if at least this many joined.
  int32_t min_workers = 1;
};

struct RendezvousMember {
  std::string worker_id;  // "<node_id>/<local_rank>"
  int32_t node_rank = 0;
  int32_t local_rank = 0;

  friend bool operator==(const RendezvousMember&, const RendezvousMember&) = default;
};

struct GenerationInfo {
  int64_t id = 0;                         // 1, 2, ...; 0: none formed yet
  std::vector<RendezvousMember> members;  // index = rank
  bool active = false;                    // false once ended (or before the first forms)
  std::string end_reason;                 // why it ended, for the log and the workers

  // The member's rank, or -1.
  int RankOf(const std::string& worker_id) const;
  // Distinct nodes among the members, and the largest number of members on one node.
  int Nodes() const;
  int MaxLocal() const;
};

// The answer to a Join or a poll.
struct JoinState {
  // Formed: `generation` is active and holds the caller at `rank`. Not formed: keep polling.
  bool formed = false;
  int rank = -1;
  GenerationInfo generation;  // the current generation (the formed one, or the last one)
  int32_t waiting = 0;        // joined for the next generation, the caller included
  int32_t planned = 0;        // workers expected for it
};

class Rendezvous {
 public:
  explicit Rendezvous(RendezvousOptions options) : options_(options) {}

  // Restores the generation persisted by an earlier life of the master (Serialize), as active:
  // its members were training when that master died, and still are if nothing changed. The
  // monitor ends it soon if its members no longer match what the agents report.
  Status Restore(const std::string& serialized);
  std::string Serialize() const;

  // The workers the live nodes' agents run now; `complete`: every node the job expects has
  // registered (until then the planned set is partial and only the timeout forms a generation).
  // May form the next generation (every planned worker has joined).
  void SetPlanned(std::vector<RendezvousMember> planned, bool complete, int64_t now_ms);
  // A worker asks to be in the next generation. `known_generation`: the last generation this
  // process belonged to (0: none, it just started). `polling`: the process joined already and
  // asks whether its generation formed. A first (non-polling) join by a member of the active
  // generation ends it: the member restarted, or a collective of that generation failed for it.
  JoinState Join(const RendezvousMember& member, int64_t known_generation, bool polling,
                 int64_t now_ms);
  // A worker exited or its node died: it leaves the waiting set and ends the generation it is in.
  void Leave(const std::string& worker_id, const std::string& reason, int64_t now_ms);
  // Ends the active generation (a controller action, an explicit request). No-op if none is.
  void End(const std::string& reason);
  // Forms a generation whose timeout has run out. Call periodically.
  void Tick(int64_t now_ms);

  const GenerationInfo& generation() const { return generation_; }
  // Members of the active generation and waiting workers whose id starts with `prefix`.
  std::vector<std::string> WorkersWithPrefix(const std::string& prefix) const;
  // True when the persisted state (Serialize) changed since the last call; clears the flag.
  bool TakeDirty();

 private:
  void MaybeForm(int64_t now_ms);
  void Form();
  JoinState StateFor(const std::string& worker_id) const;

  RendezvousOptions options_;
  GenerationInfo generation_;
  std::vector<RendezvousMember> planned_;
  bool planned_complete_ = false;
  std::vector<RendezvousMember> waiting_;  // joined for the next generation
  std::optional<int64_t> first_join_ms_;   // of the current waiting set
  bool dirty_ = false;
};

}  // namespace baton::master
