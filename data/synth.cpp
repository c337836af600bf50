// synthesize(): decides the items (category, shape, colours, pattern), the photos of each (views), draws
// them in parallel and writes the benchmark's annotation files. Each item and each photo has its own
// random stream derived from the seed, so the output does not depend on the thread count.
#include "data/synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <tuple>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/annotations_common.h"
#include "data/synth_common.h"

namespace fn::data {
namespace {

using synth::Garment;
using synth::Item;
using synth::ListFile;
using synth::Photo;
using synth::Rgb;
using synth::View;
using synth::jitter;
using synth::pick_bit;
using synth::studio_view;

// A category and the garments it allows. sleeves: bit 0 sleeveless, 1 short, 2 long; lengths: bit 0
// short, 1 long.
struct CategorySpec {
  const char* path;
  int type;
  bool skirt;
  int sleeves, lengths;
  float leg_width;
  double print;
};

// The 23 In-shop categories (<GENDER>/<Category>, as in the real img/ tree).
const std::vector<CategorySpec> kInshop = {
    {"MEN/Denim", 2, false, 0, 2, 1.f, 0},           {"MEN/Jackets_Vests", 1, false, 5, 2, 1.f, 0.1},
    {"MEN/Pants", 2, false, 0, 2, 1.f, 0},           {"MEN/Shirts_Polos", 1, false, 6, 2, 1.f, 0.1},
    {"MEN/Shorts", 2, false, 0, 1, 1.f, 0},          {"MEN/Suiting", 1, false, 4, 2, 1.f, 0},
    {"MEN/Sweaters", 1, false, 4, 2, 1.f, 0.1},      {"MEN/Sweatshirts_Hoodies", 1, false, 4, 2, 1.f, 0.4},
    {"MEN/Tees_Tanks", 1, false, 3, 2, 1.f, 0.3},    {"WOMEN/Blouses_Shirts", 1, false, 7, 2, 1.f, 0.1},
    {"WOMEN/Cardigans", 1, false, 4, 2, 1.f, 0},     {"WOMEN/Denim", 2, false, 0, 3, 1.f, 0},
    {"WOMEN/Dresses", 3, true, 7, 3, 1.f, 0.1},      {"WOMEN/Graphic_Tees", 1, false, 2, 2, 1.f, 1.0},
    {"WOMEN/Jackets_Coats", 1, false, 4, 2, 1.f, 0}, {"WOMEN/Leggings", 2, false, 0, 2, 0.7f, 0},
    {"WOMEN/Pants", 2, false, 0, 2, 1.f, 0},         {"WOMEN/Rompers_Jumpsuits", 3, false, 3, 3, 1.f, 0.1},
    {"WOMEN/Shorts", 2, false, 0, 1, 1.f, 0},        {"WOMEN/Skirts", 2, true, 0, 3, 1.f, 0},
    {"WOMEN/Sweaters", 1, false, 4, 2, 1.f, 0.1},    {"WOMEN/Sweatshirts_Hoodies", 1, false, 4, 2, 1.f, 0.4},
    {"WOMEN/Tees_Tanks", 1, false, 3, 2, 1.f, 0.3},
};
// Consumer-to-shop: <CATEGORY>/<Sub>. TOPS/ and CLOTHING/ names occur in the real file lists; the
// DRESSES/ and TROUSERS/ ones follow the same pattern for the other clothes types.
const std::vector<CategorySpec> kConsumer2shop = {
    {"TOPS/T_Shirt", 1, false, 2, 2, 1.f, 0.4},   {"TOPS/Tank_Top", 1, false, 1, 2, 1.f, 0.2},
    {"TOPS/Coat", 1, false, 4, 2, 1.f, 0},        {"TOPS/Chiffon", 1, false, 7, 2, 1.f, 0.1},
    {"TOPS/Lace_Shirt", 1, false, 6, 2, 1.f, 0},  {"CLOTHING/Polo_Shirt", 1, false, 6, 2, 1.f, 0.2},
    {"DRESSES/Dress", 3, true, 7, 3, 1.f, 0.1},   {"DRESSES/Lace_Dress", 3, true, 3, 3, 1.f, 0},
    {"DRESSES/Skirt", 2, true, 0, 3, 1.f, 0},     {"TROUSERS/Pants", 2, false, 0, 2, 1.f, 0},
    {"TROUSERS/Leggings", 2, false, 0, 2, 0.7f, 0}, {"TROUSERS/Shorts", 2, false, 0, 1, 1.f, 0},
};

// Attributes: English name (spaces allowed), Chinese name (Consumer-to-shop's first column), group.
struct AttrSpec {
  const char *en, *zh;
  int type;
};
const std::vector<AttrSpec> kAttributes = {
    {"plain", "纯色", 1},        {"striped", "条纹", 1},      {"checked", "格子", 1},   {"dotted", "波点", 1},
    {"sleeveless", "无袖", 2},   {"short sleeve", "短袖", 2}, {"long sleeve", "长袖", 2}, {"round neck", "圆领", 3},
    {"v neck", "V领", 3},        {"short length", "短款", 4}, {"long length", "长款", 4}, {"trousers", "裤装", 5},
    {"skirt", "裙装", 5},        {"print", "印花", 6},        {"dark", "深色", 7},
};
const std::vector<std::pair<const char*, const char*>> kAttrTypes = {
    {"图案", "pattern"}, {"袖长", "sleeve length"}, {"领型", "collar"}, {"衣长", "length"},
    {"款式", "form"},    {"印花", "print"},         {"色调", "tone"},
};

Item make_item(uint64_t seed, int index, const std::vector<CategorySpec>& cats) {
  Xoshiro256 rng(derive_seed(seed, 0x4954454du /* ITEM */, index));
  Item it;
  char id[32];
  std::snprintf(id, sizeof id, "id_%08d", index + 1);
  it.id = id;
  it.category = (int)rng.below(cats.size());
  const CategorySpec& c = cats[it.category];
  const auto pal = synth::palette(seed, it.category);
  Garment& g = it.g;
  g.type = c.type;
  g.skirt = c.skirt;
  g.sleeve = c.type == 2 ? synth::kShortSleeve : pick_bit(c.sleeves, rng);
  g.long_length = c.type == 1 ? true : pick_bit(c.lengths, rng) == 1;
  g.v_neck = rng.chance(0.4);
  g.width = rng.uniform(0.88f, 1.12f);
  g.leg_width = c.leg_width;
  const size_t b = rng.below(pal.size()), s = (b + 1 + rng.below(pal.size() - 1)) % pal.size();
  g.base = jitter(pal[b], rng, 0.05f);
  g.second = rng.chance(0.25) ? (rng.chance(0.5) ? Rgb{0.95f, 0.95f, 0.93f} : Rgb{0.1f, 0.1f, 0.12f}) : jitter(pal[s], rng, 0.05f);
  g.pattern = (int)rng.below(synth::kPatterns);
  g.period = rng.uniform(7.f, 18.f);
  const float angles[4] = {0.f, 1.5708f, 0.7854f, -0.7854f};
  g.angle = angles[rng.below(4)] + rng.uniform(-0.1f, 0.1f);
  g.phase = rng.uniform(0.f, 1.f);
  g.duty = rng.uniform(0.3f, 0.6f);
  g.dot_radius = g.period * rng.uniform(0.18f, 0.32f);
  g.print = c.type != 2 && rng.chance(c.print);
  g.print_shape = (int)rng.below(3);
  g.print_color = jitter(pal[rng.below(pal.size())], rng, 0.3f);

  // File values: 1 positive, -1 negative, 0 not applicable to this clothes type (unknown).
  auto one_hot = [&](int n, int k, bool applies) {
    for (int i = 0; i < n; ++i) it.attrs.push_back(applies ? (i == k ? 1 : -1) : 0);
  };
  one_hot(4, g.pattern, true);
  one_hot(3, g.sleeve, g.type != 2);
  one_hot(2, g.v_neck ? 1 : 0, g.type != 2);
  one_hot(2, g.long_length ? 1 : 0, g.type != 1);
  one_hot(2, g.skirt ? 1 : 0, g.type != 1);
  it.attrs.push_back(g.print ? 1 : -1);
  it.attrs.push_back(0.299f * g.base.r + 0.587f * g.base.g + 0.114f * g.base.b < 0.35f ? 1 : -1);
  return it;
}

// The items of look-alike group `group`: item `group * k + j` is the group's look (make_item of the group
// index) with the j-th of k different trim combinations (different on a part the garment has).
std::vector<Item> make_look_alikes(uint64_t seed, int group, int k, int items, const std::vector<CategorySpec>& cats) {
  const Item look = make_item(seed, group, cats);
  bool has[synth::kTrimParts] = {};
  for (int slot : slots_of_type(look.g.type)) has[synth::trim_part(slot)] = true;
  Xoshiro256 rng(derive_seed(seed, 0x5452494du /* TRIM */, group));
  std::vector<Item> out;
  std::vector<std::vector<int>> taken;
  for (int j = 0; j < k && group * k + j < items; ++j) {
    std::vector<int> combo(synth::kTrimParts);
    for (int tries = 0;; ++tries) {  // 36 combinations even for two parts: a new one is found quickly
      for (int& c : combo) c = int(rng.below(synth::kTrimColours));
      bool differs = true;
      for (const auto& t : taken) {
        bool same = true;
        for (int p = 0; p < synth::kTrimParts; ++p) same = same && (!has[p] || t[p] == combo[p]);
        differs = differs && !same;
      }
      if (differs || tries > 1000) break;
    }
    taken.push_back(combo);
    Item it = look;
    char id[32];
    std::snprintf(id, sizeof id, "id_%08d", group * k + j + 1);
    it.id = id;
    it.g.trims = true;
    for (int p = 0; p < synth::kTrimParts; ++p) it.g.trim[p] = synth::kTrimPalette[combo[size_t(p)]];
    out.push_back(it);
  }
  return out;
}

// In-shop views: <group>_<n>_<name>.jpg with the real names; pose and variation codes per the README.
struct InshopView {
  int n;
  const char* name;
  int pose, variation;
};
const InshopView kInshopViews[5] = {{1, "front", 1, 1}, {2, "side", 2, 2}, {3, "back", 3, 1}, {4, "full", 4, 1}, {7, "additional", 5, 4}};

View inshop_view(int kind, Xoshiro256& rng) {
  View v = studio_view(0.92f, 1.05f, rng);
  if (kind == 1) v.squeeze = rng.uniform(0.62f, 0.8f), v.cx += rng.uniform(-0.05f, 0.05f);
  if (kind == 2) v.back = true;
  if (kind == 3) v.scale = rng.uniform(0.58f, 0.72f);
  if (kind == 4) {  // zoom-in: parts of the garment leave the photo, so landmarks get cut off
    v.scale = rng.uniform(1.3f, 1.6f);
    v.cx += rng.uniform(-0.1f, 0.1f);
    v.cy += rng.uniform(-0.12f, 0.12f);
  }
  if (kind != 4 && rng.chance(0.08)) v.cy += rng.chance(0.5) ? 0.22f : -0.22f;  // a shifted shot
  return v;
}

View consumer_view(bool consumer, Xoshiro256& rng) {
  if (!consumer) return inshop_view(0, rng);
  View v;
  v.consumer = true;
  v.cx = 0.5f + rng.uniform(-0.12f, 0.12f);
  v.cy = 0.5f + rng.uniform(-0.12f, 0.12f);
  v.scale = rng.uniform(0.7f, 1.3f);
  v.angle = rng.uniform(-0.2f, 0.2f);
  v.squeeze = rng.uniform(0.75f, 1.f);
  v.mirror = rng.chance(0.5);
  v.arm_l = rng.uniform(0.1f, 0.9f), v.arm_r = rng.uniform(0.1f, 0.9f);
  v.leg_l = rng.uniform(0.0f, 0.25f), v.leg_r = rng.uniform(0.0f, 0.25f);
  v.occlusion = 0.35;
  return v;
}

std::string attr_values(const Item& it) {
  std::string s = it.id;
  for (int8_t a : it.attrs) s += cat(" ", (int)a);
  return s;
}

}  // namespace

bool is_synthetic_dataset(const std::string& root) {
  std::error_code ec;
  return !root.empty() && std::filesystem::is_regular_file(std::filesystem::path(root) / kSyntheticMarker, ec);
}

void write_synthetic_marker(const std::string& root, const std::string& how) {
  write_text_file((std::filesystem::path(root) / kSyntheticMarker).string(),
                  cat("Synthetic DeepFashion-format data, drawn by fashionnet (", how, ").\n",
                      "Figures measured on it test the pipeline; they are not comparable with published DeepFashion results.\n"));
}

namespace {
SynthSummary draw(const SynthConfig& cfg);
}

SynthSummary synthesize(const SynthConfig& cfg) {
  const SynthSummary s = draw(cfg);
  write_synthetic_marker(cfg.out, cat("synth --benchmark ", cfg.benchmark, " --items ", cfg.items, " --views ", cfg.views,
                                      " --seed ", cfg.seed));
  return s;
}

namespace {
SynthSummary draw(const SynthConfig& cfg) {
  namespace fs = std::filesystem;
  FN_EXPECT(cfg.benchmark == "inshop" || cfg.benchmark == "consumer2shop" || cfg.benchmark == "category" ||
                cfg.benchmark == "landmark",
            "synth: the benchmark must be inshop, consumer2shop, category or landmark, not '", cfg.benchmark, "'");
  FN_EXPECT(cfg.items > 0, "synth: the number of items must be positive, got ", cfg.items);
  FN_EXPECT(cfg.views > 0, "synth: the number of views per item must be positive, got ", cfg.views);
  FN_EXPECT(cfg.size == 0 || cfg.size >= 32, "synth: the photo size must be at least 32 pixels, got ", cfg.size);
  FN_EXPECT(cfg.look_alikes >= 1 && cfg.look_alikes <= 16, "synth: look-alike groups take 1 to 16 items, got ",
            cfg.look_alikes);
  const bool inshop = cfg.benchmark == "inshop";
  if (!inshop && cfg.benchmark != "consumer2shop") {
    FN_EXPECT(cfg.look_alikes == 1, "synth: look-alike groups are for the retrieval benchmarks (inshop, consumer2shop)");
    return synth::synthesize_category(cfg);
  }
  const auto t0 = std::chrono::steady_clock::now();
  // In-shop photos are 256 x 256; Consumer-to-shop ones have their long side resized to 300 (its README).
  const int side = cfg.size ? cfg.size : inshop ? 256 : 300;
  SynthConfig sized = cfg;
  sized.size = side;
  const auto& cats = inshop ? kInshop : kConsumer2shop;

  const int k = cfg.look_alikes, groups = (cfg.items + k - 1) / k;  // k = 1: a group per item
  std::vector<Item> items;
  if (k == 1) {
    for (int i = 0; i < cfg.items; ++i) items.push_back(make_item(cfg.seed, i, cats));
  } else {
    for (int gr = 0; gr < groups; ++gr)
      for (Item& it : make_look_alikes(cfg.seed, gr, k, cfg.items, cats)) items.push_back(std::move(it));
  }

  // Groups (items, unless look-alikes) split by a seeded shuffle. In-shop: half train, half test (photos
  // alternate gallery, query). Consumer-to-shop: 60% train, 20% val, 20% test.
  const std::vector<int> group_split = inshop ? synth::split_groups(cfg.seed, groups, 0.5, 0.0)  // 0 train, 1 val, 2 test
                                             : synth::split_groups(cfg.seed, groups, 0.6, 0.2);
  std::vector<int> item_split(cfg.items);
  for (int i = 0; i < cfg.items; ++i) item_split[i] = group_split[i / k];

  std::vector<Photo> photos;
  for (int i = 0; i < cfg.items; ++i) {
    const std::string dir = cat("img/", cats[items[i].category].path, "/", items[i].id);
    fs::create_directories(cfg.out + "/" + dir);
    if (inshop) {
      for (int k = 0; k < cfg.views; ++k) {
        Photo p;
        p.item = i;
        p.stream = derive_seed(cfg.seed, 0x56494557u /* VIEW */, i, k);
        Xoshiro256 rng(p.stream ^ 0x1234567u);
        const InshopView& iv = kInshopViews[k % 5];
        char name[64];
        std::snprintf(name, sizeof name, "%02d_%d_%s.jpg", k / 5 + 1, iv.n, iv.name);
        p.image = dir + "/" + name;
        p.pose = iv.pose, p.variation = iv.variation;
        p.view = inshop_view(k % 5, rng);
        photos.push_back(std::move(p));
      }
    } else {
      const int shops = std::max(1, cfg.views / 2), consumers = std::max(1, cfg.views - shops);
      for (int k = 0; k < shops + consumers; ++k) {
        const bool consumer = k >= shops;
        Photo p;
        p.item = i;
        p.stream = derive_seed(cfg.seed, 0x56494557u /* VIEW */, i, k);
        Xoshiro256 rng(p.stream ^ 0x1234567u);
        char name[64];
        std::snprintf(name, sizeof name, consumer ? "comsumer_%02d.jpg" : "shop_%02d.jpg", consumer ? k - shops + 1 : k + 1);
        p.image = dir + "/" + name;  // "comsumer": the real dataset's spelling
        p.source = consumer ? 2 : 1;
        p.view = consumer_view(consumer, rng);
        p.variation = consumer ? 2 : 1;
        std::tie(p.width, p.height) = synth::photo_size(side, p.stream);
        photos.push_back(std::move(p));
      }
    }
  }
  synth::draw_all(photos, items, sized);

  fs::create_directories(cfg.out + "/Anno");
  fs::create_directories(cfg.out + "/Eval");
  const bool c2s = !inshop;
  const std::string suffix = inshop ? "inshop" : "consumer2shop";

  ListFile bbox(cfg.out + "/Anno/list_bbox_" + suffix + ".txt", c2s);
  bbox.line(cat(photos.size()));
  bbox.line(inshop ? "image_name clothes_type pose_type x_1 y_1 x_2 y_2" : "image_name clothes_type source_type x_1 y_1 x_2 y_2");
  ListFile lms(cfg.out + "/Anno/list_landmarks_" + suffix + ".txt", c2s);
  lms.line(cat(photos.size()));
  lms.line(synth::landmark_columns());
  for (const Photo& p : photos) {
    const int type = items[p.item].g.type;
    const auto& d = p.drawn;
    bbox.line(cat(p.image, " ", type, " ", inshop ? p.pose : p.source, " ", d.x1, " ", d.y1, " ", d.x2, " ", d.y2));
    lms.line(synth::landmark_row(p, type));
  }
  bbox.save();
  lms.save();

  ListFile item_list(cfg.out + "/Anno/list_item_" + suffix + ".txt", c2s);
  item_list.line(cat(items.size()));
  for (const Item& it : items) item_list.line(it.id);
  item_list.save();

  ListFile attr_names(cfg.out + "/Anno/list_attr_cloth.txt", c2s);
  attr_names.line(cat(kAttributes.size()));
  attr_names.line(inshop ? "attribute_name" : "attribute_name (Chinese)   attribute_name (English)   attribute_type");
  for (const AttrSpec& a : kAttributes) attr_names.line(inshop ? std::string(a.en) : cat(a.zh, "   ", a.en, "   ", a.type));
  attr_names.save();
  if (c2s) {
    ListFile types(cfg.out + "/Anno/list_attr_type.txt", true);
    types.line(cat(kAttrTypes.size()));
    types.line("attribute_type (Chinese)   attribute_type (English)");
    for (const auto& t : kAttrTypes) types.line(cat(t.first, "   ", t.second));
    types.save();
  }
  ListFile attr_items(cfg.out + "/Anno/list_attr_items.txt", c2s);
  attr_items.line(cat(items.size()));
  attr_items.line("item_id attribute_labels");
  for (const Item& it : items) attr_items.line(attr_values(it));
  attr_items.save();

  ListFile part(cfg.out + "/Eval/list_eval_partition.txt", c2s);
  if (inshop) {
    part.line(cat(photos.size()));
    part.line("image_name item_id evaluation_status");
    std::vector<int> seen(cfg.items, 0);
    for (const Photo& p : photos) {
      const int k = seen[p.item]++;
      const char* status = item_split[p.item] == 0 ? "train" : k % 2 == 0 ? "gallery" : "query";
      part.line(cat(p.image, " ", items[p.item].id, " ", status));
    }
  } else {
    std::vector<std::string> rows;
    static const char* names[3] = {"train", "val", "test"};
    for (int i = 0; i < cfg.items; ++i)
      for (const Photo& c : photos)
        if (c.item == i && c.source == 2)
          for (const Photo& s : photos)
            if (s.item == i && s.source == 1) rows.push_back(cat(c.image, " ", s.image, " ", items[i].id, " ", names[item_split[i]]));
    part.line(cat(rows.size()));
    part.line("image_pair_name_1 image_pair_name_2 item_id evaluation_status");
    for (const auto& r : rows) part.line(r);
  }
  part.save();

  SynthSummary sum;
  sum.images = (int64_t)photos.size();
  sum.items = cfg.items;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}
}  // namespace

}  // namespace fn::data
