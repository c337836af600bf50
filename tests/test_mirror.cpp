// Mirror-averaged inference (fashionnet/eval/mirror.h): the averaging rule on hand-made outputs; an image
// and its mirror image get bitwise the same averaged embedding and logits, and mirrored landmarks;
// run_inference with `mirror` is the two passes of each loader batch averaged; embed_photos with `mirror`
// gives a photo and its mirror-image file the same embedding; evaluate() says that it mirrored; CUDA gives
// the CPU's figures.
#include <filesystem>
#include <memory>

#include "core/autograd.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "data/transform.h"
#include "fashionnet/eval/evaluate.h"
#include "fashionnet/eval/mirror.h"
#include "fashionnet/eval/photo_search.h"
#include "fashionnet/model/batch.h"
#include "tests/support/check.h"
#include "tests/support/synth_dataset.h"
#include "tests/support/temp_dir.h"

using namespace fn;
using namespace fn::fashionnet;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

// A small synthetic In-shop dataset in `dir`, and all its sample indices.
data::Dataset small_dataset(const TempDir& dir, int items, uint64_t seed, std::vector<int>& all) {
  data::Dataset ds = data::load_dataset(test::synth_dataset(dir.path / "data", "inshop", items, 2, 64, seed), "inshop");
  all.resize(ds.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int(i);
  return ds;
}

// The tiny preset's network with the local branch, in evaluation mode.
FashionNet& tiny_model() {
  static std::unique_ptr<FashionNet> net = [] {
    auto n = std::make_unique<FashionNet>(preset("tiny").net, 17);
    n->eval();
    return n;
  }();
  return *net;
}

std::vector<double> as_f64(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

}  // namespace

TEST_CASE("average_with_mirrored: the mean, the mirrored pass's landmarks mapped back and L/R swapped", "[mirror]") {
  HostOutputs o, m;
  o.n = m.n = 1;
  o.embedding = {1, 3};
  m.embedding = {3, 5};
  o.category = {0, -2, 4};
  m.category = {2, 2, 0};
  o.landmark_loc.assign(2 * kSlots, 0.f);
  m.landmark_loc.assign(2 * kSlots, 0.f);
  o.landmark_vis.assign(2 * kSlots, 0.f);
  m.landmark_vis.assign(2 * kSlots, 0.f);
  o.landmark_loc[0] = 0.2f, o.landmark_loc[1] = 0.3f;  // slot 0 (left collar)
  m.landmark_loc[2] = 0.6f, m.landmark_loc[3] = 0.4f;  // slot 1 of the mirror image is slot 0 of the image
  o.landmark_vis[0] = 1.f, o.landmark_vis[1] = 3.f;
  m.landmark_vis[2] = 5.f, m.landmark_vis[3] = -1.f;
  average_with_mirrored(o, m, 10);  // 10-pixel input: x -> 0.9 - x
  CHECK(o.embedding == std::vector<float>{2, 4});
  CHECK(o.category == std::vector<float>{1, 0, 2});
  CHECK(o.attributes.empty());
  CHECK(o.landmark_loc[0] == Approx(0.5 * (0.2 + (0.9 - 0.6))));
  CHECK(o.landmark_loc[1] == Approx(0.35));
  CHECK(o.landmark_vis[0] == 3.f);
  CHECK(o.landmark_vis[1] == 1.f);
  CHECK(visible_from_logits(o.landmark_vis)[0] == 1.f);  // the averaged logits decide: 3 >= 1
  CHECK(o.landmark_loc[2] == Approx(0.5 * 0.9));          // slot 1 takes the mirror's slot 0 at x = 0
  HostOutputs bad = m;
  bad.embedding.push_back(0);
  CHECK_THROWS_WITH(average_with_mirrored(o, bad, 10), Catch::Contains("differ in shape"));
}

TEST_CASE("mirror: an image and its mirror image average to the same embedding, mirrored landmarks", "[mirror]") {
  NoGradGuard ng;
  const FashionNet& net = tiny_model();
  const int s = net.config().input;
  const int64_t n = 3;
  Rng rng(5, 1);
  const std::vector<float> x = Tensor::uniform({n, 3, s, s}, rng, -1.0, 1.0).to_vector();
  std::vector<float> xm = x;
  data::mirror_chw(xm.data(), n, s);
  const Shape shape{n, 3, s, s};
  auto averaged = [&](const std::vector<float>& a, const std::vector<float>& b) {
    HostOutputs h = forward_to_host(net, Tensor::from(a, shape), PoolAt{});
    average_with_mirrored(h, forward_to_host(net, Tensor::from(b, shape), PoolAt{}), s);
    return h;
  };
  const HostOutputs h = averaged(x, xm), hm = averaged(xm, x);
  CHECK(h.embedding == hm.embedding);  // 0.5 (a + b) == 0.5 (b + a), bitwise
  CHECK(h.category == hm.category);
  CHECK(h.attributes == hm.attributes);
  CHECK_FALSE(h.embedding == forward_to_host(net, Tensor::from(x, shape), PoolAt{}).embedding);  // two passes
  const float far = float(s - 1) / float(s);
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < kSlots; ++k) {
      const size_t a = size_t(i * kSlots + k) * 2, b = size_t(i * kSlots + data::mirror_slot(k)) * 2;
      REQUIRE(hm.landmark_loc[b] == Approx(far - h.landmark_loc[a]).margin(1e-6));
      REQUIRE(hm.landmark_loc[b + 1] == h.landmark_loc[a + 1]);
      REQUIRE(hm.landmark_vis[b] == h.landmark_vis[a]);
      REQUIRE(hm.landmark_vis[b + 1] == h.landmark_vis[a + 1]);
    }
}

TEST_CASE("mirror: run_inference averages each loader batch with its mirror image; evaluate says so", "[mirror]") {
  TempDir t("mirror_inference");
  std::vector<int> idx;
  const data::Dataset ds = small_dataset(t, 4, 9, idx);
  FashionNet& net = tiny_model();
  InferenceOptions io;
  io.progress = false;
  io.mirror = true;
  REQUIRE(int(idx.size()) <= io.batch);  // one batch
  const Predictions p = run_inference(net, ds, idx, Device::CPU, io);

  // The same batch by hand: the loader as inference configures it, then both passes.
  data::LoaderConfig lc;
  lc.batch = io.batch;
  lc.input = net.config().input;
  lc.flip = false;
  lc.sampler = data::LoaderConfig::Sequential;
  lc.drop_last = false;
  lc.threads = 0;
  data::Loader loader(ds, idx, lc);
  data::Batch b;
  REQUIRE(loader.next(b));
  data::Batch m = b;
  data::mirror_batch(m);
  NoGradGuard ng;
  HostOutputs h = forward_to_host(net, to_tensors(b, ds, Device::CPU).images, PoolAt{});
  average_with_mirrored(h, forward_to_host(net, to_tensors(m, ds, Device::CPU).images, PoolAt{}), lc.input);
  CHECK(p.embeddings.features.to_vector() == h.embedding);
  CHECK(p.category_logits == h.category);
  CHECK(p.attribute_logits == h.attributes);
  CHECK(p.landmark_pred == h.landmark_loc);
  CHECK(p.vis_pred == visible_from_logits(h.landmark_vis));

  io.mirror = false;
  const Predictions one = run_inference(net, ds, idx, Device::CPU, io);
  CHECK_FALSE(one.category_logits == p.category_logits);
  CHECK(one.landmark_true == p.landmark_true);  // the targets are the unmirrored images'

  EvalOptions eo;
  eo.inference.progress = false;
  eo.inference.mirror = true;
  const EvalResult r = evaluate(net, ds, Device::CPU, eo);
  CHECK(r.mirror);
  CHECK(to_json(r)["mirror"] == true);
  CHECK_THAT(r.scored.description, Catch::Contains("mirror image"));
  eo.inference.mirror = false;
  CHECK(to_json(evaluate(net, ds, Device::CPU, eo))["mirror"] == false);
}

TEST_CASE("mirror: embed_photos gives a photo and its mirror-image file the same embedding", "[mirror]") {
  TempDir t("mirror_photos");
  const std::string a_png = (t.path / "a.png").string(), b_png = (t.path / "b.png").string();
  data::Image img;
  img.w = 50;
  img.h = 70;
  img.rgb.resize(size_t(img.w * img.h * 3));
  Rng rng(3, 4);
  for (auto& v : img.rgb) v = uint8_t(rng.uniform() * 255.0);
  data::Image mirrored = img;
  for (int y = 0; y < img.h; ++y)
    for (int x = 0; x < img.w; ++x)
      for (int c = 0; c < 3; ++c)
        mirrored.rgb[size_t((y * img.w + x) * 3 + c)] = img.rgb[size_t((y * img.w + img.w - 1 - x) * 3 + c)];
  data::write_image(a_png, img);
  data::write_image(b_png, mirrored);
  FashionNet& net = tiny_model();
  PhotoOptions po;
  po.batch = 2;
  const PhotoEmbeddings one = embed_photos(net, {a_png, b_png}, Device::CPU, po);
  po.mirror = true;
  const PhotoEmbeddings two = embed_photos(net, {a_png, b_png}, Device::CPU, po);
  const int64_t d = two.embeddings.dim();
  const std::vector<float> e = two.embeddings.features.to_vector(), e1 = one.embeddings.features.to_vector();
  const std::vector<float> a(e.begin(), e.begin() + d), b(e.begin() + d, e.end());
  FN_REQUIRE_CLOSE(as_f64(b), as_f64(a), 1e-5, 1e-4);  // the resize is symmetric up to float rounding
  CHECK_FALSE(std::vector<float>(e1.begin(), e1.begin() + d) == a);  // one pass differs
  // The landmarks, in fractions of the photo: slot k of one is slot mirror(k) of the other, x -> 1 - x.
  for (int k = 0; k < kSlots; ++k) {
    const int mk = data::mirror_slot(k);
    REQUIRE(two.landmarks[size_t(2 * k)] == Approx(1.f - two.landmarks[size_t(2 * (kSlots + mk))]).margin(1e-4));
    REQUIRE(two.landmarks[size_t(2 * k + 1)] == Approx(two.landmarks[size_t(2 * (kSlots + mk) + 1)]).margin(1e-4));
  }
}

TEST_CASE("mirror: run_inference on CUDA gives the CPU's averaged outputs (CUDA)", "[mirror]") {
  FN_REQUIRE_CUDA();
  TempDir t("mirror_cuda");
  std::vector<int> idx;
  const data::Dataset ds = small_dataset(t, 3, 10, idx);
  InferenceOptions io;
  io.progress = false;
  io.mirror = true;
  Predictions p[2];
  for (int k = 0; k < 2; ++k) {
    const Device d = k == 0 ? Device::CPU : Device::CUDA;
    FashionNet net(preset("tiny").net, 17);
    net.to(d);
    p[k] = run_inference(net, ds, idx, d, io);
  }
  FN_REQUIRE_CLOSE(as_f64(p[1].embeddings.features.to_vector()), as_f64(p[0].embeddings.features.to_vector()), 1e-4, 1e-3);
  FN_REQUIRE_CLOSE(as_f64(p[1].category_logits), as_f64(p[0].category_logits), 1e-4, 1e-3);
  FN_REQUIRE_CLOSE(as_f64(p[1].landmark_pred), as_f64(p[0].landmark_pred), 1e-4, 1e-3);
}
