// One reader per benchmark layout (internal to data/; the public entry point is load_dataset).
#pragma once
#include "data/annotations_common.h"

namespace fn::data {
void read_inshop(Dataset& ds, LoadContext& ctx);         // annotations_inshop.cpp
void read_consumer2shop(Dataset& ds, LoadContext& ctx);  // annotations_consumer2shop.cpp
void read_category(Dataset& ds, LoadContext& ctx);       // annotations_category.cpp
void read_landmark(Dataset& ds, LoadContext& ctx);       // annotations_category.cpp (same file family)
void read_imagefolder(Dataset& ds, LoadContext& ctx);    // imagefolder.cpp
}  // namespace fn::data
