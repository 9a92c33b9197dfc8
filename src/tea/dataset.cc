#include "tea/dataset.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_set>

namespace baton::tea {
namespace {

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open (missing or unreadable)");
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// Splits `line` on tabs and spaces, dropping a trailing '\r' (TEA-GNN's ICEWS copies use CRLF).
std::vector<std::string_view> Fields(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == '\t' || line[i] == ' ')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != '\t' && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ParseId(std::string_view s, int32_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && *out >= 0;
}

std::string Where(const std::string& path, size_t line) {
  return path + ":" + std::to_string(line) + ": ";
}

// Calls fn(line_no, fields) for every non-blank line; fn returns a Status.
template <typename Fn>
Status ForEachLine(const std::string& path, Fn fn) {
  BATON_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::vector<std::string_view> f = Fields(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
    if (f.empty()) continue;
    BATON_RETURN_IF_ERROR(fn(line_no, f));
  }
  return Status::Ok();
}

// Vocabularies used to validate ids; an empty set means "not given, do not check".
struct Vocab {
  std::unordered_set<int32_t> ents1, ents2, times;
};

Status ReadFacts(const std::string& path, const Vocab& vocab, std::vector<Fact>* facts) {
  return ForEachLine(path, [&](size_t ln, const std::vector<std::string_view>& f) -> Status {
    if (f.size() != 4 && f.size() != 5) {
      return Status::InvalidArgument(Where(path, ln) +
                                     "expected 4 or 5 columns (h r t tau [tau_e]), got " +
                                     std::to_string(f.size()));
    }
    int32_t v[5] = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < f.size(); ++i) {
      if (!ParseId(f[i], &v[i])) {
        return Status::InvalidArgument(Where(path, ln) + "column " + std::to_string(i + 1) +
                                       " is not a non-negative integer id: '" + std::string(f[i]) +
                                       "'");
      }
    }
    Fact fact{v[0], v[1], v[2], v[3], f.size() == 5 ? v[4] : v[3], f.size() == 5};
    if (!vocab.ents1.empty()) {
      for (int32_t e : {fact.head, fact.tail}) {
        if (!vocab.ents1.count(e) && !vocab.ents2.count(e)) {
          return Status::InvalidArgument(Where(path, ln) + "entity id " + std::to_string(e) +
                                         " is out of range (not in ent_ids_1 or ent_ids_2)");
        }
      }
    }
    if (!vocab.times.empty()) {
      for (int32_t t : {fact.time_begin, fact.time_end}) {
        if (!vocab.times.count(t)) {
          return Status::InvalidArgument(Where(path, ln) + "time id " + std::to_string(t) +
                                         " is out of range (not in time_id)");
        }
      }
    }
    facts->push_back(fact);
    return Status::Ok();
  });
}

// Reads an `id name` file; returns the set of ids and, if asked, the names (the rest of the line,
// its fields joined by one space).
Status ReadIdFile(const std::string& path, std::unordered_set<int32_t>* ids,
                  std::vector<std::string>* names_by_id) {
  return ForEachLine(path, [&](size_t ln, const std::vector<std::string_view>& f) -> Status {
    int32_t id = 0;
    if (!ParseId(f[0], &id)) {
      return Status::InvalidArgument(Where(path, ln) + "first column is not a non-negative id: '" +
                                     std::string(f[0]) + "'");
    }
    ids->insert(id);
    if (names_by_id) {
      if (names_by_id->size() <= static_cast<size_t>(id)) names_by_id->resize(id + 1);
      std::string name;
      for (size_t i = 1; i < f.size(); ++i) {
        if (i > 1) name += ' ';
        name += f[i];
      }
      (*names_by_id)[id] = std::move(name);
    }
    return Status::Ok();
  });
}

Status ReadPairs(const std::string& path, std::vector<std::pair<int32_t, int32_t>>* pairs,
                 std::vector<std::pair<std::string, size_t>>* origin) {
  return ForEachLine(path, [&](size_t ln, const std::vector<std::string_view>& f) -> Status {
    int32_t a = 0, b = 0;
    if (f.size() != 2 || !ParseId(f[0], &a) || !ParseId(f[1], &b)) {
      return Status::InvalidArgument(Where(path, ln) +
                                     "expected two non-negative entity ids (kg1_id kg2_id)");
    }
    pairs->emplace_back(a, b);
    origin->emplace_back(path, ln);
    return Status::Ok();
  });
}

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

}  // namespace

Result<Dataset> LoadDataset(const std::string& dir_in) {
  Dataset d;
  d.dir = dir_in;
  std::string dir = dir_in.empty() || dir_in.back() == '/' ? dir_in : dir_in + "/";

  // Optional vocabularies, used only to validate ids.
  Vocab vocab;
  bool have_ents = Exists(dir + "ent_ids_1") && Exists(dir + "ent_ids_2");
  std::vector<std::string> names1, names2;
  if (have_ents) {
    BATON_RETURN_IF_ERROR(ReadIdFile(dir + "ent_ids_1", &vocab.ents1, &names1));
    BATON_RETURN_IF_ERROR(ReadIdFile(dir + "ent_ids_2", &vocab.ents2, &names2));
    have_ents = !vocab.ents1.empty();
  }
  if (Exists(dir + "time_id")) {
    std::vector<std::string> names;
    BATON_RETURN_IF_ERROR(ReadIdFile(dir + "time_id", &vocab.times, &names));
    d.time_zero_is_unknown = names.empty() || names[0] == "-inf" || names[0].empty();
  }
  BATON_RETURN_IF_ERROR(ReadFacts(dir + "triples_1", vocab, &d.facts));
  const size_t facts1 = d.facts.size();
  BATON_RETURN_IF_ERROR(ReadFacts(dir + "triples_2", vocab, &d.facts));

  std::vector<std::pair<std::string, size_t>> origin;
  BATON_RETURN_IF_ERROR(ReadPairs(dir + "sup_pairs", &d.pairs, &origin));
  BATON_RETURN_IF_ERROR(ReadPairs(dir + "ref_pairs", &d.pairs, &origin));

  // Every aligned entity must be a graph node (isolated ones are fine: the official code gives
  // them zero rows), on its own side when the sides are known.
  int32_t node_size = 0;
  for (const Fact& f : d.facts) node_size = std::max({node_size, f.head + 1, f.tail + 1});
  for (size_t i = 0; i < d.pairs.size(); ++i) {
    auto [a, b] = d.pairs[i];
    const std::string where = Where(origin[i].first, origin[i].second);
    for (int32_t e : {a, b}) {
      if (e >= node_size) {
        return Status::InvalidArgument(where + "entity id " + std::to_string(e) +
                                       " is out of range (the facts use ids below " +
                                       std::to_string(node_size) + ")");
      }
    }
    if (have_ents && (!vocab.ents1.count(a) || !vocab.ents2.count(b))) {
      return Status::InvalidArgument(where + "pair (" + std::to_string(a) + ", " +
                                     std::to_string(b) +
                                     ") is out of range: not (ent_ids_1 id, ent_ids_2 id)");
    }
  }
  if (d.pairs.empty()) {
    return Status::InvalidArgument(dir + "sup_pairs, " + dir + "ref_pairs: no aligned pairs");
  }

  // Sides and names (for predictions).
  int32_t id_size = node_size;
  for (const auto& ids : {vocab.ents1, vocab.ents2}) {
    for (int32_t e : ids) id_size = std::max(id_size, e + 1);
  }
  d.side.assign(id_size, 0);
  d.names.assign(id_size, std::string());
  if (have_ents) {
    for (int32_t e : vocab.ents1) d.side[e] = 1;
    for (int32_t e : vocab.ents2) d.side[e] = 2;
    for (size_t e = 0; e < names1.size(); ++e) {
      if (vocab.ents1.count(static_cast<int32_t>(e))) d.names[e] = std::move(names1[e]);
    }
    for (size_t e = 0; e < names2.size(); ++e) {
      if (vocab.ents2.count(static_cast<int32_t>(e))) d.names[e] = std::move(names2[e]);
    }
  } else {
    for (size_t i = 0; i < d.facts.size(); ++i) {
      const int8_t side = i < facts1 ? 1 : 2;
      d.side[d.facts[i].head] = side;
      d.side[d.facts[i].tail] = side;
    }
  }
  return d;
}

Result<Split> SplitPairs(const Dataset& data, int num_seeds, bool allow_empty_test) {
  if (allow_empty_test && num_seeds > 0 && static_cast<size_t>(num_seeds) <= data.pairs.size()) {
    return Split{{data.pairs.begin(), data.pairs.begin() + num_seeds},
                 {data.pairs.begin() + num_seeds, data.pairs.end()}};
  }
  if (num_seeds <= 0 || static_cast<size_t>(num_seeds) >= data.pairs.size()) {
    return Status::InvalidArgument(
        "--seeds " + std::to_string(num_seeds) + " must be in [1, " +
        std::to_string(data.pairs.size() - 1) + "]: " + data.dir + "/sup_pairs + ref_pairs hold " +
        std::to_string(data.pairs.size()) + " pairs and at least one must remain for the test set");
  }
  Split s;
  s.seeds.assign(data.pairs.begin(), data.pairs.begin() + num_seeds);
  s.test.assign(data.pairs.begin() + num_seeds, data.pairs.end());
  return s;
}

}  // namespace baton::tea
