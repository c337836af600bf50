// bench/realphotos/category_retrieval.py, the real-photo retrieval by class of docs/RESULTS.md: its hold-out is
// the trainer's (data::holdout_indices, restated in Python by bench/pytorch/holdout.py, which the PyTorch
// fine-tune scripts share), and its figures on embeddings whose answers are known. Skipped, saying why, where Debian's python lacks numpy.
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "data/split.h"
#include "fashionnet/eval/embedding_io.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

using namespace fn;

namespace {

// Runs the script on `prefix` with `args`; its exit status, and its standard output in `out`.
int run_script(const std::string& prefix, const std::string& args, std::string& out) {
  const std::string cmd = cat("/usr/bin/python3 ", FN_SOURCE_DIR, "/bench/realphotos/category_retrieval.py ", prefix,
                              " ", args, " 2>/dev/null");
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  out.clear();
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("category_retrieval.py: the trainer's hold-out, and the figures on known embeddings", "[realphotos]") {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    std::printf("SKIPPED: /usr/bin/python3 lacks numpy (apt-get install python3-numpy)\n");
    return;
  }
  test::TempDir dir("category_retrieval");
  // 600 photos of 3 classes, interleaved a, b, c, a, ...; each class's embedding a direction of its own.
  data::Dataset ds;
  ds.benchmark = "imagefolder";
  fashionnet::Embeddings e;
  const char* classes[3] = {"a", "b", "c"};
  for (int i = 0; i < 600; ++i) {
    data::Sample s;
    s.image = cat(classes[i % 3], "/id_", 10000 + i, ".jpg");
    ds.samples.push_back(s);
    e.image_paths.push_back(s.image);
    e.item_ids.push_back(cat("id_", 10000 + i));
  }
  const std::vector<int> held = data::holdout_indices(ds, 0.1);
  REQUIRE(held.size() > 20);
  REQUIRE(held.size() < 100);
  const std::string expect = cat("--holdout 0.1 --expect ", held.size());
  // `c_like_a`: class c's photos point where a's do, so each c query meets a tie, broken by the gallery's order
  // (an "a" first): a miss at rank 1.
  auto figures = [&](bool c_like_a) {
    std::vector<float> feats;
    for (int i = 0; i < 600; ++i) {
      const int c = i % 3, axis = c == 2 && c_like_a ? 0 : c;
      for (int k = 0; k < 3; ++k) feats.push_back(k == axis ? 1.f : 0.f);
    }
    e.features = Tensor::from(feats, {600, 3});
    const std::string prefix = (dir.path / (c_like_a ? "tied" : "apart")).string();
    fashionnet::write_embeddings(prefix, e);
    std::string out;
    REQUIRE(run_script(prefix, expect, out) == 0);
    CHECK(run_script(prefix, cat("--holdout 0.1 --expect ", held.size() + 1), out) == 2);  // not the hold-out
    REQUIRE(run_script(prefix, expect, out) == 0);
    return nlohmann::json::parse(out);
  };
  const nlohmann::json apart = figures(false);
  CHECK(apart["queries"] == held.size());
  CHECK(apart["gallery"] == 600 - held.size());
  for (const char* k : {"1", "5", "10"}) CHECK(apart["top_k"][k].get<double>() == 1.0);
  CHECK(apart["p_at_10"].get<double>() == 1.0);
  CHECK(apart["map"].get<double>() == Approx(1.0));

  const nlohmann::json tied = figures(true);
  int held_c = 0;
  for (int i : held) held_c += i % 3 == 2;
  REQUIRE(held_c > 0);
  CHECK(tied["top_k"]["1"].get<double>() == Approx(1.0 - double(held_c) / double(held.size())));
  CHECK(tied["top_k"]["5"].get<double>() == 1.0);  // a "c" among the first few of the interleaved tie
  CHECK(tied["map"].get<double>() < 0.9);          // a's and c's queries rank the two classes alternately

  std::string out;
  CHECK(run_script((dir.path / "missing").string(), "", out) == 2);
}
