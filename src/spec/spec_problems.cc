#include "spec/spec_problems.h"

#include <algorithm>

namespace baton {

void SpecProblems::Add(int line, std::string_view key_path, std::string_view message) {
  items_.push_back({line, file_ + ":" + std::to_string(line) + ": " + std::string(key_path) + ": " +
                              std::string(message)});
}

void SpecProblems::Expected(int line, std::string_view key_path, std::string_view expected,
                            std::string_view got) {
  Add(line, key_path, "expected " + std::string(expected) + ", got " + std::string(got));
}

Status SpecProblems::ToStatus() const {
  std::vector<Item> sorted = items_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Item& a, const Item& b) { return a.line < b.line; });
  std::string text;
  for (const Item& item : sorted) {
    if (!text.empty()) text += '\n';
    text += item.text;
  }
  return Status::InvalidArgument(std::move(text));
}

}  // namespace baton
