// The job-kind interface (spec/job_kind.h), with a kind registered by this test alone: the spec
// reader and `baton run`'s preflight take everything kind-specific from the kind, so a new kind
// needs no change to the control plane.
#include "spec/job_kind.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "launch/preflight.h"
#include "spec/job_spec.h"
#include "spec/schema_reader.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

// `kind: probe`: a `probe:` section whose `exit` is the exit status of its checker, which prints
// a problem line first; its workers default to `sh -c 'exit 0'` with PROBE_LEVEL from the section.
class ProbeKind final : public JobKind {
 public:
  std::string_view Name() const override { return "probe"; }
  std::string_view Section() const override { return "probe"; }
  std::vector<std::string> DefaultCommand(const JobSpec& spec) const override {
    return {"sh", "-c", "exit 0"};
  }
  std::map<std::string, std::string> WorkerEnv(const YAML::Node& section) const override {
    std::string level = "low";
    if (section.IsMap() && section["level"] && section["level"].IsScalar()) {
      level = section["level"].Scalar();
    }
    return {{"PROBE_LEVEL", level}, {"PROBE_KIND", "probe"}};
  }
  std::vector<std::string> PreflightCommand(const JobSpec& spec) const override {
    return {"/bin/sh", "-c",
            "echo \"$0:1: probe.exit: checked\"; exit $(sed -n 's/.*exit: \\([0-9]*\\).*/\\1/p' "
            "\"$0\")",
            spec.spec_path};
  }
};
const ProbeKind kProbe;
[[maybe_unused]] const bool kRegistered = RegisterJobKind(&kProbe);

class JobKindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "job_kind_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/rows.txt") << "a\nb\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<JobSpec> Parse(const std::string& yaml) {
    std::ofstream(dir_ + "/job.yaml") << yaml;
    return LoadJobSpec(dir_ + "/job.yaml");
  }

  std::string dir_;
};

TEST_F(JobKindTest, TheKindGivesTheDefaultCommandAndWorkerEnvironment) {
  auto spec = Parse(
      "name: j\nkind: probe\ninput: {paths: [rows.txt]}\nworker: {env: {PROBE_KIND: mine}}\n"
      "probe: {level: high}\n");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->kind, "probe");
  EXPECT_EQ(spec->worker.command, (std::vector<std::string>{"sh", "-c", "exit 0"}));
  EXPECT_EQ(spec->worker.env.at("PROBE_LEVEL"), "high");
  EXPECT_EQ(spec->worker.env.at("PROBE_KIND"), "mine");  // the user's value wins
}

TEST_F(JobKindTest, TheKindsSectionIsRequiredWithItAndRefusedWithoutIt) {
  const std::string file = dir_ + "/job.yaml";
  auto missing = Parse("name: j\nkind: probe\ninput: {paths: [rows.txt]}\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            file + ":2: probe: missing (kind: probe needs its probe section)");
  auto refused =
      Parse("name: j\ninput: {paths: [rows.txt]}\nworker: {command: [cat]}\nprobe: {}\n");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), file + ":4: probe: only with kind: probe");
  auto not_a_map = Parse("name: j\nkind: probe\ninput: {paths: [rows.txt]}\nprobe: [1]\n");
  ASSERT_FALSE(not_a_map.ok());
  EXPECT_EQ(not_a_map.status().message(), file + ":4: probe: expected a mapping, got a list");
  // The registered kinds are the accepted values and their sections the accepted keys.
  auto unknown = Parse(
      "name: j\nkind: prob\ninput: {paths: [rows.txt]}\nworker: {command: [cat]}\nprobes: {}\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            file + ":2: kind: expected one of command, probe, got \"prob\"\n" + file +
                ":5: probes: unknown key (did you mean \"probe\"?)");
}

// The preflight runs the kind's checker as a separate process: exit 0 is fine, exit 2 carries the
// checker's problem lines, anything else is a failed check.
TEST_F(JobKindTest, PreflightRunsTheKindsChecker) {
  auto fine = Parse("name: j\nkind: probe\ninput: {paths: [rows.txt]}\nprobe: {exit: 0}\n");
  ASSERT_TRUE(fine.ok()) << fine.status().message();
  EXPECT_TRUE(launch::PreflightJob(*fine).ok());

  auto problems = Parse("name: j\nkind: probe\ninput: {paths: [rows.txt]}\nprobe: {exit: 2}\n");
  ASSERT_TRUE(problems.ok()) << problems.status().message();
  Status s = launch::PreflightJob(*problems);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), problems->spec_path + ":1: probe.exit: checked");

  auto broken = Parse("name: j\nkind: probe\ninput: {paths: [rows.txt]}\nprobe: {exit: 3}\n");
  ASSERT_TRUE(broken.ok()) << broken.status().message();
  s = launch::PreflightJob(*broken);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("the probe checker /bin/sh failed (exit 3)"), std::string::npos)
      << s.message();

  auto command = Parse("name: j\ninput: {paths: [rows.txt]}\nworker: {command: [cat]}\n");
  ASSERT_TRUE(command.ok()) << command.status().message();
  EXPECT_TRUE(launch::PreflightJob(*command).ok());  // the built-in kind has no checker
}

}  // namespace
}  // namespace baton
