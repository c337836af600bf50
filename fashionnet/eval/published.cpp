#include "fashionnet/eval/published.h"

#include <algorithm>

#include "core/error.h"

namespace fn::fashionnet {
namespace {
// The sources, as docs/fashionnet.md ("Published results") cites them.
const char* const kDeepFashion = "Liu et al., CVPR 2016 (DeepFashion)";
const char* const kLiuLu =
    "Liu & Lu, ECCV Workshops 2018 (Deep Fashion Analysis with Feature Map Upsampling and Landmark-driven Attention)";
const char* const kProxyAnchor = "Kim et al., CVPR 2020 (Proxy Anchor Loss for Deep Metric Learning)";
const char* const kUnicom = "An et al., ICLR 2023 (Unicom: Universal and Compact Representation Learning for Image Retrieval)";
const char* const kGRNet = "Kuang et al., ICCV 2019 (Fashion Retrieval via Graph Reasoning Networks on a Similarity Pyramid)";

const char* const kGroups[] = {"texture", "fabric", "shape", "part", "style", "all"};
}  // namespace

const std::vector<PaperMetric>& paper_metrics() {
  static const std::vector<PaperMetric> rows = [] {
    std::vector<PaperMetric> r;
    r.push_back({"category", "category/top3", "Category", "top-3 accuracy, %"});
    r.push_back({"category", "category/top5", "Category", "top-5 accuracy, %"});
    for (const char* g : kGroups)
      for (int k : {3, 5})
        r.push_back({"category", cat("attributes/", g, "/top", k), cat("Attributes: ", g),
                     cat("top-", k, " recall, %")});
    r.push_back({"category", "landmarks/error_mean8", "Landmarks", "normalised error, mean of 8 slots", false, true});
    for (int k : {1, 10, 20, 30, 50})
      r.push_back({"inshop", cat("retrieval/top", k), "In-shop retrieval", cat("top-", k, " accuracy, %")});
    r.push_back({"consumer2shop", "retrieval/top20", "Consumer-to-shop retrieval", "top-20 accuracy, %"});
    return r;
  }();
  return rows;
}

const std::vector<PublishedResult>& published_results() {
  static const std::vector<PublishedResult> all = [] {
    std::vector<PublishedResult> r;
    auto fashionnet = [&](const char* b, const std::string& m, double v) { r.push_back({b, m, v, kFashionNet, kDeepFashion}); };
    // Category and Attribute Prediction (50 categories, 1,000 attributes in 5 groups).
    fashionnet("category", "category/top3", 82.58);
    fashionnet("category", "category/top5", 90.17);
    r.push_back({"category", "category/top3", 91.16, "Liu & Lu", kLiuLu});
    r.push_back({"category", "category/top5", 96.12, "Liu & Lu", kLiuLu});
    const double attr[6][2] = {{37.46, 49.52}, {39.30, 49.84}, {39.47, 48.59}, {44.13, 54.02}, {66.43, 73.16}, {45.52, 54.61}};
    for (int g = 0; g < 6; ++g)
      for (int k = 0; k < 2; ++k) fashionnet("category", cat("attributes/", kGroups[g], "/top", k ? 5 : 3), attr[g][k]);
    r.push_back({"category", "attributes/all/top3", 54.69, "Liu & Lu", kLiuLu});
    r.push_back({"category", "attributes/all/top5", 63.74, "Liu & Lu", kLiuLu});
    // Landmarks on the Category benchmark's images (DeepFashion-C), the mean of the 8 slots' errors.
    fashionnet("category", "landmarks/error_mean8", 0.0872);
    r.push_back({"category", "landmarks/error_mean8", 0.0474, "Liu & Lu", kLiuLu});
    // In-shop Clothes Retrieval. The metric-learning papers' Recall@k is this top-k accuracy (a hit among the
    // k nearest), not mmfashion's recall@k.
    const int ks[] = {1, 10, 20, 30, 50};
    const double inshop[] = {53.0, 73.0, 76.4, 77.0, 80.0};
    for (int i = 0; i < 5; ++i) fashionnet("inshop", cat("retrieval/top", ks[i]), inshop[i]);
    r.push_back({"inshop", "retrieval/top1", 91.9, "Proxy-Anchor (BN-Inception, a CNN)", kProxyAnchor});
    r.push_back({"inshop", "retrieval/top1", 96.7, "UNICOM (ViT-L, web-pretrained)", kUnicom});
    // Consumer-to-shop Clothes Retrieval.
    fashionnet("consumer2shop", "retrieval/top20", 18.8);
    r.push_back({"consumer2shop", "retrieval/top20", 64.5, "GRNet (graph reasoning)", kGRNet});
    return r;
  }();
  return all;
}

std::vector<PublishedResult> published_for(const std::string& benchmark, const std::string& metric) {
  std::vector<PublishedResult> r;
  for (const PublishedResult& p : published_results())
    if (p.benchmark == benchmark && p.metric == metric) r.push_back(p);
  std::stable_partition(r.begin(), r.end(), [](const PublishedResult& p) { return p.method == kFashionNet; });
  return r;
}

const std::string& synthetic_data_warning() {
  static const std::string w =
      "SYNTHETIC DATA: these figures were measured on images drawn by `fashionnet synth`, not on DeepFashion; "
      "they are NOT comparable with the published numbers beside them.";
  return w;
}

const std::string& real_data_note() {
  static const std::string n =
      "The published figures are on each benchmark's complete test split (In-shop: all 14,218 queries against "
      "the 12,612 gallery images); ours compare with them only when scored on the same split.";
  return n;
}

}  // namespace fn::fashionnet
