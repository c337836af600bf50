// The real Category and Attribute Prediction name lists, compiled in (data/names/README.md): the official
// files' text, and their parsed names and types.
#pragma once
#include <string>
#include <vector>

namespace fn::data::synth {

extern const char* const kCategoryClothList;  // Anno/list_category_cloth.txt, byte for byte
extern const char* const kAttrClothList;      // Anno/list_attr_cloth.txt, byte for byte

struct NamedType {
  std::string name;  // words joined by one space
  int type;          // the last column
};
// The records of a list file's text ("<count>\n<columns>\n<name words...> <type>\n..."); checks the count.
std::vector<NamedType> parse_name_list(const char* text, const char* what);

}  // namespace fn::data::synth
