#include "infer/preflight.h"

#include <fstream>

#include "infer/model_backend.h"
#include "infer/row_parser.h"
#include "infer/tensor.h"

namespace baton::infer {
namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string ShapeOf(const HostTensor& t) {
  std::string out = "[";
  for (size_t i = 0; i < t.shape.size(); ++i) out += (i ? "," : "") + std::to_string(t.shape[i]);
  return out + "]";
}

}  // namespace

Status Preflight(const InferSpec& spec, const std::vector<std::string>& input_files) {
  std::vector<std::string> problems;
  auto add = [&](int line, const std::string& key, const std::string& message) {
    problems.push_back(spec.spec_path + ":" + std::to_string(line) + ": " + key + ": " + message);
  };

  for (std::string& p : CheckRecordsFit(spec, spec.spec_path, "infer", input_files))
    problems.push_back(std::move(p));

  // Models: load, compare forward()'s arity, dry-run two synthetic records through the graph.
  constexpr int64_t kRows = 2;
  std::vector<std::vector<HostTensor>> outputs(spec.models.size());
  std::vector<bool> ok(spec.models.size(), false);
  for (size_t m = 0; m < spec.models.size(); ++m) {
    const ModelSpec& model = spec.models[m];
    const std::string key = "infer.models[" + model.name + "]";
    auto loaded = LoadModel(model.path, BackendOptions{spec.device});
    if (!loaded.ok()) {
      add(model.line, key + ".path", loaded.status().message());
      continue;
    }
    std::vector<HostTensor> inputs;
    std::vector<std::string> declared;
    if (m == 0) {
      if (spec.input == InputKind::kImages) {
        inputs.push_back(
            ZerosTensor(TensorType::kFloat32, {kRows, 3, spec.image.height, spec.image.width}));
        declared.push_back("image [N,3," + std::to_string(spec.image.height) + "," +
                           std::to_string(spec.image.width) + "]");
      } else {
        for (const TensorSpec& t : spec.tensors) {
          inputs.push_back(ZerosTensor(t.type, {kRows, static_cast<int64_t>(t.columns.size())}));
          declared.push_back(t.name + " [N," + std::to_string(t.columns.size()) + "]");
        }
      }
    } else {
      const int parent = ModelIndex(spec, model.after);
      if (!ok[static_cast<size_t>(parent)]) continue;  // already reported
      const auto& po = outputs[static_cast<size_t>(parent)];
      if (model.emit == EmitKind::kCrops) {
        if (po.size() < 2 || po[0].shape.size() != 3 || po[0].shape[2] != 4 ||
            po[1].shape.size() != 2 || po[1].shape[1] != po[0].shape[1] ||
            po[0].type != TensorType::kFloat32 || po[1].type != TensorType::kFloat32) {
          add(model.line, key + ".emit",
              "emit: crops needs model " + model.after +
                  " to return (boxes [N,K,4], scores [N,K]) as float tensors; it returned " +
                  (po.empty() ? std::string("nothing") : ShapeOf(po[0])) +
                  (po.size() > 1 ? ", " + ShapeOf(po[1]) : std::string()));
          continue;
        }
        inputs.push_back(
            ZerosTensor(TensorType::kFloat32, {kRows, 3, model.crop_height, model.crop_width}));
        declared.push_back("crop [N,3," + std::to_string(model.crop_height) + "," +
                           std::to_string(model.crop_width) + "]");
      } else {
        inputs.push_back(po.at(0));
        declared.push_back(model.after + "'s first output " + ShapeOf(po.at(0)));
      }
    }
    const auto& names = (*loaded)->input_names();
    if (names.size() != inputs.size()) {
      add(model.line, key,
          "the model's forward() takes " + std::to_string(names.size()) + " input(s) (" +
              Join(names) + ") but the spec feeds it " + std::to_string(inputs.size()) + " (" +
              Join(declared) + ")");
      continue;
    }
    auto out = (*loaded)->Predict(inputs);
    if (out.ok()) {
      if (Status rows = CheckOutputRows(*out, kRows); !rows.ok()) out = rows;
    }
    if (!out.ok()) {
      add(model.line, key,
          "the model rejects inputs shaped like the spec's (" + Join(declared) +
              "): " + out.status().message());
      continue;
    }
    if (out->empty()) {
      add(model.line, key, "the model returned no tensors");
      continue;
    }
    if (!model.outputs.empty() && model.outputs.size() != out->size()) {
      add(model.line, key + ".outputs",
          "names " + std::to_string(model.outputs.size()) + " output(s) but the model returns " +
              std::to_string(out->size()));
    }
    outputs[m] = std::move(*out);
    ok[m] = true;
  }
  if (problems.empty()) return Status::Ok();
  std::string msg;
  for (const auto& p : problems) msg += (msg.empty() ? "" : "\n") + p;
  return Status::InvalidArgument(msg);
}

}  // namespace baton::infer
