// Embedding files (format: embedding_io.h).
#include "fashionnet/eval/embedding_io.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/npy.h"

namespace fn::fashionnet {
namespace {

bool has_space(const std::string& s) {
  for (char c : s)
    if (std::isspace(static_cast<unsigned char>(c))) return true;
  return false;
}

}  // namespace

std::vector<IdsLine> read_ids_file(const std::string& path) {
  errno = 0;
  std::ifstream f(path);
  const int err = errno;
  FN_EXPECT(f.good(), path, ": cannot open the ids file for reading",
            err ? cat(": ", std::strerror(err)) : std::string());
  std::vector<IdsLine> out;
  std::string line;
  int64_t n = 0;
  int64_t blank_line = 0;  // the first blank line seen
  while (std::getline(f, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream is(line);
    IdsLine e;
    std::string extra;
    if (!(is >> e.image_path)) {  // a blank line: allowed only at the end of the file
      if (blank_line == 0) blank_line = n;
      continue;
    }
    FN_EXPECT(blank_line == 0, path, ": line ", blank_line, " is empty (expected \"image_path item_id\"; only the "
              "last lines may be blank)");
    FN_EXPECT(bool(is >> e.item_id), path, ": line ", n, " has no item id (expected \"image_path item_id\"): \"",
              line, "\"");
    FN_EXPECT(!(is >> extra), path, ": line ", n, " has more than two fields (expected \"image_path item_id\"; "
              "paths and ids cannot contain white space): \"", line, "\"");
    out.push_back(std::move(e));
  }
  return out;
}

Embeddings read_embeddings(const std::string& prefix) {
  const std::string npy = prefix + ".npy", ids = prefix + ".ids.txt";
  Embeddings e;
  e.features = npy::read_f32(npy);
  std::vector<IdsLine> lines = read_ids_file(ids);
  FN_EXPECT(int64_t(lines.size()) == e.rows(), npy, " has ", e.rows(), " rows but ", ids, " has ", lines.size(),
            " lines: the two files must describe the same images in the same order (were they written together?)");
  const float* p = e.features.f32();
  const int64_t d = e.dim();
  for (int64_t i = 0; i < e.features.numel(); ++i)
    FN_EXPECT(std::isfinite(p[i]), npy, ": row ", i / d, " (", lines[size_t(i / d)].image_path, ") column ", i % d,
              " is ", p[i], ": embeddings must be finite numbers (NaN and Inf are refused)");
  for (auto& l : lines) {
    e.image_paths.push_back(std::move(l.image_path));
    e.item_ids.push_back(std::move(l.item_id));
  }
  const std::string root_file = prefix + ".root.txt";
  std::ifstream rf(root_file);
  if (rf.good()) {  // optional: absent in sets from older versions and other tools
    std::getline(rf, e.root);
    if (!e.root.empty() && e.root.back() == '\r') e.root.pop_back();
    FN_EXPECT(!e.root.empty(), root_file, ": the first line should be the folder the image paths of ", ids,
              " are relative to, but it is empty (delete the file if that folder is unknown)");
  }
  return e;
}

void write_embeddings(const std::string& prefix, const Embeddings& e) {
  const std::string ids = prefix + ".ids.txt";
  FN_CHECK(e.features.ndim() == 2, prefix, ".npy: embeddings must be 2-D, got ", e.features.describe());
  FN_CHECK(int64_t(e.image_paths.size()) == e.rows() && int64_t(e.item_ids.size()) == e.rows(), ids, ": ",
           e.image_paths.size(), " image paths and ", e.item_ids.size(), " item ids for ", e.rows(), " embeddings");
  for (size_t i = 0; i < e.item_ids.size(); ++i) {
    const std::string &p = e.image_paths[i], &id = e.item_ids[i];
    FN_EXPECT(!p.empty() && !id.empty() && !has_space(p) && !has_space(id), ids, ": row ", i, ": image path \"", p,
              "\" and item id \"", id, "\" must be non-empty and free of white space (the ids file separates them "
              "with white space); rename the file or the item");
  }
  npy::write_f32(prefix + ".npy", e.features);
  errno = 0;
  std::ofstream f(ids, std::ios::trunc);
  const int err = errno;
  FN_EXPECT(f.good(), ids, ": cannot open for writing", err ? cat(": ", std::strerror(err)) : std::string());
  for (size_t i = 0; i < e.item_ids.size(); ++i) f << e.image_paths[i] << ' ' << e.item_ids[i] << '\n';
  f.close();
  FN_EXPECT(f.good(), ids, ": could not write the ids file (is the disk full?)");
  const std::string root_file = prefix + ".root.txt";
  if (e.root.empty()) {
    std::error_code ec;
    std::filesystem::remove(root_file, ec);  // a stale one would send search to another folder
    return;
  }
  FN_EXPECT(e.root.find('\n') == std::string::npos, root_file, ": the image root \"", e.root,
            "\" contains a line break; move the dataset to a folder whose name has none");
  std::ofstream rf(root_file, std::ios::trunc);
  rf << e.root << '\n';
  rf.close();
  FN_EXPECT(rf.good(), root_file, ": could not write the image root (is the disk full?)");
}

}  // namespace fn::fashionnet
