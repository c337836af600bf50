// Annotation readers: the real DeepFashion files, small hand-written datasets in every benchmark's
// format, and one malformed line of every kind (each error must name the file and the line).
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "core/error.h"
#include "data/dataset.h"
#include "tests/support/annotation_fixtures.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace fn::data;

namespace {

const std::string kReal = std::string(FN_SOURCE_DIR) + "/../shared/deepfashion";

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir : fn::test::TempDir {
  explicit TempDir(const std::string& tag) : fn::test::TempDir("data_" + tag) {}
  std::string str() const { return path.string(); }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((path / rel).parent_path());
    std::ofstream(path / rel, std::ios::binary) << text;
  }
};

using fn::test::inshop_files;

void write_all(const TempDir& d, const std::map<std::string, std::string>& files) {
  for (const auto& [rel, text] : files) d.write(rel, text);
}

// Loads and returns the error message ("" when it loads).
std::string load_error(const std::string& root, const std::string& benchmark, bool require = true) {
  try {
    load_dataset(root, benchmark, require);
  } catch (const fn::Error& e) {
    return e.what();
  }
  return "";
}

std::string replace_line(std::string text, int line_no, const std::string& with) {
  size_t start = 0;
  for (int i = 1; i < line_no; ++i) start = text.find('\n', start) + 1;
  const size_t end = text.find('\n', start);
  return text.substr(0, start) + with + text.substr(end);
}

}  // namespace

TEST_CASE("real In-shop partition and item list load with the published counts") {
  if (!fs::exists(kReal + "/inshop/Eval/list_eval_partition.txt")) {
    std::printf("SKIPPED: %s not present\n", kReal.c_str());
    return;
  }
  LoadReport rep;
  const Dataset ds = load_dataset(kReal + "/inshop", "inshop", false, &rep);
  CHECK(rep.error_count == 0);
  CHECK(ds.samples.size() == 52712);
  CHECK(ds.item_ids.size() == 7982);
  CHECK(ds.indices(Split::Train).size() == 25882);
  CHECK(ds.indices(Split::Query).size() == 14218);
  CHECK(ds.indices(Split::Gallery).size() == 12612);
  CHECK(ds.category_names.size() == 23);
  CHECK(ds.attribute_names.size() == 463);
  CHECK(ds.attribute_names[0] == "lightweight");
  // bbox and landmarks are not in the copy: reported missing, as warnings only.
  int missing = 0;
  for (const auto& f : rep.files) missing += !f.present;
  CHECK(missing == 3);
  for (const auto& s : ds.samples) REQUIRE((s.item >= 0 && !s.has_bbox && !s.has_landmarks));
  const Sample& first = ds.samples[0];
  CHECK(first.item_id == "id_00000001");
  CHECK(ds.category_names[first.category] == "WOMEN/Blouses_Shirts");
  // With annotations required, the missing bbox file is an error naming it.
  const std::string err = load_error(kReal + "/inshop", "inshop", true);
  CHECK(err.find("Anno/list_bbox_inshop.txt: missing") != std::string::npos);
}

TEST_CASE("real Consumer-to-shop and Category name lists (BOM, CRLF, names with spaces)") {
  if (!fs::exists(kReal + "/consumer2shop/Anno/list_attr_cloth.txt")) {
    std::printf("SKIPPED: %s not present\n", kReal.c_str());
    return;
  }
  LoadReport rep;
  const Dataset c2s = load_dataset(kReal + "/consumer2shop", "consumer2shop", false, &rep);
  REQUIRE(c2s.attribute_names.size() == 303);
  CHECK(c2s.attribute_names[0] == "Regular length (51-65cm)");  // English name, spaces kept, CR dropped
  CHECK(c2s.attribute_types[0] == 1);
  CHECK(c2s.attribute_type_names.size() == 18);
  CHECK(c2s.item_ids.size() == 33881);
  CHECK(c2s.item_ids.back() == "id_00033886");
  CHECK(rep.error_count == 1);  // only the missing partition, which this copy lacks
  CHECK(rep.errors[0].find("Eval/list_eval_partition.txt: missing") != std::string::npos);

  LoadReport rep2;
  const Dataset cat = load_dataset(kReal + "/category_attribute", "category", false, &rep2);
  REQUIRE(cat.category_names.size() == 50);
  CHECK(cat.category_names[0] == "Anorak");
  CHECK(cat.category_types[0] == 1);
  REQUIRE(cat.attribute_names.size() == 1000);
  CHECK(cat.attribute_names[0] == "a-line");
  CHECK(cat.attribute_names[2] == "abstract chevron");
  int per_type[6] = {0, 0, 0, 0, 0, 0};
  for (int t : cat.attribute_types) per_type[t]++;
  CHECK(per_type[1] == 156);
  CHECK(per_type[2] == 218);
  CHECK(per_type[3] == 180);
  CHECK(per_type[4] == 216);
  CHECK(per_type[5] == 230);
}

TEST_CASE("ImageFolder reader on inshop_firstview") {
  const std::string root = kReal + "/inshop_firstview/train";
  if (!fs::exists(root)) {
    std::printf("SKIPPED: %s not present\n", root.c_str());
    return;
  }
  const Dataset ds = load_dataset(root, "imagefolder");
  CHECK(ds.samples.size() == 3978);
  REQUIRE(ds.category_names.size() == 23);
  CHECK(ds.category_names.front() == "MEN_Denim");
  CHECK(ds.category_names.back() == "WOMEN_Tees_Tanks");
  CHECK(ds.indices(Split::Train).size() == 3978);
  for (size_t i = 1; i < ds.samples.size(); ++i) REQUIRE(ds.samples[i - 1].category <= ds.samples[i].category);
  CHECK(ds.samples[0].image.rfind("MEN_Denim/id_", 0) == 0);
}

TEST_CASE("In-shop reader: samples, items, categories, bbox, attributes") {
  TempDir d("inshop");
  write_all(d, inshop_files());
  const Dataset ds = load_dataset(d.str(), "inshop");
  REQUIRE(ds.samples.size() == 4);
  CHECK(ds.item_ids == std::vector<std::string>{"id_00000001", "id_00000002", "id_00000003"});
  CHECK(ds.category_names == std::vector<std::string>{"MEN/Pants", "MEN/Tees_Tanks", "WOMEN/Dresses"});
  const Sample& s = ds.samples[2];
  CHECK(s.item == 1);
  CHECK(s.category == 0);
  CHECK(s.split == Split::Query);
  CHECK(s.clothes_type == 2);
  CHECK((s.has_bbox && s.x1 == 70 && s.y1 == 30 && s.x2 == 180 && s.y2 == 250));
  CHECK(ds.indices(Split::Train) == std::vector<int>{0, 1});
  // File values 1/-1/0 become 1/0/-1 (positive, negative, unknown), per item.
  CHECK(ds.samples[0].attributes == std::vector<int8_t>{1, 0, -1});
  CHECK(ds.samples[1].attributes == std::vector<int8_t>{1, 0, -1});
  CHECK(ds.samples[3].attributes == std::vector<int8_t>{-1, 1, 0});
  CHECK(ds.attribute_names[1] == "floral print");
}

TEST_CASE("landmarks go to the fixed slots by name, never compacted") {
  TempDir d("slots");
  write_all(d, inshop_files());
  const Dataset ds = load_dataset(d.str(), "inshop");
  // Full body: all 8 slots in file order; the cut-off left hem keeps code 2.
  const Landmarks& full = ds.samples[0].lm;
  CHECK(full.vis[kLSleeve] == kOccluded);
  CHECK(full.vis[kLHem] == kCutOff);
  CHECK((full.x[kRHem] == 180 && full.y[kRHem] == 230));
  CHECK((full.x[kLWaist] == 90 && full.y[kLWaist] == 120));
  // Lower body: 4 landmarks are waistline L/R then hem L/R -> slots 4,5,6,7; collar and sleeve absent.
  const Landmarks& lower = ds.samples[2].lm;
  for (int s : {kLCollar, kRCollar, kLSleeve, kRSleeve}) CHECK(lower.vis[s] == kAbsent);
  CHECK((lower.x[kLWaist] == 80 && lower.y[kLWaist] == 35 && lower.vis[kLWaist] == kVisible));
  CHECK((lower.x[kRWaist] == 170 && lower.vis[kRWaist] == kVisible));
  CHECK((lower.x[kLHem] == 90 && lower.y[kLHem] == 240 && lower.vis[kLHem] == kOccluded));
  CHECK((lower.x[kRHem] == 160 && lower.vis[kRHem] == kVisible));
  // Upper body: collar, sleeve, hem -> slots 0,1,2,3,6,7; waistline absent.
  const Landmarks& upper = ds.samples[3].lm;
  CHECK((upper.vis[kLWaist] == kAbsent && upper.vis[kRWaist] == kAbsent));
  CHECK((upper.x[kLSleeve] == 50 && upper.y[kLSleeve] == 90));
  CHECK(upper.vis[kRSleeve] == kCutOff);
  CHECK((upper.x[kLHem] == 60 && upper.y[kLHem] == 190 && upper.vis[kLHem] == kVisible));
  CHECK((upper.x[kRHem] == 200 && upper.vis[kRHem] == kVisible));
}

TEST_CASE("every kind of malformed line is an error naming the file and the line") {
  struct Case {
    const char* what;
    const char* file;
    int line;  // 1-based line to replace, 0: replace the whole file
    const char* text;
    const char* expect;  // substring of the error
  };
  const Case cases[] = {
      {"wrong count header", "Eval/list_eval_partition.txt", 1, "5", "Eval/list_eval_partition.txt:1: the header says 5 records but the file has 4"},
      {"count line not a number", "Anno/list_item_inshop.txt", 1, "three", "Anno/list_item_inshop.txt:1: expected the record count"},
      {"missing column", "Anno/list_bbox_inshop.txt", 4, "img/WOMEN/Dresses/id_00000001/01_2_side.jpg 3 2 60 20 190",
       "Anno/list_bbox_inshop.txt:4: expected 7 columns, found 6"},
      {"extra column", "Eval/list_eval_partition.txt", 3, "img/WOMEN/Dresses/id_00000001/01_1_front.jpg id_00000001 train x",
       "Eval/list_eval_partition.txt:3: expected 3 columns, found 4"},
      {"bad visibility", "Anno/list_landmarks_inshop.txt", 5, "img/MEN/Pants/id_00000002/01_1_front.jpg 2 1 0 80 35 3 170 35 1 90 240 0 160 240",
       "Anno/list_landmarks_inshop.txt:5: visibility 3 is out of range [0, 2]"},
      {"landmark count wrong for the clothes type", "Anno/list_landmarks_inshop.txt", 5,
       "img/MEN/Pants/id_00000002/01_1_front.jpg 2 1 0 80 35 0 170 35 1 90 240",
       "Anno/list_landmarks_inshop.txt:5: expected 15 columns for clothes_type 2"},
      {"unknown status", "Eval/list_eval_partition.txt", 5, "img/MEN/Pants/id_00000002/01_1_front.jpg id_00000002 testing",
       "Eval/list_eval_partition.txt:5: unknown evaluation status 'testing'"},
      {"empty bbox", "Anno/list_bbox_inshop.txt", 5, "img/MEN/Pants/id_00000002/01_1_front.jpg 2 1 70 30 70 250",
       "Anno/list_bbox_inshop.txt:5: bbox (70, 30, 70, 250) is empty"},
      {"non-number", "Anno/list_bbox_inshop.txt", 6, "img/MEN/Tees_Tanks/id_00000003/01_1_front.jpg 1 1 40 4O 210 200",
       "Anno/list_bbox_inshop.txt:6: y1 '4O' is not an integer"},
      {"non-number landmark", "Anno/list_landmarks_inshop.txt", 5,
       "img/MEN/Pants/id_00000002/01_1_front.jpg 2 1 0 80 35 0 1x0 35 1 90 240 0 160 240", "Anno/list_landmarks_inshop.txt:5: landmark x '1x0'"},
      {"clothes type out of range", "Anno/list_bbox_inshop.txt", 3, "img/WOMEN/Dresses/id_00000001/01_1_front.jpg 4 1 50 20 200 240",
       "Anno/list_bbox_inshop.txt:3: clothes_type 4 is out of range [1, 3]"},
      {"clothes type disagrees between files", "Anno/list_landmarks_inshop.txt", 6,
       "img/MEN/Tees_Tanks/id_00000003/01_1_front.jpg 2 1 0 80 35 0 170 35 1 90 240 0 160 240",
       "Anno/list_landmarks_inshop.txt:6: clothes_type 2 differs"},
      {"image listed twice", "Eval/list_eval_partition.txt", 4, "img/WOMEN/Dresses/id_00000001/01_1_front.jpg id_00000001 train",
       "Eval/list_eval_partition.txt:4: image 'img/WOMEN/Dresses/id_00000001/01_1_front.jpg' is listed twice"},
      {"item id differs from the path", "Eval/list_eval_partition.txt", 5, "img/MEN/Pants/id_00000002/01_1_front.jpg id_00000003 query",
       "Eval/list_eval_partition.txt:5: item id 'id_00000003' differs"},
      {"attribute value out of range", "Anno/list_attr_items.txt", 4, "id_00000002 -1 2 1",
       "Anno/list_attr_items.txt:4: attribute value 2 is out of range [-1, 1]"},
      {"negative landmark", "Anno/list_landmarks_inshop.txt", 5,
       "img/MEN/Pants/id_00000002/01_1_front.jpg 2 1 0 -80 35 0 170 35 1 90 240 0 160 240",
       "Anno/list_landmarks_inshop.txt:5: L waistline landmark (-80, 35) is negative"},
      {"image unknown to the item list", "Anno/list_item_inshop.txt", 0, "2\nid_00000001\nid_00000002\n",
       "Eval/list_eval_partition.txt: 1 images name items missing from Anno/list_item_inshop.txt"},
  };
  for (const Case& c : cases) {
    SECTION(c.what) {
      TempDir d("bad");
      auto files = inshop_files();
      files[c.file] = c.line ? replace_line(files[c.file], c.line, c.text) : std::string(c.text);
      write_all(d, files);
      const std::string err = load_error(d.str(), "inshop");
      INFO(c.what << "\n  error: " << err);
      CHECK(err.find(c.expect) != std::string::npos);
    }
  }
}

TEST_CASE("missing optional files: a warning when not required, an error when required") {
  TempDir d("optional");
  auto files = inshop_files();
  files.erase("Anno/list_bbox_inshop.txt");
  files.erase("Anno/list_landmarks_inshop.txt");
  write_all(d, files);
  CHECK(load_error(d.str(), "inshop", true).find("Anno/list_bbox_inshop.txt: missing") != std::string::npos);
  LoadReport rep;
  const Dataset ds = load_dataset(d.str(), "inshop", false, &rep);
  CHECK(rep.error_count == 0);
  CHECK(rep.warning_count == 2);
  REQUIRE(ds.samples.size() == 4);
  for (const auto& s : ds.samples) CHECK((!s.has_bbox && !s.has_landmarks && s.clothes_type == 0));
  // The partition is required whatever require_annotations says.
  fs::remove(d.path / "Eval/list_eval_partition.txt");
  CHECK(load_error(d.str(), "inshop", false).find("Eval/list_eval_partition.txt: missing (required file)") != std::string::npos);
}

TEST_CASE("a report collects every problem instead of stopping at the first") {
  TempDir d("many");
  auto files = inshop_files();
  files["Anno/list_bbox_inshop.txt"] = replace_line(replace_line(files["Anno/list_bbox_inshop.txt"], 3, "a 1 1 x 0 1 1"), 5,
                                                    "img/MEN/Pants/id_00000002/01_1_front.jpg 2 9 70 30 180 250");
  write_all(d, files);
  LoadReport rep;
  load_dataset(d.str(), "inshop", true, &rep);
  REQUIRE(rep.error_count == 3);  // two bad lines, and the two images they fail to annotate (one error)
  CHECK(rep.errors[0].find("Anno/list_bbox_inshop.txt:3: x1 'x' is not an integer") != std::string::npos);
  CHECK(rep.errors[1].find("Anno/list_bbox_inshop.txt:5: pose_type 9 is out of range") != std::string::npos);
  CHECK(rep.errors[2].find("2 images of the dataset have no record") != std::string::npos);
}

TEST_CASE("Consumer-to-shop reader: pairs to samples, BOM and CRLF, source and status") {
  TempDir d("c2s");
  auto crlf = [](std::string s) {
    std::string out = "\xEF\xBB\xBF";
    for (char c : s) out += c == '\n' ? std::string("\r\n") : std::string(1, c);
    return out;
  };
  const std::string a = "img/TOPS/T_Shirt/id_00000001/", b = "img/TROUSERS/Pants/id_00000002/";
  d.write("Eval/list_eval_partition.txt",
          crlf("4\nimage_pair_name_1 image_pair_name_2 item_id evaluation_status\n" + a + "comsumer_01.jpg " + a +
               "shop_01.jpg id_00000001 test\n" + a + "comsumer_02.jpg " + a + "shop_01.jpg id_00000001 test\n" + b +
               "comsumer_01.jpg " + b + "shop_01.jpg id_00000002 train\n" + b + "comsumer_01.jpg " + b +
               "shop_02.jpg id_00000002 train\n"));
  d.write("Anno/list_item_consumer2shop.txt", crlf("2\nid_00000001\nid_00000002\n"));
  d.write("Anno/list_bbox_consumer2shop.txt",
          crlf("6\nimage_name clothes_type source_type x_1 y_1 x_2 y_2\n" + a + "comsumer_01.jpg 1 2 1 2 100 200\n" + a +
               "shop_01.jpg 1 1 1 2 100 200\n" + a + "comsumer_02.jpg 1 2 1 2 100 200\n" + b + "comsumer_01.jpg 2 2 1 2 100 200\n" +
               b + "shop_01.jpg 2 1 1 2 100 200\n" + b + "shop_02.jpg 2 1 1 2 100 200\n"));
  d.write("Anno/list_attr_cloth.txt", crlf("2\nattribute_name (Chinese) attribute_name (English) attribute_type\n"
                                           "条纹   striped pattern   1\n长袖   long sleeve   2\n"));
  d.write("Anno/list_attr_items.txt", crlf("2\nitem_id attribute_labels\nid_00000001 1 -1\nid_00000002 -1 0\n"));
  LoadReport rep;
  const Dataset ds = load_dataset(d.str(), "consumer2shop", false, &rep);
  INFO((rep.errors.empty() ? "" : rep.errors[0]));
  CHECK(rep.error_count == 0);
  REQUIRE(ds.samples.size() == 6);
  CHECK(ds.samples[0].image == a + "comsumer_01.jpg");
  CHECK((ds.samples[0].source == 2 && ds.samples[0].split == Split::Query));
  CHECK((ds.samples[1].source == 1 && ds.samples[1].split == Split::Gallery));
  CHECK((ds.samples[4].source == 1 && ds.samples[4].split == Split::Train && ds.samples[4].clothes_type == 2));
  CHECK(ds.attribute_names == std::vector<std::string>{"striped pattern", "long sleeve"});
  CHECK(ds.samples[5].attributes == std::vector<int8_t>{0, -1});
  CHECK(ds.category_names == std::vector<std::string>{"TOPS/T_Shirt", "TROUSERS/Pants"});

  SECTION("a source type that contradicts the partition") {
    d.write("Anno/list_bbox_consumer2shop.txt",
            crlf("1\nimage_name clothes_type source_type x_1 y_1 x_2 y_2\n" + a + "shop_01.jpg 1 2 1 2 100 200\n"));
    LoadReport r;
    load_dataset(d.str(), "consumer2shop", false, &r);
    REQUIRE(r.error_count >= 1);
    CHECK(r.errors[0].find("Anno/list_bbox_consumer2shop.txt:3: source_type 2") != std::string::npos);
  }
  SECTION("an unknown status") {
    d.write("Eval/list_eval_partition.txt",
            crlf("1\nimage_pair_name_1 image_pair_name_2 item_id evaluation_status\n" + a + "comsumer_01.jpg " + a +
                 "shop_01.jpg id_00000001 gallery\n"));
    CHECK(load_error(d.str(), "consumer2shop", false).find("Eval/list_eval_partition.txt:3: unknown evaluation status 'gallery'") !=
          std::string::npos);
  }
}

TEST_CASE("Category and Landmark benchmark readers") {
  TempDir d("category");
  fn::test::write_files(d.path, fn::test::category_files());
  const Dataset ds = load_dataset(d.str(), "category");
  REQUIRE(ds.samples.size() == 3);
  CHECK((ds.samples[1].category == 1 && ds.samples[1].clothes_type == 2 && ds.samples[1].split == Split::Val));
  CHECK((ds.samples[1].lm.vis[kLWaist] == kVisible && ds.samples[1].lm.x[kRHem] == 22 && ds.samples[1].lm.vis[kLCollar] == kAbsent));
  CHECK(ds.samples[2].attributes == std::vector<int8_t>{-1, 1});
  CHECK(ds.attribute_names[1] == "abstract chevron");
  CHECK(ds.attribute_types == std::vector<int>{3, 1});

  SECTION("label out of range") {
    d.write("Anno/list_category_img.txt", "1\nimage_name  category_label\nimg/A/img_1.jpg  4\n");
    CHECK(load_error(d.str(), "category").find("Anno/list_category_img.txt:3: category_label 4 is out of range [1, 3]") != std::string::npos);
  }
  SECTION("a category list with no records") {
    d.write("Anno/list_category_cloth.txt", "0\ncategory_name  category_type\n");
    CHECK(load_error(d.str(), "category").find("Anno/list_category_cloth.txt: lists no categories") != std::string::npos);
  }
  SECTION("padding that is not zero") {
    d.write("Anno/list_landmarks.txt",
            "1\nimage_name clothes_type variation_type\nimg/B/img_2.jpg 2 1 0 10 10 0 20 10 0 8 30 0 22 30 0 0 0 0 0 0 0 0 0 0 5 0\n");
    CHECK(load_error(d.str(), "category").find("Anno/list_landmarks.txt:3: clothes_type 2 has 4 landmarks but column 26 is not 0") !=
          std::string::npos);
  }
  SECTION("the Landmark benchmark: partition, landmarks, bbox") {
    TempDir l("landmark");
    fn::test::write_files(l.path, fn::test::landmark_files());
    const Dataset lm = load_dataset(l.str(), "landmark");
    REQUIRE(lm.samples.size() == 2);
    CHECK((lm.samples[0].clothes_type == 2 && lm.samples[0].lm.vis[kLHem] == kCutOff && lm.samples[0].lm.vis[kRHem] == kOccluded));
    CHECK((lm.samples[1].split == Split::Test && lm.samples[1].has_bbox));
  }
}

TEST_CASE("Category and Landmark files: every malformed kind is an error naming the file and the line") {
  struct Case {
    const char* what;
    const char* benchmark;
    const char* file;
    int line;  // 1-based line to replace
    const char* text;
    const char* expect;  // substring of the error
  };
  const Case cases[] = {
      {"too few attribute values", "category", "Anno/list_attr_img.txt", 4, "img/B/img_2.jpg -1",
       "Anno/list_attr_img.txt:4: expected 3 columns, found 2"},
      {"too many attribute values", "category", "Anno/list_attr_img.txt", 5, "img/C/img_3.jpg 0 1 1",
       "Anno/list_attr_img.txt:5: expected 3 columns, found 4"},
      {"attribute value out of range", "category", "Anno/list_attr_img.txt", 3, "img/A/img_1.jpg 1 2",
       "Anno/list_attr_img.txt:3: attribute value 2 is out of range [-1, 1]"},
      {"attribute type out of range", "category", "Anno/list_attr_cloth.txt", 4, "abstract chevron   6",
       "Anno/list_attr_cloth.txt:4: attribute_type 6 is out of range [1, 5]"},
      {"category label above the list", "category", "Anno/list_category_img.txt", 4, "img/B/img_2.jpg  51",
       "Anno/list_category_img.txt:4: category_label 51 is out of range [1, 3]"},
      {"category label 0", "category", "Anno/list_category_img.txt", 3, "img/A/img_1.jpg  0",
       "Anno/list_category_img.txt:3: category_label 0 is out of range [1, 3]"},
      {"category type out of range", "category", "Anno/list_category_cloth.txt", 4, "Jeans  4",
       "Anno/list_category_cloth.txt:4: category_type 4 is out of range [1, 3]"},
      {"visibility code 3", "category", "Anno/list_landmarks.txt", 3,
       "img/A/img_1.jpg 1 1 0 10 10 3 20 10 0 5 20 0 25 20 0 8 30 0 22 30",
       "Anno/list_landmarks.txt:3: visibility 3 is out of range [0, 2]"},
      {"visibility code -1", "category", "Anno/list_landmarks.txt", 3,
       "img/A/img_1.jpg 1 1 -1 10 10 0 20 10 0 5 20 0 25 20 0 8 30 0 22 30",
       "Anno/list_landmarks.txt:3: visibility -1 is out of range [0, 2]"},
      {"unknown variation type", "category", "Anno/list_landmarks.txt", 3,
       "img/A/img_1.jpg 1 6 0 10 10 0 20 10 0 5 20 0 25 20 0 8 30 0 22 30",
       "Anno/list_landmarks.txt:3: variation_type 6 is out of range [1, 5]"},
      {"landmark clothes type other than the category's", "category", "Anno/list_landmarks.txt", 4,
       "img/B/img_2.jpg 1 1 0 10 10 0 20 10 0 5 20 0 25 20 0 8 30 0 22 30",
       "Anno/list_landmarks.txt:4: clothes_type 1 differs from the one already known for the image (2)"},
      {"status of another benchmark", "category", "Eval/list_eval_partition.txt", 3, "img/A/img_1.jpg query",
       "Eval/list_eval_partition.txt:3: unknown evaluation status 'query' (train, val, test)"},
      {"bbox with a missing corner", "category", "Anno/list_bbox.txt", 5, "img/C/img_3.jpg 1 2 30",
       "Anno/list_bbox.txt:5: expected 5 columns, found 4"},
      {"Landmark: visibility code 5", "landmark", "Anno/list_landmarks.txt", 3, "img/img_00000001.jpg 2 1 0 10 10 0 20 10 5 0 0 1 22 30",
       "Anno/list_landmarks.txt:3: visibility 5 is out of range [0, 2]"},
      {"Landmark: unknown variation type", "landmark", "Anno/list_landmarks.txt", 4,
       "img/img_00000002.jpg 1 0 0 10 10 0 20 10 0 5 20 0 25 20 0 8 30 0 22 30",
       "Anno/list_landmarks.txt:4: variation_type 0 is out of range [1, 5]"},
      {"Landmark: status gallery", "landmark", "Eval/list_eval_partition.txt", 4, "img/img_00000002.jpg gallery",
       "Eval/list_eval_partition.txt:4: unknown evaluation status 'gallery' (train, val, test)"},
      {"Landmark: status in upper case", "landmark", "Eval/list_eval_partition.txt", 3, "img/img_00000001.jpg Train",
       "Eval/list_eval_partition.txt:3: unknown evaluation status 'Train' (train, val, test)"},
      {"Landmark: clothes type out of range", "landmark", "Anno/list_landmarks.txt", 3,
       "img/img_00000001.jpg 4 1 0 10 10 0 20 10 2 0 0 1 22 30", "Anno/list_landmarks.txt:3: clothes_type 4 is out of range [1, 3]"},
  };
  for (const Case& c : cases) {
    SECTION(c.what) {
      TempDir d("bad_category");
      auto files = std::string(c.benchmark) == "category" ? fn::test::category_files() : fn::test::landmark_files();
      REQUIRE(files.count(c.file));
      files[c.file] = replace_line(files[c.file], c.line, c.text);
      write_all(d, files);
      const std::string err = load_error(d.str(), c.benchmark);
      INFO(c.what << "\n  error: " << err);
      CHECK(err.find(c.expect) != std::string::npos);
    }
  }
}

TEST_CASE("the shipped Category name lists (data/names) read as the real ones: 50 categories, 1,000 attributes") {
  // The copies synth compiles in; equal to shared/'s where that is present.
  const std::string names = std::string(FN_SOURCE_DIR) + "/data/names";
  for (const char* f : {"list_category_cloth.txt", "list_attr_cloth.txt"})
    if (fs::exists(kReal + "/category_attribute/Anno/" + f)) {
      std::ifstream a(names + "/" + f, std::ios::binary), b(kReal + "/category_attribute/Anno/" + f, std::ios::binary);
      const std::string ta((std::istreambuf_iterator<char>(a)), {}), tb((std::istreambuf_iterator<char>(b)), {});
      INFO(f);
      CHECK(ta == tb);
    } else {
      std::printf("NOTE: %s/category_attribute not present, the shipped %s is not compared with it\n", kReal.c_str(), f);
    }
  TempDir d("names");
  auto files = fn::test::category_files();
  files.erase("Anno/list_attr_img.txt");  // 2 values per image, not 1,000
  // Labels of the real list with the fixture's clothes types: Anorak (upper), Capris (lower), Caftan (full).
  files["Anno/list_category_img.txt"] =
      "3\nimage_name  category_label\nimg/A/img_1.jpg  1\nimg/B/img_2.jpg  21\nimg/C/img_3.jpg  37\n";
  write_all(d, files);
  fs::copy_file(names + "/list_category_cloth.txt", d.path / "Anno/list_category_cloth.txt", fs::copy_options::overwrite_existing);
  fs::copy_file(names + "/list_attr_cloth.txt", d.path / "Anno/list_attr_cloth.txt", fs::copy_options::overwrite_existing);
  LoadReport rep;
  const Dataset ds = load_dataset(d.str(), "category", false, &rep);
  INFO((rep.errors.empty() ? std::string() : rep.errors[0]));
  CHECK(rep.error_count == 0);
  REQUIRE(ds.category_names.size() == 50);
  CHECK(ds.category_names[49] == "Sundress");
  CHECK(ds.category_types[49] == 3);
  REQUIRE(ds.attribute_names.size() == 1000);
  CHECK(ds.attribute_names[706] == "pinstripe");  // file line 709, with trailing spaces
  CHECK(ds.attribute_names[999] == "zippered");
  int per_type[6] = {0, 0, 0, 0, 0, 0};
  for (int t : ds.attribute_types) per_type[t]++;
  CHECK((per_type[1] == 156 && per_type[2] == 218 && per_type[3] == 180 && per_type[4] == 216 && per_type[5] == 230));
  REQUIRE(ds.samples.size() == 3);
  CHECK((ds.category_names[ds.samples[1].category] == "Capris" && ds.samples[1].clothes_type == 2));
  CHECK((ds.category_names[ds.samples[2].category] == "Caftan" && ds.samples[2].clothes_type == 3));
}
