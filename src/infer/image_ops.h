// Image decoding and preprocessing with OpenCV: decode (JPEG, PNG, ... whatever OpenCV reads),
// convert to RGB, resize or crop-and-resize, and normalize into a CHW float tensor row.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "infer/infer_spec.h"

namespace baton::infer {

// A decoded 8-bit RGB image, interleaved (HWC). Shared between the models of a DAG: a crop model
// cuts its inputs out of the decoded original, not out of the root model's resized copy.
struct Image {
  int32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Reads and decodes the file. A file that is missing, empty or undecodable is an error that says
// which.
Result<std::shared_ptr<const Image>> DecodeImageFile(const std::string& path);

// Resizes the whole image to spec.width x spec.height and writes 3*H*W normalized floats (CHW)
// to `out`.
void ImageToTensorRow(const Image& image, const ImageSpec& spec, float* out);

// Cuts the box (normalized x0,y0,x1,y1; clamped to the image, at least one pixel) out of the
// image, resizes it to width x height and writes 3*H*W normalized floats to `out`.
void CropToTensorRow(const Image& image, const float box[4], int32_t width, int32_t height,
                     const ImageSpec& norm, float* out);

}  // namespace baton::infer
