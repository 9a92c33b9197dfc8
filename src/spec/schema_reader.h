// The one typed YAML reader every section of a job spec is validated with: the control plane's
// sections (spec/job_spec.cc) and each job kind's own section (e.g. infer/infer_spec.cc) follow the
// same rules, so that a user meets one set of them in one file:
//   - every problem is "FILE:LINE: key.path: expected WHAT, got WHAT" (spec_problems.h);
//   - a key a mapping does not accept is an error, with a did-you-mean suggestion (the closest key
//     within two edits, else the same key in another section of the schema);
//   - a key set twice in one mapping is an error naming the line of the first;
//   - a quoted scalar is a string: "10" is not an integer, "true" is not a boolean.
// Typed reads return false only when the key is present and wrong (the problem is recorded and the
// caller's default stays); an absent key keeps the default and returns true, so that cross-field
// checks can run on whatever values are known to be good.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

#include "spec/spec_problems.h"

namespace baton::schema {

// The keys one mapping accepts, named by its key path ("" for the top level).
struct SectionKeys {
  std::string_view path;
  std::span<const std::string_view> keys;
};

struct Field {
  YAML::Node key;
  YAML::Node value;
};

// One mapping after its keys were checked.
struct Section {
  std::string path;  // "" for the top level
  int line = 1;      // where it starts; "missing key" problems point here
  std::map<std::string, Field, std::less<>> fields;
  // Not a mapping (already reported): its required keys are not reported missing on top of that.
  bool malformed = false;

  std::string KeyPath(std::string_view key) const;
  const Field* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }
};

// 1-based line of `n`; yaml-cpp lines are 0-based and some nodes (an empty value) have none.
int LineOf(const YAML::Node& n, int fallback);
// What the user wrote, for the "got ..." half of a message.
std::string Describe(const YAML::Node& n);
// `s` in double quotes, cut at 60 characters so that a pasted blob does not flood the terminal.
std::string Quote(std::string_view s);
// yaml-cpp tags a quoted scalar "!"; a quoted "10" is a string, not an integer.
bool IsQuoted(const YAML::Node& n);
// An unquoted integer (or number) scalar; nullopt for anything else.
std::optional<int64_t> ParseInt(const YAML::Node& n);
std::optional<uint64_t> ParseUint(const YAML::Node& n);
std::optional<double> ParseNumber(const YAML::Node& n);
// "a positive integer", or "an integer in 0..65535" when the bound is the key's own.
std::string IntRange(int64_t lo, std::optional<int64_t> hi);

// A spec document as every section reader starts from it: the parsed root and where relative
// paths resolve.
struct Document {
  YAML::Node root;
  std::string path;                // the spec file, absolute and normalized
  std::filesystem::path base_dir;  // its directory
};
// Parses `yaml_text` (the file `path`). InvalidArgument "PATH:LINE:COLUMN: malformed YAML: ..."
// (yaml-cpp stops at the first error), or "PATH: cannot make the path absolute: ...".
Result<Document> ParseDocument(const std::string& yaml_text, const std::string& path);
// `p` against `base_dir` when relative; absolute and normalized, without a trailing '/'.
std::string ResolvePath(const std::filesystem::path& base_dir, const std::string& p);

class Reader {
 public:
  // `schema` lists every section of the document, for the "did you mean section.key" hint when a
  // key is put at the wrong level; it may be empty.
  explicit Reader(SpecProblems* problems, std::span<const SectionKeys> schema = {})
      : problems_(problems), schema_(schema) {}

  // Checks `node` (at `path`, starting on `line`) against `known`. A null or absent node is an
  // empty section (every key keeps its default).
  Section Open(const YAML::Node& node, std::string path, int line,
               std::span<const std::string_view> known);
  // The mapping under `key` of `parent`, checked against `known`.
  Section Sub(const Section& parent, std::string_view key, std::span<const std::string_view> known);
  // A section owned by another reader (which reports its unknown and duplicate keys): read here
  // with the same typed rules, without reporting its keys a second time.
  Section Borrow(const YAML::Node& node, std::string path, int line);
  // The mapping under `key` of `parent`, borrowed (an empty section when absent): how a job kind's
  // reader reads the control plane's sections (input, output) that the job spec checks.
  Section BorrowSub(const Section& parent, std::string_view key);

  // Reports a required key that is absent.
  void Missing(const Section& s, std::string_view key, std::string_view expected);

  // An integer >= lo; with `max`, also <= *max (a bound of the key's own, named in the message).
  template <typename T>
  bool Int(const Section& s, std::string_view key, int64_t lo, T* out,
           std::optional<int64_t> max = std::nullopt) {
    const Field* f = s.Find(key);
    if (f == nullptr) return true;
    const int64_t hi = std::numeric_limits<T>::max();
    std::optional<int64_t> v = ParseInt(f->value);
    if (max && (!v || *v < lo || *v > *max)) return Wrong(s, key, IntRange(lo, *max));
    if (!v || *v < lo) return Wrong(s, key, IntRange(lo, std::nullopt));
    if (*v > hi) {
      return Wrong(s, key, IntRange(lo, std::nullopt) + " (at most " + std::to_string(hi) + ")");
    }
    *out = static_cast<T>(*v);
    return true;
  }
  bool Uint64(const Section& s, std::string_view key, uint64_t* out);
  // A number in [lo, hi].
  bool Number(const Section& s, std::string_view key, double lo, double hi, double* out);
  bool Bool(const Section& s, std::string_view key, bool* out);
  bool String(const Section& s, std::string_view key, std::string* out,
              std::string_view expected = "a string");
  // A non-empty list of strings; `lines` gets each item's line, for problems found later about
  // one item.
  bool StringList(const Section& s, std::string_view key, std::string_view expected,
                  std::vector<std::string>* out, std::vector<int>* lines);
  // A mapping of environment variable names to strings.
  bool EnvMap(const Section& s, std::string_view key, std::map<std::string, std::string>* out);

  // Line of `key` in `s`, or of the section when the key is absent.
  int LineOfKey(const Section& s, std::string_view key) const;
  // Records "s.key: expected EXPECTED, got <what the value is>" and returns false.
  bool Wrong(const Section& s, std::string_view key, std::string_view expected);

  SpecProblems& problems() { return *problems_; }

 private:
  std::string UnknownKeyMessage(std::string_view section, std::span<const std::string_view> known,
                                std::string_view key) const;

  SpecProblems* problems_;
  std::span<const SectionKeys> schema_;
};

}  // namespace baton::schema
