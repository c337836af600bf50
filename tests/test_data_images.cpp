// Image files: decoding JPEG and PNG, and every kind of bad file (corrupt, truncated, empty, missing) is an
// error naming the file; the loader skips and counts them with skip_bad.
#include <catch2/catch.hpp>

#include <filesystem>

#include "core/error.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace fs = std::filesystem;
using namespace fn::data;

namespace {

using fn::test::read_bytes;
using fn::test::write_bytes;

struct TempDir : fn::test::TempDir {
  explicit TempDir(const std::string& tag) : fn::test::TempDir("images_" + tag) {}
};

Image test_image(int w, int h) {
  return fn::test::image_from(w, h, [](int x, int y) {
    return std::array<uint8_t, 3>{(uint8_t)(x * 4), (uint8_t)(y * 4), (uint8_t)((x + y) * 2)};
  });
}

std::string decode_error(const std::string& path) {
  try {
    decode_image(path);
  } catch (const fn::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("JPEG and PNG round trip") {
  TempDir d("roundtrip");
  const Image img = test_image(40, 30);
  const std::string jpg = (d.path / "a.jpg").string(), png = (d.path / "a.png").string();
  write_image(jpg, img, 95);
  write_image(png, img);
  const Image p = decode_image(png);
  CHECK((p.w == 40 && p.h == 30));
  CHECK(p.rgb == img.rgb);  // PNG is lossless
  const Image j = decode_image(jpg);
  REQUIRE((j.w == 40 && j.h == 30));
  double err = 0;
  for (size_t i = 0; i < j.rgb.size(); ++i) err += std::abs((int)j.rgb[i] - (int)img.rgb[i]);
  CHECK(err / j.rgb.size() < 4.0);
  int w = 0, h = 0;
  image_size(jpg, w, h);
  CHECK((w == 40 && h == 30));
}

TEST_CASE("bad image files: each error names the file") {
  TempDir d("bad");
  const Image img = test_image(64, 64);
  write_image((d.path / "good.jpg").string(), img, 90);
  write_image((d.path / "good.png").string(), img);
  const std::string jpeg = read_bytes(d.path / "good.jpg"), png = read_bytes(d.path / "good.png");

  struct Case {
    const char* name;
    std::string bytes;
    const char* expect;
  };
  std::string corrupt = jpeg;
  for (size_t i = 20; i < corrupt.size() - 2; ++i) corrupt[i] = (char)(i * 7);  // header and data destroyed, EOI kept
  const Case cases[] = {
      {"truncated.jpg", jpeg.substr(0, jpeg.size() / 2), "truncated JPEG"},
      {"truncated.png", png.substr(0, png.size() / 2), "truncated PNG"},
      {"corrupt.jpg", corrupt, "cannot decode image"},
      {"empty.jpg", "", "image file is empty"},
      {"text.jpg", "this is not an image\n", "not a JPEG or PNG file"},
  };
  for (const Case& c : cases) {
    const fs::path p = d.path / c.name;
    write_bytes(p, c.bytes);
    const std::string err = decode_error(p.string());
    INFO(c.name << ": " << err);
    CHECK(err.rfind(p.string() + ": ", 0) == 0);  // starts with the path
    CHECK(err.find(c.expect) != std::string::npos);
  }
  fs::create_directories(d.path / "folder.jpg");  // a folder opens and reads as empty: named as a folder
  CHECK(decode_error((d.path / "folder.jpg").string()) == (d.path / "folder.jpg").string() + ": is a folder, not an image");
  const std::string missing = (d.path / "missing.jpg").string();
  CHECK(decode_error(missing).rfind(missing + ": cannot open image", 0) == 0);
  CHECK(decode_error((d.path / "good.jpg").string()).empty());
}

TEST_CASE("the loader reports a bad image by name, or skips and counts it with skip_bad") {
  TempDir d("loader");
  fs::create_directories(d.path / "a");
  fs::create_directories(d.path / "b");
  const Image img = test_image(48, 48);
  for (int i = 0; i < 4; ++i) write_image((d.path / "a" / ("ok" + std::to_string(i) + ".jpg")).string(), img, 90);
  write_bytes(d.path / "b" / "empty.jpg", "");
  const std::string jpeg = read_bytes(d.path / "a" / "ok0.jpg");
  write_bytes(d.path / "b" / "truncated.jpg", jpeg.substr(0, jpeg.size() - 100));
  const Dataset ds = load_dataset(d.path.string(), "imagefolder");
  REQUIRE(ds.samples.size() == 6);
  std::vector<int> all(6);
  for (int i = 0; i < 6; ++i) all[i] = i;

  LoaderConfig cfg;
  cfg.batch = 3;
  cfg.input = 16;
  cfg.sampler = LoaderConfig::Sequential;
  cfg.drop_last = false;
  for (int threads : {0, 2}) {
    cfg.threads = threads;
    cfg.skip_bad = false;
    {
      Loader loader(ds, all, cfg);
      Batch b;
      CHECK(loader.next(b));  // a/ok0..ok2
      try {
        loader.next(b);
        FAIL("a bad image must be an error without skip_bad");
      } catch (const fn::Error& e) {
        CHECK(std::string(e.what()).find("b/empty.jpg: image file is empty") != std::string::npos);
      }
    }
    cfg.skip_bad = true;
    Loader loader(ds, all, cfg);
    Batch b;
    int images = 0, batches = 0;
    while (loader.next(b)) {
      ++batches;
      images += b.n;
      CHECK(b.image.size() == (size_t)b.n * 3 * 16 * 16);
      CHECK(b.sample_index.size() == (size_t)b.n);
      for (int s : b.sample_index) CHECK(ds.samples[s].image.rfind("a/", 0) == 0);
    }
    CHECK(images == 4);
    CHECK(batches == 2);  // the second batch shrank to the one good image
    CHECK(loader.skipped() == 2);
    // A second epoch meets the two again: counted twice, each reason kept once (sorted).
    while (loader.next(b)) {
    }
    CHECK(loader.skipped() == 4);
    const std::vector<std::string> why = loader.skipped_reasons();
    REQUIRE(why.size() == 2);
    CHECK(why[0].find("b/empty.jpg: image file is empty") != std::string::npos);
    CHECK(why[1].find("b/truncated.jpg: truncated JPEG") != std::string::npos);
  }
}
