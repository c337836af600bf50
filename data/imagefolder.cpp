// ImageFolder layout, as torchvision reads it: root/<class>/<image>. Classes are the sorted folder names;
// the split comes from the root's own name (train, val, test), and an image's item id is its file stem
// (inshop_firstview names each photo after its item).
#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "data/image_io.h"
#include "data/readers.h"

namespace fn::data {

void read_imagefolder(Dataset& ds, LoadContext& ctx) {
  namespace fs = std::filesystem;
  const std::string base = fs::path(ctx.root).lexically_normal().filename().string().empty()
                               ? fs::path(ctx.root).lexically_normal().parent_path().filename().string()
                               : fs::path(ctx.root).lexically_normal().filename().string();
  const Split split = base == "train" ? Split::Train : base == "val" ? Split::Val : base == "test" ? Split::Test : Split::Unknown;

  std::error_code ec, entry_ec;  // entry_ec: an entry whose type cannot be read (a broken link) is skipped
  for (const auto& e : fs::directory_iterator(ctx.root, ec))
    if (e.is_directory(entry_ec)) ds.category_names.push_back(e.path().filename().string());
  std::sort(ds.category_names.begin(), ds.category_names.end());
  if (ec) ctx.report.error(cat(ctx.root, ": cannot list the folder (", ec.message(), ")"));
  else if (ds.category_names.empty()) ctx.report.error(cat(ctx.root, ": no class folders (expected root/<class>/<image>)"));

  std::unordered_map<std::string, int> items;
  for (size_t c = 0; c < ds.category_names.size(); ++c) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(fs::path(ctx.root) / ds.category_names[c], ec))
      if (e.is_regular_file(entry_ec) && is_image_file_name(e.path().string()))
        files.push_back(e.path().filename().string());
    if (ec) {
      ctx.report.error(cat(ds.category_names[c], "/: cannot list the folder (", ec.message(), ")"));
      ec.clear();
    } else if (files.empty()) {
      ctx.report.warning(cat(ds.category_names[c], "/: no images"));
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      Sample s;
      s.image = ds.category_names[c] + "/" + f;
      s.category = (int)c;
      s.split = split;
      s.item_id = fs::path(f).stem().string();
      s.item = intern(items, ds.item_ids, s.item_id);
      ds.samples.push_back(std::move(s));
    }
  }
}

}  // namespace fn::data
