// The torch-free part of meta_model.h (the model itself is torch_meta_model.cc).
#include "meta/meta_model.h"

namespace baton::meta {

Result<InnerParams> ParseInnerParams(std::string_view name) {
  if (name == "dense") return InnerParams::kDense;
  if (name == "embedding") return InnerParams::kEmbedding;
  if (name == "all") return InnerParams::kAll;
  return Status::InvalidArgument("expected dense, embedding or all, got '" + std::string(name) +
                                 "'");
}

}  // namespace baton::meta
