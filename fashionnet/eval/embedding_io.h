// Embedding files: the hand-off between `fashionnet embed` (which writes them) and `fashionnet metrics`
// (which reads them), and the format other tools (numpy, FAISS) read too. A set with prefix P is two files:
//   P.npy      float32 (N, D), one embedding per row (core/npy.h);
//   P.ids.txt  N lines "image_path item_id", separated by white space, in the row order of P.npy;
//   P.root.txt (optional) one line: the absolute folder the relative image paths are relative to (the dataset
//              root `embed --data` read). A file of its own, so that the ids file stays two plain columns for
//              numpy and older readers; sets written without it (older `embed`, other tools) still read.
// Reading validates everything and names the file (and the line or row) in each refusal: malformed .npy,
// malformed ids lines, row counts that differ between the two files, NaN or Inf in an embedding.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace fn::fashionnet {

struct Embeddings {
  Tensor features;                       // (N, D) float32, CPU
  std::vector<std::string> image_paths;  // N
  std::vector<std::string> item_ids;     // N
  std::string root;  // the folder relative image paths are relative to, absolute; "" when not recorded
  int64_t rows() const { return features.size(0); }
  int64_t dim() const { return features.size(1); }
};

// Writes P.npy and P.ids.txt, and P.root.txt when `e.root` is set (else removes a stale P.root.txt, which
// would point this set's paths at another folder). Paths and item ids must be non-empty and free of white space.
void write_embeddings(const std::string& prefix, const Embeddings& e);

// Reads and validates P.npy and P.ids.txt, and P.root.txt into `root` where it exists.
Embeddings read_embeddings(const std::string& prefix);

// Reads one ids file: each line "image_path item_id" (a trailing '\r' is tolerated; an empty last line too).
struct IdsLine {
  std::string image_path, item_id;
};
std::vector<IdsLine> read_ids_file(const std::string& path);

}  // namespace fn::fashionnet
