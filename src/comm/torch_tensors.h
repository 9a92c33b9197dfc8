// Collectives on torch tensors: a thin adapter over the Collectives interface (collectives.h:
// ProcessGroup, HierarchicalRing) for callers that hold at::Tensor. It lives in its own library,
// baton_comm_torch, built only where libtorch is found, so that baton_comm and everything else that
// uses it stay torch-free.
//
// Each call checks its tensors before anything is sent: defined, dense, on the CPU, contiguous, of
// a supported dtype (float32, float64, int64, bfloat16, mapped to DataType), the same dtype for
// `in` and `out`, element counts that fit the collective, and `in` and `out` not overlapping. A
// violation returns kInvalidArgument naming the call, the tensor and what is wrong, and the group
// is left untouched (still usable). Then it calls the raw-buffer collective on data_ptr() with the
// tensor's element count: shapes beyond the element count are the caller's business, so a
// [4, 256] tensor and a [1024] one reduce alike.
//
// As with the raw API, every member must make the same call with the same element counts; those
// cannot be checked locally. A rank whose tensors fail the check returns at once while its peers
// wait in the collective until their timeout, so misuse shows up as an error on one rank and
// kDeadlineExceeded on the others. Output tensors are taken as `const at::Tensor&` like torch's own
// in-place functions (the handle is const, the data is written), so views such as `t.view(-1)` can
// be passed; they are written through data_ptr(), which autograd does not see (as with
// torch.distributed).
#pragma once

#include <ATen/core/Tensor.h>

#include "comm/collectives.h"
#include "comm/types.h"
#include "common/status.h"

namespace baton::comm {

// float32, float64, int64, bfloat16 -> DataType; anything else is kInvalidArgument.
Result<DataType> DataTypeOf(at::ScalarType type);

// In place: every rank's `tensor` ends with op over all ranks' tensors.
Status AllReduce(Collectives& group, const at::Tensor& tensor, ReduceOp op,
                 const CallOptions& call = {});

// Copies `root`'s tensor into everyone's.
Status Broadcast(Collectives& group, const at::Tensor& tensor, int root,
                 const CallOptions& call = {});

// `out` holds size() * in.numel() elements (e.g. shape [size, *in.shape] or
// [size * in.size(0), ...]) and ends with rank r's `in` at element r * in.numel().
Status AllGather(Collectives& group, const at::Tensor& in, const at::Tensor& out,
                 const CallOptions& call = {});

// `in` holds the same element count N on every rank; `out` receives this rank's block of
// Partition(N, size()) reduced over all ranks, so out.numel() must equal that block's count
// (N / size() when size() divides N, as torch's reduce_scatter_tensor requires).
Status ReduceScatter(Collectives& group, const at::Tensor& in, const at::Tensor& out, ReduceOp op,
                     const CallOptions& call = {});

}  // namespace baton::comm
