// Collects the problems found while validating a spec file, so that a user sees all of them at
// once, each as "FILE:LINE: key.path: message", sorted by line so the report reads top to bottom
// like the file. Shared by every section reader (spec/schema_reader.h): the job spec
// (spec/job_spec.cc) and each job kind's section (e.g. infer/infer_spec.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace baton {

class SpecProblems {
 public:
  explicit SpecProblems(std::string file) : file_(std::move(file)) {}

  void Add(int line, std::string_view key_path, std::string_view message);
  // "expected EXPECTED, got GOT".
  void Expected(int line, std::string_view key_path, std::string_view expected,
                std::string_view got);

  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  // InvalidArgument with every problem, one per line, in line order.
  Status ToStatus() const;

 private:
  struct Item {
    int line;
    std::string text;
  };
  std::string file_;
  std::vector<Item> items_;
};

}  // namespace baton
