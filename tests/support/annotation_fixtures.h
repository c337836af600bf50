// Small valid datasets in the exact annotation layout of each DeepFashion benchmark, as {relative path:
// text}. Shared by the reader tests (which break one line at a time) and the bad-input fuzz test (which
// mutates them at random). No images: the readers never open them.
#pragma once
#include <map>
#include <string>

#include "tests/support/temp_dir.h"

namespace fn::test {

using FileSet = std::map<std::string, std::string>;

// In-shop: 4 images of 3 items, one of each clothes type.
inline FileSet inshop_files() {
  return {
      {"Eval/list_eval_partition.txt",
       "4\nimage_name item_id evaluation_status\n"
       "img/WOMEN/Dresses/id_00000001/01_1_front.jpg id_00000001 train\n"
       "img/WOMEN/Dresses/id_00000001/01_2_side.jpg id_00000001 train\n"
       "img/MEN/Pants/id_00000002/01_1_front.jpg id_00000002 query\n"
       "img/MEN/Tees_Tanks/id_00000003/01_1_front.jpg id_00000003 gallery\n"},
      {"Anno/list_item_inshop.txt", "3\nid_00000001\nid_00000002\nid_00000003\n"},
      {"Anno/list_bbox_inshop.txt",
       "4\nimage_name clothes_type pose_type x_1 y_1 x_2 y_2\n"
       "img/WOMEN/Dresses/id_00000001/01_1_front.jpg 3 1 50 20 200 240\n"
       "img/WOMEN/Dresses/id_00000001/01_2_side.jpg 3 2 60 20 190 240\n"
       "img/MEN/Pants/id_00000002/01_1_front.jpg 2 1 70 30 180 250\n"
       "img/MEN/Tees_Tanks/id_00000003/01_1_front.jpg 1 1 40 40 210 200\n"},
      {"Anno/list_landmarks_inshop.txt",
       "4\nimage_name clothes_type variation_type landmark_visibility_1 landmark_location_x_1 landmark_location_y_1\n"
       "img/WOMEN/Dresses/id_00000001/01_1_front.jpg 3 1 0 100 30 0 150 30 1 60 80 0 190 80 0 90 120 0 160 120 2 0 0 0 180 230\n"
       "img/WOMEN/Dresses/id_00000001/01_2_side.jpg 3 2 0 100 30 0 150 30 0 60 80 0 190 80 0 90 120 0 160 120 0 70 230 0 180 230\n"
       "img/MEN/Pants/id_00000002/01_1_front.jpg 2 1 0 80 35 0 170 35 1 90 240 0 160 240\n"
       "img/MEN/Tees_Tanks/id_00000003/01_1_front.jpg 1 1 0 100 45 0 150 45 0 50 90 2 0 0 0 60 190 0 200 190\n"},
      {"Anno/list_attr_cloth.txt", "3\nattribute_name\nlightweight\nfloral print\nknit\n"},
      {"Anno/list_attr_items.txt", "3\nitem_id attribute_labels\nid_00000001 1 -1 0\nid_00000002 -1 -1 1\nid_00000003 0 1 -1\n"},
  };
}

// Category and Attribute Prediction: 3 images, one per clothes type (list_landmarks.txt pads to 8 triples).
inline FileSet category_files() {
  return {
      {"Anno/list_category_cloth.txt", "3\ncategory_name  category_type\nAnorak  1\nJeans  2\nDress  3\n"},
      {"Anno/list_category_img.txt",
       "3\nimage_name  category_label\nimg/A/img_1.jpg  1\nimg/B/img_2.jpg  2\nimg/C/img_3.jpg  3\n"},
      {"Eval/list_eval_partition.txt",
       "3\nimage_name  evaluation_status\nimg/A/img_1.jpg train\nimg/B/img_2.jpg val\nimg/C/img_3.jpg test\n"},
      {"Anno/list_bbox.txt",
       "3\nimage_name  x_1  y_1  x_2  y_2\nimg/A/img_1.jpg 1 2 30 40\nimg/B/img_2.jpg 1 2 30 40\nimg/C/img_3.jpg 1 2 30 40\n"},
      {"Anno/list_landmarks.txt",
       "3\nimage_name clothes_type variation_type\n"
       "img/A/img_1.jpg 1 1 0 10 10 0 20 10 0 5 20 0 25 20 0 8 30 0 22 30\n"
       "img/B/img_2.jpg 2 1 0 10 10 0 20 10 0 8 30 0 22 30 0 0 0 0 0 0 0 0 0 0 0 0\n"
       "img/C/img_3.jpg 3 2 0 10 10 0 20 10 0 5 20 0 25 20 0 8 25 0 22 25 0 8 30 0 22 30\n"},
      {"Anno/list_attr_cloth.txt", "2\nattribute_name  attribute_type\na-line   3\nabstract chevron   1\n"},
      {"Anno/list_attr_img.txt",
       "3\nimage_name  attribute_labels\nimg/A/img_1.jpg 1 -1\nimg/B/img_2.jpg -1 -1\nimg/C/img_3.jpg 0 1\n"},
  };
}

// Fashion Landmark Detection: 2 images.
inline FileSet landmark_files() {
  return {
      {"Eval/list_eval_partition.txt",
       "2\nimage_name evaluation_status\nimg/img_00000001.jpg train\nimg/img_00000002.jpg test\n"},
      {"Anno/list_landmarks.txt",
       "2\nimage_name clothes_type variation_type\n"
       "img/img_00000001.jpg 2 1 0 10 10 0 20 10 2 0 0 1 22 30\n"
       "img/img_00000002.jpg 1 3 0 10 10 0 20 10 0 5 20 0 25 20 0 8 30 0 22 30\n"},
      {"Anno/list_bbox.txt", "2\nimage_name x_1 y_1 x_2 y_2\nimg/img_00000001.jpg 1 1 50 50\nimg/img_00000002.jpg 1 1 50 50\n"},
  };
}

// Writes every file of `files` under `root` (folders made as needed).
inline void write_files(const std::filesystem::path& root, const FileSet& files) {
  for (const auto& [rel, text] : files) {
    std::filesystem::create_directories((root / rel).parent_path());
    write_bytes(root / rel, text);
  }
}

}  // namespace fn::test
