// Embedding files: the hand-off between `fashionnet embed` (which writes them) and `fashionnet metrics`
// (which reads them), and the format other tools (numpy, FAISS) read too. A set with prefix P is two files:
//   P.npy      float32 (N, D), one embedding per row (core/npy.h);
//   P.ids.txt  N lines "image_path item_id", separated by white space, in the row order of P.npy.
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
  int64_t rows() const { return features.size(0); }
  int64_t dim() const { return features.size(1); }
};

// Writes P.npy and P.ids.txt. Paths and item ids must be non-empty and free of white space.
void write_embeddings(const std::string& prefix, const Embeddings& e);

// Reads and validates P.npy and P.ids.txt.
Embeddings read_embeddings(const std::string& prefix);

// Reads one ids file: each line "image_path item_id" (a trailing '\r' is tolerated; an empty last line too).
struct IdsLine {
  std::string image_path, item_id;
};
std::vector<IdsLine> read_ids_file(const std::string& path);

}  // namespace fn::fashionnet
