// Kernel path choice (cpu.h): the CPU's best path unless lowered by BATON_TEA_KERNEL or an option.
#include "tea/cpu.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

namespace baton::tea {
namespace {

// Sets BATON_TEA_KERNEL for one test and restores the previous state.
class KernelEnv {
 public:
  explicit KernelEnv(const char* value) {
    const char* old = std::getenv("BATON_TEA_KERNEL");
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value) {
      ::setenv("BATON_TEA_KERNEL", value, 1);
    } else {
      ::unsetenv("BATON_TEA_KERNEL");
    }
  }
  ~KernelEnv() {
    if (had_) {
      ::setenv("BATON_TEA_KERNEL", old_.c_str(), 1);
    } else {
      ::unsetenv("BATON_TEA_KERNEL");
    }
  }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(KernelPathTest, AutoPicksTheBestPathOfThisCpu) {
  KernelEnv env(nullptr);
  auto c = ResolveKernelPath("auto");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->path, DetectedKernelPath());
  EXPECT_EQ(c->source, "cpu");
  EXPECT_EQ(c->reduced_precision, c->path != KernelPath::kGeneric);
  EXPECT_TRUE(KernelPathSupported(KernelPath::kGeneric));
  // The detected path is the highest supported one.
  for (KernelPath p : {KernelPath::kAvx512, KernelPath::kAvx2}) {
    if (KernelPathSupported(p)) {
      EXPECT_GE(DetectedKernelPath(), p);
    }
  }
}

TEST(KernelPathTest, EnvironmentLowersThePathAndAnOptionOverridesIt) {
  KernelEnv env("generic");
  auto c = ResolveKernelPath("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->path, KernelPath::kGeneric);
  EXPECT_EQ(c->source, "BATON_TEA_KERNEL");
  EXPECT_TRUE(c->reduced_precision);  // asked for: the portable int8/bf16 kernels
  if (KernelPathSupported(KernelPath::kAvx2)) {
    auto o = ResolveKernelPath("avx2");
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    EXPECT_EQ(o->path, KernelPath::kAvx2);
    EXPECT_EQ(o->source, "option");
  }
}

TEST(KernelPathTest, UnknownNameIsInvalidArgumentNamingTheChoices) {
  KernelEnv env("sse9");
  auto c = ResolveKernelPath("auto");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("BATON_TEA_KERNEL"), std::string::npos);
  EXPECT_NE(c.status().message().find("'sse9'"), std::string::npos);
  EXPECT_NE(c.status().message().find("avx2"), std::string::npos);
}

// A named path resolves exactly when this CPU can run it; otherwise it is refused naming what the
// CPU lacks (never silently replaced by another path).
TEST(KernelPathTest, NamedPathResolvesExactlyWhenTheCpuRunsIt) {
  KernelEnv env(nullptr);
  for (KernelPath p : {KernelPath::kAvx512, KernelPath::kAvx2, KernelPath::kGeneric}) {
    auto c = ResolveKernelPath(KernelPathName(p));
    if (KernelPathSupported(p)) {
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      EXPECT_EQ(c->path, p);
    } else {
      ASSERT_FALSE(c.ok()) << KernelPathName(p);
      EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(c.status().message().find("lacks"), std::string::npos) << c.status().message();
    }
  }
}

TEST(KernelPathTest, FeatureListNamesWhatTheDispatchNeeds) {
  const std::string f = CpuFeatureList();
  EXPECT_EQ(KernelPathSupported(KernelPath::kAvx2),
            f.find("avx2") != std::string::npos && f.find("fma") != std::string::npos);
}

}  // namespace
}  // namespace baton::tea
