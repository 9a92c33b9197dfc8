#include "tea/cpu.h"

#include <cstdlib>
#include <vector>

namespace baton::tea {
namespace {

struct Feature {
  const char* name;
  bool present;
};

// Queried once: __builtin_cpu_supports reads the cpuid results libgcc cached at start-up.
const std::vector<Feature>& Features() {
  static const std::vector<Feature> f = {
      {"avx2", __builtin_cpu_supports("avx2") != 0},
      {"fma", __builtin_cpu_supports("fma") != 0},
      {"f16c", __builtin_cpu_supports("f16c") != 0},
      {"avx512f", __builtin_cpu_supports("avx512f") != 0},
      {"avx512bw", __builtin_cpu_supports("avx512bw") != 0},
      {"avx512vl", __builtin_cpu_supports("avx512vl") != 0},
      {"avx512vnni", __builtin_cpu_supports("avx512vnni") != 0},
      {"avx512bf16", __builtin_cpu_supports("avx512bf16") != 0},
      {"avxvnni", __builtin_cpu_supports("avxvnni") != 0},
  };
  return f;
}

bool Has(std::string_view name) {
  for (const Feature& f : Features()) {
    if (name == f.name) return f.present;
  }
  return false;
}

std::vector<const char*> Needs(KernelPath p) {
  switch (p) {
    case KernelPath::kAvx512:
      return {"avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16", "fma"};
    case KernelPath::kAvx2:
      return {"avx2", "fma"};
    case KernelPath::kGeneric:
      return {};
  }
  return {};
}

}  // namespace

const char* KernelPathName(KernelPath p) {
  switch (p) {
    case KernelPath::kAvx512:
      return "avx512";
    case KernelPath::kAvx2:
      return "avx2";
    case KernelPath::kGeneric:
      return "generic";
  }
  return "?";
}

bool KernelPathSupported(KernelPath p) {
  for (const char* f : Needs(p)) {
    if (!Has(f)) return false;
  }
  return true;
}

KernelPath DetectedKernelPath() {
  static const KernelPath best = KernelPathSupported(KernelPath::kAvx512) ? KernelPath::kAvx512
                                 : KernelPathSupported(KernelPath::kAvx2) ? KernelPath::kAvx2
                                                                          : KernelPath::kGeneric;
  return best;
}

std::string CpuFeatureList() {
  std::string out;
  for (const Feature& f : Features()) {
    if (!f.present) continue;
    if (!out.empty()) out += ",";
    out += f.name;
  }
  return out.empty() ? "none" : out;
}

Result<KernelChoice> ResolveKernelPath(std::string_view request) {
  KernelChoice c;
  c.source = "option";
  std::string name(request);
  if (name.empty() || name == "auto") {
    const char* env = std::getenv("BATON_TEA_KERNEL");
    name = env ? env : "";
    c.source = "BATON_TEA_KERNEL";
  }
  if (name.empty() || name == "auto") {
    c.source = "cpu";
    c.path = DetectedKernelPath();
    c.reduced_precision = c.path != KernelPath::kGeneric;
    return c;
  }
  bool known = false;
  for (KernelPath p : {KernelPath::kAvx512, KernelPath::kAvx2, KernelPath::kGeneric}) {
    if (name == KernelPathName(p)) {
      c.path = p;
      known = true;
    }
  }
  if (!known) {
    return Status::InvalidArgument("tea kernel path (" + c.source + "): '" + name +
                                   "' is not one of auto, avx512, avx2, generic");
  }
  std::string missing;
  for (const char* f : Needs(c.path)) {
    if (!Has(f)) missing += std::string(missing.empty() ? "" : ",") + f;
  }
  if (!missing.empty()) {
    return Status::InvalidArgument("tea kernel path (" + c.source + "): this CPU cannot run '" +
                                   name + "': it lacks " + missing + " (it has " +
                                   CpuFeatureList() + ")");
  }
  return c;
}

}  // namespace baton::tea
