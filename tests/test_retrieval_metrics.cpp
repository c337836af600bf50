// Retrieval metrics on hand-made cases with known answers (ties, items absent from the gallery, duplicate
// images, k = 1 against k = 50), the embedding files, and the refusal of every bad input of `fashionnet metrics`
// (which runs read_embeddings, parse_ks, parse_device and evaluate_retrieval, tested here directly).

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/npy.h"
#include "fashionnet/eval/embedding_io.h"
#include "fashionnet/eval/retrieval_metrics.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using namespace fn::fashionnet;

// Removed when the test executable exits.
std::string temp_dir() { return fn::test::process_temp_dir("retrieval"); }

Embeddings make(const std::vector<float>& v, int64_t dim, const std::vector<std::string>& items) {
  Embeddings e;
  e.features = fn::Tensor::from(v, {int64_t(items.size()), dim});
  e.item_ids = items;
  for (size_t i = 0; i < items.size(); ++i) e.image_paths.push_back("img/" + items[i] + "_" + std::to_string(i) + ".jpg");
  return e;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

void require_error(const std::function<void()>& f, const std::vector<std::string>& phrases) {
  try {
    f();
    FAIL("no error; expected one containing '" << phrases.front() << "'");
  } catch (const fn::Error& e) {
    std::string msg = e.what();
    INFO(msg);
    for (auto& p : phrases) CHECK(msg.find(p) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("metrics: hand-made neighbour lists give the known hit rates and recalls", "[metrics]") {
  // Gallery rows 0..4 have items A B A C B (A: 2 images, B: 2, C: 1).
  const std::vector<std::string> gallery = {"A", "B", "A", "C", "B"};
  const std::vector<std::string> queries = {"A", "C", "D"};  // D has no gallery image
  const std::vector<int32_t> nb = {
      1, 3, 0, 2, 4,  // A: first A at rank 3, second at rank 4
      3, 0, 1, 2, 4,  // C: found at rank 1
      0, 1, 2, 3, 4,  // D: never found
  };
  RetrievalMetrics m = retrieval_metrics(nb.data(), 3, 5, queries, gallery, {1, 3, 4, 5});
  REQUIRE(m.queries == 3);
  REQUIRE(m.queries_without_gallery_item == 1);
  // Hit rate: k=1 only C; k>=3 A and C. The absent item counts as a miss.
  FN_REQUIRE_CLOSE(m.top_k_accuracy, (std::vector<double>{1.0 / 3, 2.0 / 3, 2.0 / 3, 2.0 / 3}), 1e-12, 0);
  // Recall: A finds 0, 1/2, 2/2, 2/2 of its images; C 1 at every k; D 0.
  FN_REQUIRE_CLOSE(m.recall_at_k, (std::vector<double>{1.0 / 3, 1.5 / 3, 2.0 / 3, 2.0 / 3}), 1e-12, 0);
  // mAP@k: A's AP is (1/3) / 2 at k = 3 and (1/3 + 2/4) / 2 from k = 4; C's is 1; D's 0.
  FN_REQUIRE_CLOSE(m.map_at_k, (std::vector<double>{1.0 / 3, (1.0 / 6 + 1) / 3, (5.0 / 12 + 1) / 3, (5.0 / 12 + 1) / 3}),
                   1e-12, 0);
}

TEST_CASE("metrics: recall is the fraction of the item's gallery images, not the hit rate", "[metrics]") {
  // One query of item X, whose 4 gallery images are ranks 1, 2, 5 and 9 of 10.
  std::vector<std::string> gallery(10, "Y");
  for (int r : {0, 1, 4, 8}) gallery[size_t(r)] = "X";
  std::vector<int32_t> nb(10);
  for (int i = 0; i < 10; ++i) nb[size_t(i)] = i;
  RetrievalMetrics m = retrieval_metrics(nb.data(), 1, 10, {"X"}, gallery, {1, 2, 5, 9, 10});
  FN_REQUIRE_CLOSE(m.top_k_accuracy, (std::vector<double>{1, 1, 1, 1, 1}), 0, 0);
  FN_REQUIRE_CLOSE(m.recall_at_k, (std::vector<double>{0.25, 0.5, 0.75, 1.0, 1.0}), 1e-12, 0);
  // mAP@k divides by min(4, k): 1 while every neighbour so far is an X, then below 1 although top-k stays 1.
  FN_REQUIRE_CLOSE(m.map_at_k, (std::vector<double>{1, 1, (2 + 3.0 / 5) / 4, (2 + 3.0 / 5 + 4.0 / 9) / 4,
                                                   (2 + 3.0 / 5 + 4.0 / 9) / 4}),
                   1e-12, 0);
}

TEST_CASE("metrics: k larger than the gallery takes the whole gallery; k = 1 against k = 50", "[metrics]") {
  // 2-D unit vectors; gallery P (1,0), Q (0,1), P (0.6,0.8). Query item P at (0,1): nearest is Q.
  Embeddings g = make({1, 0, 0, 1, 0.6f, 0.8f}, 2, {"P", "Q", "P"});
  Embeddings q = make({0, 1, 0, 1}, 2, {"P", "Z"});
  RetrievalReport r = evaluate_retrieval(q, g, {1, 2, 50}, fn::Device::CPU);
  REQUIRE(r.metrics.gallery == 3);
  FN_REQUIRE_CLOSE(r.metrics.top_k_accuracy, (std::vector<double>{0, 0.5, 0.5}), 1e-12, 0);
  FN_REQUIRE_CLOSE(r.metrics.recall_at_k, (std::vector<double>{0, 0.25, 0.5}), 1e-12, 0);
  REQUIRE(r.metrics.queries_without_gallery_item == 1);
}

TEST_CASE("metrics: ties go to the lower gallery row, duplicates count once each", "[metrics][ties]") {
  // Gallery rows 0 and 1 are the same vector with different items; the query equals it. The tie rule puts
  // row 0 (item X) first, so the query of item Y misses at k = 1 and hits at k = 2. Rows 2..4 are three
  // duplicate images of item Z, equal to the second query: recall@1 = 1/3, recall@3 = 1.
  Embeddings g = make({1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0}, 3, {"X", "Y", "Z", "Z", "Z"});
  Embeddings q = make({2, 0, 0, 0, 3, 0, 0, 3, 0}, 3, {"Y", "Z", "Z"});  // not unit: normalised by the evaluation
  RetrievalReport r = evaluate_retrieval(q, g, {1, 2, 3}, fn::Device::CPU);
  FN_REQUIRE_CLOSE(r.metrics.top_k_accuracy, (std::vector<double>{2.0 / 3, 1, 1}), 1e-12, 0);
  FN_REQUIRE_CLOSE(r.metrics.recall_at_k, (std::vector<double>{(0 + 1.0 / 3 + 1.0 / 3) / 3, (1 + 2.0 / 3 + 2.0 / 3) / 3, 1}),
                   1e-12, 0);
}

TEST_CASE("metrics: malformed neighbour lists and k lists are refused", "[metrics]") {
  const std::vector<std::string> gallery = {"A", "B", "C"};
  const std::vector<int32_t> dup = {0, 0, 1}, out = {0, 3, 1};
  require_error([&] { retrieval_metrics(dup.data(), 1, 3, {"A"}, gallery, {3}); }, {"lists gallery row 0 twice"});
  require_error([&] { retrieval_metrics(out.data(), 1, 3, {"A"}, gallery, {3}); }, {"out of range"});
  require_error([&] { retrieval_metrics(dup.data(), 1, 1, {"A"}, gallery, {2}); }, {"needs 2 neighbours"});
  require_error([&] { retrieval_metrics(dup.data(), 1, 3, {"A", "B"}, gallery, {1}); }, {"2 query item ids for 1"});
  REQUIRE(parse_ks("1,5,10,20,30,40,50") == default_retrieval_ks());
  require_error([] { parse_ks("1,x"); }, {"'x'", "not a positive integer"});
  require_error([] { parse_ks("0,5"); }, {"'0'"});
  require_error([] { parse_ks("5,1"); }, {"must increase"});
  require_error([] { parse_ks("1,,5"); }, {"''"});
  require_error([] { parse_ks("3.5"); }, {"'3.5'"});
}

TEST_CASE("embeddings: write then read back, and the ids file format", "[metrics][io]") {
  const std::string p = temp_dir() + "/rt";
  Embeddings e = make({1, 2, 3, 4, 5, 6}, 3, {"id_1", "id_2"});
  write_embeddings(p, e);
  Embeddings back = read_embeddings(p);
  REQUIRE(back.item_ids == e.item_ids);
  REQUIRE(back.image_paths == e.image_paths);
  REQUIRE(back.features.to_vector() == e.features.to_vector());
  // CRLF line ends and a trailing blank line are tolerated.
  write_text(p + ".ids.txt", "a.jpg id_1\r\nb.jpg\tid_2\n\n");
  REQUIRE(read_embeddings(p).item_ids == std::vector<std::string>{"id_1", "id_2"});
  Embeddings spaced = make({1, 2, 3}, 3, {"id 1"});
  require_error([&] { write_embeddings(temp_dir() + "/sp", spaced); }, {"sp.ids.txt", "white space"});
}

TEST_CASE("metrics command: every bad input is refused with a message naming the file", "[metrics][io]") {
  const std::string d = temp_dir();
  Embeddings good = make({1, 0, 0, 0, 1, 0}, 3, {"A", "B"});
  write_embeddings(d + "/good", good);

  // Row counts of the .npy and the ids file differ.
  write_embeddings(d + "/rows", good);
  write_text(d + "/rows.ids.txt", "a.jpg A\n");
  require_error([&] { read_embeddings(d + "/rows"); }, {"rows.npy has 2 rows", "rows.ids.txt has 1 lines"});
  // Malformed ids lines, each named by its line number.
  write_embeddings(d + "/ids1", good);
  write_text(d + "/ids1.ids.txt", "a.jpg A\nb.jpg\n");
  require_error([&] { read_embeddings(d + "/ids1"); }, {"ids1.ids.txt: line 2 has no item id"});
  write_text(d + "/ids1.ids.txt", "a.jpg A extra\nb.jpg B\n");
  require_error([&] { read_embeddings(d + "/ids1"); }, {"ids1.ids.txt: line 1 has more than two fields"});
  write_text(d + "/ids1.ids.txt", "a.jpg A\n\nb.jpg B\n");
  require_error([&] { read_embeddings(d + "/ids1"); }, {"ids1.ids.txt: line 2 is empty"});
  // Missing files.
  require_error([&] { read_embeddings(d + "/nothing"); }, {"nothing.npy: cannot open"});
  write_embeddings(d + "/noids", good);
  fs::remove(d + "/noids.ids.txt");
  require_error([&] { read_embeddings(d + "/noids"); }, {"noids.ids.txt: cannot open"});
  // NaN and Inf in an embedding, named by file, row and image.
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    Embeddings e = make({1, 0, 0, 1, bad, 0}, 3, {"A", "B"});
    write_embeddings(d + "/nan", e);
    require_error([&] { read_embeddings(d + "/nan"); }, {"nan.npy: row 1", "column 1", "must be finite"});
  }
  // A malformed .npy.
  write_embeddings(d + "/npy", good);
  write_text(d + "/npy.npy", "not numpy at all");
  require_error([&] { read_embeddings(d + "/npy"); }, {"npy.npy: not a .npy file"});
  // Dimension mismatch between query and gallery.
  Embeddings four = make({1, 0, 0, 0}, 4, {"A"});
  require_error([&] { evaluate_retrieval(four, good, {1}, fn::Device::CPU, "q.npy", "g.npy"); },
                {"dimension mismatch", "q.npy has 4-dim", "g.npy has 3"});
  // Empty sets.
  Embeddings none = make({}, 3, {});
  require_error([&] { evaluate_retrieval(none, good, {1}, fn::Device::CPU, "q.npy", "g.npy"); }, {"q.npy: no query"});
  require_error([&] { evaluate_retrieval(good, none, {1}, fn::Device::CPU, "q.npy", "g.npy"); }, {"g.npy: no gallery"});
  // A device that is not there, or not a device.
  if (!fn::cuda_available()) require_error([] { fn::parse_device("cuda"); }, {"--device cuda"});
  require_error([] { fn::parse_device("tpu"); }, {"unknown device 'tpu'"});
  // And the good files pass through the whole evaluation.
  Embeddings q = read_embeddings(d + "/good");
  RetrievalReport r = evaluate_retrieval(q, read_embeddings(d + "/good"), default_retrieval_ks(), fn::Device::CPU);
  FN_REQUIRE_CLOSE(r.metrics.top_k_accuracy, std::vector<double>(7, 1.0), 0, 0);
  std::string table = format_table(r);
  CHECK(table.find("top-k accuracy") != std::string::npos);
  CHECK(table.find("recall@k") != std::string::npos);
  CHECK(to_json(r)["top_k_accuracy"]["1"] == 1.0);
}

TEST_CASE("metrics: CUDA evaluation equals the CPU", "[metrics][cuda]") {
  FN_REQUIRE_CUDA();
  fn::Rng rng(5, 0);
  std::vector<std::string> gi, qi;
  for (int i = 0; i < 500; ++i) gi.push_back("item" + std::to_string(i % 97));
  for (int i = 0; i < 200; ++i) qi.push_back("item" + std::to_string(i % 101));
  Embeddings g = make(fn::Tensor::randn({500, 32}, rng).to_vector(), 32, gi);
  Embeddings q = make(fn::Tensor::randn({200, 32}, rng).to_vector(), 32, qi);
  RetrievalReport c = evaluate_retrieval(q, g, default_retrieval_ks(), fn::Device::CPU);
  RetrievalReport u = evaluate_retrieval(q, g, default_retrieval_ks(), fn::Device::CUDA);
  FN_REQUIRE_CLOSE(u.metrics.top_k_accuracy, c.metrics.top_k_accuracy, 1e-12, 0);
  FN_REQUIRE_CLOSE(u.metrics.recall_at_k, c.metrics.recall_at_k, 1e-12, 0);
}

TEST_CASE("metrics: bad files are user errors (the message only), bad calls internal ones", "[metrics][io]") {
  ::unsetenv("FN_ERROR_LOCATION");
  fn::reload_error_location();
  const std::string d = temp_dir();
  Embeddings good = make({1, 0, 0, 0, 1, 0}, 3, {"A", "B"});
  write_embeddings(d + "/ue", good);
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const fn::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::vector<std::string> user;
  write_text(d + "/ue.ids.txt", "a.jpg A\nb.jpg\n");
  user.push_back(message([&] { read_embeddings(d + "/ue"); }));
  write_text(d + "/ue.ids.txt", "a.jpg A\n");
  user.push_back(message([&] { read_embeddings(d + "/ue"); }));
  fs::remove(d + "/ue.ids.txt");
  user.push_back(message([&] { read_embeddings(d + "/ue"); }));
  user.push_back(message([&] { evaluate_retrieval(make({1, 0, 0, 0}, 4, {"A"}), good, {1}, fn::Device::CPU); }));
  user.push_back(message([] { parse_ks("5,1"); }));
  for (const std::string& m : user) {
    INFO(m);
    CHECK(m != "no error");
    CHECK(m.find("check '") == std::string::npos);
    CHECK(m.find(".cpp:") == std::string::npos);
  }
  // A malformed neighbour list is the engine's own mistake: it keeps the check and the location.
  const std::vector<int32_t> out = {0, 9, 1};
  const std::string internal = message([&] { retrieval_metrics(out.data(), 1, 3, {"A"}, {"A", "B", "A"}, {3}); });
  CHECK(internal.find("check '") != std::string::npos);
  CHECK(internal.find("retrieval_metrics.cpp:") != std::string::npos);
}
