#include "spec/schema_reader.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <system_error>
#include <utility>

namespace baton::schema {
namespace {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Join(std::span<const std::string_view> items, std::string_view sep) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

std::string FormatNumber(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

template <typename T>
std::optional<T> ParseScalar(const YAML::Node& n) {
  if (!n.IsScalar() || IsQuoted(n)) return std::nullopt;
  const std::string& s = n.Scalar();
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

bool IsEnvName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

std::string Section::KeyPath(std::string_view key) const {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

const Field* Section::Find(std::string_view key) const {
  auto it = fields.find(key);
  return it == fields.end() ? nullptr : &it->second;
}

int LineOf(const YAML::Node& n, int fallback) {
  const YAML::Mark mark = n.Mark();
  return mark.line >= 0 ? mark.line + 1 : fallback;
}

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 60;
  if (s.size() > kMax) return "\"" + std::string(s.substr(0, kMax)) + "...\"";
  return "\"" + std::string(s) + "\"";
}

bool IsQuoted(const YAML::Node& n) { return n.Tag() == "!"; }

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return IsQuoted(n) ? "the string " + Quote(n.Scalar()) : Quote(n.Scalar());
    case YAML::NodeType::Sequence:
      return n.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::optional<int64_t> ParseInt(const YAML::Node& n) { return ParseScalar<int64_t>(n); }
std::optional<uint64_t> ParseUint(const YAML::Node& n) { return ParseScalar<uint64_t>(n); }
std::optional<double> ParseNumber(const YAML::Node& n) { return ParseScalar<double>(n); }

std::string IntRange(int64_t lo, std::optional<int64_t> hi) {
  if (hi) return "an integer in " + std::to_string(lo) + ".." + std::to_string(*hi);
  if (lo == 0) return "a non-negative integer";
  if (lo == 1) return "a positive integer";
  return "an integer >= " + std::to_string(lo);
}

Section Reader::Open(const YAML::Node& node, std::string path, int line,
                     std::span<const std::string_view> known) {
  Section s{std::move(path), line, {}, false};
  if (!node.IsDefined() || node.IsNull()) return s;  // `input:` with nothing under it: defaults
  const std::string where = s.path.empty() ? "(top level)" : s.path;
  if (!node.IsMap()) {
    problems_->Expected(line, where, "a mapping of keys", Describe(node));
    s.malformed = true;
    return s;
  }
  // Range-for binds the iterator's value: it->first would refer into a destroyed proxy.
  for (const auto& kv : node) {
    const YAML::Node& key = kv.first;
    int key_line = LineOf(key, line);
    if (!key.IsScalar()) {
      problems_->Expected(key_line, where, "a key name", Describe(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      problems_->Add(key_line, s.KeyPath(name), UnknownKeyMessage(s.path, known, name));
      continue;
    }
    if (const Field* first = s.Find(name)) {
      problems_->Add(
          key_line, s.KeyPath(name),
          "duplicate key (first set on line " + std::to_string(LineOf(first->key, line)) + ")");
      continue;
    }
    s.fields.emplace(name, Field{key, kv.second});
  }
  return s;
}

Section Reader::Sub(const Section& parent, std::string_view key,
                    std::span<const std::string_view> known) {
  const Field* f = parent.Find(key);
  if (f == nullptr) return Section{parent.KeyPath(key), parent.line, {}, parent.malformed};
  return Open(f->value, parent.KeyPath(key), LineOf(f->key, parent.line), known);
}

Result<Document> ParseDocument(const std::string& yaml_text, const std::string& path) {
  Document doc;
  try {
    doc.root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) +
                                   ": malformed YAML: " + e.msg);
  }
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec).lexically_normal();
  if (ec) return Status::InvalidArgument(path + ": cannot make the path absolute: " + ec.message());
  doc.path = absolute.string();
  doc.base_dir = absolute.parent_path();
  return doc;
}

std::string ResolvePath(const std::filesystem::path& base_dir, const std::string& p) {
  std::filesystem::path out =
      std::filesystem::path(p).is_absolute() ? std::filesystem::path(p) : base_dir / p;
  out = out.lexically_normal();
  if (!out.has_filename() && out != out.root_path()) out = out.parent_path();
  return out.string();
}

Section Reader::BorrowSub(const Section& parent, std::string_view key) {
  const Field* f = parent.Find(key);
  if (f == nullptr) return Section{std::string(key), parent.line, {}, false};
  return Borrow(f->value, std::string(key), LineOf(f->key, parent.line));
}

Section Reader::Borrow(const YAML::Node& node, std::string path, int line) {
  Section s{std::move(path), line, {}, false};
  if (!node.IsDefined() || !node.IsMap()) {
    s.malformed = node.IsDefined() && !node.IsNull();
    return s;
  }
  for (const auto& kv : node) {
    if (kv.first.IsScalar()) s.fields.emplace(kv.first.Scalar(), Field{kv.first, kv.second});
  }
  return s;
}

void Reader::Missing(const Section& s, std::string_view key, std::string_view expected) {
  if (s.malformed) return;
  problems_->Expected(s.line, s.KeyPath(key), expected, "nothing");
}

bool Reader::Uint64(const Section& s, std::string_view key, uint64_t* out) {
  const Field* f = s.Find(key);
  if (f == nullptr) return true;
  std::optional<uint64_t> v = ParseUint(f->value);
  if (!v) return Wrong(s, key, "a non-negative integer");
  *out = *v;
  return true;
}

bool Reader::Number(const Section& s, std::string_view key, double lo, double hi, double* out) {
  const Field* f = s.Find(key);
  if (f == nullptr) return true;
  std::optional<double> v = ParseNumber(f->value);
  if (!v || !(*v >= lo) || !(*v <= hi)) {
    return Wrong(s, key, "a number in [" + FormatNumber(lo) + ", " + FormatNumber(hi) + "]");
  }
  *out = *v;
  return true;
}

bool Reader::Bool(const Section& s, std::string_view key, bool* out) {
  const Field* f = s.Find(key);
  if (f == nullptr) return true;
  bool b = false;
  if (!f->value.IsScalar() || IsQuoted(f->value) || !YAML::convert<bool>::decode(f->value, b)) {
    return Wrong(s, key, "true or false");
  }
  *out = b;
  return true;
}

bool Reader::String(const Section& s, std::string_view key, std::string* out,
                    std::string_view expected) {
  const Field* f = s.Find(key);
  if (f == nullptr) return true;
  if (!f->value.IsScalar()) return Wrong(s, key, expected);
  *out = f->value.Scalar();
  return true;
}

bool Reader::StringList(const Section& s, std::string_view key, std::string_view expected,
                        std::vector<std::string>* out, std::vector<int>* lines) {
  const Field* f = s.Find(key);
  if (f == nullptr) return true;
  const int key_line = LineOf(f->key, s.line);
  if (!f->value.IsSequence() || f->value.size() == 0) return Wrong(s, key, expected);
  bool ok = true;
  size_t index = 0;
  for (const YAML::Node& item : f->value) {
    std::string item_path = s.KeyPath(key) + "[" + std::to_string(index++) + "]";
    int item_line = LineOf(item, key_line);
    if (!item.IsScalar()) {
      problems_->Expected(item_line, item_path, "a string", Describe(item));
      ok = false;
      continue;
    }
    out->push_back(item.Scalar());
    lines->push_back(item_line);
  }
  return ok;
}

bool Reader::EnvMap(const Section& s, std::string_view key,
                    std::map<std::string, std::string>* out) {
  const Field* f = s.Find(key);
  if (f == nullptr) return true;
  if (!f->value.IsMap()) {
    if (f->value.IsNull()) return true;  // `env:` with nothing under it
    return Wrong(s, key, "a mapping of variable names to strings");
  }
  const int key_line = LineOf(f->key, s.line);
  bool ok = true;
  for (const auto& kv : f->value) {
    const YAML::Node& name = kv.first;
    const YAML::Node& value = kv.second;
    int line = LineOf(name, key_line);
    if (!name.IsScalar() || !IsEnvName(name.Scalar())) {
      problems_->Expected(line, s.KeyPath(key), "a variable name matching [A-Za-z_][A-Za-z0-9_]*",
                          Describe(name));
      ok = false;
      continue;
    }
    std::string path = s.KeyPath(key) + "." + name.Scalar();
    if (!value.IsScalar()) {
      problems_->Expected(line, path, "a string", Describe(value));
      ok = false;
      continue;
    }
    if (!out->emplace(name.Scalar(), value.Scalar()).second) {
      problems_->Add(line, path, "duplicate key");
      ok = false;
    }
  }
  return ok;
}

int Reader::LineOfKey(const Section& s, std::string_view key) const {
  const Field* f = s.Find(key);
  return f == nullptr ? s.line : LineOf(f->key, s.line);
}

bool Reader::Wrong(const Section& s, std::string_view key, std::string_view expected) {
  const Field* f = s.Find(key);
  problems_->Expected(LineOfKey(s, key), s.KeyPath(key), expected,
                      f == nullptr ? "nothing" : Describe(f->value));
  return false;
}

// "unknown key (...)": the closest key of the same section within two edits, else the same key in
// another section (a setting put at the wrong level), else the list of keys the section accepts.
std::string Reader::UnknownKeyMessage(std::string_view section,
                                      std::span<const std::string_view> known,
                                      std::string_view key) const {
  std::string_view best;
  size_t best_distance = 3;
  for (std::string_view candidate : known) {
    size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  if (!best.empty()) return "unknown key (did you mean \"" + std::string(best) + "\"?)";
  for (const SectionKeys& other : schema_) {
    if (other.path == section) continue;
    if (std::find(other.keys.begin(), other.keys.end(), key) != other.keys.end()) {
      std::string where =
          other.path.empty() ? std::string(key) : std::string(other.path) + "." + std::string(key);
      return "unknown key (did you mean \"" + where + "\"?)";
    }
  }
  return "unknown key (expected one of: " + Join(known, ", ") + ")";
}

}  // namespace baton::schema
