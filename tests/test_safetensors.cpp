// safetensors: round trip of float32/float64 tensors of every rank (0-d, empty, odd sizes), the bytes on disk
// against the format's spec, agreement with a numpy-only reader and writer (where Debian's numpy is installed),
// a refusal naming the file of every corrupted file and mismatched model, and atomic writes.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/safetensors.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

using namespace fn;

namespace {

namespace fs = std::filesystem;

std::string temp_dir() { return fn::test::process_temp_dir("safetensors"); }
using fn::test::read_bytes;
using fn::test::write_bytes;

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int b = 0; b < 8; ++b) s[b] = char((n >> (8 * b)) & 0xff);
  return s;
}

// A file from parts: header text (padded to 8 when pad), then `data_bytes` bytes of data.
std::string make_file(std::string header, size_t data_bytes, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + std::string(data_bytes, '\x01');
}

bool have_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

bool bits_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         (a.nbytes() == 0 || std::memcmp(a.cpu().raw(), b.cpu().raw(), a.nbytes()) == 0);
}

Tensor rand_tensor(const Shape& s, DType t, uint64_t seed) {
  Rng rng(seed, 3);
  return Tensor::randn(s, rng, 1.0, t);
}

// Runs f and requires an fn::Error whose message names `path` and contains every phrase.
template <class F>
void require_refused(F&& f, const std::string& path, std::vector<std::string> phrases) {
  try {
    f();
    FAIL("accepted " << path << " (expected: " << phrases[0] << ")");
  } catch (const fn::Error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("checkpoint " + path) != std::string::npos);  // the message names the file
    for (const auto& p : phrases) CHECK(msg.find(p) != std::string::npos);
  }
}

void require_load_refused(const std::string& path, std::vector<std::string> phrases) {
  require_refused([&] { load_safetensors(path); }, path, std::move(phrases));
}

}  // namespace

TEST_CASE("safetensors: F32 and F64 tensors of every rank round trip bit for bit", "[safetensors]") {
  NamedTensors ts;
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64}) {
    std::string tag = dt == DType::F32 ? "f32" : "f64";
    for (const Shape& s : std::vector<Shape>{{}, {1}, {0}, {3, 0, 2}, {33}, {2, 3}, {1, 45, 1}, {2, 3, 4, 5}})
      ts.push_back({cat(tag, ".t", shape_str(s)), rand_tensor(s, dt, seed++)});
  }
  ts[1].second.f32()[0] = -0.0f;  // sign of zero survives
  const std::string path = temp_dir() + "/round.safetensors";
  std::map<std::string, std::string> meta = {{"step", "1200"}, {"config", R"({"width": 0.25, "name": "ü"})"}};
  save_safetensors(path, ts, meta);

  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == meta);
  REQUIRE(f.names.size() == ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    INFO(ts[i].first);
    CHECK(f.names[i] == ts[i].first);  // file order is the order written
    CHECK(f.shape(ts[i].first) == ts[i].second.shape());
    CHECK(f.dtype(ts[i].first) == ts[i].second.dtype());
    Tensor back = f.get(ts[i].first);
    CHECK(back.name() == ts[i].first);
    CHECK(bits_equal(back, ts[i].second));
  }
  // No metadata: the "__metadata__" key is left out, and reading gives an empty map.
  save_safetensors(path, {{"x", Tensor::full({2}, 3.0)}});
  CHECK(load_safetensors(path).metadata.empty());
  CHECK(read_bytes(path).find("__metadata__") == std::string::npos);
  CHECK(!fs::exists(path + ".tmp." + std::to_string(getpid())));
}

TEST_CASE("safetensors: the bytes on disk follow the spec", "[safetensors]") {
  Tensor a = Tensor::from(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from(std::vector<double>{0.5}, {});
  Tensor c = Tensor::from(std::vector<float>{7}, {1});
  const std::string path = temp_dir() + "/spec.safetensors";
  save_safetensors(path, {{"layer.weight", a}, {"s", b}, {"layer.bias", c}}, {{"format", "test"}});

  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  CHECK(n % 8 == 0);  // data starts 8-aligned
  REQUIRE(8 + n + 24 + 8 + 4 == bytes.size());
  std::string text = bytes.substr(8, n);
  CHECK(text.front() == '{');
  size_t end = text.find_last_not_of(' ');
  CHECK(text[end] == '}');
  CHECK(n - (end + 1) < 8);  // only padding spaces after the JSON
  auto h = nlohmann::json::parse(text);
  CHECK(h["__metadata__"] == nlohmann::json{{"format", "test"}});
  CHECK(h["layer.weight"] == nlohmann::json::parse(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})"));
  CHECK(h["s"] == nlohmann::json::parse(R"({"dtype":"F64","shape":[],"data_offsets":[24,32]})"));
  CHECK(h["layer.bias"] == nlohmann::json::parse(R"({"dtype":"F32","shape":[1],"data_offsets":[32,36]})"));
  CHECK(h.size() == 4);
  const char* data = bytes.data() + 8 + n;
  CHECK(std::memcmp(data, a.raw(), 24) == 0);
  CHECK(std::memcmp(data + 24, b.raw(), 8) == 0);
  CHECK(std::memcmp(data + 32, c.raw(), 4) == 0);
  CHECK(uint8_t(data[0]) == 0x00);  // 1.0f = 0x3f800000, little-endian
  CHECK(uint8_t(data[3]) == 0x3f);
}

TEST_CASE("safetensors: numpy reads our file and we read numpy's", "[safetensors][numpy]") {
  if (!have_numpy()) {
    std::printf("SKIPPED: /usr/bin/python3 with numpy not found\n");
    return;
  }
  const std::string ours = temp_dir() + "/ours.safetensors", theirs = temp_dir() + "/theirs.safetensors";
  std::vector<float> w(2 * 3 * 5);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i) * 0.25f - 3.0f;
  save_safetensors(ours,
                   {{"a.weight", Tensor::from(w, {2, 3, 5})}, {"empty", Tensor::zeros({0, 4})},
                    {"b", Tensor::from(std::vector<double>{1.0 / 3.0, -2.5}, {2})}, {"scalar", Tensor::full({}, 7.5)}},
                   {{"step", "42"}});
  // A reader that uses nothing but numpy, as docs/checkpoint.md shows; then a writer the same way.
  const std::string script = temp_dir() + "/np_check.py";
  write_bytes(script, R"PY(
import json, struct, sys
import numpy as np
def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    dt = {"F32": "<f4", "F64": "<f8"}
    return meta, {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype=dt[v["dtype"]]).reshape(v["shape"])
                  for k, v in header.items()}
meta, t = read(sys.argv[1])
assert meta == {"step": "42"}, meta
assert np.array_equal(t["a.weight"], (np.arange(30, dtype=np.float32) * 0.25 - 3).reshape(2, 3, 5))
assert t["a.weight"].dtype == np.float32
assert t["empty"].shape == (0, 4)
assert t["b"].dtype == np.float64 and t["b"][0] == 1.0 / 3.0 and t["b"][1] == -2.5
assert t["scalar"].shape == () and t["scalar"] == 7.5
# numpy writes: keys in an order different from the data order, no padding, metadata
arrays = {"z.last": np.linspace(0, 1, 7).astype("<f8"), "m": np.arange(12, dtype="<f4").reshape(3, 4)}
header, offset, blobs = {"__metadata__": {"by": "numpy"}}, 0, []
for k in ["m", "z.last"]:
    b = arrays[k].tobytes()
    header[k] = {"dtype": "F32" if arrays[k].dtype == np.float32 else "F64", "shape": list(arrays[k].shape),
                 "data_offsets": [offset, offset + len(b)]}
    offset += len(b); blobs.append(b)
h = json.dumps({k: header[k] for k in ["z.last", "__metadata__", "m"]}).encode()
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); f.write(b"".join(blobs))
print("numpy OK")
)PY");
  int rc = std::system(("/usr/bin/python3 " + script + " " + ours + " " + theirs).c_str());
  REQUIRE(rc == 0);
  SafetensorsFile f = load_safetensors(theirs);
  CHECK(f.metadata.at("by") == "numpy");
  REQUIRE(f.names == std::vector<std::string>{"m", "z.last"});  // data order, not header order
  Tensor m = f.get("m"), z = f.get("z.last");
  CHECK(m.shape() == Shape{3, 4});
  for (int i = 0; i < 12; ++i) CHECK(m.f32()[i] == float(i));
  CHECK(z.dtype() == DType::F64);
  for (int i = 0; i < 7; ++i) CHECK(std::fabs(z.f64()[i] - i / 6.0) < 1e-15);
}

TEST_CASE("safetensors: corrupt files are refused with the file named", "[safetensors][errors]") {
  const std::string d = temp_dir();
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  auto file = [&](const std::string& name, const std::string& bytes) {
    std::string p = d + "/" + name + ".safetensors";
    write_bytes(p, bytes);
    return p;
  };
  // A good file of this construction loads (so each case below breaks exactly one thing).
  CHECK(load_safetensors(file("good", make_file("{" + ok_entry + "}", 16))).names.size() == 1);
  CHECK_NOTHROW(load_safetensors(file("unpadded", make_file("{" + ok_entry + "}", 16, false))));

  require_load_refused(file("tiny", "abc"), {"truncated file", "too short"});
  require_load_refused(file("empty_file", ""), {"truncated file"});
  {
    std::string bytes = make_file("{" + ok_entry + "}", 16);
    require_load_refused(file("trunc_header", bytes.substr(0, 20)), {"truncated file", "header length"});
    require_load_refused(file("trunc_data", bytes.substr(0, bytes.size() - 3)),
                         {"truncated data", "'w' is cut off", "13 after the header"});
    require_load_refused(file("trailing", bytes + "xyz"), {"3 unexpected bytes after"});
  }
  require_load_refused(file("huge_len", le64(uint64_t(1) << 62) + "{}"), {"truncated file", "header length"});
  require_load_refused(file("bad_json", make_file("{\"w\": {\"dtype\": \"F32\",", 16)), {"not valid JSON"});
  require_load_refused(file("not_object", make_file("[1, 2, 3]", 0)), {"not a JSON object"});
  require_load_refused(file("unknown_dtype", make_file(R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", 8)),
                       {"tensor 'w'", "unknown dtype 'Q7'"});
  require_load_refused(file("f16", make_file(R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", 8)),
                       {"tensor 'w'", "dtype 'F16' is not supported"});
  require_load_refused(file("neg_shape", make_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)),
                       {"tensor 'w'", "\"shape\""});
  require_load_refused(file("no_offsets", make_file(R"({"w":{"dtype":"F32","shape":[2]}})", 8)),
                       {"tensor 'w'", "data_offsets"});
  require_load_refused(file("size_mismatch", make_file(R"({"w":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}})", 16)),
                       {"tensor 'w'", "hold 16 bytes but shape [2,2] of F64 needs 32"});
  require_load_refused(file("reversed", make_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8)),
                       {"tensor 'w'", "end before they begin"});
  require_load_refused(file("out_of_range", make_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[100,116]}})", 16)),
                       {"tensor 'w'", "hole of 100 bytes", "truncated data"});
  require_load_refused(
      file("overlap", make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16)),
      {"tensor 'b'", "overlap tensor 'a'"});
  require_load_refused(file("bad_meta", make_file(R"({"__metadata__":{"step":3},)" + ok_entry + "}", 16)),
                       {"metadata 'step' is not a string"});
  require_load_refused(file("duplicate", make_file("{" + ok_entry + "," + ok_entry + "}", 16)),
                       {"'w' appears twice in the header"});
  // Several problems are reported together, with the count.
  require_load_refused(
      file("many", make_file(R"({"a":{"dtype":"Q1","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,12]}})", 12)),
      {"2 problems", "unknown dtype 'Q1'", "tensor 'b'"});
}

TEST_CASE("safetensors: load_into checks names, shapes and dtypes before copying", "[safetensors][errors]") {
  const std::string path = temp_dir() + "/model.safetensors";
  Tensor w = rand_tensor({40, 25}, DType::F32, 1), b = rand_tensor({40}, DType::F32, 2);
  save_safetensors(path, {{"fc6_global.weight", w}, {"fc6_global.bias", b}});

  auto model = [] {
    return NamedTensors{{"fc6_global.weight", Tensor::zeros({40, 25})}, {"fc6_global.bias", Tensor::zeros({40})}};
  };
  NamedTensors m = model();
  LoadResult r = load_into(path, m);
  CHECK(r.loaded == std::vector<std::string>{"fc6_global.weight", "fc6_global.bias"});
  CHECK(r.missing.empty());
  CHECK(bits_equal(m[0].second, w));
  CHECK(bits_equal(m[1].second, b));

  // Wrong shape: the message of the spec, and nothing is copied.
  m = {{"fc6_global.weight", Tensor::zeros({10, 12})}, {"fc6_global.bias", Tensor::zeros({40})}};
  require_refused([&] { load_into(path, m); }, path,
                  {"tensor 'fc6_global.weight' has shape [40,25], the model expects [10,12]"});
  CHECK(m[1].second.to_vector()[0] == 0.0f);
  // Wrong dtype.
  m = {{"fc6_global.weight", Tensor::zeros({40, 25}, DType::F64)}, {"fc6_global.bias", Tensor::zeros({40})}};
  require_refused([&] { load_into(path, m); }, path, {"tensor 'fc6_global.weight' is F32, the model expects F64"});
  // Missing tensor; then allowed, and the missing parameter keeps its value.
  m = model();
  m.push_back({"fc7_fusion.weight", Tensor::full({3, 3}, 0.5)});
  require_refused([&] { load_into(path, m); }, path, {"missing tensor 'fc7_fusion.weight'", "[3,3]"});
  r = load_into(path, m, {/*allow_missing=*/true, false});
  CHECK(r.missing == std::vector<std::string>{"fc7_fusion.weight"});
  CHECK(m[2].second.to_vector()[4] == 0.5f);
  CHECK(bits_equal(m[0].second, w));
  // Unexpected tensor; then allowed.
  m = {{"fc6_global.weight", Tensor::zeros({40, 25})}};
  require_refused([&] { load_into(path, m); }, path, {"unexpected tensor 'fc6_global.bias'"});
  r = load_into(path, m, {false, /*allow_unexpected=*/true});
  CHECK(r.unexpected == std::vector<std::string>{"fc6_global.bias"});
  CHECK(bits_equal(m[0].second, w));
  // All problems together: first few and the count.
  NamedTensors many;
  for (int i = 0; i < 12; ++i) many.push_back({cat("p", i), Tensor::zeros({1})});
  require_refused([&] { load_into(path, many); }, path, {"14 problems", "missing tensor 'p0'", "(and 6 more)"});
  // A corrupt file is refused the same way through load_into.
  write_bytes(temp_dir() + "/junk.safetensors", "not a checkpoint at all");
  require_refused([&] { load_into(temp_dir() + "/junk.safetensors", model()); }, temp_dir() + "/junk.safetensors",
                  {"truncated file"});
  require_refused([&] { load_into(temp_dir() + "/absent.safetensors", model()); }, temp_dir() + "/absent.safetensors",
                  {"cannot open"});
}

TEST_CASE("safetensors: a failing save leaves the previous file intact", "[safetensors][atomic]") {
  const std::string path = temp_dir() + "/atomic.safetensors";
  Tensor a = rand_tensor({64, 64}, DType::F32, 5);
  save_safetensors(path, {{"a", a}}, {{"version", "1"}});
  const std::string before = read_bytes(path);
  auto no_temp_files = [&] {
    for (const auto& e : fs::directory_iterator(temp_dir()))
      if (e.path().string().find(".tmp.") != std::string::npos) return false;
    return true;
  };

  // A failure part way through the data (a full disk, simulated).
  atomic_file_inject_failure(1000);
  Tensor big = rand_tensor({128, 128}, DType::F32, 6);
  try {
    save_safetensors(path, {{"a", big}}, {{"version", "2"}});
    FAIL("the injected failure did not fire");
  } catch (const fn::Error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find("injected") != std::string::npos);
  }
  CHECK(read_bytes(path) == before);
  CHECK(no_temp_files());
  CHECK(load_safetensors(path).metadata.at("version") == "1");

  // A folder that does not exist: an error naming the path, nothing created.
  const std::string nowhere = temp_dir() + "/no/such/folder/x.safetensors";
  require_refused([&] { save_safetensors(nowhere, {{"a", a}}); }, nowhere, {"not saved", "cannot open", "does the folder exist"});
  CHECK(!fs::exists(nowhere));
  // Invalid names are refused before anything is written.
  require_refused([&] { save_safetensors(path, {{"a", a}, {"a", big}}); }, path, {"tensor 'a' appears twice"});
  require_refused([&] { save_safetensors(path, {{"__metadata__", a}}); }, path, {"'__metadata__' cannot name"});
  require_refused([&] { save_safetensors(path, {{"u", Tensor()}}); }, path, {"tensor 'u' is undefined"});
  require_refused([&] { save_safetensors(path, {{std::string("bad\xff"), a}}); }, path, {"UTF-8"});
  CHECK(read_bytes(path) == before);
  CHECK(no_temp_files());

  // The next save succeeds and replaces the file (the hook reset itself).
  save_safetensors(path, {{"a", big}}, {{"version", "2"}});
  CHECK(bits_equal(load_safetensors(path).get("a"), big));
  CHECK(no_temp_files());
}

TEST_CASE("safetensors: CUDA tensors save and load", "[safetensors][cuda]") {
  FN_REQUIRE_CUDA();
  const std::string path = temp_dir() + "/cuda.safetensors";
  Tensor w = rand_tensor({33, 45}, DType::F32, 9);
  save_safetensors(path, {{"w", w.to(Device::CUDA)}});
  CHECK(bits_equal(load_safetensors(path).get("w"), w));
  NamedTensors m = {{"w", Tensor::zeros({33, 45}, DType::F32, Device::CUDA)}};
  load_into(path, m);
  CHECK(m[0].second.is_cuda());
  CHECK(bits_equal(m[0].second.cpu(), w));
}

TEST_CASE("atomic files: a dead process's temporary files are removed, a live one's and others are kept",
          "[safetensors][atomic]") {
  const std::string dir = temp_dir() + "/leftovers";
  std::filesystem::create_directories(dir);
  const pid_t dead = ::fork();  // a child that exits at once: its pid names no process once reaped
  if (dead == 0) std::_Exit(0);
  REQUIRE(dead > 0);
  int status = 0;
  REQUIRE(::waitpid(dead, &status, 0) == dead);
  const std::string mine = cat("last.safetensors.tmp.", ::getpid()), gone = cat("last.safetensors.tmp.", dead);
  for (const std::string& name : {mine, gone, std::string("notes.tmp.txt"), std::string("best.safetensors")})
    write_bytes(dir + "/" + name, "x");
  const std::vector<std::string> removed = remove_dead_temporaries(dir);
  REQUIRE(removed == std::vector<std::string>{gone});
  CHECK_FALSE(std::filesystem::exists(dir + "/" + gone));
  CHECK(std::filesystem::exists(dir + "/" + mine));  // this process is alive
  CHECK(std::filesystem::exists(dir + "/notes.tmp.txt"));
  CHECK(std::filesystem::exists(dir + "/best.safetensors"));
  CHECK(remove_dead_temporaries(dir + "/absent").empty());
}
