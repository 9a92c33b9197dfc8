// The TorchScript model behind TrainableModel: its parameters are views of one flat buffer, and a
// backward pass leaves exactly torch's gradient of the summed per-sample losses in the flat
// gradient buffer.
#include "train/model.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

namespace baton::train {
namespace {

std::vector<infer::HostTensor> Batch(int rows, uint64_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  infer::HostTensor x = infer::ZerosTensor(infer::TensorType::kFloat32, {rows, 4});
  x.f.clear();
  infer::HostTensor y = infer::ZerosTensor(infer::TensorType::kFloat32, {rows, 1});
  y.f.clear();
  for (int i = 0; i < rows * 4; ++i) x.f.push_back(normal(rng));
  for (int i = 0; i < rows; ++i) y.f.push_back(static_cast<float>(rng() % 2));
  return {x, y};
}

// Torch's gradient of sum(forward(batch)) for the file's parameters, flattened in order.
std::vector<double> TorchGradient(const std::string& path,
                                  const std::vector<infer::HostTensor>& batch,
                                  torch::ScalarType type) {
  torch::jit::Module m = torch::jit::load(path);
  m.train();
  auto x = torch::from_blob(const_cast<float*>(batch[0].f.data()), batch[0].shape).to(type);
  auto y = torch::from_blob(const_cast<float*>(batch[1].f.data()), batch[1].shape).to(type);
  c10::IValue out = m.forward({x, y});
  if (out.isTuple()) out = out.toTupleRef().elements()[0];
  out.toTensor().sum().backward();
  std::vector<double> g;
  for (const at::Tensor& p : m.parameters()) {
    at::Tensor flat = p.grad().reshape({-1}).to(torch::kFloat64);
    for (int64_t i = 0; i < flat.numel(); ++i) g.push_back(flat[i].item<double>());
  }
  return g;
}

std::vector<double> Flat(TrainableModel& m, void* buffer) {
  std::vector<double> out(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    out[i] = m.dtype() == comm::DataType::kFloat64 ? static_cast<double*>(buffer)[i]
                                                   : static_cast<float*>(buffer)[i];
  }
  return out;
}

TEST(TrainableModel, BackwardLeavesTorchsGradientOfTheSummedLossesInTheFlatBuffer) {
  for (const char* name : {"mlp_f64.pt", "mlp_f32.pt", "tuple_loss.pt"}) {
    const std::string path = std::string(TRAIN_FIXTURES) + "/" + name;
    auto model = LoadTrainableModel(path);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const bool f64 = (*model)->dtype() == comm::DataType::kFloat64;
    const auto batch = Batch(16, 3);
    // Two passes: the second must not accumulate onto the first.
    ASSERT_TRUE((*model)->ForwardBackward(Batch(5, 9)).ok());
    auto loss = (*model)->ForwardBackward(batch);
    ASSERT_TRUE(loss.ok()) << loss.status().ToString();
    EXPECT_GT(*loss, 0);
    const auto expected = TorchGradient(path, batch, f64 ? torch::kFloat64 : torch::kFloat32);
    const auto got = Flat(**model, (*model)->grads());
    ASSERT_EQ(got.size(), expected.size()) << name;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], expected[i], f64 ? 1e-13 : 1e-5) << name << " element " << i;
    }
  }
}

TEST(TrainableModel, ParametersAreViewsOfTheFlatBufferAndSaveKeepsThem) {
  const std::string path = std::string(TRAIN_FIXTURES) + "/mlp_f64.pt";
  auto model = LoadTrainableModel(path);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->size(), 4u * 8 + 8 + 8 + 1);
  const auto batch = Batch(8, 1);
  const double before = *(*model)->ForwardBackward(batch);
  auto* p = static_cast<double*>((*model)->params());
  for (size_t i = 0; i < (*model)->size(); ++i) p[i] *= 0.5;  // what an optimizer does in place
  const double after = *(*model)->ForwardBackward(batch);
  EXPECT_NE(before, after);  // forward() read the changed buffer
  const std::string saved = ::testing::TempDir() + "/baton-train-saved.pt";
  ASSERT_TRUE((*model)->Save(saved).ok());
  auto again = LoadTrainableModel(saved);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Flat(**again, (*again)->params()), Flat(**model, (*model)->params()));
  EXPECT_DOUBLE_EQ(*(*again)->ForwardBackward(batch), after);
  std::filesystem::remove(saved);
}

TEST(TrainableModel, AModelThatReturnsAMeanLossOrNoFileIsRefusedWithTheReason) {
  auto mean = LoadTrainableModel(std::string(TRAIN_FIXTURES) + "/mean_loss.pt");
  ASSERT_TRUE(mean.ok());
  auto loss = (*mean)->ForwardBackward(Batch(4, 1));
  ASSERT_FALSE(loss.ok());
  EXPECT_NE(loss.status().message().find("per-sample losses, a float tensor of shape [4]"),
            std::string::npos)
      << loss.status().message();
  auto missing = LoadTrainableModel("/nonexistent/model.pt");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace baton::train
