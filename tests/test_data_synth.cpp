// The synthetic DeepFashion: written in the real layout and formats, read back by the same readers with
// every annotation, exact landmarks in the right slots, all visibility codes, deterministic from the seed.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "data/annotations_common.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/synth.h"
#include "data/synth_draw.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace fn::data;

namespace {

// The generator makes the folder itself.
struct TempDir : fn::test::TempDir {
  explicit TempDir(const std::string& tag) : fn::test::TempDir("synth_" + tag, /*create=*/false) {}
};

using fn::test::read_bytes;

const std::string kSource = FN_SOURCE_DIR;
const std::string kReal = kSource + "/../shared/deepfashion/category_attribute/Anno";

// Column `col` of each record of a list file (line 1 the count, line 2 the column names), by image name.
std::map<std::string, int> column_by_image(const fs::path& file, int col) {
  std::ifstream in(file);
  std::string line;
  std::map<std::string, int> out;
  for (int no = 1; std::getline(in, line); ++no) {
    if (no <= 2) continue;
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string t; words >> t;) w.push_back(t);
    out[w.at(0)] = std::stoi(w.at(col));
  }
  return out;
}

// Mean RGB of the 3x3 pixels around (x, y), clamped to the image.
std::array<float, 3> mean3(const Image& im, float x, float y) {
  std::array<float, 3> m{0, 0, 0};
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      const int xx = std::clamp((int)std::lround(x) + dx, 0, im.w - 1), yy = std::clamp((int)std::lround(y) + dy, 0, im.h - 1);
      for (int c = 0; c < 3; ++c) m[c] += im.rgb[((size_t)yy * im.w + xx) * 3 + c] / 9.f;
    }
  return m;
}

float colour_distance(const std::array<float, 3>& a, const std::array<float, 3>& b) {
  return std::fabs(a[0] - b[0]) + std::fabs(a[1] - b[1]) + std::fabs(a[2] - b[2]);
}

// Share of pixels in the square of half-side r around (cx, cy) with a sharp step to the right or below
// (a pattern edge): near 0 on plain cloth, large on stripes, checks and dots.
float edge_density(const Image& im, float cx, float cy, float r) {
  int edges = 0, n = 0;
  for (int y = (int)(cy - r); y <= (int)(cy + r); ++y)
    for (int x = (int)(cx - r); x <= (int)(cx + r); ++x) {
      if (x < 0 || y < 0 || x + 1 >= im.w || y + 1 >= im.h) continue;
      const uint8_t* p = &im.rgb[((size_t)y * im.w + x) * 3];
      const uint8_t* right = p + 3;
      const uint8_t* below = p + (size_t)im.w * 3;
      int dr = 0, db = 0;
      for (int c = 0; c < 3; ++c) dr += std::abs(p[c] - right[c]), db += std::abs(p[c] - below[c]);
      edges += std::max(dr, db) > 60;
      ++n;
    }
  return n ? (float)edges / n : 0.f;
}

// Every file under `root` (relative path -> bytes).
std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).string()] = read_bytes(e.path());
  return out;
}

}  // namespace

TEST_CASE("synthetic In-shop: layout, files, counts, landmarks in slots, visibility codes") {
  TempDir d("inshop");
  SynthConfig cfg;
  cfg.out = d.path.string();
  cfg.items = 40;
  cfg.views = 5;
  cfg.size = 96;
  cfg.seed = 3;
  const SynthSummary sum = synthesize(cfg);
  CHECK(sum.images == 200);
  for (const char* f : {"Anno/list_bbox_inshop.txt", "Anno/list_landmarks_inshop.txt", "Anno/list_item_inshop.txt",
                        "Anno/list_attr_items.txt", "Anno/list_attr_cloth.txt", "Eval/list_eval_partition.txt"})
    CHECK(fs::exists(d.path / f));

  LoadReport rep;
  const Dataset ds = load_dataset(cfg.out, "inshop", true, &rep);
  INFO((rep.errors.empty() ? std::string() : rep.errors[0]));
  REQUIRE(rep.error_count == 0);
  CHECK(check_images(ds, rep) == 200);
  CHECK(rep.error_count == 0);  // every bbox and visible landmark inside its photo
  REQUIRE(ds.samples.size() == 200);
  CHECK(ds.item_ids.size() == 40);
  CHECK(ds.attribute_names.size() == 15);

  const std::regex layout(R"(img/(MEN|WOMEN)/[A-Za-z_]+/id_\d{8}/\d\d_\d_(front|side|back|full|additional)\.jpg)");
  std::set<int> vis_codes;
  std::map<int, std::set<Split>> item_splits;
  for (const Sample& s : ds.samples) {
    INFO(s.image);
    CHECK(std::regex_match(s.image, layout));
    CHECK(s.image.find("/" + s.item_id + "/") != std::string::npos);
    REQUIRE((s.has_bbox && s.has_landmarks && s.attributes.size() == 15));
    REQUIRE((s.clothes_type >= 1 && s.clothes_type <= 3));
    CHECK((s.x1 >= 0 && s.y1 >= 0 && s.x2 <= 96 && s.y2 <= 96 && s.x2 > s.x1 && s.y2 > s.y1));
    // Exactly the clothes type's slots are used.
    const auto& used = slots_of_type(s.clothes_type);
    for (int k = 0; k < kSlots; ++k) {
      const bool in_type = std::find(used.begin(), used.end(), k) != used.end();
      CHECK((s.lm.vis[k] != kAbsent) == in_type);
      if (in_type) vis_codes.insert(s.lm.vis[k]);
    }
    // Left is the image's left: an L slot lies left of its R partner unless the pose is extreme.
    if (s.lm.vis[kLHem] == kVisible && s.lm.vis[kRHem] == kVisible) CHECK(s.lm.x[kLHem] < s.lm.x[kRHem]);
    item_splits[s.item].insert(s.split);
  }
  CHECK(vis_codes == std::set<int>{kVisible, kOccluded, kCutOff});
  int train_items = 0;
  for (auto& [item, splits] : item_splits) {
    if (splits.count(Split::Train)) {
      CHECK(splits.size() == 1);  // items do not cross the partition
      ++train_items;
    } else {
      CHECK(splits == std::set<Split>{Split::Query, Split::Gallery});
    }
  }
  CHECK(train_items == 20);
  // Items spread over many of the 23 categories.
  std::set<int> categories;
  for (const Sample& s : ds.samples) categories.insert(s.category);
  CHECK(categories.size() > 10);
}

TEST_CASE("synthetic landmarks sit on the garment") {
  TempDir d("onshape");
  SynthConfig cfg;
  cfg.out = d.path.string();
  cfg.items = 10;
  cfg.views = 1;  // front views on a plain backdrop
  cfg.size = 128;
  cfg.seed = 9;
  synthesize(cfg);
  const Dataset ds = load_dataset(cfg.out, "inshop");
  int checked = 0, on_cloth = 0;
  for (const Sample& s : ds.samples) {
    const Image img = decode_image(cfg.out + "/" + s.image);
    const uint8_t* corner = &img.rgb[0];
    for (int k = 0; k < kSlots; ++k) {
      if (s.lm.vis[k] != kVisible) continue;
      // Somewhere within 3 pixels the colour differs clearly from the backdrop.
      bool differs = false;
      for (int dy = -3; dy <= 3 && !differs; ++dy)
        for (int dx = -3; dx <= 3 && !differs; ++dx) {
          const int x = std::clamp((int)s.lm.x[k] + dx, 0, img.w - 1), y = std::clamp((int)s.lm.y[k] + dy, 0, img.h - 1);
          const uint8_t* p = &img.rgb[((size_t)y * img.w + x) * 3];
          differs = std::abs(p[0] - corner[0]) + std::abs(p[1] - corner[1]) + std::abs(p[2] - corner[2]) > 60;
        }
      on_cloth += differs;
      ++checked;
    }
  }
  CHECK(checked > 40);
  CHECK(on_cloth >= checked * 9 / 10);
}

TEST_CASE("synthesis is deterministic from the seed, whatever the thread count") {
  TempDir a("a"), b("b"), c("c");
  SynthConfig cfg;
  cfg.items = 6;
  cfg.views = 3;
  cfg.size = 64;
  cfg.seed = 21;
  cfg.out = a.path.string();
  cfg.threads = 1;
  synthesize(cfg);
  cfg.out = b.path.string();
  cfg.threads = 2;
  synthesize(cfg);
  cfg.out = c.path.string();
  cfg.seed = 22;
  synthesize(cfg);
  const auto ta = tree(a.path), tb = tree(b.path), tc = tree(c.path);
  CHECK(ta.size() == 18 + 6 + 1);  // photos, annotation files, SYNTHETIC.txt
  CHECK(ta == tb);
  CHECK(ta != tc);

  for (const char* benchmark : {"category", "landmark"}) {
    INFO(benchmark);
    TempDir e(std::string(benchmark) + "1"), f(std::string(benchmark) + "2");
    SynthConfig cc;
    cc.benchmark = benchmark;
    cc.items = 6;
    cc.views = 3;
    cc.size = 64;
    cc.seed = 21;
    cc.out = e.path.string();
    cc.threads = 1;
    synthesize(cc);
    cc.out = f.path.string();
    cc.threads = 2;
    synthesize(cc);
    const auto te = tree(e.path);
    CHECK(te.size() == 18 + (std::string(benchmark) == "category" ? 7 : 3) + 1);  // and SYNTHETIC.txt
    CHECK(te == tree(f.path));
  }
}

TEST_CASE("look-alike groups: one look, different trims on the landmarks, kept together in the split") {
  TempDir d("lookalike");
  SynthConfig cfg;
  cfg.out = d.path.string();
  cfg.items = 14;  // 5 groups of 3, the last one short
  cfg.views = 2;
  cfg.size = 128;
  cfg.seed = 5;
  cfg.look_alikes = 3;
  synthesize(cfg);
  LoadReport rep;
  const Dataset ds = load_dataset(cfg.out, "inshop", true, &rep);
  REQUIRE(rep.error_count == 0);
  REQUIRE(ds.item_ids.size() == 14);
  // Item id_N is member (N-1) % 3 of group (N-1) / 3: same category, attributes and split in a group.
  std::map<int, const Sample*> first_of_group;
  std::set<Split> splits;
  for (const Sample& s : ds.samples) {
    const int n = std::stoi(s.item_id.substr(3)) - 1;
    auto [it, fresh] = first_of_group.emplace(n / 3, &s);
    if (fresh) continue;
    CHECK(s.category == it->second->category);
    CHECK(s.attributes == it->second->attributes);
    CHECK((s.split == Split::Train) == (it->second->split == Split::Train));
    splits.insert(s.split);
  }
  CHECK(first_of_group.size() == 5);
  CHECK(splits.size() >= 2);  // both train and test hold groups
  // Front photos: nearly every visible landmark wears a trim colour, and in each group the members'
  // trims differ on some part (colour index per trim part, read at the landmarks).
  auto trim_colour = [](const Image& im, float x, float y) {
    const uint8_t* p = &im.rgb[((size_t)std::clamp((int)y, 0, im.h - 1) * im.w + std::clamp((int)x, 0, im.w - 1)) * 3];
    for (int c = 0; c < synth::kTrimColours; ++c) {
      const synth::Rgb t = synth::kTrimPalette[c];
      if (std::abs(p[0] - t.r * 255) + std::abs(p[1] - t.g * 255) + std::abs(p[2] - t.b * 255) < 60) return c;
    }
    return -1;
  };
  std::map<int, std::map<int, int>> parts;  // item number -> trim part -> colour index
  int visible = 0, on_trim = 0;
  for (const Sample& s : ds.samples) {
    if (s.image.find("_front") == std::string::npos) continue;
    const Image im = decode_image(cfg.out + "/" + s.image);
    for (int k = 0; k < kSlots; ++k) {
      if (s.lm.vis[k] != kVisible) continue;
      const int c = trim_colour(im, s.lm.x[k], s.lm.y[k]);
      ++visible;
      on_trim += c >= 0;
      if (c >= 0) parts[std::stoi(s.item_id.substr(3)) - 1][synth::trim_part(k)] = c;
    }
  }
  CHECK(visible > 20);
  CHECK(on_trim >= visible * 8 / 10);
  int groups_differing = 0;
  for (int g = 0; g < 4; ++g) {
    bool differ = false;
    for (int j = 1; j < 3; ++j)
      for (auto [part, c] : parts[3 * g + j])
        differ = differ || (parts[3 * g].count(part) && parts[3 * g][part] != c);
    groups_differing += differ;
  }
  CHECK(groups_differing >= 3);  // an occluder can hide a differing trim in one group
}

TEST_CASE("synthetic Consumer-to-shop: BOM and CRLF files, pairs, shop and consumer photos") {
  TempDir d("c2s");
  SynthConfig cfg;
  cfg.out = d.path.string();
  cfg.benchmark = "consumer2shop";
  cfg.items = 10;
  cfg.views = 4;
  cfg.size = 80;
  cfg.seed = 4;
  synthesize(cfg);
  const std::string part = read_bytes(d.path / "Eval/list_eval_partition.txt");
  CHECK(part.rfind("\xEF\xBB\xBF", 0) == 0);
  CHECK(part.find("\r\n") != std::string::npos);
  CHECK(read_bytes(d.path / "Anno/list_bbox_consumer2shop.txt").rfind("\xEF\xBB\xBF", 0) == 0);

  LoadReport rep;
  const Dataset ds = load_dataset(cfg.out, "consumer2shop", true, &rep);
  INFO((rep.errors.empty() ? std::string() : rep.errors[0]));
  REQUIRE(rep.error_count == 0);
  REQUIRE(ds.samples.size() == 40);
  CHECK(ds.attribute_type_names.size() == 7);
  CHECK(ds.attribute_names[5] == "short sleeve");
  const std::regex layout(R"(img/[A-Z]+/[A-Za-z_]+/id_\d{8}/(shop|comsumer)_\d\d\.jpg)");
  int shop = 0, consumer = 0;
  std::set<Split> splits;
  for (const Sample& s : ds.samples) {
    CHECK(std::regex_match(s.image, layout));
    const bool is_consumer = s.image.find("comsumer_") != std::string::npos;
    CHECK(s.source == (is_consumer ? 2 : 1));
    (is_consumer ? consumer : shop)++;
    splits.insert(s.split);
    CHECK((s.has_bbox && s.has_landmarks));
  }
  CHECK(shop == 20);
  CHECK(consumer == 20);
  CHECK(splits == std::set<Split>{Split::Train, Split::Val, Split::Query, Split::Gallery});
  CHECK(check_images(ds, rep) == 40);
  CHECK(rep.error_count == 0);
  // As the real photos: long side `size`, not square (portrait or landscape).
  int portrait = 0, landscape = 0;
  for (const Sample& s : ds.samples) {
    int w = 0, h = 0;
    image_size(cfg.out + "/" + s.image, w, h);
    CHECK(std::max(w, h) == 80);
    CHECK(std::min(w, h) >= 49);  // 0.62 of the long side
    portrait += h > w;
    landscape += w > h;
  }
  CHECK(portrait > 0);
  CHECK(landscape > 0);
}

TEST_CASE("synthetic Consumer-to-shop photos have the real long side of 300 by default") {
  TempDir d("c2s300");
  SynthConfig cfg;
  cfg.out = d.path.string();
  cfg.benchmark = "consumer2shop";
  cfg.items = 2;
  cfg.views = 2;
  synthesize(cfg);
  const Dataset ds = load_dataset(cfg.out, "consumer2shop");
  REQUIRE(ds.samples.size() == 4);
  for (const Sample& s : ds.samples) {
    int w = 0, h = 0;
    image_size(cfg.out + "/" + s.image, w, h);
    CHECK(std::max(w, h) == 300);
  }
}

TEST_CASE("synthetic Category and Attribute: official files, real name lists, counts, splits, every clothes type") {
  TempDir d("category");
  SynthConfig cfg;
  cfg.out = d.path.string();
  cfg.benchmark = "category";
  cfg.items = 60;
  cfg.views = 3;
  cfg.size = 128;
  cfg.seed = 2;
  const SynthSummary sum = synthesize(cfg);
  CHECK(sum.images == 180);
  for (const char* f : {"Anno/list_category_cloth.txt", "Anno/list_category_img.txt", "Anno/list_attr_cloth.txt",
                        "Anno/list_attr_img.txt", "Anno/list_bbox.txt", "Anno/list_landmarks.txt", "Eval/list_eval_partition.txt"})
    CHECK(fs::exists(d.path / f));
  // The name lists are the shipped official files, byte for byte (and shared/'s, where present).
  for (const char* f : {"list_category_cloth.txt", "list_attr_cloth.txt"}) {
    INFO(f);
    const std::string written = read_bytes(d.path / "Anno" / f);
    CHECK(written == read_bytes(kSource + "/data/names/" + f));
    if (fs::exists(kReal + "/" + f)) CHECK(written == read_bytes(kReal + "/" + f));
  }

  LoadReport rep;
  const Dataset ds = load_dataset(cfg.out, "category", true, &rep);
  INFO((rep.errors.empty() ? std::string() : rep.errors[0]));
  REQUIRE(rep.error_count == 0);
  CHECK(rep.warning_count == 0);
  CHECK(check_images(ds, rep) == 180);
  CHECK(rep.error_count == 0);  // check-data's photo checks: bbox and visible landmarks inside
  REQUIRE(ds.samples.size() == 180);
  REQUIRE(ds.category_names.size() == 50);
  CHECK(ds.category_names[0] == "Anorak");
  REQUIRE(ds.attribute_names.size() == 1000);
  CHECK(ds.attribute_type_names.size() == 5);

  const std::regex layout(R"(img/[A-Za-z]+_[A-Za-z]+_[A-Za-z-]+/img_\d{8}\.jpg)");
  std::set<int> types;
  std::set<Split> splits;
  std::map<std::string, std::set<Split>> folder_splits;
  int64_t positives = 0, unknown = 0;
  for (const Sample& s : ds.samples) {
    INFO(s.image);
    CHECK(std::regex_match(s.image, layout));
    REQUIRE((s.has_bbox && s.has_landmarks && s.attributes.size() == 1000));
    REQUIRE((s.category >= 0 && s.category < 50));
    CHECK(s.clothes_type == ds.category_types[s.category]);  // the garment drawn is of its category's type
    // The folder ends with the category's name.
    const std::string folder = s.image.substr(4, s.image.rfind('/') - 4);
    CHECK(folder.substr(folder.size() - ds.category_names[s.category].size()) == ds.category_names[s.category]);
    types.insert(s.clothes_type);
    splits.insert(s.split);
    folder_splits[folder].insert(s.split);
    for (int8_t a : s.attributes) {
      unknown += a == -1;
      positives += a == 1;
    }
  }
  CHECK(unknown == 0);  // file values 1 / -1 only
  CHECK(types == std::set<int>{1, 2, 3});
  CHECK(splits == std::set<Split>{Split::Train, Split::Val, Split::Test});
  CHECK(ds.indices(Split::Train).size() > ds.indices(Split::Test).size() * 3);
  for (const auto& [folder, sp] : folder_splits) CHECK(sp.size() == 1);  // a product's photos stay in one split
  // Sparse, as the real labels: a few positives per image among 1,000.
  CHECK(positives >= 180 * 2);
  CHECK(positives <= 180 * 7);
  // Variation types: mostly normal, with pose and zoom-in photos too.
  std::set<int> variations;
  for (const auto& [image, v] : column_by_image(d.path / "Anno/list_landmarks.txt", 2)) variations.insert(v);
  CHECK(variations.count(1));
  CHECK(variations.size() >= 4);
}

TEST_CASE("synthetic Category: the visible attributes show in the pixels") {
  TempDir d("category_pixels");
  SynthConfig cfg;
  cfg.out = d.path.string();
  cfg.benchmark = "category";
  cfg.items = 120;
  cfg.views = 2;
  cfg.size = 160;
  cfg.seed = 8;
  synthesize(cfg);
  const Dataset ds = load_dataset(cfg.out, "category");
  const auto variation = column_by_image(d.path / "Anno/list_landmarks.txt", 2);
  auto index = [&](const std::string& name) {
    const auto it = std::find(ds.attribute_names.begin(), ds.attribute_names.end(), name);
    REQUIRE(it != ds.attribute_names.end());
    return int(it - ds.attribute_names.begin());
  };
  const int solid = index("solid"), striped = index("striped"), checked = index("checked"), dotted = index("dotted");
  const int v_neck = index("v-neck"), crew_neck = index("crew neck");
  double density[2] = {0, 0}, neck[2] = {0, 0};  // [0] solid / crew neck, [1] patterned / v-neck
  int n_density[2] = {0, 0}, n_neck[2] = {0, 0}, v_close = 0, crew_close = 0;
  for (const Sample& s : ds.samples) {
    if (variation.at(s.image) != 1 || s.clothes_type == 2) continue;  // normal pose, a neckline and a torso
    const auto& lm = s.lm;
    bool visible = true;
    for (int k : {kLCollar, kRCollar, kLHem, kRHem}) visible = visible && lm.vis[k] == kVisible;
    if (!visible) continue;
    const Image im = decode_image(cfg.out + "/" + s.image);
    const float cx = (lm.x[kLCollar] + lm.x[kRCollar]) / 2, cy = (lm.y[kLCollar] + lm.y[kRCollar]) / 2;
    const float dx = lm.x[kRCollar] - lm.x[kLCollar], dy = lm.y[kRCollar] - lm.y[kLCollar];
    const float collar = std::hypot(dx, dy);  // 32 canonical pixels
    // Texture: the torso below the chest print (upper: 45% of the way to the hem; dress: above its waist).
    const float t = s.clothes_type == 1 ? 0.45f : 0.35f;
    const float hx = (lm.x[kLHem] + lm.x[kRHem]) / 2, hy = (lm.y[kLHem] + lm.y[kRHem]) / 2;
    const float tx = cx + t * (hx - cx), ty = cy + t * (hy - cy), r = 0.3f * collar;
    const bool patterned = s.attributes[striped] == 1 || s.attributes[checked] == 1 || s.attributes[dotted] == 1;
    CHECK(!(patterned && s.attributes[solid] == 1));
    if (patterned || s.attributes[solid] == 1) {
      density[patterned] += edge_density(im, tx, ty, r);
      ++n_density[patterned];
    }
    // Neckline: 0.6 collar widths below the collar line is skin in a V (30 deep), cloth under a round
    // neck (16 deep); 0.15 below is skin in both.
    const float nx = -dy / collar, ny = dx / collar;  // perpendicular, pointing down
    const auto skin = mean3(im, cx + nx * 0.15f * collar, cy + ny * 0.15f * collar);
    const auto probe = mean3(im, cx + nx * 0.6f * collar, cy + ny * 0.6f * collar);
    const bool v = s.attributes[v_neck] == 1;
    CHECK(v != (s.attributes[crew_neck] == 1));
    neck[v] += colour_distance(skin, probe);
    ++n_neck[v];
    (v ? v_close : crew_close) += colour_distance(skin, probe) < 45;
  }
  INFO("edge density solid " << density[0] / n_density[0] << " (" << n_density[0] << "), patterned "
                             << density[1] / n_density[1] << " (" << n_density[1] << ")");
  INFO("skin-to-probe distance crew " << neck[0] / n_neck[0] << " (" << n_neck[0] << "), v-neck " << neck[1] / n_neck[1]
                                      << " (" << n_neck[1] << "); close: crew " << crew_close << ", v " << v_close);
  REQUIRE(n_density[0] >= 5);
  REQUIRE(n_density[1] >= 10);
  REQUIRE(n_neck[0] >= 10);
  REQUIRE(n_neck[1] >= 5);
  CHECK(density[1] / n_density[1] > 4 * density[0] / n_density[0]);
  CHECK(v_close >= n_neck[1] * 8 / 10);
  CHECK(crew_close <= n_neck[0] * 3 / 10);
}

TEST_CASE("synthetic Landmark Detection: official files, variation types drawn as they are") {
  TempDir d("landmark");
  SynthConfig cfg;
  cfg.out = d.path.string();
  cfg.benchmark = "landmark";
  cfg.items = 50;
  cfg.views = 4;
  cfg.size = 128;
  cfg.seed = 6;
  synthesize(cfg);
  for (const char* f : {"Anno/list_landmarks.txt", "Anno/list_bbox.txt", "Eval/list_eval_partition.txt"})
    CHECK(fs::exists(d.path / f));
  CHECK(!fs::exists(d.path / "Anno/list_category_img.txt"));
  LoadReport rep;
  const Dataset ds = load_dataset(cfg.out, "landmark", true, &rep);
  INFO((rep.errors.empty() ? std::string() : rep.errors[0]));
  REQUIRE(rep.error_count == 0);
  CHECK(check_images(ds, rep) == 200);
  CHECK(rep.error_count == 0);
  REQUIRE(ds.samples.size() == 200);

  const auto variation = column_by_image(d.path / "Anno/list_landmarks.txt", 2);
  const std::regex layout(R"(img/img_\d{8}\.jpg)");
  std::set<int> types, vis_codes;
  std::set<Split> splits;
  // Per variation type: photos, mean |tilt| of the hem line, landmarks cut off, bbox share of the photo.
  double tilt[6] = {}, cut[6] = {}, area[6] = {}, landmarks[6] = {};
  int photos[6] = {};
  for (const Sample& s : ds.samples) {
    INFO(s.image);
    CHECK(std::regex_match(s.image, layout));
    REQUIRE((s.has_bbox && s.has_landmarks));
    types.insert(s.clothes_type);
    splits.insert(s.split);
    const int v = variation.at(s.image);
    REQUIRE((v >= 1 && v <= 5));
    int w = 0, h = 0;
    image_size(cfg.out + "/" + s.image, w, h);
    ++photos[v];
    area[v] += double(s.x2 - s.x1) * (s.y2 - s.y1) / (double(w) * h);
    for (int k = 0; k < kSlots; ++k) {
      if (s.lm.vis[k] == kAbsent) continue;
      vis_codes.insert(s.lm.vis[k]);
      ++landmarks[v];
      if (s.lm.vis[k] != kCutOff) continue;
      ++cut[v];
      // Cut off means outside the photo: the position written is clamped to its border.
      CHECK((s.lm.x[k] == 0 || s.lm.y[k] == 0 || s.lm.x[k] == w - 1 || s.lm.y[k] == h - 1));
    }
    if (s.lm.vis[kLHem] != kCutOff && s.lm.vis[kRHem] != kCutOff)
      tilt[v] += std::fabs(std::atan2(s.lm.y[kRHem] - s.lm.y[kLHem], s.lm.x[kRHem] - s.lm.x[kLHem]));
  }
  CHECK(types == std::set<int>{1, 2, 3});
  CHECK(splits == std::set<Split>{Split::Train, Split::Val, Split::Test});
  CHECK(vis_codes == std::set<int>{kVisible, kOccluded, kCutOff});
  for (int v = 1; v <= 5; ++v) REQUIRE(photos[v] >= 5);  // every variation type is drawn
  INFO("hem tilt (rad) normal " << tilt[1] / photos[1] << ", medium pose " << tilt[2] / photos[2] << ", large pose "
                                << tilt[3] / photos[3]);
  INFO("cut off share normal " << cut[1] / landmarks[1] << ", medium zoom " << cut[4] / landmarks[4] << ", large zoom "
                               << cut[5] / landmarks[5]);
  INFO("bbox share normal " << area[1] / photos[1] << ", medium zoom " << area[4] / photos[4] << ", large zoom "
                            << area[5] / photos[5]);
  // Pose turns the garment: the hem line tilts, more in a large pose.
  CHECK(tilt[2] / photos[2] > tilt[1] / photos[1] + 0.1);
  CHECK(tilt[3] / photos[3] > tilt[2] / photos[2] + 0.1);
  // Zoom-in enlarges the garment and cuts landmarks off.
  CHECK(area[4] / photos[4] > 1.5 * area[1] / photos[1]);
  CHECK(area[5] / photos[5] > area[4] / photos[4]);
  CHECK(cut[4] / landmarks[4] > cut[1] / landmarks[1] + 0.1);
  CHECK(cut[5] / landmarks[5] > cut[4] / landmarks[4]);
}
