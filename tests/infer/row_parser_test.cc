// Records to tensors: CSV quoting, TSV, JSONL, and bad records that leave the batch untouched.
#include "infer/row_parser.h"

#include <gtest/gtest.h>

namespace baton::infer {
namespace {

RecordSchema Schema(InputKind kind) {
  RecordSchema spec;
  spec.input = kind;
  spec.key = "id";
  spec.tensors.push_back({"dense", TensorType::kFloat32, {"x", "y"}, 1});
  spec.tensors.push_back({"ids", TensorType::kInt64, {"k"}, 2});
  return spec;
}

TEST(SplitFields, HandlesQuotesEscapedQuotesAndEmptyFields) {
  std::vector<std::string_view> f;
  std::vector<std::string> storage;
  ASSERT_TRUE(SplitFields(R"(a,"b,c","say ""hi""",,e,)", ',', &f, &storage).ok());
  ASSERT_EQ(f.size(), 6u);
  EXPECT_EQ(f[0], "a");
  EXPECT_EQ(f[1], "b,c");
  EXPECT_EQ(f[2], "say \"hi\"");
  EXPECT_EQ(f[3], "");
  EXPECT_EQ(f[4], "e");
  EXPECT_EQ(f[5], "");
  EXPECT_FALSE(SplitFields(R"(a,"unterminated)", ',', &f, &storage).ok());
  ASSERT_TRUE(SplitFields("a\t\"b\"\tc", '\t', &f, &storage).ok());
  EXPECT_EQ(f[1], "\"b\"");  // TSV has no quoting
}

TEST(RowParser, MapsColumnsByHeaderInAnyOrderAndFillsTensors) {
  RecordSchema spec = Schema(InputKind::kCsv);
  auto parser = RowParser::ForDelimited(spec, {"k", "junk", "y", "id", "x"}, "f.csv");
  ASSERT_TRUE(parser.ok()) << parser.status().message();
  auto batch = parser->NewBatch(2);
  std::string key;
  ASSERT_TRUE(parser->Append("7,zz,2.5,row-a,1.25", &key, &batch).ok());
  EXPECT_EQ(key, "row-a");
  ASSERT_TRUE(parser->Append("9,zz,-1,\"row,b\",3", &key, &batch).ok());
  EXPECT_EQ(key, "row,b");
  EXPECT_EQ(batch[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(batch[0].f, (std::vector<float>{1.25f, 2.5f, 3.0f, -1.0f}));
  EXPECT_EQ(batch[1].i, (std::vector<int64_t>{7, 9}));
}

TEST(RowParser, ABadRecordNamesItsColumnAndLeavesTheBatchAsItWas) {
  RecordSchema spec = Schema(InputKind::kCsv);
  auto parser = RowParser::ForDelimited(spec, {"id", "x", "y", "k"}, "f.csv");
  ASSERT_TRUE(parser.ok());
  auto batch = parser->NewBatch(1);
  std::string key;
  ASSERT_TRUE(parser->Append("a,1,2,3", &key, &batch).ok());
  Status s = parser->Append("b,1,oops,3", &key, &batch);
  EXPECT_EQ(s.message(), "column y: expected a number, got \"oops\"");
  EXPECT_EQ(key, "b");
  s = parser->Append("c,1,2,3.5", &key, &batch);
  EXPECT_EQ(s.message(), "column k: expected an integer, got \"3.5\"");
  s = parser->Append("d,1", &key, &batch);
  EXPECT_EQ(s.message(), "expected at least 4 fields, got 2");
  EXPECT_EQ(batch[0].rows(), 1);
  EXPECT_EQ(batch[0].f.size(), 2u);
  EXPECT_EQ(batch[1].i.size(), 1u);
}

TEST(RowParser, UnknownColumnsAreNamedWithTheColumnsTheFileHas) {
  RecordSchema spec = Schema(InputKind::kTsv);
  auto parser = RowParser::ForDelimited(spec, {"id", "x", "q"}, "data.tsv");
  ASSERT_FALSE(parser.ok());
  EXPECT_EQ(parser.status().message(),
            "unknown column \"y\", \"k\" in data.tsv (its columns: id, x, q)");
}

TEST(RowParser, ReadsJsonlFieldsAndRejectsWrongTypes) {
  RecordSchema spec = Schema(InputKind::kJsonl);
  RowParser parser = RowParser::ForJsonl(spec);
  auto batch = parser.NewBatch(1);
  std::string key;
  ASSERT_TRUE(
      parser.Append(R"({"id": 17, "x": 1.5, "y": -2, "k": 4, "other": "ignored"})", &key, &batch)
          .ok());
  EXPECT_EQ(key, "17");
  EXPECT_EQ(batch[0].f, (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(parser.Append(R"({"id": "a", "x": 1, "y": 2, "k": 1.5})", &key, &batch).message(),
            "field k: expected an integer, got 1.5");
  EXPECT_EQ(parser.Append(R"({"id": "a", "x": 1})", &key, &batch).message(), "field y: missing");
  EXPECT_EQ(parser.Append("{not json", &key, &batch).message(), "malformed JSON");
  EXPECT_EQ(batch[0].rows(), 1);
}

TEST(RowParser, BlankLinesAreRecognizedWhateverTheLineEnding) {
  EXPECT_TRUE(IsBlankLine(""));
  EXPECT_TRUE(IsBlankLine("\r"));  // a "\r\n" line whose "\n" the SDK took off
  EXPECT_TRUE(IsBlankLine(" \t "));
  EXPECT_FALSE(IsBlankLine("r1,1,2"));
  EXPECT_FALSE(IsBlankLine(","));  // a row of empty fields is a (bad) record, not a blank line
  EXPECT_FALSE(IsBlankLine("{}"));
}

}  // namespace
}  // namespace baton::infer
