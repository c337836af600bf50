// Bad input at random: valid annotation files, embedding files, checkpoints and photos, mutated a few
// thousand times (tokens swapped for edge values, lines dropped, doubled or swapped, bytes flipped, files
// cut short). Every mutated input must either load, giving data that keeps the readers' promises, or be
// refused with fn::Error naming the file; never a crash, a hang or another exception. The hand-written
// cases beside each reader test one known problem each; this finds the combinations nobody wrote down.
//
// Deterministic: the same rounds every run. FN_FUZZ_ROUNDS=N multiplies the rounds (1 by default), and
// FN_FUZZ_SEED picks another sequence; docs/architecture.md ("Bad input") runs it for long under AddressSanitizer
// and UBSan.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/options.h"
#include "core/error.h"
#include "core/npy.h"
#include "core/philox.h"
#include "core/safetensors.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/synth.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/model/config.h"
#include "fashionnet/eval/embedding_io.h"
#include "tests/support/annotation_fixtures.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_image.h"

namespace fs = std::filesystem;
using namespace fn;
using fn::test::FileSet;

namespace {

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : fallback;
}
int64_t rounds(int64_t base) { return base * std::max<int64_t>(1, env_int("FN_FUZZ_ROUNDS", 1)); }
uint64_t fuzz_seed() { return uint64_t(env_int("FN_FUZZ_SEED", 20261127)); }

// Values that break parsers: signs, overflow at 32 and 64 bits, floats where integers belong, non-numbers,
// separators, a byte-order mark, a path escaping the root, and very long tokens.
const std::vector<std::string>& edge_tokens() {
  static const std::vector<std::string> t = {
      "", "0", "-1", "1", "2", "3", "4", "9", "-0", "+1", "1.5", "1e9", "0x10", "nan", "inf", "-inf",
      "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807", "99999999999999999999",
      "\t", "\r", " ", "\xEF\xBB\xBF", std::string("\0", 1), "\xff\xfe", "id_", "id_00000001", "train", "query",
      "gallery", "img/../../x.jpg", "/abs.jpg", std::string(3000, '9'), std::string(5000, 'a')};
  return t;
}

// Mutates text or bytes at random with a Philox stream; each call applies one to three edits.
struct Mutator {
  Rng rng;
  explicit Mutator(uint64_t stream) : rng(fuzz_seed(), stream) {}
  size_t below(size_t n) { return n ? size_t(rng.below(int64_t(n))) : 0; }

  static std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    size_t a = 0;
    while (a < s.size()) {
      size_t b = s.find('\n', a);
      if (b == std::string::npos) b = s.size() - 1;
      out.push_back(s.substr(a, b - a + 1));
      a = b + 1;
    }
    return out;
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& l : v) s += l;
    return s;
  }

  // One maximal run of characters with in_run (picked at random) swapped for an edge token.
  template <class Pred>
  std::string replace_run(const std::string& s, Pred in_run) {
    std::vector<std::pair<size_t, size_t>> runs;  // [begin, end)
    for (size_t i = 0; i < s.size();) {
      while (i < s.size() && !in_run((unsigned char)s[i])) ++i;
      const size_t b = i;
      while (i < s.size() && in_run((unsigned char)s[i])) ++i;
      if (i > b) runs.emplace_back(b, i);
    }
    if (runs.empty()) return s;
    auto [b, e] = runs[below(runs.size())];
    const auto& edge = edge_tokens();
    return s.substr(0, b) + edge[below(edge.size())] + s.substr(e);
  }
  // A whitespace-separated token; a run of digits (inside JSON, a header dictionary or a line).
  std::string replace_token(const std::string& s) { return replace_run(s, [](unsigned char c) { return !std::isspace(c); }); }
  std::string replace_number(const std::string& s) { return replace_run(s, [](unsigned char c) { return std::isdigit(c) != 0; }); }

  std::string text(std::string s) {
    for (int edits = 1 + int(below(3)); edits > 0; --edits) {
      std::vector<std::string> ls = lines(s);
      switch (below(9)) {
        case 0: case 1: case 2: s = replace_token(s); break;
        case 3: if (!ls.empty()) { ls.erase(ls.begin() + long(below(ls.size()))); s = join(ls); } break;
        case 4: if (!ls.empty()) { size_t i = below(ls.size()); ls.insert(ls.begin() + long(i), ls[i]); s = join(ls); } break;
        case 5: if (ls.size() > 1) { std::swap(ls[below(ls.size())], ls[below(ls.size())]); s = join(ls); } break;
        case 6: s.resize(below(s.size() + 1)); break;
        case 7: if (!ls.empty()) { ls[0] = edge_tokens()[below(edge_tokens().size())] + "\n"; s = join(ls); } break;
        default: s = bytes(s, 1); break;
      }
    }
    return s;
  }

  // Byte edits: flip, overwrite with an edge byte, insert, delete a run, cut short.
  std::string bytes(std::string s, int edits = 0) {
    static const char edge[] = {'\0', '\xff', '\x7f', '\x80', '\n', '"', '9', '-', ' ', '{'};
    for (edits = edits ? edits : 1 + int(below(4)); edits > 0; --edits) {
      const size_t at = below(s.size() + 1);
      switch (below(5)) {
        case 0: if (at < s.size()) s[at] = char(s[at] ^ (1 << below(8))); break;
        case 1: if (at < s.size()) s[at] = edge[below(sizeof edge)]; break;
        case 2: s.insert(at, 1 + below(8), edge[below(sizeof edge)]); break;
        case 3: s.erase(at, 1 + below(16)); break;
        default: s.resize(at); break;
      }
    }
    return s;
  }

  // Bytes edits biased to the first `head` bytes, where formats keep their sizes and offsets.
  std::string header_bytes(std::string s, size_t head) {
    if (s.empty()) return s;
    const size_t at = below(std::min(head, s.size()));
    switch (below(3)) {
      case 0: s[at] = char(s[at] ^ (1 << below(8))); break;
      case 1: s[at] = char(below(256)); break;
      default: s[at] = char(0xff); break;
    }
    return s;
  }
};

// Runs `load`; on fn::Error the message must contain `name`. Returns true when it loaded. Any other
// exception fails the test with the round number, so FN_FUZZ_SEED and the round reproduce it.
template <class F>
bool loads_or_names(F&& load, const std::string& name, int64_t round, const std::string& what) {
  try {
    load();
    return true;
  } catch (const fn::Error& e) {
    const std::string msg = e.what();
    INFO(what << ", round " << round << ": " << msg);
    CHECK(msg.find(name) != std::string::npos);
  } catch (const std::exception& e) {
    FAIL(what << ", round " << round << ": not an fn::Error: " << e.what());
  }
  return false;
}

// What a loaded dataset promises whatever its files said (docs/data.md): "" when kept, else the first
// broken promise.
std::string broken_promise(const data::Dataset& ds) {
  for (const data::Sample& s : ds.samples) {
    const std::string at = s.image + ": ";
    if (s.image.empty()) return "a sample without an image";
    if (s.category < -1 || s.category >= int(ds.category_names.size()))
      return at + cat("category ", s.category, " of ", ds.category_names.size());
    if (s.item < -1 || s.item >= int(std::max(ds.item_ids.size(), ds.samples.size())))
      return at + cat("item ", s.item);
    if (s.clothes_type < 0 || s.clothes_type > 3) return at + cat("clothes_type ", s.clothes_type);
    if (s.has_bbox && !(0 <= s.x1 && s.x1 < s.x2 && 0 <= s.y1 && s.y1 < s.y2))
      return at + cat("bbox ", s.x1, " ", s.y1, " ", s.x2, " ", s.y2);
    if (s.has_landmarks)
      for (int k = 0; k < data::kSlots; ++k)
        // A cut-off landmark may carry any finite position (the files often say 0 0); the others are in the photo.
        if (s.lm.vis[k] > data::kAbsent || !std::isfinite(s.lm.x[k]) || !std::isfinite(s.lm.y[k]) ||
            (s.lm.vis[k] != data::kCutOff && (s.lm.x[k] < 0 || s.lm.y[k] < 0)))
          return at + cat("landmark ", k, " (", s.lm.x[k], ", ", s.lm.y[k], ") vis ", int(s.lm.vis[k]));
    if (!s.attributes.empty() && s.attributes.size() != ds.attribute_names.size())
      return at + cat(s.attributes.size(), " attributes of ", ds.attribute_names.size());
    for (int8_t a : s.attributes)
      if (a < -1 || a > 1) return at + cat("attribute value ", int(a));
  }
  return "";
}

void check_dataset(const data::Dataset& ds, const FileSet& files, int64_t round) {
  const std::string broken = broken_promise(ds);
  if (broken.empty()) return;
  std::string dump;
  for (const auto& [rel, text] : files) dump += "--- " + rel + "\n" + text.substr(0, 4000) + "\n";
  FAIL_CHECK(ds.benchmark << ", round " << round << ": loaded, but " << broken << "\n" << dump);
}

// The annotation files of a freshly synthesised dataset (its photos are not needed by the readers).
FileSet synthesized_annotations(const std::string& benchmark, const fs::path& dir) {
  data::SynthConfig c;
  c.out = dir.string();
  c.benchmark = benchmark;
  c.items = 4;
  c.views = 3;
  c.size = 32;
  c.threads = 1;
  data::synthesize(c);
  FileSet files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".txt")
      files[fs::relative(e.path(), dir).generic_string()] = fn::test::read_bytes(e.path());
  return files;
}

}  // namespace

TEST_CASE("fuzz: mutated annotation files load or are refused naming the file", "[fuzz]") {
  fn::test::TempDir synth_dir("fuzz_synth");
  const std::vector<std::pair<std::string, FileSet>> seeds = {
      {"inshop", fn::test::inshop_files()},
      {"category", fn::test::category_files()},
      {"landmark", fn::test::landmark_files()},
      {"consumer2shop", synthesized_annotations("consumer2shop", synth_dir.path / "c2s")},
  };
  fn::test::TempDir dir("fuzz_anno");
  Mutator m(1);
  int64_t loaded = 0, refused = 0;
  for (int64_t r = 0, n = rounds(1500); r < n; ++r) {
    const auto& [benchmark, seed] = seeds[size_t(r) % seeds.size()];
    FileSet files = seed;
    for (int k = 1 + int(m.below(2)); k > 0; --k) {
      auto it = std::next(files.begin(), long(m.below(files.size())));
      if (m.below(20) == 0) files.erase(it);  // a missing file, now and then
      else it->second = m.text(it->second);
    }
    fs::remove_all(dir.path);
    fn::test::write_files(dir.path, files);
    const bool require = m.below(2) == 0;
    if (m.below(2) == 0) {  // first error thrown
      data::Dataset ds;
      if (loads_or_names([&] { ds = data::load_dataset(dir.path.string(), benchmark, require); }, ".txt", r, benchmark))
        ++loaded, check_dataset(ds, files, r);
      else
        ++refused;
    } else {  // every error collected in a report; each must name a file
      data::LoadReport rep;
      data::Dataset ds;
      if (!loads_or_names([&] { ds = data::load_dataset(dir.path.string(), benchmark, require, &rep); }, ".txt", r,
                          benchmark)) {
        ++refused;
        continue;
      }
      for (const std::string& e : rep.errors) {
        INFO(benchmark << ", round " << r << ": " << e);
        CHECK(e.find(".txt") != std::string::npos);
      }
      if (rep.error_count == 0) ++loaded, check_dataset(ds, files, r);
      else ++refused;
    }
  }
  std::printf("annotations: %lld mutated datasets, %lld loaded, %lld refused\n", (long long)(loaded + refused),
              (long long)loaded, (long long)refused);
  CHECK(refused > loaded / 10);  // the mutations do reach the checks
}

TEST_CASE("fuzz: mutated .npy embedding files load or are refused naming the file", "[fuzz]") {
  fn::test::TempDir dir("fuzz_npy");
  const std::string good = (dir.path / "good.npy").string(), bad = (dir.path / "bad.npy").string();
  std::vector<float> v(5 * 3);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) - 7.f;
  npy::write_f32(good, v.data(), 5, 3);
  const std::string bytes = fn::test::read_bytes(good);
  Mutator m(2);
  int64_t loaded = 0;
  for (int64_t r = 0, n = rounds(3000); r < n; ++r) {
    std::string b = m.below(3) ? m.header_bytes(bytes, 128) : m.bytes(bytes);
    if (m.below(4) == 0) b = m.replace_number(b);  // "(5, 3)" -> "(5, 99999999999999999999)" and the like
    fn::test::write_bytes(bad, b);
    Tensor t;
    if (loads_or_names([&] { t = npy::read_f32(bad); }, bad, r, "npy")) {
      ++loaded;
      CHECK(t.shape().size() == 2);
      CHECK(uint64_t(t.numel()) * 4 <= b.size());
    }
  }
  std::printf("npy: %lld mutated files, %lld loaded\n", (long long)rounds(3000), (long long)loaded);
}

TEST_CASE("fuzz: mutated embedding sets (.npy + .ids.txt) load or are refused naming a file", "[fuzz]") {
  fn::test::TempDir dir("fuzz_emb");
  const std::string good = (dir.path / "good").string(), bad = (dir.path / "bad").string();
  fashionnet::Embeddings e;
  e.features = Tensor::zeros({4, 3});
  for (int64_t i = 0; i < 12; ++i) e.features.f32()[i] = float(i % 5) - 2.f;
  e.image_paths = {"img/a/1.jpg", "img/a/2.jpg", "img/b/1.jpg", "img/c/1.jpg"};
  e.item_ids = {"id_1", "id_1", "id_2", "id_3"};
  fashionnet::write_embeddings(good, e);
  const std::string npy_bytes = fn::test::read_bytes(good + ".npy"), ids = fn::test::read_bytes(good + ".ids.txt");
  Mutator m(6);
  int64_t loaded = 0;
  for (int64_t r = 0, n = rounds(1500); r < n; ++r) {
    const bool ids_side = m.below(2) == 0;
    fn::test::write_bytes(bad + ".npy", ids_side ? npy_bytes : m.bytes(npy_bytes));
    fn::test::write_bytes(bad + ".ids.txt", ids_side ? m.text(ids) : ids);
    fashionnet::Embeddings got;
    if (loads_or_names([&] { got = fashionnet::read_embeddings(bad); }, bad, r, "embeddings")) {
      ++loaded;
      CHECK((got.image_paths.size() == size_t(got.rows()) && got.item_ids.size() == size_t(got.rows())));
      for (size_t i = 0; i < got.item_ids.size(); ++i) CHECK((!got.image_paths[i].empty() && !got.item_ids[i].empty()));
    }
  }
  std::printf("embedding sets: %lld mutated, %lld loaded\n", (long long)rounds(1500), (long long)loaded);
}

TEST_CASE("fuzz: mutated checkpoints are refused naming the file, and never half-loaded", "[fuzz]") {
  fn::test::TempDir dir("fuzz_ckpt");
  const std::string good = (dir.path / "good.safetensors").string(), bad = (dir.path / "bad.safetensors").string();
  fashionnet::TrainConfig cfg = fashionnet::preset("tiny");
  fashionnet::FashionNet model(cfg.net, cfg.seed);
  fashionnet::TrainState st;
  st.category_names = {"Dresses", "Pants"};
  fashionnet::save_checkpoint(good, model, nullptr, cfg, st);
  const std::string bytes = fn::test::read_bytes(good);
  uint64_t header = 0;
  for (int b = 0; b < 8; ++b) header |= uint64_t(uint8_t(bytes[size_t(b)])) << (8 * b);
  Mutator m(3);
  int64_t loaded = 0;
  for (int64_t r = 0, n = rounds(600); r < n; ++r) {
    std::string b;
    switch (m.below(3)) {
      case 0: b = m.header_bytes(bytes, 8 + header); break;  // sizes, offsets, names, dtypes, metadata
      case 1: b = bytes.substr(0, 8) + m.replace_number(bytes.substr(8, header)) + bytes.substr(8 + header); break;
      default: b = m.bytes(bytes); break;
    }
    fn::test::write_bytes(bad, b);
    if (loads_or_names([&] { fashionnet::checkpoint_state(bad); }, bad, r, "checkpoint_state") &&
        loads_or_names([&] { fashionnet::model_from_checkpoint(bad, Device::CPU); }, bad, r, "model_from_checkpoint"))
      ++loaded;
  }
  std::printf("checkpoints: %lld mutated files, %lld loaded\n", (long long)rounds(600), (long long)loaded);
}

TEST_CASE("fuzz: mutated --config files give a checked configuration or are refused naming the file", "[fuzz]") {
  fn::test::TempDir dir("fuzz_config");
  const std::string path = (dir.path / "config.json").string();
  const std::string good = nlohmann::json(fashionnet::preset("tiny")).dump(1);
  apps::TrainFlags flags;
  flags.preset = "tiny";
  flags.config_file = path;
  Mutator m(7);
  int64_t loaded = 0;
  for (int64_t r = 0, n = rounds(1500); r < n; ++r) {
    fn::test::write_bytes(path, m.below(2) ? m.replace_number(good) : m.text(good));
    fashionnet::TrainConfig cfg;
    if (loads_or_names([&] { cfg = apps::make_config(flags); }, path, r, "--config")) {
      ++loaded;
      CHECK(fashionnet::config_problems(cfg).empty());
    }
  }
  std::printf("--config: %lld mutated files, %lld loaded\n", (long long)rounds(1500), (long long)loaded);
}

TEST_CASE("fuzz: mutated JPEG and PNG photos decode or are refused naming the file", "[fuzz]") {
  fn::test::TempDir dir("fuzz_img");
  const auto img = fn::test::image_from(24, 16, [](int x, int y) {
    return std::array<uint8_t, 3>{uint8_t(x * 10), uint8_t(y * 15), uint8_t(x ^ y)};
  });
  for (const char* ext : {"jpg", "png"}) {
    const std::string good = (dir.path / (std::string("good.") + ext)).string();
    const std::string bad = (dir.path / (std::string("bad.") + ext)).string();
    data::write_image(good, img, 90);
    const std::string bytes = fn::test::read_bytes(good);
    Mutator m(ext[0] == 'j' ? 4 : 5);
    int64_t decoded = 0;
    for (int64_t r = 0, n = rounds(1500); r < n; ++r) {
      fn::test::write_bytes(bad, m.below(2) ? m.header_bytes(bytes, 64) : m.bytes(bytes));
      data::Image out;
      if (loads_or_names([&] { out = data::decode_image(bad); }, bad, r, ext)) {
        ++decoded;
        CHECK((out.w > 0 && out.h > 0 && out.rgb.size() == size_t(out.w) * size_t(out.h) * 3));
      }
      int w = 0, h = 0;
      if (loads_or_names([&] { data::image_size(bad, w, h); }, bad, r, ext)) CHECK((w > 0 && h > 0));
    }
    std::printf("%s: %lld mutated files, %lld decoded\n", ext, (long long)rounds(1500), (long long)decoded);
  }
}
