#include "comm/torch_tensors.h"

#include <exception>
#include <sstream>
#include <string>
#include <utility>

namespace baton::comm {
namespace {

// A checked tensor as the raw-buffer API sees it.
struct Buffer {
  void* data = nullptr;
  size_t count = 0;
  DataType type = DataType::kFloat32;
};

std::string Describe(const at::Tensor& t) {
  std::ostringstream s;
  s << "sizes " << t.sizes() << ", strides " << t.strides();
  return s.str();
}

Status Bad(const char* call, const char* name, const std::string& what) {
  return Status::InvalidArgument(std::string(call) + ": `" + name + "` " + what);
}

Result<Buffer> Check(const char* call, const char* name, const at::Tensor& t) {
  if (!t.defined()) return Bad(call, name, "is an undefined tensor");
  if (t.layout() != at::kStrided) {
    std::ostringstream layout;
    layout << t.layout();
    return Bad(call, name, "is not a dense tensor (layout " + layout.str() + ")");
  }
  if (!t.device().is_cpu()) {
    return Bad(call, name,
               "is on " + t.device().str() +
                   "; baton's collectives read and write CPU memory (pass tensor.cpu())");
  }
  auto type = DataTypeOf(t.scalar_type());
  if (!type.ok()) return Bad(call, name, type.status().message());
  if (!t.is_contiguous()) {
    return Bad(call, name,
               "is not contiguous (" + Describe(t) + "); pass tensor.contiguous() or a copy");
  }
  return Buffer{t.data_ptr(), static_cast<size_t>(t.numel()), *type};
}

// The two-tensor calls: both checked, the same dtype, `out` holding `want_out` elements, and no
// overlap (the raw collectives copy between them with memcpy).
Result<std::pair<Buffer, Buffer>> CheckPair(const char* call, const at::Tensor& in,
                                            const at::Tensor& out, size_t want_out,
                                            const std::string& why) {
  BATON_ASSIGN_OR_RETURN(Buffer i, Check(call, "in", in));
  BATON_ASSIGN_OR_RETURN(Buffer o, Check(call, "out", out));
  if (o.type != i.type) {
    return Bad(call, "out",
               "has dtype " + std::string(DataTypeName(o.type)) + " but `in` has " +
                   std::string(DataTypeName(i.type)));
  }
  if (o.count != want_out) {
    return Bad(call, "out",
               "has " + std::to_string(o.count) + " elements (" + Describe(out) + "); " + why +
                   " needs " + std::to_string(want_out));
  }
  const size_t esize = ElementSize(i.type);
  const auto* ib = static_cast<const char*>(i.data);
  const auto* ob = static_cast<const char*>(o.data);
  if (i.count > 0 && o.count > 0 && ib < ob + o.count * esize && ob < ib + i.count * esize) {
    return Bad(call, "out", "overlaps `in`; pass separate tensors");
  }
  return std::make_pair(i, o);
}

// Exceptions never leave the module: torch throws c10::Error on misuse we did not foresee.
template <typename F>
Status Guard(const char* call, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::Internal(std::string(call) + ": torch: " + e.what());
  }
}

}  // namespace

Result<DataType> DataTypeOf(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return DataType::kFloat32;
    case at::kDouble:
      return DataType::kFloat64;
    case at::kLong:
      return DataType::kInt64;
    case at::kBFloat16:
      return DataType::kBFloat16;
    default:
      return Status::InvalidArgument(std::string("has dtype ") + c10::toString(type) +
                                     "; supported: Float (float32), Double (float64), Long "
                                     "(int64), BFloat16 (bfloat16)");
  }
}

Status AllReduce(Collectives& group, const at::Tensor& tensor, ReduceOp op,
                 const CallOptions& call) {
  return Guard("allreduce", [&]() -> Status {
    BATON_ASSIGN_OR_RETURN(Buffer b, Check("allreduce", "tensor", tensor));
    return group.AllReduce(b.data, b.count, b.type, op, call);
  });
}

Status Broadcast(Collectives& group, const at::Tensor& tensor, int root, const CallOptions& call) {
  return Guard("broadcast", [&]() -> Status {
    BATON_ASSIGN_OR_RETURN(Buffer b, Check("broadcast", "tensor", tensor));
    return group.Broadcast(b.data, b.count, b.type, root, call);
  });
}

Status AllGather(Collectives& group, const at::Tensor& in, const at::Tensor& out,
                 const CallOptions& call) {
  return Guard("all_gather", [&]() -> Status {
    const size_t n = in.defined() ? static_cast<size_t>(in.numel()) : 0;
    const size_t size = static_cast<size_t>(group.size());
    BATON_ASSIGN_OR_RETURN(
        auto io, CheckPair("all_gather", in, out, n * size,
                           "all_gather of " + std::to_string(n) + "-element tensors over " +
                               std::to_string(size) + " ranks"));
    return group.AllGather(io.first.data, io.second.data, io.first.count, io.first.type, call);
  });
}

Status ReduceScatter(Collectives& group, const at::Tensor& in, const at::Tensor& out, ReduceOp op,
                     const CallOptions& call) {
  return Guard("reduce_scatter", [&]() -> Status {
    const size_t n = in.defined() ? static_cast<size_t>(in.numel()) : 0;
    const Block mine = Partition(n, group.size())[static_cast<size_t>(group.rank())];
    BATON_ASSIGN_OR_RETURN(
        auto io,
        CheckPair("reduce_scatter", in, out, mine.count,
                  "rank " + std::to_string(group.rank()) + "'s block of " + std::to_string(n) +
                      " elements over " + std::to_string(group.size()) + " ranks"));
    return group.ReduceScatter(io.first.data, io.second.data, io.first.count, io.first.type, op,
                               call);
  });
}

}  // namespace baton::comm
