// Output and error rows: what users parse, so the exact bytes matter.
#include "infer/output_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "infer/json_text.h"

namespace baton::infer {
namespace {

HostTensor Floats(std::vector<int64_t> shape, std::vector<float> v) {
  HostTensor t;
  t.shape = std::move(shape);
  t.f = std::move(v);
  return t;
}

// AppendOutputRow with the default policy (NaN/inf as null), expecting success.
void Append(OutputFormat format, const RowRef& ref, const std::vector<HostTensor>& outs,
            int64_t row, const std::vector<std::string>& names, std::string* out) {
  auto n = AppendOutputRow(OutputStyle{format, NonFinite::kNull}, ref, outs, row, names, out);
  ASSERT_TRUE(n.ok()) << n.status().message();
}

TEST(OutputFormat, CsvRowsQuoteKeysAndFlattenOutputsInOrder) {
  std::vector<HostTensor> outs = {Floats({2, 1}, {0.5f, 0.25f}), Floats({2, 2}, {1, 2, 3, 4})};
  std::string out;
  const std::string key = "a,b";
  Append(OutputFormat::kCsv, RowRef{&key, nullptr, 0}, outs, 1, {}, &out);
  EXPECT_EQ(out, "\"a,b\",0.25,3,4\n");
  out.clear();
  const std::string model = "cls";
  Append(OutputFormat::kCsv, RowRef{&key, &model, 3}, outs, 0, {}, &out);
  EXPECT_EQ(out, "\"a,b\",cls,3,0.5,1,2\n");
}

TEST(OutputFormat, JsonlRowsNameOutputsAndWriteScalarsBare) {
  std::vector<HostTensor> outs = {Floats({1, 1}, {0.1f}), Floats({1, 3}, {1, 2, 3})};
  std::string out;
  const std::string key = "k\"1";
  Append(OutputFormat::kJsonl, RowRef{&key, nullptr, 0}, outs, 0, {"score"}, &out);
  EXPECT_EQ(out, "{\"key\":\"k\\\"1\",\"score\":0.1,\"out1\":[1,2,3]}\n");
}

TEST(OutputFormat, ErrorRowsAreJsonWithEveryField) {
  EXPECT_EQ(ErrorRow("/d/f.csv", 12, "r12", "parse", "column x: empty value"),
            "{\"error\":\"column x: empty value\",\"file\":\"/d/f.csv\",\"key\":\"r12\","
            "\"record\":12,\"stage\":\"parse\"}\n");
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(OutputFormat, NonFiniteValuesFollowThePolicyAndJsonStaysValid) {
  std::vector<HostTensor> outs = {Floats({1, 3}, {kNaN, kInf, -0.5f}), Floats({1, 1}, {-kInf})};
  const std::string key = "k";
  const std::vector<std::string> names = {"v", "s"};
  struct Case {
    NonFinite policy;
    std::string jsonl, csv;
  };
  for (const Case& c :
       {Case{NonFinite::kNull, "{\"key\":\"k\",\"v\":[null,null,-0.5],\"s\":null}\n",
             "k,,,-0.5,\n"},
        Case{NonFinite::kString,
             "{\"key\":\"k\",\"v\":[\"NaN\",\"Infinity\",-0.5],\"s\":\"-Infinity\"}\n",
             "k,NaN,Infinity,-0.5,-Infinity\n"}}) {
    std::string jsonl, csv;
    auto n = AppendOutputRow({OutputFormat::kJsonl, c.policy}, RowRef{&key, nullptr, 0}, outs, 0,
                             names, &jsonl);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 3);
    EXPECT_EQ(jsonl, c.jsonl);
    EXPECT_FALSE(nlohmann::json::parse(jsonl, nullptr, false).is_discarded()) << jsonl;
    ASSERT_TRUE(AppendOutputRow({OutputFormat::kCsv, c.policy}, RowRef{&key, nullptr, 0}, outs, 0,
                                names, &csv)
                    .ok());
    EXPECT_EQ(csv, c.csv);
  }
  std::string out = "before";
  auto refused = AppendOutputRow({OutputFormat::kJsonl, NonFinite::kError},
                                 RowRef{&key, nullptr, 0}, outs, 0, names, &out);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "output v[0] is NaN (infer.non_finite: error)");
  EXPECT_EQ(out, "before");  // nothing appended
}

TEST(OutputFormat, KeysThatAreNotUtf8AreWrittenLosslesslyAsBase64) {
  std::vector<HostTensor> outs = {Floats({1, 1}, {1})};
  std::set<std::string> rows;
  for (const std::string key : {"k\xff", "k\xfe", "k\xef\xbf\xbd", "ké"}) {
    std::string out;
    Append(OutputFormat::kJsonl, RowRef{&key, nullptr, 0}, outs, 0, {"s"}, &out);
    auto j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out;
    rows.insert(j.contains("key") ? "key:" + j["key"].get<std::string>()
                                  : "b64:" + j["key_base64"].get<std::string>());
  }
  EXPECT_EQ(rows, (std::set<std::string>{"b64:a/8=", "b64:a/4=", "key:k\xef\xbf\xbd", "key:ké"}));
  // CSV is bytes: the key as it was.
  std::string csv;
  const std::string raw = "k\xff";
  Append(OutputFormat::kCsv, RowRef{&raw, nullptr, 0}, outs, 0, {}, &csv);
  EXPECT_EQ(csv, "k\xff,1\n");
}

TEST(OutputFormat, ErrorRowsStayValidJsonForAnyBytes) {
  const std::string row =
      ErrorRow("/d/f\xff.csv", 3, "k\xfe", "parse", "column x: expected a number, got \"\xff\"");
  EXPECT_EQ(row,
            "{\"error\":\"column x: expected a number, got \\\"\\\\xff\\\"\","
            "\"file_base64\":\"L2QvZv8uY3N2\",\"key_base64\":\"a/4=\",\"record\":3,"
            "\"stage\":\"parse\"}\n");
  EXPECT_FALSE(nlohmann::json::parse(row, nullptr, false).is_discarded());
}

TEST(JsonText, Utf8ValidationIsStrict) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("é€😀"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // cut short
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(ReadableText("a\xff"
                         "é"),
            "a\\xffé");
  std::string s;
  AppendJsonString("a\"\\\n\x01", &s);
  EXPECT_EQ(s, "\"a\\\"\\\\\\n\\u0001\"");
}

}  // namespace
}  // namespace baton::infer
