#include "infer/tensor.h"

namespace baton::infer {

HostTensor ZerosTensor(TensorType type, std::vector<int64_t> shape) {
  HostTensor t;
  t.type = type;
  t.shape = std::move(shape);
  if (type == TensorType::kFloat32) {
    t.f.assign(static_cast<size_t>(t.elements()), 0.0f);
  } else {
    t.i.assign(static_cast<size_t>(t.elements()), 0);
  }
  return t;
}

HostTensor SliceRows(const HostTensor& t, int64_t begin, int64_t end) {
  HostTensor out;
  out.type = t.type;
  out.shape = t.shape;
  out.shape[0] = end - begin;
  const auto w = static_cast<size_t>(t.row_width());
  const auto b = static_cast<size_t>(begin) * w, e = static_cast<size_t>(end) * w;
  if (t.type == TensorType::kFloat32) {
    out.f.assign(t.f.begin() + static_cast<ptrdiff_t>(b), t.f.begin() + static_cast<ptrdiff_t>(e));
  } else {
    out.i.assign(t.i.begin() + static_cast<ptrdiff_t>(b), t.i.begin() + static_cast<ptrdiff_t>(e));
  }
  return out;
}

HostTensor ConcatRows(const std::vector<const HostTensor*>& parts) {
  HostTensor out;
  if (parts.empty()) return out;
  out.type = parts[0]->type;
  out.shape = parts[0]->shape;
  out.shape[0] = 0;
  for (const HostTensor* p : parts) {
    out.shape[0] += p->rows();
    if (out.type == TensorType::kFloat32) {
      out.f.insert(out.f.end(), p->f.begin(), p->f.end());
    } else {
      out.i.insert(out.i.end(), p->i.begin(), p->i.end());
    }
  }
  return out;
}

Status CheckOutputRows(const std::vector<HostTensor>& outputs, int64_t rows) {
  for (const HostTensor& h : outputs) {
    if (h.rows() != rows) {
      return Status::InvalidArgument("the model returned " + std::to_string(h.rows()) +
                                     " rows for a batch of " + std::to_string(rows));
    }
  }
  return Status::Ok();
}

}  // namespace baton::infer
