// The synthetic DeepFashion: written in the real layout and formats, read back by the same readers with
// every annotation, exact landmarks in the right slots, all visibility codes, deterministic from the seed.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <regex>
#include <set>

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
  CHECK(ta.size() == 18 + 6);
  CHECK(ta == tb);
  CHECK(ta != tc);
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
}
