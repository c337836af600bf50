#include "fashionnet/eval/photo_search.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/autograd.h"
#include "fashionnet/train/checkpoint.h"
#include "core/progress.h"
#include "fashionnet/eval/mirror.h"
#include "fashionnet/eval/query_image.h"
#include "data/image_io.h"
#include "data/transform.h"
#include "kernels/topk_search.h"

namespace fn::fashionnet {
namespace fs = std::filesystem;

namespace {

bool has_space(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string normal_path(const std::string& p) { return fs::path(p).lexically_normal().generic_string(); }

std::string join_root(const std::string& root, const std::string& path) {
  if (root.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(root) / path).lexically_normal().string();
}

}  // namespace

PhotoEmbeddings embed_photos(FashionNet& model, const std::vector<std::string>& paths, Device device,
                             const PhotoOptions& opt) {
  const int batch = opt.batch;
  FN_EXPECT(batch > 0, "--batch: images per forward pass must be at least 1, got ", batch);
  FN_CHECK(opt.boxes.empty() || opt.boxes.size() == paths.size(), "embed_photos: ", opt.boxes.size(), " boxes for ",
           paths.size(), " photos");
  NoGradGuard no_grad;
  nn::ModeGuard eval_mode(model, /*training=*/false);  // as run_inference
  const int input = model.config().input;
  const int64_t dim = model.config().fc7_fusion, n_all = int64_t(paths.size());
  for (const std::string& p : paths)
    FN_EXPECT(!p.empty() && !has_space(p), "image path \"", p, "\" is empty or contains white space: the ids file "
              "(\"image_path item_id\" per line) cannot hold it; rename the file");
  PhotoEmbeddings pe;
  std::vector<std::string>& kept = pe.embeddings.image_paths;
  std::vector<float> feats;
  feats.reserve(size_t(n_all * dim));
  Progress prog("embed", n_all, "img", 20);
  const size_t plane = size_t(3) * size_t(input) * size_t(input);
  size_t next = 0;  // the next photo of `paths` to read
  while (next < paths.size()) {
    const int64_t start = int64_t(kept.size());  // this batch's first row
    std::vector<float> chw(size_t(batch) * plane);
    int64_t n = 0;
    for (; n < batch && next < paths.size(); ++next) {
      const std::string& path = paths[next];
      data::Image img;
      try {
        img = data::decode_image(path);  // throws naming the file
      } catch (const Error& e) {
        if (!opt.skip_bad) throw;
        pe.skipped.push_back(e.what());
        continue;
      }
      const data::CropRect crop = photo_crop(path, img.w, img.h, opt.boxes.empty() ? std::nullopt
                                             : opt.boxes[next], opt.bbox_margin);
      data::crop_resize_normalize(img, crop, input, /*flip=*/false, chw.data() + size_t(n) * plane);
      pe.width.push_back(img.w);
      pe.height.push_back(img.h);
      pe.crops.push_back(crop);
      kept.push_back(path);
      ++n;
    }
    if (n == 0) break;  // the last photos were all skipped
    chw.resize(size_t(n) * plane);
    const Shape shape{n, 3, int64_t(input), int64_t(input)};
    // Undefined PoolAt: landmark_pool at the predicted landmarks.
    HostOutputs h = forward_to_host(model, Tensor::from(chw, shape, device), PoolAt{});
    if (opt.mirror) {
      data::mirror_chw(chw.data(), n, input);
      average_with_mirrored(h, forward_to_host(model, Tensor::from(chw, shape, device), PoolAt{}), input);
    }
    feats.insert(feats.end(), h.embedding.begin(), h.embedding.end());
    for (int64_t i = 0; i < n; ++i) {
      const size_t row = size_t(start + i);
      const data::CropRect& c = pe.crops[row];
      for (int s = 0; s < kSlots; ++s) {
        const float* loc = &h.landmark_loc[size_t((i * kSlots + s) * 2)];
        pe.landmarks.push_back(input_to_photo_fraction(loc[0], input, c.x0, c.w, pe.width[row]));
        pe.landmarks.push_back(input_to_photo_fraction(loc[1], input, c.y0, c.h, pe.height[row]));
      }
    }
    for (float v : visible_from_logits(h.landmark_vis)) pe.visible.push_back(v > 0.5f ? 1 : 0);
    if (opt.progress) prog.update(int64_t(next), double(next));
  }
  const int64_t rows = int64_t(kept.size());
  if (opt.progress)
    prog.finish(cat(rows, " images", pe.skipped.empty() ? "" : cat(", ", pe.skipped.size(), " unreadable skipped")));
  pe.embeddings.features = Tensor::from(feats, {rows, dim});
  pe.embeddings.item_ids.assign(kept.size(), "-");
  pe.embeddings.root = fs::current_path().string();  // relative paths were opened from here
  return pe;
}

Embeddings embed_split(FashionNet& model, const data::Dataset& ds, const std::string& split, Device device,
                       const InferenceOptions& io) {
  std::vector<int> idx;
  if (split == "all") {
    for (size_t i = 0; i < ds.samples.size(); ++i) idx.push_back(int(i));
  } else if (split == "query") {
    idx = ds.indices(data::Split::Query);
  } else if (split == "gallery") {
    idx = ds.indices(data::Split::Gallery);
  } else if (split == "train") {
    idx = ds.indices(data::Split::Train);
  } else {
    FN_USER_FAIL("--split '", split, "': expected query, gallery, train or all");
  }
  FN_EXPECT(!idx.empty(), ds.root, ": the ", split, " split has no images");
  Embeddings e = run_inference(model, ds, idx, device, io).embeddings;
  // The ids paths are relative to the dataset root; recorded absolute, since `search` may run elsewhere.
  fs::path root = fs::absolute(ds.root).lexically_normal();
  if (!root.has_filename() && root.has_parent_path()) root = root.parent_path();  // "data/" -> "data"
  e.root = root.string();
  return e;
}

// Every photo in folder `dir` and below it, in path order.
static std::vector<std::string> images_in_folder(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec, entry_ec;  // entry_ec: an entry whose type cannot be read (a broken link) is skipped
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(entry_ec) && data::is_image_file_name(it->path().string()))
      found.push_back(it->path().string());
  FN_EXPECT(!ec, dir, ": cannot list the folder (", ec.message(), ")");
  FN_EXPECT(!found.empty(), dir, ": no .jpg, .jpeg or .png photo in the folder or below it");
  std::sort(found.begin(), found.end());
  return found;
}

std::vector<std::string> expand_image_args(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      for (std::string& p : images_in_folder(a)) out.push_back(std::move(p));
      continue;
    }
    if (!ends_with(a, ".txt")) {
      out.push_back(a);
      continue;
    }
    const size_t before = out.size();
    errno = 0;
    std::ifstream f(a);
    const int err = errno;
    FN_EXPECT(f.good(), a, ": cannot open the image list for reading",
              err ? cat(": ", std::strerror(err)) : std::string(),
              " (a .txt argument is read as a list of image paths, one per line)");
    std::string line;
    while (std::getline(f, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t b = line.find_first_not_of(" \t");
      if (b == std::string::npos || line[b] == '#') continue;
      const size_t e = line.find_last_not_of(" \t");
      out.push_back(line.substr(b, e - b + 1));
    }
    FN_EXPECT(out.size() > before, a, ": the image list names no image (only blank lines and # comments)");
  }
  return out;
}

std::string default_gallery_root(const Embeddings& gallery, const std::string& ids_path, std::string* warning) {
  std::string first;
  for (const std::string& p : gallery.image_paths)
    if (!fs::path(p).is_absolute()) {
      first = p;
      break;
    }
  if (first.empty()) return "";  // all absolute (or no rows): no root needed
  if (fs::exists(first)) return "";
  const std::string ids_dir = fs::path(ids_path).parent_path().string();
  if (!ids_dir.empty() && fs::exists(fs::path(ids_dir) / first)) return ids_dir;
  if (warning)
    *warning = cat("gallery image ", first, " (from ", ids_path, ") is found neither from the working directory nor "
                   "from ", ids_dir.empty() ? "." : ids_dir, ": pass --gallery-root (the --data of `embed`) so the "
                   "page's images show");
  return "";
}

std::vector<std::string> query_ids_from_file(const std::string& ids_path, const std::vector<std::string>& images) {
  std::map<std::string, std::string> by_path;
  for (const IdsLine& l : read_ids_file(ids_path)) by_path[normal_path(l.image_path)] = l.item_id;
  std::vector<std::string> out;
  for (const std::string& img : images) {
    auto it = by_path.find(normal_path(img));
    out.push_back(it == by_path.end() || !item_known(it->second) ? "" : it->second);
  }
  return out;
}

namespace {
// "x1 y1 x2 y2" (or with commas): four integers, a non-empty box with non-negative corners; nullopt otherwise,
// with `why` set.
std::optional<PhotoBox> box_of(std::string text, std::string* why) {
  std::replace(text.begin(), text.end(), ',', ' ');
  std::istringstream is(text);
  PhotoBox b;
  std::string extra;
  if (!(is >> b.x1 >> b.y1 >> b.x2 >> b.y2) || (is >> extra)) {
    *why = "expected four whole numbers x1 y1 x2 y2 (pixels)";
    return std::nullopt;
  }
  if (b.x1 < 0 || b.y1 < 0 || b.x2 <= b.x1 || b.y2 <= b.y1) {
    *why = cat("the box (", b.x1, ", ", b.y1, ", ", b.x2, ", ", b.y2, ") is empty or has a negative corner (x1 < x2, "
               "y1 < y2, both corners at 0 or more)");
    return std::nullopt;
  }
  return b;
}
}  // namespace

PhotoBox parse_box(const std::string& text) {
  std::string why;
  const std::optional<PhotoBox> b = box_of(text, &why);
  FN_EXPECT(b.has_value(), "--box \"", text, "\": ", why, ", e.g. --box 40,60,220,380");
  return *b;
}

std::vector<std::optional<PhotoBox>> photo_boxes_from_file(const std::string& path,
                                                           const std::vector<std::string>& images) {
  errno = 0;
  std::ifstream f(path);
  const int err = errno;
  FN_EXPECT(f.good(), path, ": cannot open the box file for reading", err ? cat(": ", std::strerror(err)) : std::string());
  std::map<std::string, PhotoBox> by_path;
  std::string line;
  for (int64_t n = 1; std::getline(f, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream is(line);
    std::string image;
    if (!(is >> image) || image[0] == '#') continue;
    std::string rest, why;
    std::getline(is, rest);
    const std::optional<PhotoBox> b = box_of(rest, &why);
    FN_EXPECT(b.has_value(), path, ": line ", n, ": ", why, " after the image path (\"image_path x1 y1 x2 y2\"): \"",
              line, "\"");
    FN_EXPECT(by_path.emplace(normal_path(image), *b).second, path, ": line ", n, ": ", image,
              " has a box on an earlier line already");
  }
  std::vector<std::optional<PhotoBox>> out;
  size_t listed = 0;
  for (const std::string& img : images) {
    auto it = by_path.find(normal_path(img));
    out.push_back(it == by_path.end() ? std::nullopt : std::optional<PhotoBox>(it->second));
    listed += it != by_path.end();
  }
  FN_EXPECT(listed > 0, path, ": none of the ", images.size(), " photos (the first: ", images.empty() ? "-" : images[0],
            ") has a box there; its paths must be written as the photos are given (compared after removing ./ "
            "and ..)");
  return out;
}

DatasetQueries dataset_queries(const data::Dataset& ds, const std::vector<std::string>& images) {
  const auto key = [](const fs::path& p) { return fs::weakly_canonical(fs::absolute(p)).generic_string(); };
  std::map<std::string, const data::Sample*> by_path;
  for (const data::Sample& s : ds.samples) by_path[key(fs::path(ds.root) / s.image)] = &s;
  DatasetQueries dq;
  for (const std::string& img : images) {
    auto it = by_path.find(key(img));
    const data::Sample* s = it == by_path.end() ? nullptr : it->second;
    dq.matched += s != nullptr;
    dq.boxes.push_back(s && s->has_bbox ? std::optional<PhotoBox>(PhotoBox{s->x1, s->y1, s->x2, s->y2}) : std::nullopt);
    dq.item_ids.push_back(s ? s->item_id : "");
  }
  FN_EXPECT(dq.matched > 0, ds.root, ": none of the ", images.size(), " query photos (the first: ",
            images.empty() ? "-" : images[0], ") is an image of this dataset; --data gives the boxes and items of "
            "the dataset's own images");
  return dq;
}

SearchOutcome search_photos(const SearchRequest& req) {
  FN_EXPECT(!req.images.empty(), "search: no query image (give one or more with --image)");
  FN_EXPECT(req.k >= 1, "--k: the number of results per query must be at least 1, got ", req.k);
  FN_CHECK(req.query_item_ids.empty() || req.query_item_ids.size() == req.images.size(), "search: ",
           req.query_item_ids.size(), " query item ids for ", req.images.size(), " images");
  FN_CHECK(req.boxes.empty() || req.boxes.size() == req.images.size(), "search: ", req.boxes.size(), " boxes for ",
           req.images.size(), " images");
  // Check every photo before the (slow) model load, so a typo fails at once.
  for (const std::string& p : req.images) FN_EXPECT(fs::exists(p), p, ": query image not found");

  const std::string ids_path = req.gallery + ".ids.txt", npy_path = req.gallery + ".npy";
  Embeddings gallery = read_embeddings(req.gallery);  // refuses missing/malformed files, naming them
  FN_EXPECT(gallery.rows() > 0, npy_path, ": the gallery is empty (0 embeddings); embed a split with images");
  TrainConfig cfg;
  auto model = model_from_checkpoint(req.checkpoint, req.device, &cfg);
  const int64_t dim = model->config().fc7_fusion;
  FN_EXPECT(gallery.dim() == dim, npy_path, ": gallery embeddings have dimension ", gallery.dim(), " but the model of ",
            req.checkpoint, " produces ", dim, ": the gallery was embedded with another model (re-run `fashionnet "
            "embed` with this checkpoint)");

  PhotoOptions po;
  po.mirror = req.mirror;
  po.boxes = req.boxes;
  po.bbox_margin = cfg.bbox_margin;  // a boxed query is cropped as the gallery's dataset images were
  PhotoEmbeddings q = embed_photos(*model, req.images, req.device, po);
  Tensor qf = q.embeddings.features.cpu(), gf = gallery.features.cpu();
  // Copies, so the caller's embeddings stay as read (the files hold raw fc7_fusion outputs).
  qf = Tensor::from(qf.to_vector(), qf.shape());
  gf = Tensor::from(gf.to_vector(), gf.shape());
  kernels::l2_normalize_rows(qf);
  kernels::l2_normalize_rows(gf);
  kernels::SearchOptions so;
  so.k = req.k;
  const kernels::Neighbours nb = req.device == Device::CPU
                                     ? kernels::topk_search(qf, gf, so)
                                     : kernels::topk_search(qf.to(req.device), gf.to(req.device), so);

  SearchOutcome out;
  out.gallery_rows = gallery.rows();
  out.dim = dim;
  // The root: --gallery-root, else the one `embed` recorded, else (older sets) a guess.
  std::string hint;
  if (!req.gallery_root.empty()) {
    out.gallery_root = req.gallery_root;
    hint = "check --gallery-root (it should be the --data given to `embed`)";
  } else if (!gallery.root.empty() && fs::is_directory(gallery.root)) {
    out.gallery_root = gallery.root;
    hint = cat("the dataset has changed since `embed` recorded it in ", req.gallery, ".root.txt; pass "
               "--gallery-root DIR where it is now, or re-run `embed`");
  } else {
    std::string guess_warning;
    out.gallery_root = default_gallery_root(gallery, ids_path, &guess_warning);
    hint = gallery.root.empty()
               ? cat(ids_path, " does not record the dataset root (written before `embed` recorded it, or by "
                     "another tool): pass --gallery-root (the --data of `embed`), or re-run `embed`")
               : cat("the recorded dataset root ", gallery.root, " (", req.gallery, ".root.txt) no longer exists "
                     "(moved?): pass --gallery-root DIR where it is now");
  }
  // Every gallery image, not only the shown ones: a partly missing dataset is worth knowing about.
  std::string first_missing;
  for (const std::string& p : gallery.image_paths) {
    const std::string full = join_root(out.gallery_root, p);
    if (fs::exists(full)) continue;
    if (out.missing_gallery_images++ == 0) first_missing = fs::absolute(full).string();  // where we looked
  }
  if (out.missing_gallery_images > 0)
    out.warning = cat(out.missing_gallery_images, " of ", gallery.rows(), " gallery images of ", ids_path,
                      " are not found (the first: ", first_missing, "), so the page shows them broken; ", hint);
  for (size_t i = 0; i < req.images.size(); ++i) {
    PageQuery pq;
    pq.image = req.images[i];
    pq.item_id = req.query_item_ids.empty() ? "" : req.query_item_ids[i];
    pq.width = q.width[i];
    pq.height = q.height[i];
    pq.landmarks.assign(q.landmarks.begin() + long(i) * 2 * kSlots, q.landmarks.begin() + long(i + 1) * 2 * kSlots);
    for (int s = 0; s < kSlots; ++s) pq.visible.push_back(q.visible[i * kSlots + size_t(s)] != 0);
    if (!req.boxes.empty() && req.boxes[i]) {
      const data::CropRect& c = q.crops[i];
      pq.crop = {float(c.x0) / float(pq.width), float(c.y0) / float(pq.height), float(c.x0 + c.w) / float(pq.width),
                 float(c.y0 + c.h) / float(pq.height)};
    }
    std::vector<std::string> listed;
    for (int64_t r = 0; r < nb.k; ++r) {
      const int32_t g = nb.row_index(int64_t(i))[r];
      const std::string& path = gallery.image_paths[size_t(g)];
      pq.results.push_back({join_root(out.gallery_root, path), gallery.item_ids[size_t(g)], nb.row_distance(int64_t(i))[r]});
      listed.push_back(path);
    }
    out.queries.push_back(std::move(pq));
    out.gallery_paths_as_listed.push_back(std::move(listed));
  }
  if (!req.html.empty()) {
    PageOptions page;
    // A model that pools at its own predictions learned them from landmarks; one trained without (net.local_at
    // absent or layout, docs/fashionnet.md) predicts nothing worth drawing.
    page.landmarks = model->config().local_at == LocalAt::Landmarks;
    page.notes = {cat("checkpoint: ", req.checkpoint),
                  cat("gallery: ", req.gallery, " (", gallery.rows(), " images, dimension ", dim, ")"),
                  cat("gallery root: ", out.gallery_root.empty() ? "." : out.gallery_root)};
    write_search_page(req.html, out.queries, page);
  }
  return out;
}

}  // namespace fn::fashionnet
