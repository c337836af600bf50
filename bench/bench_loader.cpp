// bench_loader: images/s of the input pipeline (decode + crop + resize + flip + normalise) on real
// DeepFashion photos at 224x224, on one thread and through the Loader on all threads. Validates the
// output first, then times (median of repeats). Prints JSON: machine, date, commit.
//
//   bench_loader [--root DIR] [--images N] [--input 224] [--repeats 3] [--out FILE]
#include <nlohmann/json.hpp>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "data/image_io.h"
#include "data/loader.h"
#include "data/transform.h"

#include "bench/bench_util.h"

using namespace fn::data;
using fn::bench::load_average;
using fn::bench::median;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU seconds of this thread or of the whole process: on a shared machine, images per CPU-second is the
// per-core figure that other tenants disturb least.
static double cpu_seconds(clockid_t which) {
  timespec ts;
  clock_gettime(which, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// The source tree: FN_SOURCE_DIR where the build defines it, else this file's own location.
static std::string source_dir() {
#ifdef FN_SOURCE_DIR
  return FN_SOURCE_DIR;
#else
  std::string f = __FILE__;
  const size_t p = f.rfind("/bench/");
  return p == std::string::npos ? std::string(".") : f.substr(0, p);
#endif
}

int main(int argc, char** argv) {
  std::string root = source_dir() + "/../shared/deepfashion/inshop_firstview/train", out;
  int max_images = 1000, input = 224, repeats = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--root") root = v;
    else if (k == "--images") max_images = std::stoi(v);
    else if (k == "--input") input = std::stoi(v);
    else if (k == "--repeats") repeats = std::stoi(v);
    else if (k == "--out") out = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (!std::filesystem::is_directory(root)) {
    std::printf("SKIPPED: %s not found\n", root.c_str());
    return 0;
  }
  const Dataset ds = load_dataset(root, "imagefolder");
  std::vector<int> idx;
  for (int i = 0; i < (int)ds.samples.size() && i < max_images; ++i) idx.push_back(i);
  if (idx.empty()) {
    std::fprintf(stderr, "no images under %s\n", root.c_str());
    return 1;
  }
  const size_t per_image = (size_t)3 * input * input;

  // Validate: a flipped sample is the mirror of the unflipped one, and values are normalised RGB.
  {
    LoaderConfig cfg;
    cfg.input = input;
    Batch b;
    resize_batch(b, 2, input, ds.attribute_names.size());
    load_sample(ds, idx[0], cfg, Augment{}, b, 0);
    load_sample(ds, idx[0], cfg, Augment{true}, b, 1);
    for (size_t c = 0; c < 3; ++c)
      for (int y = 0; y < input; ++y)
        for (int x = 0; x < input; ++x) {
          const float a = b.image[(c * input + y) * input + x], f = b.image[per_image + (c * input + y) * input + input - 1 - x];
          if (a != f || a < -2.2f || a > 2.7f) {
            std::fprintf(stderr, "validation failed at c=%zu y=%d x=%d\n", c, y, x);
            return 1;
          }
        }
  }

  // One thread: the stages separately, then the whole per-image path.
  std::vector<float> dst(per_image);
  std::vector<double> decode_s, transform_s, total_s, cpu_s;
  for (int r = 0; r < repeats; ++r) {
    double dec = 0, tr = 0;
    const double c0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    const auto t0 = Clock::now();
    for (size_t k = 0; k < idx.size(); ++k) {
      const Sample& s = ds.samples[idx[k]];
      const auto a = Clock::now();
      const Image img = decode_image(ds.root + "/" + s.image);
      const auto b = Clock::now();
      crop_resize_normalize(img, crop_rect(s, img.w, img.h, 0.f), input, k & 1, dst.data());
      tr += seconds_since(b);
      dec += std::chrono::duration<double>(b - a).count();
    }
    total_s.push_back(seconds_since(t0));
    cpu_s.push_back(cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - c0);
    decode_s.push_back(dec);
    transform_s.push_back(tr);
  }
  const double n = (double)idx.size();
  const double single = n / median(total_s);

  // All threads through the Loader (threads decode whole batches; the consumer only receives).
  const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
  LoaderConfig cfg;
  cfg.input = input;
  cfg.batch = 32;
  cfg.threads = threads;
  cfg.prefetch = 2 * threads;
  cfg.sampler = LoaderConfig::Sequential;
  cfg.drop_last = false;
  std::vector<double> loader_s, loader_cpu_s;
  for (int r = 0; r < repeats; ++r) {
    Loader loader(ds, idx, cfg);
    Batch b;
    int64_t images = 0;
    const double c0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    const auto t0 = Clock::now();
    while (loader.next(b)) images += b.n;
    loader_s.push_back(seconds_since(t0));
    loader_cpu_s.push_back(cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - c0);
    if (images != (int64_t)idx.size()) {
      std::fprintf(stderr, "loader delivered %lld of %zu images\n", (long long)images, idx.size());
      return 1;
    }
  }
  const double multi = n / median(loader_s);

  nlohmann::json j = fn::bench::machine_json("cpu");
  j.update({
      {"bench", "loader"},
      {"root", root},
      {"images", idx.size()},
      {"input", input},
      {"repeats", repeats},
      {"load_average_1min", load_average()},
      {"single_thread",
       {{"images_per_s", single},
        {"images_per_cpu_s", n / median(cpu_s)},
        {"decode_ms_per_image", 1e3 * median(decode_s) / n},
        {"crop_resize_flip_normalize_ms_per_image", 1e3 * median(transform_s) / n}}},
      {"all_threads", {{"threads", threads}, {"images_per_s", multi}, {"images_per_s_per_core", multi / threads},
                       {"images_per_cpu_s", n / median(loader_cpu_s)}}},
  });
  std::printf("%s\n", j.dump(2).c_str());
  return fn::bench::write_json(out, j, false) ? 0 : 1;
}
