// Output and error rows: what users parse, so the exact bytes matter.
#include "infer/output_format.h"

#include <gtest/gtest.h>

namespace baton::infer {
namespace {

HostTensor Floats(std::vector<int64_t> shape, std::vector<float> v) {
  HostTensor t;
  t.shape = std::move(shape);
  t.f = std::move(v);
  return t;
}

TEST(OutputFormat, CsvRowsQuoteKeysAndFlattenOutputsInOrder) {
  std::vector<HostTensor> outs = {Floats({2, 1}, {0.5f, 0.25f}), Floats({2, 2}, {1, 2, 3, 4})};
  std::string out;
  const std::string key = "a,b";
  AppendOutputRow(OutputFormat::kCsv, RowRef{&key, nullptr, 0}, outs, 1, {}, &out);
  EXPECT_EQ(out, "\"a,b\",0.25,3,4\n");
  out.clear();
  const std::string model = "cls";
  AppendOutputRow(OutputFormat::kCsv, RowRef{&key, &model, 3}, outs, 0, {}, &out);
  EXPECT_EQ(out, "\"a,b\",cls,3,0.5,1,2\n");
}

TEST(OutputFormat, JsonlRowsNameOutputsAndWriteScalarsBare) {
  std::vector<HostTensor> outs = {Floats({1, 1}, {0.1f}), Floats({1, 3}, {1, 2, 3})};
  std::string out;
  const std::string key = "k\"1";
  AppendOutputRow(OutputFormat::kJsonl, RowRef{&key, nullptr, 0}, outs, 0, {"score"}, &out);
  EXPECT_EQ(out, "{\"key\":\"k\\\"1\",\"score\":0.1,\"out1\":[1,2,3]}\n");
}

TEST(OutputFormat, ErrorRowsAreJsonWithEveryField) {
  EXPECT_EQ(ErrorRow("/d/f.csv", 12, "r12", "parse", "column x: empty value"),
            "{\"error\":\"column x: empty value\",\"file\":\"/d/f.csv\",\"key\":\"r12\","
            "\"record\":12,\"stage\":\"parse\"}\n");
}

}  // namespace
}  // namespace baton::infer
