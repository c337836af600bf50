// Image files: decoding (stb_image: JPEG, PNG) into 8-bit RGB, with errors that name the file, and
// writing (stb_image_write) for the synthetic dataset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fn::data {

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;  // h*w*3, row-major, interleaved RGB
};

// Whether a file name is a photo the engine reads: .jpg, .jpeg or .png, in any case.
bool is_image_file_name(const std::string& path);

// Decodes `path`. A missing, empty, corrupt or truncated file (or a folder) throws fn::Error whose message
// starts with the path. stb_image decodes a truncated JPEG silently (it pads the missing data), so JPEGs must end
// with the EOI marker and PNGs with the IEND chunk.
Image decode_image(const std::string& path);

// Width and height from the header only (fast; used by check-data). Throws like decode_image.
void image_size(const std::string& path, int& w, int& h);

// JPEG (quality 1..100) or PNG by the extension; throws fn::Error naming the file on failure.
void write_image(const std::string& path, const Image& img, int jpeg_quality = 90);

}  // namespace fn::data
