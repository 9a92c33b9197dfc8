#include "infer/work_items.h"

#include <iterator>

namespace baton::infer {

ModelBatch SliceBatch(const ModelBatch& b, size_t begin, size_t end) {
  ModelBatch out;
  out.model = b.model;
  auto take = [&](const auto& v, auto& dst) {
    if (!v.empty())
      dst.assign(v.begin() + static_cast<ptrdiff_t>(begin),
                 v.begin() + static_cast<ptrdiff_t>(end));
  };
  take(b.owners, out.owners);
  take(b.records, out.records);
  take(b.items, out.items);
  take(b.keys, out.keys);
  take(b.images, out.images);
  for (const HostTensor& t : b.inputs) {
    out.inputs.push_back(SliceRows(t, static_cast<int64_t>(begin), static_cast<int64_t>(end)));
  }
  return out;
}

void AppendBatch(ModelBatch& into, ModelBatch&& from) {
  if (into.size() == 0) {
    into = std::move(from);
    return;
  }
  auto move_all = [](auto& dst, auto& src) {
    dst.insert(dst.end(), std::make_move_iterator(src.begin()), std::make_move_iterator(src.end()));
  };
  move_all(into.owners, from.owners);
  move_all(into.records, from.records);
  move_all(into.items, from.items);
  move_all(into.keys, from.keys);
  move_all(into.images, from.images);
  for (size_t t = 0; t < into.inputs.size(); ++t) {
    into.inputs[t] = ConcatRows({&into.inputs[t], &from.inputs[t]});
  }
}

}  // namespace baton::infer
