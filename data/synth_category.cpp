// synthesize_category(): the Category and Attribute Prediction and the Fashion Landmark Detection
// benchmarks. Each garment (a product) takes one of the 50 real categories and is drawn by its clothes type;
// each of its photos has a variation type (pose, zoom-in) that its drawing really has. Category: a product's
// photos share a folder img/<Words>_<Category>/img_NNNNNNNN.jpg, and its 1,000 real attributes are a drawn
// subset (visible in the pixels) plus sparse random ones. Landmark: img/img_NNNNNNNN.jpg. Design: docs/data.md.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <tuple>

#include "core/error.h"
#include "data/annotations_common.h"
#include "data/synth_common.h"
#include "data/synth_names.h"

namespace fn::data::synth {
namespace {

// What a category's garments may look like, by its real name. sleeves: bit 0 sleeveless, 1 short, 2 long;
// lengths: bit 0 short, 1 long (trousers or shorts, mini or maxi).
struct Look {
  bool skirt = false;
  int sleeves = 7, lengths = 3;
  float leg_width = 1.f;
  double print = 0.15;
};

Look look_of(const std::string& name, int type) {
  auto is = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (name == n) return true;
    return false;
  };
  Look l;
  if (type == 1) {
    if (is({"Tank", "Halter", "Poncho"})) l.sleeves = 1;
    else if (is({"Tee"})) l.sleeves = 2, l.print = 0.4;
    else if (is({"Top", "Blouse"})) l.sleeves = 7, l.print = 0.2;
    else if (is({"Jersey", "Button-Down", "Henley"})) l.sleeves = 6, l.print = 0.25;
    else l.sleeves = 4;  // jackets, coats, sweaters, hoodies, flannels, turtlenecks
  } else if (type == 2) {
    l.skirt = is({"Skirt", "Sarong"});
    if (is({"Shorts", "Cutoffs", "Sweatshorts", "Trunks", "Culottes", "Gauchos"})) l.lengths = 1;
    else if (is({"Sarong"})) l.lengths = 2;
    else if (!l.skirt) l.lengths = 2;
    if (is({"Leggings", "Jeggings"})) l.leg_width = 0.7f;
  } else {
    l.skirt = !is({"Jumpsuit", "Romper", "Onesie"});
    if (is({"Romper", "Coverup", "Cape"})) l.lengths = 1;
    else if (is({"Jumpsuit", "Onesie", "Coat", "Robe", "Caftan", "Kaftan"})) l.lengths = 2;
    if (is({"Sundress", "Cape"})) l.sleeves = 1;
    else if (is({"Nightdress", "Coverup", "Romper"})) l.sleeves = 3;
    else if (is({"Coat", "Robe", "Onesie"})) l.sleeves = 4;
    else if (is({"Caftan", "Kaftan", "Kimono", "Shirtdress"})) l.sleeves = 6;
  }
  return l;
}

// The attributes the drawing shows, by their names in the real list, and when a garment has them. Every
// other attribute is sparse random noise, as real labels are for what a drawing cannot show.
struct VisibleRule {
  const char* name;
  bool (*shows)(const Garment&);
};
const VisibleRule kVisible[] = {
    {"striped", [](const Garment& g) { return g.pattern == kStripes; }},
    {"checked", [](const Garment& g) { return g.pattern == kChecks; }},
    {"dotted", [](const Garment& g) { return g.pattern == kDots; }},
    {"graphic", [](const Garment& g) { return g.print; }},  // the chest motif
    {"solid", [](const Garment& g) { return g.pattern == kPlain && !g.print; }},
    {"sleeveless", [](const Garment& g) { return g.type != 2 && g.sleeve == kSleeveless; }},
    {"long-sleeve", [](const Garment& g) { return g.type != 2 && g.sleeve == kLongSleeve; }},
    {"v-neck", [](const Garment& g) { return g.type != 2 && g.v_neck; }},
    {"crew neck", [](const Garment& g) { return g.type != 2 && !g.v_neck; }},
    {"maxi", [](const Garment& g) { return g.skirt && g.long_length; }},
    {"mini", [](const Garment& g) { return g.skirt && !g.long_length; }},
    {"skinny", [](const Garment& g) { return g.leg_width < 1.f; }},
};

float luma(Rgb c) { return 0.299f * c.r + 0.587f * c.g + 0.114f * c.b; }

Item make_garment(uint64_t seed, int index, const std::vector<NamedType>& cats, const std::vector<int>& visible_index,
                  int attributes) {
  Xoshiro256 rng(derive_seed(seed, 0x47524d54u /* GRMT */, index));
  Item it;
  it.category = (int)rng.below(cats.size());
  const int type = cats[it.category].type;
  const Look look = look_of(cats[it.category].name, type);
  const auto pal = palette(seed, it.category);
  Garment& g = it.g;
  g.type = type;
  g.skirt = look.skirt;
  g.sleeve = type == 2 ? kShortSleeve : pick_bit(look.sleeves, rng);
  g.long_length = type == 1 ? true : pick_bit(look.lengths, rng) == 1;
  g.v_neck = rng.chance(0.4);
  g.width = rng.uniform(0.88f, 1.12f);
  g.leg_width = look.leg_width;
  const size_t b = rng.below(pal.size()), s = (b + 1 + rng.below(pal.size() - 1)) % pal.size();
  g.base = jitter(pal[b], rng, 0.05f);
  g.second = jitter(pal[s], rng, 0.05f);
  // A pattern is an attribute here, so it must show: the second colour contrasts with the base.
  if (std::fabs(luma(g.second) - luma(g.base)) < 0.3f)
    g.second = luma(g.base) < 0.5f ? Rgb{0.95f, 0.95f, 0.92f} : Rgb{0.08f, 0.08f, 0.1f};
  g.pattern = (int)rng.below(kPatterns);
  g.period = rng.uniform(9.f, 18.f);
  const float angles[4] = {0.f, 1.5708f, 0.7854f, -0.7854f};
  g.angle = angles[rng.below(4)] + rng.uniform(-0.1f, 0.1f);
  g.phase = rng.uniform(0.f, 1.f);
  g.duty = rng.uniform(0.35f, 0.6f);
  g.dot_radius = g.period * rng.uniform(0.22f, 0.32f);
  g.print = type != 2 && rng.chance(look.print);
  g.print_shape = (int)rng.below(3);
  g.print_color = g.second;

  // File values 1 / -1 (the benchmark has no "unknown"): the visible subset by its rules, then 0 to 2
  // random positives among the other attributes.
  it.attrs.assign(attributes, -1);
  for (size_t r = 0; r < std::size(kVisible); ++r) it.attrs[visible_index[r]] = kVisible[r].shows(g) ? 1 : -1;
  for (int extra = (int)rng.below(3); extra > 0;) {
    const int a = (int)rng.below(attributes);
    if (std::find(visible_index.begin(), visible_index.end(), a) != visible_index.end() || it.attrs[a] == 1) continue;
    it.attrs[a] = 1;
    --extra;
  }
  return it;
}

// Variation types (the Landmark README): 1 normal pose, 2 medium pose, 3 large pose, 4 medium zoom-in,
// 5 large zoom-in. Pose turns the garment (rotation, shear, side squeeze); zoom-in enlarges it about a
// point off centre, as a crop of the photo would, cutting landmarks off.
View variation_view(int variation, Xoshiro256& rng) {
  View v = studio_view(0.9f, 1.02f, rng);
  v.consumer = rng.chance(0.3);  // the benchmarks mix shop and consumer photos
  const float sign = rng.chance(0.5) ? 1.f : -1.f;
  switch (variation) {
    case 2:
      v.angle = sign * rng.uniform(0.15f, 0.3f);
      v.shear = -sign * rng.uniform(0.1f, 0.2f);
      v.squeeze = rng.uniform(0.8f, 0.92f);
      v.scale *= 0.92f;
      break;
    case 3:
      v.angle = sign * rng.uniform(0.35f, 0.55f);
      v.shear = -sign * rng.uniform(0.25f, 0.4f);
      v.squeeze = rng.uniform(0.6f, 0.75f);
      v.scale *= 0.85f;
      break;
    case 4:
      v.scale = rng.uniform(1.35f, 1.55f);
      v.cx += rng.uniform(-0.1f, 0.1f), v.cy += rng.uniform(-0.12f, 0.12f);
      break;
    case 5:
      v.scale = rng.uniform(1.75f, 2.1f);
      v.cx += rng.uniform(-0.15f, 0.15f), v.cy += rng.uniform(-0.18f, 0.18f);
      break;
    default: break;
  }
  return v;
}

// Share of photos per variation type 1..5: mostly normal in Category, all kinds in Landmark.
int pick_variation(bool landmark, Xoshiro256& rng) {
  static const double category[5] = {0.6, 0.15, 0.05, 0.15, 0.05}, fld[5] = {0.4, 0.2, 0.15, 0.15, 0.1};
  const double* w = landmark ? fld : category;
  double u = rng.uniform();
  for (int k = 0; k < 4; ++k) {
    if (u < w[k]) return k + 1;
    u -= w[k];
  }
  return 5;
}

// Product folder words: a texture word from the pattern and a fabric word, as in the real folder names
// ("Sheer_Pleated-Front_Blouse").
std::string folder_name(const Item& it, const std::string& category, Xoshiro256& rng) {
  static const char* texture[kPatterns] = {"Solid", "Striped", "Checked", "Dotted"};
  static const char* fabric[8] = {"Woven", "Knit", "Linen", "Denim", "Chiffon", "Jersey", "Cotton", "Satin"};
  return cat(it.g.print ? "Graphic" : texture[it.g.pattern], "_", fabric[rng.below(8)], "_", category);
}

std::string padded(const std::string& image) {  // the real files align their second column
  return image.size() < 48 ? image + std::string(48 - image.size(), ' ') : image + " ";
}

}  // namespace

SynthSummary synthesize_category(const SynthConfig& cfg) {
  namespace fs = std::filesystem;
  const auto t0 = std::chrono::steady_clock::now();
  const bool landmark = cfg.benchmark == "landmark";
  const int side = cfg.size ? cfg.size : 300;  // the real photos' long side
  SynthConfig sized = cfg;
  sized.size = side;
  const std::vector<NamedType> cats = parse_name_list(kCategoryClothList, "list_category_cloth.txt");
  const std::vector<NamedType> attrs = parse_name_list(kAttrClothList, "list_attr_cloth.txt");
  std::vector<int> visible_index;
  for (const VisibleRule& r : kVisible) {
    auto f = std::find_if(attrs.begin(), attrs.end(), [&](const NamedType& a) { return a.name == r.name; });
    FN_EXPECT(f != attrs.end(), "synth: attribute '", r.name, "' is not in list_attr_cloth.txt");
    visible_index.push_back(int(f - attrs.begin()));
  }

  std::vector<Item> items;
  for (int i = 0; i < cfg.items; ++i) items.push_back(make_garment(cfg.seed, i, cats, visible_index, (int)attrs.size()));
  // Category: products of the same description share a folder, as in the real img/ tree.
  std::vector<std::string> folder(cfg.items, "img");
  std::map<std::string, int> folder_group;  // folder -> group, numbered by first appearance
  std::vector<int> group(cfg.items);
  for (int i = 0; i < cfg.items; ++i) {
    Xoshiro256 name_rng(derive_seed(cfg.seed, 0x464f4c44u /* FOLD */, i));
    if (!landmark) folder[i] = "img/" + folder_name(items[i], cats[items[i].category].name, name_rng);
    group[i] = folder_group.emplace(landmark ? std::to_string(i) : folder[i], (int)folder_group.size()).first->second;
  }
  // Groups (a folder's products; Landmark: each product) are split, never photos, so no garment is both
  // trained on and tested. The real shares: Category 209,222 / 40,000 / 40,000 images, Landmark 83,033 /
  // 19,992 / 20,034.
  const int groups = (int)folder_group.size();
  const std::vector<int> group_split = landmark ? split_groups(cfg.seed, groups, 0.675, 0.1625)
                                                : split_groups(cfg.seed, groups, 0.72, 0.14);
  std::vector<int> split(cfg.items);
  for (int i = 0; i < cfg.items; ++i) split[i] = group_split[group[i]];

  std::vector<Photo> photos;
  std::map<std::string, int> folder_count;
  for (int i = 0; i < cfg.items; ++i) {
    fs::create_directories(cfg.out + "/" + folder[i]);
    for (int k = 0; k < cfg.views; ++k) {
      Photo p;
      p.item = i;
      p.stream = derive_seed(cfg.seed, 0x56494557u /* VIEW */, i, k);
      Xoshiro256 rng(p.stream ^ 0x1234567u);
      p.variation = pick_variation(landmark, rng);
      p.view = variation_view(p.variation, rng);
      std::tie(p.width, p.height) = photo_size(side, p.stream);
      char name[32];
      std::snprintf(name, sizeof name, "img_%08d.jpg", landmark ? (int)photos.size() + 1 : ++folder_count[folder[i]]);
      p.image = folder[i] + "/" + name;
      photos.push_back(std::move(p));
    }
  }
  draw_all(photos, items, sized);

  fs::create_directories(cfg.out + "/Anno");
  fs::create_directories(cfg.out + "/Eval");
  const std::string n = cat(photos.size());
  ListFile bbox(cfg.out + "/Anno/list_bbox.txt", false), lms(cfg.out + "/Anno/list_landmarks.txt", false);
  ListFile part(cfg.out + "/Eval/list_eval_partition.txt", false);
  bbox.line(n);
  bbox.line("image_name  x_1  y_1  x_2  y_2");
  lms.line(n);
  lms.line(landmark_columns());
  part.line(n);
  part.line("image_name  evaluation_status");
  static const char* status[3] = {"train", "val", "test"};
  for (const Photo& p : photos) {
    const Drawn& d = p.drawn;
    bbox.line(cat(padded(p.image), d.x1, " ", d.y1, " ", d.x2, " ", d.y2));
    lms.line(landmark_row(p, items[p.item].g.type));
    part.line(cat(padded(p.image), status[split[p.item]]));
  }
  bbox.save();
  lms.save();
  part.save();

  if (!landmark) {
    ListFile cloth(cfg.out + "/Anno/list_category_cloth.txt", false), attr_cloth(cfg.out + "/Anno/list_attr_cloth.txt", false);
    cloth.raw(kCategoryClothList);  // the official files, byte for byte
    attr_cloth.raw(kAttrClothList);
    cloth.save();
    attr_cloth.save();
    ListFile cat_img(cfg.out + "/Anno/list_category_img.txt", false), attr_img(cfg.out + "/Anno/list_attr_img.txt", false);
    cat_img.line(n);
    cat_img.line("image_name  category_label");
    attr_img.line(n);
    attr_img.line("image_name  attribute_labels");
    for (const Photo& p : photos) {
      const Item& it = items[p.item];
      cat_img.line(cat(padded(p.image), it.category + 1));
      std::string row = padded(p.image);
      for (size_t a = 0; a < it.attrs.size(); ++a) row += it.attrs[a] == 1 ? (a ? "  1" : " 1") : (a ? " -1" : "-1");
      attr_img.line(row);
    }
    cat_img.save();
    attr_img.save();
  }

  SynthSummary sum;
  sum.images = (int64_t)photos.size();
  sum.items = cfg.items;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace fn::data::synth
