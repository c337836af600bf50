// fashionnet embed --checkpoint C --data DIR --benchmark B --split query|gallery|train|all --out PREFIX
// fashionnet embed --checkpoint C --images LIST.txt|FOLDER|IMG... [--boxes FILE] --out PREFIX
//   writes PREFIX.npy (float32 N x D), PREFIX.ids.txt ("image_path item_id" per row) and PREFIX.root.txt (the
//   absolute folder those paths are relative to: --data, or with --images the working directory). With --images,
//   plain photos without annotation: the whole image is the crop, landmark_pool at the predicted
//   landmarks, item id "-"; --boxes crops the photos it lists to their garment's box. --mirror: each image
//   and its mirror image, averaged (fashionnet/eval/mirror.h).
//   Under mpirun (-np N) the ranks share the images and rank 0 writes the files: the same as one process.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "apps/command.h"
#include "dist/comm.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/eval/inference.h"
#include "fashionnet/eval/photo_search.h"

namespace {
int run_embed(int argc, char** argv) {
  CLI::App app{"Write the retrieval embeddings of a split as .npy + ids"};
  std::vector<std::string> images;
  std::string ckpt, root, benchmark = "inshop", split = "query", out, device = "auto", boxes;
  fn::fashionnet::InferenceOptions io;
  app.add_option("--checkpoint", ckpt, "a training checkpoint")->required();
  auto* data_opt = app.add_option("--data", root, "dataset root");
  app.add_option("--images", images, "plain photos instead of a dataset: image files, folders (every JPEG and "
                                    "PNG in and below them), or .txt lists of image paths (one per line)")
      ->excludes(data_opt);
  app.add_option("--boxes", boxes, "with --images: a box file (\"image_path x1 y1 x2 y2\" lines, pixels); each "
                 "listed photo is cropped to its garment's box, widened as training widened its boxes");
  app.add_option("--benchmark", benchmark, "inshop | consumer2shop | imagefolder")->capture_default_str();
  app.add_option("--split", split, "query | gallery | train | all")->capture_default_str();
  app.add_option("--out", out, "output prefix")->required();
  app.add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  app.add_option("--batch", io.batch, "images per forward pass")->capture_default_str();
  app.add_flag("--gt-landmarks", io.pool_at_ground_truth, "pool at the annotated landmarks instead of the predicted");
  app.add_flag("--mirror", io.mirror, "also run each image mirrored left to right and average the two passes");
  app.add_flag("--skip-bad", io.skip_bad, "skip unreadable images (counted)");
  CLI11_PARSE(app, argc, argv);
  FN_EXPECT(root.empty() != images.empty(), "embed: give either --data (a dataset) or --images (photos), not ",
            root.empty() ? "neither" : "both");
  FN_EXPECT(boxes.empty() || !images.empty(), "embed: --boxes goes with --images (a dataset's images are cropped "
            "to the boxes of its own annotation files)");
  fn::Device dev = fn::parse_device(device);
  // Under mpirun the images are split over the ranks and the rows gathered (docs/distributed.md); built
  // before the model, since a CUDA rank takes its GPU here. Rank 0 alone writes and prints.
  fn::dist::CommOptions co;
  co.device = fn::dist::comm_device(dev);
  fn::dist::Communicator comm(co);
  io.comm = &comm;
  const bool writer = comm.rank() == 0;
  // Before the (slow) model load and inference, so `--out out/gal` works in a fresh folder.
  const std::filesystem::path out_dir = std::filesystem::path(out).parent_path();
  if (writer && !out_dir.empty()) std::filesystem::create_directories(out_dir);
  if (!images.empty()) {
    const std::vector<std::string> paths = fn::fashionnet::expand_image_args(images);
    fn::fashionnet::PhotoOptions po;
    po.batch = io.batch;
    po.progress = writer;
    po.mirror = io.mirror;
    po.skip_bad = io.skip_bad;
    std::vector<std::optional<fn::fashionnet::PhotoBox>> all_boxes;
    if (!boxes.empty()) all_boxes = fn::fashionnet::photo_boxes_from_file(boxes, paths);
    fn::fashionnet::TrainConfig cfg;
    auto model = fn::fashionnet::model_from_checkpoint(ckpt, dev, &cfg);
    po.bbox_margin = cfg.bbox_margin;
    const fn::dist::Shard sh = fn::dist::shard_of(int64_t(paths.size()), comm.rank(), comm.size());
    const std::vector<std::string> shard(paths.begin() + sh.begin, paths.begin() + sh.end);
    if (!all_boxes.empty()) po.boxes.assign(all_boxes.begin() + sh.begin, all_boxes.begin() + sh.end);
    fn::fashionnet::PhotoEmbeddings pe;
    fn::dist::run_together(comm, "embedding", [&] { pe = fn::fashionnet::embed_photos(*model, shard, dev, po); });
    fn::fashionnet::Embeddings& e = pe.embeddings;
    if (comm.size() > 1) {  // the shards' rows, in rank order (embed_photos' other fields are not written)
      const int64_t dim = e.dim();
      e.image_paths = comm.allgather(e.image_paths);
      e.features = fn::Tensor::from(comm.allgather(e.features.to_vector()), {int64_t(e.image_paths.size()), dim});
      e.item_ids.assign(e.image_paths.size(), "-");
      pe.skipped = comm.allgather(pe.skipped);
    }
    if (writer)
      for (const std::string& why : pe.skipped)
        std::fprintf(stderr, "warning: skipped (--skip-bad): %s\n", why.c_str());
    FN_EXPECT(e.rows() > 0, "none of the ", paths.size(), " photos could be read (--skip-bad skipped them all)");
    if (!writer) return 0;
    fn::fashionnet::write_embeddings(out, e);
    std::printf("wrote %s.npy (%lld x %lld), %s.ids.txt (item ids \"-\") and %s.root.txt\n", out.c_str(),
                (long long)e.rows(), (long long)e.dim(), out.c_str(), out.c_str());
    return 0;
  }
  fn::fashionnet::TrainConfig cfg;
  auto model = fn::fashionnet::model_from_checkpoint(ckpt, dev, &cfg);
  io.bbox_margin = cfg.bbox_margin;  // the images as training cropped them
  fn::data::Dataset ds = fn::data::load_dataset(root, benchmark, benchmark != "imagefolder");
  fn::fashionnet::Embeddings e = fn::fashionnet::embed_split(*model, ds, split, dev, io);
  if (!writer) return 0;
  fn::fashionnet::write_embeddings(out, e);
  std::printf("wrote %s.npy (%lld x %lld), %s.ids.txt and %s.root.txt (paths relative to %s)\n", out.c_str(),
              (long long)e.rows(), (long long)e.dim(), out.c_str(), out.c_str(), e.root.c_str());
  return 0;
}
}  // namespace

FN_COMMAND("embed", "write embeddings of a split (.npy + ids) for metrics and search", run_embed);
