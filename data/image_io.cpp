#include "data/image_io.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.h"

namespace fn::data {

bool is_image_file_name(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

static std::vector<uint8_t> read_bytes(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    const int err = errno;
    FN_USER_FAIL(path, ": cannot open image (", std::strerror(err), ")");
  }
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) bytes.insert(bytes.end(), buf, buf + n);
  if (bytes.empty()) {  // a folder opens and reads as empty on Linux: say which it is
    std::error_code ec;
    FN_EXPECT(!std::filesystem::is_directory(path, ec), path, ": is a folder, not an image");
    FN_USER_FAIL(path, ": image file is empty");
  }
  return bytes;
}

static bool is_jpeg(const std::vector<uint8_t>& b) { return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }
static bool is_png(const std::vector<uint8_t>& b) { return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0; }

// A complete JPEG ends with FF D9 (some writers append a few bytes after it, so look near the end; inside
// entropy-coded data FF is always followed by 00 or a restart marker, so FF D9 cannot appear by chance).
static bool jpeg_complete(const std::vector<uint8_t>& b) {
  const size_t from = b.size() > 1024 ? b.size() - 1024 : 0;
  for (size_t i = b.size() - 1; i > from; --i)
    if (b[i - 1] == 0xFF && b[i] == 0xD9) return true;
  return false;
}
static bool png_complete(const std::vector<uint8_t>& b) {
  const size_t from = b.size() > 64 ? b.size() - 64 : 0;
  for (size_t i = from; i + 4 <= b.size(); ++i)
    if (std::memcmp(&b[i], "IEND", 4) == 0) return true;
  return false;
}

static void check_complete(const std::string& path, const std::vector<uint8_t>& b) {
  if (is_jpeg(b)) {
    FN_EXPECT(jpeg_complete(b), path, ": truncated JPEG (no end-of-image marker)");
  } else if (is_png(b)) {
    FN_EXPECT(png_complete(b), path, ": truncated PNG (no IEND chunk)");
  } else {
    FN_USER_FAIL(path, ": not a JPEG or PNG file");
  }
}

Image decode_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  check_complete(path, bytes);
  Image img;
  int comp = 0;
  stbi_uc* px = stbi_load_from_memory(bytes.data(), (int)bytes.size(), &img.w, &img.h, &comp, 3);
  FN_EXPECT(px, path, ": cannot decode image (", stbi_failure_reason(), ")");
  img.rgb.assign(px, px + (size_t)img.w * img.h * 3);
  stbi_image_free(px);
  return img;
}

void image_size(const std::string& path, int& w, int& h) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  check_complete(path, bytes);
  int comp = 0;
  if (!stbi_info_from_memory(bytes.data(), (int)bytes.size(), &w, &h, &comp))
    FN_USER_FAIL(path, ": cannot read image header (", stbi_failure_reason(), ")");
}

void write_image(const std::string& path, const Image& img, int jpeg_quality) {
  FN_CHECK(img.w > 0 && img.h > 0 && img.rgb.size() == (size_t)img.w * img.h * 3, "bad image for ", path);
  const bool png = path.size() >= 4 && path.compare(path.size() - 4, 4, ".png") == 0;
  const int ok = png ? stbi_write_png(path.c_str(), img.w, img.h, 3, img.rgb.data(), img.w * 3)
                     : stbi_write_jpg(path.c_str(), img.w, img.h, 3, img.rgb.data(), jpeg_quality);
  FN_EXPECT(ok, path, ": cannot write image (does the folder exist, is the disk full?)");
}

}  // namespace fn::data
