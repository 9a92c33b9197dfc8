// The `baton` command: one binary for every role, so the same install runs a job on one machine
// (`baton run`) or across machines (`baton master` here, `baton agent` on every node).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "common/defaults.h"
#include "common/files.h"
#include "common/job_limits.h"
#include "common/parent_death.h"
#include "common/secret.h"
#include "launch/local_run.h"
#include "launch/preflight.h"
#include "launch/status_client.h"
#include "master/master.h"
#include "meta/io/meta_command.h"
#include "spec/job_spec.h"
#include "tea/tea_command.h"
#include "train/train_command.h"

namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<baton::master::Master*> g_master{nullptr};

void OnSignal(int) {
  g_interrupted = true;
  // Shutdown only flips a flag and notifies a condition variable.
  if (auto* m = g_master.load()) m->Shutdown();
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::string SelfExe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("baton") : p.string();
}

// Token for clients: --token-file, else STATE_DIR/token, else $BATON_JOB_TOKEN.
baton::Result<std::string> ResolveToken(const std::string& token_file,
                                        const std::string& state_dir) {
  if (!token_file.empty()) return baton::LoadSecret(token_file);
  if (!state_dir.empty()) return baton::LoadSecret(baton::master::TokenPath(state_dir));
  if (const char* t = std::getenv(baton::kTokenEnv)) return std::string(t);
  return baton::Status::InvalidArgument(
      "no job token: pass --token-file, --state-dir, or set BATON_JOB_TOKEN");
}

// How `baton status` and `baton scale` find a running job: its state dir, or an explicit master
// address and token file.
struct JobTarget {
  std::string state_dir, master, token_file;
};

void AddJobTargetOptions(CLI::App* cmd, JobTarget* t) {
  cmd->add_option("--state-dir", t->state_dir,
                  "The job's state dir (reads master.addr and token from it)");
  cmd->add_option("--master", t->master, "Master address host:port (default: from state dir)");
  cmd->add_option("--token-file", t->token_file, "Job token file (default: STATE_DIR/token)");
}

// (master address, token) of the job.
baton::Result<std::pair<std::string, std::string>> ResolveJobTarget(const JobTarget& t) {
  std::string address = t.master;
  if (address.empty() && !t.state_dir.empty()) {
    auto a = baton::ReadFile(baton::master::MasterAddrPath(t.state_dir));
    if (a.ok()) address = a->substr(0, a->find('\n'));
  }
  if (address.empty()) {
    return baton::Status::InvalidArgument(
        "no master address: pass --master, or --state-dir of a running job");
  }
  BATON_ASSIGN_OR_RETURN(std::string token, ResolveToken(t.token_file, t.state_dir));
  return std::make_pair(address, token);
}

// `baton run` passes --supervisor-pid to the master and agents it starts: they die with it.
// False (after printing why) when that supervisor is already gone.
bool TieToSupervisor(const char* role, pid_t supervisor) {
  if (supervisor <= 0) return true;
  baton::Status s = baton::DieWithParent(supervisor);
  if (s.ok()) return true;
  std::fprintf(stderr, "baton %s: %s\n", role, s.message().c_str());
  return false;
}

int RunMaster(const std::string& spec_path, const std::string& state_dir, int port,
              bool release_leases) {
  auto spec = baton::LoadJobSpec(spec_path);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return 2;
  }
  if (!state_dir.empty()) spec->master.state_dir = std::filesystem::absolute(state_dir).string();
  baton::master::MasterOptions options;
  options.spec = std::move(*spec);
  options.port = port;
  options.release_recovered_leases = release_leases;
  auto master = baton::master::Master::Start(std::move(options));
  if (!master.ok()) {
    spdlog::error("{}", master.status().ToString());
    auto code = master.status().code();
    return code == baton::StatusCode::kInvalidArgument ||
                   code == baton::StatusCode::kPermissionDenied ||
                   code == baton::StatusCode::kFailedPrecondition
               ? 2
               : 1;
  }
  g_master = master->get();
  if (g_interrupted) (*master)->Shutdown();
  (*master)->Wait();
  g_master = nullptr;
  int code = (*master)->exit_code();
  master->reset();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  InstallSignalHandlers();
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  CLI::App app{
      "baton: runs deep-learning jobs on shared, flaky, uneven clusters.\n"
      "A per-job master leases data shards to workers; per-node agents supervise the workers.\n"
      "Start with `baton run JOB.yaml` (see docs/job-spec.md)."};
  app.require_subcommand(1);
  int exit_code = 0;

  // baton run
  auto* run = app.add_subcommand(
      "run",
      "Run a job on this machine: starts its master and agents, shows progress, resumes "
      "when run again on the same state dir. Exit 0 done, 1 failed, 2 bad spec, 130 "
      "interrupted.");
  std::string run_spec;
  run->add_option("spec", run_spec, "Job spec (YAML); see docs/job-spec.md")->required();
  run->callback([&] {
    baton::launch::LocalRunOptions o;
    o.spec_path = run_spec;
    o.baton_binary = SelfExe();
    exit_code = baton::launch::RunLocalJob(o, g_interrupted);
  });

  // baton master
  auto* master = app.add_subcommand(
      "master", "Serve one job's master (DDS, registry, status) until the job is over.");
  std::string master_spec, master_state;
  int master_port = 0;
  master->add_option("--spec", master_spec, "Job spec (YAML)")->required();
  master->add_option("--state-dir", master_state, "Override master.state_dir of the spec");
  master->add_option("--port", master_port,
                     "Port to listen on (0: master.port of the spec, or any free port)");
  bool master_release = false;
  master->add_flag(
      "--release-leases", master_release,
      "Return shards leased before this start to the queue at once: only when no "
      "worker of an earlier run can still be alive (baton run sets it on a fresh start)");
  pid_t master_supervisor = 0;
  master->add_option("--supervisor-pid", master_supervisor,
                     "Die with this process, the `baton run` that started this master (it "
                     "passes its own pid)");
  master->callback([&] {
    if (!TieToSupervisor("master", master_supervisor)) {
      exit_code = 1;
      return;
    }
    exit_code = RunMaster(master_spec, master_state, master_port, master_release);
  });

  // baton agent
  auto* agent = app.add_subcommand(
      "agent",
      "Run the node agent: registers with the master, starts and restarts this node's "
      "workers, heartbeats, and runs the master's actions.");
  baton::agent::AgentOptions agent_options;
  std::string agent_token_file;
  int64_t unreachable_ms = 0;
  pid_t agent_supervisor = 0;
  agent->add_option("--master", agent_options.master_address, "Master address host:port")
      ->required();
  agent->add_option("--node", agent_options.node_id, "Node id, unique within the job (no '/')")
      ->required();
  agent->add_option("--token-file", agent_token_file,
                    "File holding the job token (mode 0600); default: $BATON_JOB_TOKEN");
  agent->add_flag("--spare", agent_options.spare,
                  "Standby node: register and run no worker until the master moves work here "
                  "(a controller policy replacing a slow node)");
  agent->add_option("--master-address-file", agent_options.master_address_file,
                    "File to re-read the master address from after losing it (local backend)");
  agent
      ->add_option("--master-unreachable-ms", unreachable_ms,
                   "Give up after the master is unreachable this long (default: the job's "
                   "timeouts.master_unreachable_ms once registered, " +
                       std::to_string(baton::defaults::kMasterUnreachableMs) + " before)")
      ->check(CLI::PositiveNumber);
  agent->add_option("--supervisor-pid", agent_supervisor,
                    "Die with this process, the `baton run` that started this agent (it passes "
                    "its own pid)");
  agent->callback([&] {
    auto token = ResolveToken(agent_token_file, "");
    if (!token.ok()) {
      std::fprintf(stderr, "baton agent: %s\n", token.status().message().c_str());
      exit_code = 2;
      return;
    }
    agent_options.token = *token;
    if (unreachable_ms > 0)
      agent_options.master_unreachable = std::chrono::milliseconds(unreachable_ms);
    if (!TieToSupervisor("agent", agent_supervisor)) {
      exit_code = 1;
      return;
    }
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] [agent " + agent_options.node_id + "] %v");
    baton::Status s = baton::agent::RunAgent(agent_options, g_interrupted);
    if (!s.ok()) spdlog::error("{}", s.ToString());
    // FailedPrecondition: every worker spent its restart budget. A distinct code tells `baton run`
    // not to restart this agent, which would hand the workers a fresh budget.
    exit_code = s.ok() ? 0 : s.code() == baton::StatusCode::kFailedPrecondition ? 3 : 1;
  });

  // baton status
  auto* status = app.add_subcommand("status", "Show a running job's progress, nodes and workers.");
  JobTarget status_job;
  bool status_json = false;
  AddJobTargetOptions(status, &status_job);
  status->add_flag("--json", status_json, "Print the status as JSON");
  status->callback([&] {
    auto target = ResolveJobTarget(status_job);
    if (!target.ok()) {
      std::fprintf(stderr, "baton status: %s\n", target.status().message().c_str());
      exit_code = 2;
      return;
    }
    auto st = baton::launch::FetchStatus(target->first, target->second);
    if (!st.ok()) {
      std::fprintf(stderr, "baton status: %s\n", st.status().ToString().c_str());
      exit_code = 1;
      return;
    }
    std::cout << (status_json ? baton::launch::JsonStatus(*st) : baton::launch::HumanStatus(*st));
    if (status_json) std::cout << "\n";
  });

  // baton scale
  auto* scale = app.add_subcommand(
      "scale", "Change the number of workers per node of a running job, without stopping it.");
  JobTarget scale_job;
  int scale_workers = -1;
  AddJobTargetOptions(scale, &scale_job);
  scale
      ->add_option("--workers", scale_workers,
                   "Workers per node, 0.." + std::to_string(baton::kMaxWorkersPerNode) +
                       " (0 pauses the job)")
      ->required()
      ->check(CLI::Range(0, static_cast<int>(baton::kMaxWorkersPerNode)));
  scale->callback([&] {
    auto target = ResolveJobTarget(scale_job);
    if (!target.ok()) {
      std::fprintf(stderr, "baton scale: %s\n", target.status().message().c_str());
      exit_code = 2;
      return;
    }
    auto notified = baton::launch::ScaleWorkers(target->first, target->second, scale_workers);
    if (!notified.ok()) {
      std::fprintf(stderr, "baton scale: %s\n", notified.status().ToString().c_str());
      exit_code = 1;
      return;
    }
    std::printf("asked %d node(s) to run %d worker(s) each\n", *notified, scale_workers);
  });

  // baton validate
  auto* validate = app.add_subcommand("validate", "Check a job spec without running anything.");
  std::string validate_spec;
  validate->add_option("spec", validate_spec, "Job spec (YAML)")->required();
  validate->callback([&] {
    auto spec = baton::LoadJobSpec(validate_spec);
    if (!spec.ok()) {
      std::fprintf(stderr, "%s\n", spec.status().message().c_str());
      exit_code = 2;
      return;
    }
    if (baton::Status s = baton::launch::PreflightJob(*spec); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      exit_code = 2;
      return;
    }
    std::printf("%s: OK (job '%s', %zu input file(s))\n", validate_spec.c_str(), spec->name.c_str(),
                spec->input.paths.size());
  });

  baton::tea::AddTeaCommand(app, exit_code);
  baton::train::AddTrainCommand(app, exit_code);
  baton::meta::AddMetaCommand(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
