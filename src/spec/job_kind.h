// Job kinds as plug-ins. A spec's `kind:` names one registered JobKind; the control plane (the job
// spec reader, `baton run`'s preflight) asks the kind what it needs and never tests a kind's name.
// `command` (workers run worker.command, any program using the SDK) is built in; other kinds
// register from their own folder (src/infer/infer_kind.cc registers `infer`), linked into each
// program that reads specs as an object library so that the registration runs.
//
// A kind's registration code is linked into `baton`: it must not pull in the kind's runtime (for
// infer: no torch). Checks that need the runtime run as a separate program (PreflightCommand).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace baton {

struct JobSpec;

class JobKind {
 public:
  virtual ~JobKind() = default;

  // The value of `kind:` that selects this kind.
  virtual std::string_view Name() const = 0;
  // The top-level key of the kind's own section (e.g. "infer"), or "" when it has none. A spec of
  // this kind must have that section, as a mapping; a spec of another kind must not. Its contents
  // are the kind's to check (in PreflightCommand's program, with spec/schema_reader.h).
  virtual std::string_view Section() const { return {}; }
  // worker.command when the spec gives none; empty: worker.command is required.
  virtual std::vector<std::string> DefaultCommand(const JobSpec& spec) const { return {}; }
  // Environment every worker gets unless worker.env sets the same variable. `section` is the
  // kind's section (a mapping, or undefined when the kind has none); it may hold invalid values,
  // which the kind's checker reports, so read it leniently.
  virtual std::map<std::string, std::string> WorkerEnv(const YAML::Node& section) const {
    return {};
  }
  // A program that validates the job before anything starts (argv), exiting 0 when it is fine,
  // 2 with "FILE:LINE: key.path: ..." lines on stdout/stderr when it is not; empty: no check.
  virtual std::vector<std::string> PreflightCommand(const JobSpec& spec) const { return {}; }
};

// The shape every model-running kind has (infer, train, meta): a section named after the kind,
// workers that are one program installed next to baton (`PROGRAM --spec JOB.yaml`), the model
// runtime's thread pools sized from the section's intra_op_threads (ThreadEnv below, plus
// `extra_thread_vars`), and the preflight `PROGRAM --check --spec JOB.yaml`.
class WorkerProgramKind : public JobKind {
 public:
  WorkerProgramKind(std::string_view name, std::string_view program,
                    std::vector<std::string> extra_thread_vars = {})
      : name_(name), program_(program), extra_thread_vars_(std::move(extra_thread_vars)) {}
  std::string_view Name() const override { return name_; }
  std::string_view Section() const override { return name_; }
  std::vector<std::string> DefaultCommand(const JobSpec& spec) const override;
  // The math libraries under a model runtime size their pools when they load, before the
  // worker's main() runs: the agent sets them when it starts the worker. The kind's checker
  // validates the value; a bad one is left to its message.
  std::map<std::string, std::string> WorkerEnv(const YAML::Node& section) const override;
  std::vector<std::string> PreflightCommand(const JobSpec& spec) const override;

 private:
  std::string_view name_, program_;
  std::vector<std::string> extra_thread_vars_;
};

// Registers `kind` (with static storage duration) under kind->Name(). Returns true, so that a
// kind can register from a namespace-scope initializer. A second kind of the same name is a
// programming error: it aborts.
bool RegisterJobKind(const JobKind* kind);
// The kind named `name`, or null.
const JobKind* FindJobKind(std::string_view name);
// Every registered kind, sorted by name.
std::vector<const JobKind*> JobKinds();

// The environment that sizes the math libraries under a model runtime (OpenMP, OpenBLAS, MKL) to
// the section's `intra_op_threads` (1 when absent or invalid: the kind's checker reports that),
// plus each of `extra` set to the same count. They size their pools when they load, before a
// worker's main() runs, so an agent must set them when it starts the worker.
std::map<std::string, std::string> ThreadEnv(const YAML::Node& section,
                                             const std::vector<std::string>& extra = {});

// `name` in the directory of the running executable (kinds' programs are installed next to
// baton); `name` alone (looked up on PATH) when that directory cannot be found.
std::string SiblingProgram(std::string_view name);

}  // namespace baton
