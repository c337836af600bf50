// Plain photos through a trained FashionNet, and the search of a gallery with them: the library side of
// `fashionnet search` and `fashionnet embed` (the commands only parse flags and print).
//
// A plain photo has no annotation: the whole image is the crop, or the garment's box where the user gives one
// (fashionnet/eval/query_image.h), and landmark_pool looks at the landmarks the model itself predicts, as in
// evaluation.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "fashionnet/eval/embedding_io.h"
#include "fashionnet/eval/inference.h"
#include "fashionnet/eval/query_image.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/report/search_page.h"

namespace fn::fashionnet {

struct PhotoEmbeddings {
  Embeddings embeddings;         // (N, D); image paths as given, item ids "-", root the working directory
  std::vector<float> landmarks;  // N x 8 x (x, y): predicted, as fractions of the photo's width and height
  std::vector<uint8_t> visible;  // N x 8: 1 where the model predicts the slot visible
  std::vector<int> width, height;  // N: photo sizes in pixels
  std::vector<data::CropRect> crops;  // N: the part of each photo the network saw (photo_crop)
  std::vector<std::string> skipped;   // with skip_bad: why each unreadable photo was left out ("path: reason")
};

struct PhotoOptions {
  int batch = 16;         // photos per forward pass
  bool progress = false;
  bool mirror = false;    // each photo and its mirror image, averaged (fashionnet/eval/mirror.h)
  // Empty, or one per photo: the garment's box (nullopt: the whole photo).
  std::vector<std::optional<PhotoBox>> boxes;
  float bbox_margin = 0.f;  // around each box: the training's crop rule (InferenceOptions::bbox_margin)
  bool skip_bad = false;    // leave out photos that cannot be read (listed in PhotoEmbeddings::skipped)
};

// Embeds `paths` in batches. A missing or corrupt image (unless skip_bad), or a box outside its photo, throws
// fn::Error naming it; the embeddings' image paths are those embedded, in order. Paths with white space are
// refused (the ids file cannot hold them). Runs in eval mode, as run_inference.
PhotoEmbeddings embed_photos(FashionNet& model, const std::vector<std::string>& paths, Device device,
                             const PhotoOptions& opt = {});

// `embed --data`: the embeddings of one split ("query", "gallery", "train" or "all") of `ds`, their image
// paths relative to the dataset root, which is recorded (absolute) in `root` so that `search` finds the
// images from any working directory. An unknown split name or an empty split is refused.
Embeddings embed_split(FashionNet& model, const data::Dataset& ds, const std::string& split, Device device,
                       const InferenceOptions& io);

// `--images` arguments: a folder stands for every .jpg, .jpeg and .png file in it and below it, in path order
// (none is an error); an argument ending in ".txt" is a list of image paths, one per line (blank lines and
// lines starting with '#' skipped; paths used as written, relative to the working directory); any other
// argument is an image path itself.
std::vector<std::string> expand_image_args(const std::vector<std::string>& args);

// The folder relative to which a gallery's ids paths are opened when --gallery-root is not given: the
// working directory if the first relative path exists from there, else the ids file's folder if it exists
// from there, else the working directory (with `warning` set: pass --gallery-root).
std::string default_gallery_root(const Embeddings& gallery, const std::string& ids_path, std::string* warning);

// Item ids of the query photos from an ids file ("image_path item_id" lines; paths compared after lexical
// normalisation); photos not listed, and "-", are unknown (""). Throws naming the file when it is bad.
std::vector<std::string> query_ids_from_file(const std::string& ids_path, const std::vector<std::string>& images);

// The photos' boxes from a box file: "image_path x1 y1 x2 y2" lines in pixels, [x1, x2) x [y1, y2) (blank
// lines and '#' lines skipped; paths compared after lexical normalisation, as query ids are). Photos the file
// does not list get none (the whole photo). A malformed line throws naming the file and line; a file that
// lists none of `images` throws too (its paths are probably written another way).
std::vector<std::optional<PhotoBox>> photo_boxes_from_file(const std::string& path,
                                                           const std::vector<std::string>& images);
// "x1,y1,x2,y2" (search --box) as a box; anything else throws, quoting it.
PhotoBox parse_box(const std::string& text);

// `search --data`: what a dataset knows of photos that are its images (paths compared after resolving both
// to absolute, normal form): the box where its annotation has one, and the item id ("" where it has none).
// Other photos get neither. A dataset of which none of `images` is an image throws, naming its root.
struct DatasetQueries {
  std::vector<std::optional<PhotoBox>> boxes;  // one per image
  std::vector<std::string> item_ids;           // one per image
  size_t matched = 0;                          // images found in the dataset
};
DatasetQueries dataset_queries(const data::Dataset& ds, const std::vector<std::string>& images);

struct SearchRequest {
  std::string checkpoint;
  std::string gallery;       // prefix: gallery.npy + gallery.ids.txt
  std::string gallery_root;  // "" : the root the gallery recorded (P.root.txt), else default_gallery_root()
  std::vector<std::string> images;
  std::vector<std::string> query_item_ids;  // empty, or one per image ("" / "-": unknown)
  std::vector<std::optional<PhotoBox>> boxes;  // empty, or one per image (nullopt: the whole photo)
  int k = 10;
  bool mirror = false;       // embed each query photo with its mirror image (the gallery: `embed --mirror`)
  std::string html;          // "" : no page
  Device device = Device::CPU;
};

struct SearchOutcome {
  std::vector<PageQuery> queries;  // results with file-system paths (gallery root applied)
  std::vector<std::vector<std::string>> gallery_paths_as_listed;  // per query, per rank: the ids file's path
  std::string gallery_root;        // the root used ("" : the working directory)
  std::string warning;             // non-empty when gallery images were not found (names the first)
  int64_t missing_gallery_images = 0;  // gallery rows whose image file does not exist under the root
  int64_t gallery_rows = 0, dim = 0;
};

// Loads the model and the gallery, checks that they agree, embeds the photos (boxes widened by the
// checkpoint's bbox_margin), searches exactly (kernels/topk_search.h on L2-normalised copies) and writes the
// page when asked.
SearchOutcome search_photos(const SearchRequest& req);

}  // namespace fn::fashionnet
