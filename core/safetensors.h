// Checkpoints and weight files in the safetensors format (https://github.com/huggingface/safetensors), which
// PyTorch, numpy and JAX users read with the `safetensors` package or a ten-line reader (docs/checkpoint.md).
//
// Layout of a file:
//   8 bytes   N, the header length, unsigned 64-bit little-endian
//   N bytes   UTF-8 JSON object, padded with spaces so that 8 + N is a multiple of 8:
//             {"__metadata__": {"key": "value", ...},                       (optional; strings only)
//              "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
//   the rest  the tensors' bytes, little-endian, C order; [begin, end) is relative to the start of this data
//             section. Tensors are laid out back to back in file order with no holes, and the data section
//             ends where the last tensor ends.
//
// This engine writes F32 and F64 and reads them; other dtypes (F16, BF16, I64, ...) are refused by name.
// Every problem found in a file is reported with the file's path and the tensor's name; where a file has
// several problems they are reported together (the first few and the count).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace fn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes `tensors` (any device; CUDA tensors are copied to the host one at a time) in the given order, with
// `metadata` as "__metadata__" (left out when empty). Atomic: the bytes go to `path.tmp.<pid>` in the same
// folder, are fsynced, and the temporary file is renamed over `path`; on any failure `path` keeps its previous
// contents (or stays absent) and the temporary file is removed. Names must be non-empty, unique and not
// "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "F32" / "F64", the format's dtype names.
const char* safetensors_dtype(DType t);

// One tensor's header entry.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets in the data section
};

// A parsed, validated file. Tensors are read from disk on get(), so a 550 MB file costs nothing to open
// or inspect. (The file should not change while it is open; get() checks that its size still matches.)
class SafetensorsFile {
 public:
  std::string path;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> names;  // in file (data) order
  uint64_t header_bytes = 0;       // N
  uint64_t file_bytes = 0;

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;  // throws, naming file and tensor
  const Shape& shape(const std::string& name) const { return entry(name).shape; }
  DType dtype(const std::string& name) const { return entry(name).dtype; }
  Tensor get(const std::string& name) const;  // a new CPU tensor, named `name`
  uint64_t data_start() const { return 8 + header_bytes; }

 private:
  friend SafetensorsFile load_safetensors(const std::string& path);
  std::vector<SafetensorsEntry> entries_;  // same order as names
  std::map<std::string, size_t> index_;
};

// Reads and validates the header (not the data): header length within the file, JSON object, metadata of
// strings, known dtypes, shapes of non-negative integers, offsets [begin, end] with end - begin equal to
// numel * dtype size, no overlaps, no holes, and a data section exactly as long as the offsets say.
SafetensorsFile load_safetensors(const std::string& path);

struct LoadOptions {
  bool allow_missing = false;     // parameters absent from the file keep their values (e.g. random init)
  bool allow_unexpected = false;  // tensors in the file that are not parameters are ignored
};

struct LoadResult {
  std::vector<std::string> loaded, missing, unexpected;
};

// Copies the file's tensors into existing tensors (any device) by name. Every parameter must be in the file
// with the same shape and dtype (unless allow_missing), and every tensor in the file must be a parameter
// (unless allow_unexpected). All problems are checked before anything is copied, and reported together:
//   checkpoint m.safetensors: tensor 'fc6_global.weight' has shape [4096,25088], the model expects [1024,1152]
LoadResult load_into(const std::string& path, const NamedTensors& params, const LoadOptions& opt = {});

}  // namespace fn
