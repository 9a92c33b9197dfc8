// The infer section of a job spec: defaults, the DAG order, column ranges, and every problem
// reported with its line and key.
#include "infer/infer_spec.h"

#include <gtest/gtest.h>

namespace baton::infer {
namespace {

constexpr char kHead[] = R"(name: t
kind: infer
input: {paths: [rows.csv], format: csv, skip_header: true}
output: {dir: out, suffix: .csv}
)";

Result<InferSpec> Parse(const std::string& infer) {
  return ParseInferSpec(std::string(kHead) + infer, "/tmp/job.yaml");
}

TEST(InferSpec, ReadsASingleModelJobWithDefaults) {
  auto spec = Parse(R"(infer:
  key: id
  tensors:
    - {name: dense, columns: [d0..d3]}
    - {name: sparse, type: int64, columns: [c0, c1]}
  models:
    - {name: m, path: model.pt}
)");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->input, InputKind::kCsv);
  EXPECT_EQ(spec->output, OutputFormat::kCsv);
  EXPECT_EQ(spec->output_dir, "/tmp/out");
  EXPECT_EQ(spec->errors_dir, "/tmp/out/_errors");
  ASSERT_EQ(spec->tensors.size(), 2u);
  EXPECT_EQ(spec->tensors[0].columns, (std::vector<std::string>{"d0", "d1", "d2", "d3"}));
  EXPECT_EQ(spec->tensors[1].type, TensorType::kInt64);
  ASSERT_EQ(spec->models.size(), 1u);
  EXPECT_EQ(spec->models[0].path, "/tmp/model.pt");
  EXPECT_EQ(spec->models[0].batch_size, 64);
  EXPECT_TRUE(spec->models[0].write);
  EXPECT_TRUE(spec->pipeline.pipelined);
  EXPECT_TRUE(spec->pipeline.autoscale);
  EXPECT_DOUBLE_EQ(spec->max_error_rate, 0.01);
  EXPECT_EQ(spec->predict_timeout_ms, 60000);
}

TEST(InferSpec, OrdersTheDagParentsFirstAndWritesOnlyLeavesByDefault) {
  auto spec = ParseInferSpec(R"(name: t
kind: infer
input: {paths: [m.txt], format: images}
output: {dir: out}
infer:
  models:
    - {name: cls, path: c.pt, after: det, emit: crops, crop_width: 32, crop_height: 48}
    - {name: det, path: d.pt}
)",
                             "/tmp/job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(spec->models.size(), 2u);
  EXPECT_EQ(spec->models[0].name, "det");
  EXPECT_EQ(spec->models[1].name, "cls");
  EXPECT_FALSE(spec->models[0].write);
  EXPECT_TRUE(spec->models[1].write);
  EXPECT_EQ(spec->models[1].emit, EmitKind::kCrops);
  EXPECT_EQ(spec->models[1].crop_height, 48);
  EXPECT_EQ(ChildrenOf(*spec, 0), std::vector<int>{1});
  EXPECT_EQ(spec->output, OutputFormat::kJsonl);
}

TEST(InferSpec, ReportsEveryProblemWithItsLineAndKey) {
  auto spec = Parse(R"(infer:
  key: id
  tensors:
    - {name: dense, type: float16, columns: [d3..d1]}
  models:
    - {name: m, path: model.pt, batch_size: 0, emitt: crops}
  pipeline: {mode: fast}
  max_error_rate: 2
)");
  ASSERT_FALSE(spec.ok());
  const std::string& m = spec.status().message();
  EXPECT_NE(m.find("/tmp/job.yaml:8: infer.tensors[0].type: expected one of float32, int64"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("job.yaml:8: infer.tensors[0].columns[0]: expected a column name or a range"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("job.yaml:10: infer.models[0].batch_size: expected a positive integer, got "
                   "\"0\""),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("job.yaml:10: infer.models[0].emitt: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("job.yaml:11: infer.pipeline.mode: expected one of pipelined, sequential"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("job.yaml:12: infer.max_error_rate: expected a number in [0, 1]"),
            std::string::npos)
      << m;
}

TEST(InferSpec, RejectsAGraphWithoutOneRootOrWithAnUnknownParent) {
  auto two_roots = Parse(R"(infer:
  key: id
  tensors: [{name: x, columns: [a]}]
  models:
    - {name: a, path: a.pt}
    - {name: b, path: b.pt}
)");
  ASSERT_FALSE(two_roots.ok());
  EXPECT_NE(two_roots.status().message().find("exactly one model without `after`"),
            std::string::npos);
  auto unknown = Parse(R"(infer:
  key: id
  tensors: [{name: x, columns: [a]}]
  models:
    - {name: a, path: a.pt}
    - {name: b, path: b.pt, after: z}
)");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("infer.models[1].after: expected the name of another "
                                            "model, got \"z\""),
            std::string::npos)
      << unknown.status().message();
}

TEST(InferSpec, CropsNeedImagesAndCsvNeedsAHeaderOrColumnNames) {
  auto spec = ParseInferSpec(R"(name: t
kind: infer
input: {paths: [rows.csv], format: csv}
output: {dir: out}
infer:
  key: id
  tensors: [{name: x, columns: [a]}]
  models:
    - {name: a, path: a.pt}
    - {name: b, path: b.pt, after: a, emit: crops}
)",
                             "/tmp/job.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("emit: crops only with input.format: images"),
            std::string::npos);
  EXPECT_NE(spec.status().message().find("infer.header: missing"), std::string::npos);
}

TEST(InferSpec, OutputSuffixPicksTheFormat) {
  auto spec = ParseInferSpec(R"(name: t
kind: infer
input: {paths: [rows.csv], format: csv, skip_header: true}
output: {dir: out, suffix: .parquet}
infer:
  key: id
  tensors: [{name: x, columns: [a]}]
  models: [{name: a, path: a.pt}]
)",
                             "/tmp/job.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("job.yaml:4: output.suffix: expected \".csv\" or "
                                         "\".jsonl\""),
            std::string::npos)
      << spec.status().message();
}

TEST(InferSpec, NonFinitePolicyDefaultsToNullAndIsChecked) {
  const std::string job = R"(infer:
  key: id
  tensors: [{name: x, columns: [a]}]
  models: [{name: a, path: a.pt}]
)";
  auto spec = Parse(job);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->non_finite, NonFinite::kNull);
  spec = Parse(job + "  non_finite: error\n");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->non_finite, NonFinite::kError);
  spec = Parse(job + "  non_finite: nan\n");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find(
                "job.yaml:9: infer.non_finite: expected one of null, string, error"),
            std::string::npos)
      << spec.status().message();
}

TEST(InferSpec, OutputNamesThatWouldDuplicateAJsonFieldAreRejected) {
  for (const char* outputs : {"[score, score]", "[key]", "[item, x]", "[\"a b\"]"}) {
    auto spec = Parse(std::string("infer:\n  key: id\n  tensors: [{name: x, columns: [a]}]\n"
                                  "  models: [{name: a, path: a.pt, outputs: ") +
                      outputs + "}]\n");
    ASSERT_FALSE(spec.ok()) << outputs;
    EXPECT_NE(spec.status().message().find("infer.models[0].outputs: "), std::string::npos)
        << spec.status().message();
  }
}

// The infer section is read by the same schema reader as the rest of the job spec
// (spec/schema_reader.h), so it follows the same rules.
TEST(InferSpec, AQuotedNumberIsAStringNotAnInteger) {
  auto spec = Parse(R"(infer:
  key: id
  tensors: [{name: x, columns: [a]}]
  models:
    - {name: m, path: m.pt, batch_size: "10"}
  pipeline: {autoscale: "true"}
  max_error_rate: "0.5"
)");
  ASSERT_FALSE(spec.ok());
  const std::string& m = spec.status().message();
  EXPECT_NE(m.find("/tmp/job.yaml:9: infer.models[0].batch_size: expected a positive integer, "
                   "got the string \"10\""),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("/tmp/job.yaml:10: infer.pipeline.autoscale: expected true or false, got the "
                   "string \"true\""),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("/tmp/job.yaml:11: infer.max_error_rate: expected a number in [0, 1], got the "
                   "string \"0.5\""),
            std::string::npos)
      << m;
}

TEST(InferSpec, UnknownKeysGetASuggestion) {
  auto spec = Parse(R"(infer:
  key: id
  tensors: [{name: x, colums: [a]}]
  models:
    - {name: m, path: m.pt, batch_sise: 8}
  queue_batches: 2
  pipeline: {zzz: 1}
)");
  ASSERT_FALSE(spec.ok());
  const std::string& m = spec.status().message();
  EXPECT_NE(m.find("/tmp/job.yaml:7: infer.tensors[0].colums: unknown key (did you mean "
                   "\"columns\"?)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("/tmp/job.yaml:9: infer.models[0].batch_sise: unknown key (did you mean "
                   "\"batch_size\"?)"),
            std::string::npos)
      << m;
  // A key of another section, put at the wrong level.
  EXPECT_NE(m.find("/tmp/job.yaml:10: infer.queue_batches: unknown key (did you mean "
                   "\"infer.pipeline.queue_batches\"?)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("/tmp/job.yaml:11: infer.pipeline.zzz: unknown key (expected one of: mode, "),
            std::string::npos)
      << m;
}

TEST(InferSpec, ADuplicateKeyIsAnError) {
  auto spec = Parse(R"(infer:
  key: id
  tensors: [{name: x, columns: [a]}]
  models:
    - {name: m, path: m.pt}
  intra_op_threads: 2
  intra_op_threads: 4
)");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find(
                "/tmp/job.yaml:11: infer.intra_op_threads: duplicate key (first set on line 10)"),
            std::string::npos)
      << spec.status().message();
}

// input.skip_header means what the job spec says it means: YAML's booleans, `yes` included.
TEST(InferSpec, ReadsControlPlaneValuesWithTheJobSpecRules) {
  auto spec = ParseInferSpec(R"(name: t
kind: infer
input: {paths: [rows.csv], format: csv, skip_header: yes}
output: {dir: out}
infer:
  key: id
  tensors: [{name: x, columns: [a]}]
  models:
    - {name: m, path: m.pt}
)",
                             "/tmp/job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_TRUE(spec->input_has_header);
}

}  // namespace
}  // namespace baton::infer
