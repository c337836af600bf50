// safetensors reading and writing. See safetensors.h for the layout.
#include "core/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; so must the host be");

namespace fn {
namespace {

using ojson = nlohmann::ordered_json;  // keeps the header's key order, so tensors are written in call order

constexpr uint64_t kMaxHeader = uint64_t(100) << 20;  // the reference implementation's limit (100 MB)
constexpr size_t kShownProblems = 8;

// A user error "checkpoint P: <one problem>" or "checkpoint P: K problems: a; b; ... (and M more)", thrown
// from file:line (shown under FN_ERROR_LOCATION=1). Call through FAIL_WITH(path, {problems}).
[[noreturn]] void fail_with(const char* file, int line, const std::string& path,
                            const std::vector<std::string>& problems) {
  std::string msg = cat("checkpoint ", path, ": ");
  if (problems.size() == 1) {
    msg += problems[0];
  } else {
    msg += cat(problems.size(), " problems: ");
    for (size_t i = 0; i < problems.size() && i < kShownProblems; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > kShownProblems) msg += cat(" (and ", problems.size() - kShownProblems, " more)");
  }
  throw_user_error(file, line, msg);
}
#define FAIL_WITH(...) fail_with(__FILE__, __LINE__, __VA_ARGS__)

uint64_t file_size(const std::string& path) {
  errno = 0;
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  const int err = errno;
  if (!f.good())
    FAIL_WITH(path, {cat("cannot open for reading", err ? cat(": ", std::strerror(err)) : std::string())});
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) FAIL_WITH(path, {"cannot open for reading: it is a folder, not a file"});
  return uint64_t(f.tellg());
}

bool parse_dtype(const std::string& s, DType* out, std::string* problem) {
  if (s == "F32") { *out = DType::F32; return true; }
  if (s == "F64") { *out = DType::F64; return true; }
  static const std::set<std::string> known = {"BOOL", "U8",  "I8",  "I16", "U16",     "F16",     "BF16",
                                              "I32",  "U32", "I64", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                              "F4",   "F6_E2M3", "F6_E3M2", "C64"};
  if (known.count(s))
    *problem = cat("dtype '", s, "' is not supported (this engine reads F32 and F64; convert with .float())");
  else
    *problem = cat("unknown dtype '", s, "'");
  return false;
}

}  // namespace

const char* safetensors_dtype(DType t) { return t == DType::F32 ? "F32" : "F64"; }

// ------------------------------------------------------------------------------------------------ writing

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Validate everything before a byte is written.
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) problems.push_back("a tensor has an empty name");
    else if (name == "__metadata__") problems.push_back("'__metadata__' cannot name a tensor");
    else if (!seen.insert(name).second) problems.push_back(cat("tensor '", name, "' appears twice"));
    if (!t.defined()) problems.push_back(cat("tensor '", name, "' is undefined"));
  }
  if (!problems.empty()) FAIL_WITH(path, problems);

  ojson header = ojson::object();
  if (!metadata.empty()) {
    ojson m = ojson::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    uint64_t n = t.nbytes();
    header[name] = ojson{{"dtype", safetensors_dtype(t.dtype())}, {"shape", t.shape()}, {"data_offsets", ojson::array({offset, offset + n})}};
    offset += n;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    FAIL_WITH(path, {cat("cannot encode the header (names and metadata must be UTF-8): ",
                         without_library_tag(e.what()))});
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // 8 + N stays a multiple of 8, so data starts 8-aligned

  try {
    AtomicFile f(path);  // removes its temporary file if anything below throws
    unsigned char len[8];
    for (int b = 0; b < 8; ++b) len[b] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * b));
    f.write(len, 8);
    f.write(text.data(), text.size());
    for (const auto& [name, t] : tensors) {
      if (t.nbytes() == 0) continue;
      Tensor h = t.cpu();  // one host copy at a time for CUDA tensors
      f.write(h.raw(), h.nbytes());
    }
    f.commit();
  } catch (const Error& e) {
    throw Error(cat("checkpoint ", path, " not saved (a previous file there is left as it was): ", e.what()));
  }
}

// ------------------------------------------------------------------------------------------------ reading

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) FAIL_WITH(path, {cat("no tensor '", name, "' in the file")});
  return entries_[it->second];
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  Tensor t = Tensor::empty(e.shape, e.dtype, Device::CPU);
  t.set_name(name);
  if (e.end == e.begin) return t;
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f.good()) FAIL_WITH(path, {cat("tensor '", name, "': cannot open the file for reading")});
  uint64_t size = uint64_t(f.tellg());
  if (size != file_bytes)
    FAIL_WITH(path, {cat("tensor '", name, "': the file changed since it was opened (", file_bytes, " bytes then, ",
                         size, " now)")});
  f.seekg(std::streamoff(data_start() + e.begin));
  f.read(static_cast<char*>(t.raw()), std::streamsize(e.end - e.begin));
  if (uint64_t(f.gcount()) != e.end - e.begin) FAIL_WITH(path, {cat("tensor '", name, "': read error")});
  return t;
}

SafetensorsFile load_safetensors(const std::string& path) {
  SafetensorsFile sf;
  sf.path = path;
  sf.file_bytes = file_size(path);
  if (sf.file_bytes < 8)
    FAIL_WITH(path, {cat("truncated file: ", sf.file_bytes,
                         " bytes, too short to hold the 8-byte header length (not a safetensors file?)")});
  std::ifstream f(path, std::ios::binary);
  unsigned char len[8] = {};
  f.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int b = 0; b < 8; ++b) n |= uint64_t(len[b]) << (8 * b);
  if (n > sf.file_bytes - 8)
    FAIL_WITH(path, {cat("truncated file: the header length says ", n, " bytes but only ", sf.file_bytes - 8,
                         " follow (not a safetensors file, or cut short)")});
  if (n > kMaxHeader) FAIL_WITH(path, {cat("header of ", n, " bytes is larger than the 100 MB limit")});
  sf.header_bytes = n;
  std::string text(n, '\0');
  f.read(text.data(), std::streamsize(n));
  if (uint64_t(f.gcount()) != n) FAIL_WITH(path, {"read error in the header"});

  ojson header;
  std::set<std::string> top_keys;
  std::vector<std::string> problems;
  try {
    // A repeated top-level key would silently shadow a tensor: note it while parsing.
    header = ojson::parse(text, [&](int depth, nlohmann::json::parse_event_t ev, ojson& parsed) {
      if (depth == 1 && ev == nlohmann::json::parse_event_t::key && parsed.is_string() &&
          !top_keys.insert(parsed.get<std::string>()).second)
        problems.push_back(cat("'", parsed.get<std::string>(), "' appears twice in the header"));
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    FAIL_WITH(path, {cat("the header is not valid JSON: ", without_library_tag(e.what()))});
  }
  if (!header.is_object()) FAIL_WITH(path, {"the header is not a JSON object"});

  std::vector<SafetensorsEntry> entries;
  std::vector<bool> offsets_ok;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const ojson& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) {
        problems.push_back("'__metadata__' is not an object of strings");
        continue;
      }
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (m.value().is_string()) sf.metadata[m.key()] = m.value().get<std::string>();
        else problems.push_back(cat("metadata '", m.key(), "' is not a string (the format allows strings only)"));
      }
      continue;
    }
    auto bad = [&](const std::string& what) { problems.push_back(cat("tensor '", key, "': ", what)); };
    if (!v.is_object()) { bad("the entry is not an object"); continue; }
    SafetensorsEntry e;
    e.name = key;
    bool ok = true;
    // dtype
    if (!v.contains("dtype") || !v["dtype"].is_string()) { bad("no \"dtype\" string"); ok = false; }
    else {
      std::string why;
      if (!parse_dtype(v["dtype"].get<std::string>(), &e.dtype, &why)) { bad(why); ok = false; }
    }
    // shape
    bool shape_ok = v.contains("shape") && v["shape"].is_array();
    if (shape_ok) {
      for (const auto& d : v["shape"]) {
        if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t(1) << 48)) { shape_ok = false; break; }
        e.shape.push_back(int64_t(d.get<uint64_t>()));
      }
    }
    uint64_t numel = 1;
    if (shape_ok) {
      for (int64_t d : e.shape) {
        if (d != 0 && numel > (uint64_t(1) << 60) / uint64_t(d)) { shape_ok = false; break; }
        numel *= uint64_t(d);
      }
    }
    if (!shape_ok) { bad("\"shape\" is not a list of non-negative integers of sane size"); ok = false; }
    // offsets
    bool off_ok = v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2 &&
                  v["data_offsets"][0].is_number_unsigned() && v["data_offsets"][1].is_number_unsigned();
    if (!off_ok) {
      bad("\"data_offsets\" is not a pair of non-negative integers [begin, end]");
      ok = false;
    } else {
      e.begin = v["data_offsets"][0].get<uint64_t>();
      e.end = v["data_offsets"][1].get<uint64_t>();
      if (e.end < e.begin) {
        bad(cat("data_offsets [", e.begin, ", ", e.end, "] end before they begin"));
        off_ok = ok = false;
      } else if (ok) {
        uint64_t want = numel * dtype_size(e.dtype);
        if (e.end - e.begin != want) {
          bad(cat("data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin, " bytes but shape ",
                  shape_str(e.shape), " of ", safetensors_dtype(e.dtype), " needs ", want));
          ok = false;
        }
      }
    }
    entries.push_back(e);
    offsets_ok.push_back(off_ok);
    (void)ok;
  }

  // Layout: tensors back to back from offset 0, in offset order, no overlap, no hole, ending at the file's end.
  std::vector<size_t> order;
  for (size_t i = 0; i < entries.size(); ++i)
    if (offsets_ok[i]) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return entries[a].begin < entries[b].begin; });
  const uint64_t data_bytes = sf.file_bytes - 8 - n;
  uint64_t expected = 0;
  std::string prev;
  for (size_t i : order) {
    const SafetensorsEntry& e = entries[i];
    if (e.begin < expected)
      problems.push_back(cat("tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] overlap tensor '", prev,
                             "' (which ends at ", expected, ")"));
    else if (e.begin > expected)
      problems.push_back(cat("tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] leave a hole of ",
                             e.begin - expected, " bytes before them (tensors must be back to back)"));
    if (e.end >= expected) {
      expected = e.end;
      prev = e.name;
    }
  }
  if (order.size() == entries.size()) {  // only meaningful when every entry's offsets are known
    if (expected > data_bytes) {
      std::string first;
      for (size_t i : order)
        if (entries[i].end > data_bytes) { first = entries[i].name; break; }
      problems.push_back(cat("truncated data: the offsets need ", expected, " bytes of data but the file has ",
                             data_bytes, " after the header (tensor '", first, "' is cut off)"));
    } else if (expected < data_bytes) {
      problems.push_back(cat(data_bytes - expected, " unexpected bytes after the last tensor's data"));
    }
  }
  if (!problems.empty()) FAIL_WITH(path, problems);

  for (size_t i : order) {
    sf.index_[entries[i].name] = sf.entries_.size();
    sf.names.push_back(entries[i].name);
    sf.entries_.push_back(entries[i]);
  }
  return sf;
}

// ------------------------------------------------------------------------------------------------ loading

LoadResult load_into(const std::string& path, const NamedTensors& params, const LoadOptions& opt) {
  std::vector<std::string> problems;
  std::map<std::string, const Tensor*> wanted;
  for (const auto& [name, t] : params) {
    if (!wanted.emplace(name, &t).second) problems.push_back(cat("the model names two parameters '", name, "'"));
    if (!t.defined()) problems.push_back(cat("the model's parameter '", name, "' is undefined"));
  }
  if (!problems.empty()) FAIL_WITH(path, problems);

  SafetensorsFile sf = load_safetensors(path);
  LoadResult r;
  for (const auto& [name, t] : params) {
    if (!sf.has(name)) {
      r.missing.push_back(name);
      if (!opt.allow_missing)
        problems.push_back(cat("missing tensor '", name, "' (the model expects ", dtype_name(t.dtype()),
                               shape_str(t.shape()), ")"));
      continue;
    }
    const SafetensorsEntry& e = sf.entry(name);
    if (e.shape != t.shape())
      problems.push_back(cat("tensor '", name, "' has shape ", shape_str(e.shape), ", the model expects ",
                             shape_str(t.shape())));
    else if (e.dtype != t.dtype())
      problems.push_back(cat("tensor '", name, "' is ", safetensors_dtype(e.dtype), ", the model expects ",
                             safetensors_dtype(t.dtype())));
  }
  for (const std::string& name : sf.names) {
    if (wanted.count(name)) continue;
    r.unexpected.push_back(name);
    if (!opt.allow_unexpected)
      problems.push_back(cat("unexpected tensor '", name, "' (", safetensors_dtype(sf.dtype(name)),
                             shape_str(sf.shape(name)), "): the model has no such parameter"));
  }
  if (!problems.empty()) FAIL_WITH(path, problems);

  for (const auto& [name, t] : params) {
    if (!sf.has(name)) continue;
    Tensor dst = t;
    dst.copy_from(sf.get(name));
    r.loaded.push_back(name);
  }
  return r;
}

}  // namespace fn
