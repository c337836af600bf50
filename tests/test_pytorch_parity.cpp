// The whole FashionNet against PyTorch (docs/parity.md): our forward, five losses and backward on the CPU,
// replayed by bench/pytorch/parity.py with the PyTorch twin (bench/pytorch/fashionnet_ref.py), which compares
// every output, loss term and parameter gradient, the batch norm running statistics after the step and the
// eval-mode outputs; for each backbone (VGG16, ResNet-50, EfficientNet-Lite0). Plus negative controls: a
// corrupted gradient, loss or running statistic must fail.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/safetensors.h"
#include "bench/parity/parity_case.h"
#include "support/check.h"

namespace fs = std::filesystem;
using namespace fn;

namespace {

const std::string kPython = "/usr/bin/python3";

bool torch_available() { return std::system((kPython + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0; }

// Runs parity.py on a case folder; returns its exit status (its report goes to the test's output).
int run_parity(const std::string& dir, bool quiet = false, const std::string& extra = "") {
  std::string cmd = kPython + " " + FN_SOURCE_DIR + "/bench/pytorch/parity.py --case " + dir + (quiet ? " --quiet" : "") +
                    extra + " 2>&1";
  std::fflush(stdout);
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("fn_parity_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

// Copies a case with one element of one tensor of outputs.safetensors moved by `delta`.
std::string corrupted_copy(const std::string& dir, const std::string& tensor, double delta) {
  std::string bad = dir + "_corrupt";
  fs::create_directories(bad);
  for (const char* f : {"model.safetensors", "inputs.safetensors"})
    fs::copy_file(dir + "/" + f, bad + "/" + f, fs::copy_options::overwrite_existing);
  SafetensorsFile in = load_safetensors(dir + "/outputs.safetensors");
  NamedTensors all;
  for (const auto& name : in.names) {
    Tensor t = in.get(name);
    if (name == tensor) {
      auto v = t.to_vector_f64();
      v[0] += delta;
      Tensor c = Tensor::from(v, t.shape());
      t = t.dtype() == DType::F32 ? c.to(DType::F32) : c;
    }
    all.emplace_back(name, t);
  }
  save_safetensors(bad + "/outputs.safetensors", all, in.metadata);
  return bad;
}

}  // namespace

TEST_CASE("FashionNet matches the PyTorch twin: outputs, losses and every gradient", "[parity]") {
  if (!torch_available()) {
    std::printf("SKIPPED: python3-torch not installed (%s -c 'import torch' failed)\n", kPython.c_str());
    return;
  }

  SECTION("tiny preset: input 32, width 1/16, pool mode corner, batch-hard triplets, P 2 x K 4") {
    fashionnet::ParityCaseOptions opt;
    opt.cfg = fashionnet::preset("tiny");
    opt.seed = 3;
    std::string dir = temp_dir("tiny");
    auto sum = fashionnet::write_parity_case(dir, opt);
    INFO("triplet active fraction " << sum.triplet_active);
    REQUIRE(sum.triplet_active > 0);  // the triplet loss must be live for its gradient to be checked
    REQUIRE(run_parity(dir) == 0);

    // Negative control: the same case with one gradient element moved by a visible amount must fail.
    SafetensorsFile out = load_safetensors(dir + "/outputs.safetensors");
    auto g = out.get("grad.trunk.conv1_1.weight").to_vector_f64();
    double scale = 0;
    for (double x : g) scale = std::max(scale, std::fabs(x));
    std::string bad = corrupted_copy(dir, "grad.trunk.conv1_1.weight", 0.01 * scale);
    REQUIRE(run_parity(bad, true) == 1);
    std::string bad_loss = corrupted_copy(dir, "loss.tri", 0.01);
    REQUIRE(run_parity(bad_loss, true) == 1);
    fs::remove_all(dir);
    fs::remove_all(bad);
    fs::remove_all(bad_loss);
  }

  SECTION("resnet-tiny: ResNet-50 at width 1/16, input 64, the local branch at the garment layout, scaled by 0.5, "
          "batch-hard triplets, P 2 x K 4") {
    fashionnet::ParityCaseOptions opt;
    opt.cfg = fashionnet::preset("resnet-tiny");
    opt.cfg.net.local_at = fashionnet::LocalAt::Layout;
    opt.cfg.net.local_scale = 0.5f;
    opt.seed = 5;
    std::string dir = temp_dir("resnet_tiny");
    auto sum = fashionnet::write_parity_case(dir, opt);
    REQUIRE(sum.triplet_active > 0);
    // 63 batch norms (trunk: bn1 and 13 blocks x 3 + 3 downsample; each branch: 3 x 3 + 1), 2 statistics each
    REQUIRE(sum.buffers == 126);
    REQUIRE(run_parity(dir) == 0);
    // Negative control: a running statistic moved by 1% of its tensor's largest magnitude must fail.
    const std::string stat = "buffer.conv5_pose.layer4.2.bn3.running_var";
    auto v = load_safetensors(dir + "/outputs.safetensors").get(stat).to_vector_f64();
    double scale = 0;
    for (double x : v) scale = std::max(scale, std::fabs(x));
    std::string bad = corrupted_copy(dir, stat, 0.01 * scale);
    REQUIRE(run_parity(bad, true) == 1);
    fs::remove_all(dir);
    fs::remove_all(bad);
  }

  SECTION("EfficientNet-Lite0 at width 1/4, input 96, pool mode zero, batch-all triplets, P 3 x K 3") {
    fashionnet::ParityCaseOptions opt;
    opt.cfg = fashionnet::preset("tiny");
    opt.cfg.net.backbone = fashionnet::Backbone::EfficientNetLite0;
    opt.cfg.net.width = 0.25;
    opt.cfg.net.input = 96;
    opt.cfg.net.pool_mode = "zero";
    opt.cfg.triplet_mining = "all";
    opt.cfg.P = 3;
    opt.cfg.K = 3;
    opt.seed = 7;
    std::string dir = temp_dir("lite0");
    auto sum = fashionnet::write_parity_case(dir, opt);
    REQUIRE(sum.triplet_active > 0);
    REQUIRE(run_parity(dir) == 0);
    // The conditioning probe over several float32 runs (the full cases' way: images moved by a rounding step).
    REQUIRE(run_parity(dir, true, " --probes 3") == 0);
    // Negative control: an eval-mode output moved by 1% of its largest magnitude must fail.
    auto v = load_safetensors(dir + "/outputs.safetensors").get("eval.embedding").to_vector_f64();
    double scale = 0;
    for (double x : v) scale = std::max(scale, std::fabs(x));
    std::string bad = corrupted_copy(dir, "eval.embedding", 0.01 * scale);
    REQUIRE(run_parity(bad, true) == 1);
    fs::remove_all(dir);
    fs::remove_all(bad);
  }

  SECTION("second shape: input 64, width 1/8, pool mode zero, batch-all triplets, P 3 x K 3") {
    fashionnet::ParityCaseOptions opt;
    opt.cfg = fashionnet::preset("tiny");
    opt.cfg.net.input = 64;
    opt.cfg.net.width = 0.125;
    opt.cfg.net.pool_mode = "zero";
    opt.cfg.triplet_mining = "all";
    opt.cfg.P = 3;
    opt.cfg.K = 3;
    opt.seed = 11;
    std::string dir = temp_dir("w8_in64");
    auto sum = fashionnet::write_parity_case(dir, opt);
    REQUIRE(sum.triplet_active > 0);
    REQUIRE(run_parity(dir) == 0);
    fs::remove_all(dir);
  }
}
