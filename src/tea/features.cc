#include "tea/features.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tea/gemm_bf16.h"
#include "tea/linalg.h"
#include "tea/memory.h"
#include "tea/multiversion.h"
#include "tea/parallel.h"
#include "tea/random.h"

namespace baton::tea {
namespace {

// Draws a (rows x cols) N(0,1) matrix and scales each `block`-wide piece of each row to unit norm:
// block == cols is the official proj(); block == mini_dim stacks the per-head projections P_c.
Mat RandomProjection(int64_t rows, int64_t cols, int64_t block, uint64_t seed, int threads,
                     KernelPath path) {
  Mat m = LargeMat(rows, cols);
  FillGaussian(m.data(), m.size(), seed, threads);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols; b += block) {
      NormalizeRows(m.data() + r * cols + b, 1, block, cols, 1, path);
    }
  }
  return m;
}

// X[h] += sum over the tuples k of head h of W[k, c] * Y[t_k, head c], for the heads in [h0, h1);
// W[k] is the sum of the tuple's kinds' rows of kind_proj.
TEA_ALWAYS_INLINE inline void AggregateHeadsBody(const AspectMatrices& aspect,
                                                 const int32_t* tuple_head,
                                                 const int32_t* tuple_tail, int64_t k0, int64_t k1,
                                                 const float* kind_proj, int64_t heads, int mini,
                                                 const float* y, float* x, float* w) {
  const int64_t width = heads * mini;
  for (int64_t k = k0; k < k1; ++k) {
    for (int64_t c = 0; c < heads; ++c) w[c] = 0.0f;
    for (int64_t p = aspect.tuple_ptr[k]; p < aspect.tuple_ptr[k + 1]; ++p) {
      const float* kr = kind_proj + aspect.tuple_kind[p] * heads;
      for (int64_t c = 0; c < heads; ++c) w[c] += kr[c];
    }
    float* dst = x + tuple_head[k] * width;
    const float* src = y + tuple_tail[k] * width;
    if (mini == 16) {  // the fixed-width case the compiler can fully vectorise
      for (int64_t c = 0; c < heads; ++c) {
        const float wc = w[c];
        for (int j = 0; j < 16; ++j) dst[c * 16 + j] += wc * src[c * 16 + j];
      }
    } else {
      for (int64_t c = 0; c < heads; ++c) {
        const float wc = w[c];
        for (int j = 0; j < mini; ++j) dst[c * mini + j] += wc * src[c * mini + j];
      }
    }
  }
}

TEA_PER_PATH(AggregateHeads,
             (const AspectMatrices& aspect, const int32_t* tuple_head, const int32_t* tuple_tail,
              int64_t k0, int64_t k1, const float* kind_proj, int64_t heads, int mini,
              const float* y, float* x, float* w),
             (aspect, tuple_head, tuple_tail, k0, k1, kind_proj, heads, mini, y, x, w))

}  // namespace

Mat AspectFeatures(const Graph& g, const AspectMatrices& aspect,
                   const std::vector<std::pair<int32_t, int32_t>>& seeds, const FeatureOptions& opt,
                   uint64_t stream, PhaseTimes* times) {
  FeatureWorkspace ws;
  Mat out;
  AspectFeatures(g, aspect, seeds, opt, stream, &ws, &out, times);
  return out;
}

void AspectFeatures(const Graph& g, const AspectMatrices& aspect,
                    const std::vector<std::pair<int32_t, int32_t>>& seeds,
                    const FeatureOptions& opt, uint64_t stream, FeatureWorkspace* ws, Mat* out,
                    PhaseTimes* times) {
  const int64_t n = g.node_size;
  const int64_t d = opt.label_dim;
  const int64_t views = opt.depth + 1;
  const int64_t wide = d * views;  // [E0 | E1 | ... | E_depth]
  const int64_t heads = opt.proj_dim;
  const int64_t width = heads * opt.mini_dim;
  const int threads = opt.threads;
  const KernelPath path = std::min(opt.kernel, DetectedKernelPath());

  // --- Labels and propagation: E (N x wide), R (kinds x wide), one column block per step.
  ReshapeLarge(&ws->views, n, wide);
  Mat& e = ws->views;
  e.setZero();
  Mat r = Mat::Zero(aspect.kind_size, wide);
  Mat labels = LargeMat(static_cast<int64_t>(seeds.size()), d);
  std::vector<int32_t> label_of(n, -1);  // which seed's label an entity carries (last one wins)
  {
    ScopedPhase phase(times, "propagate");
    FillGaussian(labels.data(), labels.size(), DeriveSeed(stream, 1), threads);
    NormalizeRows(labels.data(), labels.rows(), d, d, threads, path);
    for (size_t k = 0; k < seeds.size(); ++k) {
      label_of[seeds[k].first] = static_cast<int32_t>(k);
      label_of[seeds[k].second] = static_cast<int32_t>(k);
    }
    for (int64_t i = 0; i < n; ++i) {
      if (label_of[i] >= 0) std::memcpy(&e(i, 0), &labels(label_of[i], 0), sizeof(float) * d);
    }
    for (int64_t s = 0; s < opt.depth; ++s) {
      const float* es = e.data() + s * d;
      // R(s+1) = norm(A_ke E(s));  E(s+1) = norm(A_ee E(s) + A_ek R(s)), R(0) = 0.
      SpMM(aspect.kind_ent, es, wide, d, r.data() + (s + 1) * d, wide, false, threads, path);
      NormalizeRows(r.data() + (s + 1) * d, r.rows(), d, wide, threads, path);
      float* next = e.data() + (s + 1) * d;
      SpMM(g.ent_ent, es, wide, d, next, wide, false, threads, path);
      if (s > 0) SpMM(aspect.ent_kind, r.data() + s * d, wide, d, next, wide, true, threads, path);
      NormalizeRows(next, n, d, wide, threads, path);
    }
    NormalizeRows(e.data(), n, wide, wide, threads, path);
    NormalizeRows(r.data(), r.rows(), wide, wide, threads, path);
  }

  // --- Random projections. Kind features R~ = R^ G pick a weight per head for every tuple;
  // entity features are projected per head by P_c, stacked into one (wide x width) matrix P so
  // that Y = E^ P is a single GEMM.
  ReshapeLarge(&ws->projected, n, width);
  Mat& y = ws->projected;
  Mat kind_proj(aspect.kind_size, heads);
  {
    ScopedPhase phase(times, "project");
    Mat gk = RandomProjection(wide, heads, heads, DeriveSeed(stream, 2), threads, path);
    Gemm(r.data(), wide, gk.data(), heads, kind_proj.data(), heads, r.rows(), heads, wide, false,
         threads);
    Mat p = RandomProjection(wide, width, opt.mini_dim, DeriveSeed(stream, 3), threads, path);
    // E0 is zero except on seed entities: multiply the dense views [E1..] in one GEMM and add the
    // label view only for the (few) rows that carry a label.
    const bool bf16 = opt.bf16_projection;
    if (bf16) {
      GemmBf16(e.data() + d, wide, p.data() + d * width, width, y.data(), width, n, width, wide - d,
               threads, nullptr, false, path);
    } else {
      Gemm(e.data() + d, wide, p.data() + d * width, width, y.data(), width, n, width, wide - d,
           false, threads);
    }
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < n; ++i) {
      if (label_of[i] >= 0) rows.push_back(i);
    }
    Mat lab = LargeMat(static_cast<int64_t>(rows.size()), d);
    for (size_t j = 0; j < rows.size(); ++j) {
      std::memcpy(&lab(j, 0), &e(rows[j], 0), sizeof(float) * d);
    }
    if (bf16) {  // accumulates straight into the labelled rows of Y
      GemmBf16(lab.data(), d, p.data(), width, y.data(), width, lab.rows(), width, d, threads,
               rows.data(), /*accumulate=*/true, path);
    } else {
      Mat add = LargeMat(lab.rows(), width);
      Gemm(lab.data(), d, p.data(), width, add.data(), width, lab.rows(), width, d, false, threads);
      for (size_t j = 0; j < rows.size(); ++j) {
        float* dst = &y(rows[j], 0);
        const float* src = &add(j, 0);
        for (int64_t c = 0; c < width; ++c) dst[c] += src[c];
      }
    }
  }

  // --- Triple view: X[h, head c] += W[k, c] * Y[t, head c] over tuples k = (h, t), where
  // W[k] = sum of the tuple's kinds' R~ rows. Tuples are sorted by head, so chunks of heads
  // never write the same row.
  ReshapeLarge(out, n, width);
  Mat& x = *out;
  x.setZero();
  {
    ScopedPhase phase(times, "aggregate");
    const auto& th = g.tuple_head;
    const auto& tt = g.tuple_tail;
    std::vector<int64_t> first(n + 1, 0);  // tuples of head i: [first[i], first[i+1])
    for (int32_t h : th) first[h + 1]++;
    for (int64_t i = 0; i < n; ++i) first[i + 1] += first[i];
    const int mini = opt.mini_dim;
    ParallelFor(n, 256, threads, [&](int64_t h0, int64_t h1) {
      std::vector<float> w(heads);
      TEA_DISPATCH(path, AggregateHeads,
                   (aspect, th.data(), tt.data(), first[h0], first[h1], kind_proj.data(), heads,
                    mini, y.data(), x.data(), w.data()));
    });
    NormalizeRows(x.data(), n, width, width, threads, path);
  }
}

}  // namespace baton::tea
