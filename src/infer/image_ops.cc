#include "infer/image_ops.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

namespace baton::infer {
namespace {

void ToNormalizedChw(const cv::Mat& rgb, const ImageSpec& norm, float* out) {
  const int h = rgb.rows, w = rgb.cols;
  const size_t plane = static_cast<size_t>(h) * static_cast<size_t>(w);
  for (int c = 0; c < 3; ++c) {
    const float scale = 1.0f / (255.0f * norm.std[static_cast<size_t>(c)]);
    const float shift = norm.mean[static_cast<size_t>(c)] / norm.std[static_cast<size_t>(c)];
    float* dst = out + static_cast<size_t>(c) * plane;
    for (int y = 0; y < h; ++y) {
      const uint8_t* row = rgb.ptr<uint8_t>(y);
      for (int x = 0; x < w; ++x) dst[y * w + x] = row[x * 3 + c] * scale - shift;
    }
  }
}

// OpenCV parallelizes resize and colour conversion over its own thread pool. The infer worker
// already runs several preprocessing and crop threads, so nested pools would oversubscribe the
// cores: OpenCV runs each call on the calling thread.
const bool kSingleThreadedOpenCv = [] {
  cv::setNumThreads(0);
  return true;
}();

cv::Mat Wrap(const Image& image) {
  // OpenCV does not write through this header; the const_cast only satisfies its constructor.
  return cv::Mat(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.rgb.data()));
}

}  // namespace

Result<std::shared_ptr<const Image>> DecodeImageFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open image " + path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (bytes.empty()) return Status::InvalidArgument("empty image file " + path);
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(bytes, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return Status::InvalidArgument("cannot decode image " + path + ": " + e.what());
  }
  if (decoded.empty()) {
    return Status::InvalidArgument("cannot decode image " + path +
                                   " (not a JPEG/PNG/... OpenCV can read, or truncated)");
  }
  cv::Mat rgb;
  cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
  auto image = std::make_shared<Image>();
  image->width = rgb.cols;
  image->height = rgb.rows;
  image->rgb.assign(rgb.data, rgb.data + rgb.total() * 3);
  return std::shared_ptr<const Image>(std::move(image));
}

void ImageToTensorRow(const Image& image, const ImageSpec& spec, float* out) {
  cv::Mat resized;
  cv::resize(Wrap(image), resized, cv::Size(spec.width, spec.height), 0, 0, cv::INTER_LINEAR);
  ToNormalizedChw(resized, spec, out);
}

void CropToTensorRow(const Image& image, const float box[4], int32_t width, int32_t height,
                     const ImageSpec& norm, float* out) {
  auto clampi = [](float v, int lo, int hi) {
    return std::clamp(static_cast<int>(std::lround(v)), lo, hi);
  };
  int x0 = clampi(box[0] * static_cast<float>(image.width), 0, image.width - 1);
  int y0 = clampi(box[1] * static_cast<float>(image.height), 0, image.height - 1);
  int x1 = clampi(box[2] * static_cast<float>(image.width), x0 + 1, image.width);
  int y1 = clampi(box[3] * static_cast<float>(image.height), y0 + 1, image.height);
  cv::Mat crop = Wrap(image)(cv::Rect(x0, y0, x1 - x0, y1 - y0));
  cv::Mat resized;
  cv::resize(crop, resized, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
  ToNormalizedChw(resized, norm, out);
}

}  // namespace baton::infer
