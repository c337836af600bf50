// Retrieval metrics and the evaluation from embeddings (definitions: retrieval_metrics.h, docs/search.md).
#include "fashionnet/eval/retrieval_metrics.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_map>

#include "kernels/topk_search.h"

namespace fn::fashionnet {

std::vector<int64_t> default_retrieval_ks() { return {1, 5, 10, 20, 30, 40, 50}; }

std::vector<int64_t> parse_ks(const std::string& text) {
  std::vector<int64_t> ks;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    FN_EXPECT(used == item.size() && !item.empty() && v >= 1, "--k: '", item, "' in '", text,
              "' is not a positive integer");
    FN_EXPECT(ks.empty() || v > ks.back(), "--k: values must increase, got ", v, " after ", ks.back(), " in '", text,
              "'");
    ks.push_back(v);
    start = end + 1;
  }
  return ks;
}

RetrievalMetrics retrieval_metrics(const int32_t* neighbours, int64_t queries, int64_t cols,
                                   const std::vector<std::string>& query_items,
                                   const std::vector<std::string>& gallery_items, const std::vector<int64_t>& ks) {
  const int64_t ng = int64_t(gallery_items.size());
  FN_CHECK(int64_t(query_items.size()) == queries, "retrieval_metrics: ", query_items.size(), " query item ids for ",
           queries, " queries");
  FN_CHECK(!ks.empty(), "retrieval_metrics: no k given");
  for (size_t i = 0; i < ks.size(); ++i)
    FN_CHECK(ks[i] >= 1 && (i == 0 || ks[i] > ks[i - 1]), "retrieval_metrics: ks must be positive and increasing");
  const int64_t need = std::min(ks.back(), ng);
  FN_CHECK(cols >= need, "retrieval_metrics: k = ", ks.back(), " needs ", need, " neighbours per query, got ", cols);

  // Item ids to dense numbers, and the number of gallery images of each item.
  std::unordered_map<std::string, int32_t> number;
  std::vector<int32_t> gallery_item(static_cast<size_t>(ng));
  std::vector<int64_t> gallery_count;
  for (int64_t j = 0; j < ng; ++j) {
    auto it = number.emplace(gallery_items[size_t(j)], int32_t(gallery_count.size())).first;
    if (it->second == int32_t(gallery_count.size())) gallery_count.push_back(0);
    gallery_item[size_t(j)] = it->second;
    ++gallery_count[size_t(it->second)];
  }

  RetrievalMetrics m;
  m.ks = ks;
  m.queries = queries;
  m.gallery = ng;
  m.top_k_accuracy.assign(ks.size(), 0.0);  // sums over queries first, means at the end
  m.recall_at_k.assign(ks.size(), 0.0);
  m.map_at_k.assign(ks.size(), 0.0);
  std::vector<char> seen(static_cast<size_t>(ng), 0);
  for (int64_t q = 0; q < queries; ++q) {
    const int32_t* row = neighbours + q * cols;
    for (int64_t c = 0; c < need; ++c) {  // refuse malformed lists before counting anything
      FN_CHECK(row[c] >= 0 && row[c] < ng, "retrieval_metrics: query ", q, " rank ", c, ": gallery row ", row[c],
               " out of range [0, ", ng, ")");
      FN_CHECK(!seen[size_t(row[c])], "retrieval_metrics: query ", q, " lists gallery row ", row[c], " twice");
      seen[size_t(row[c])] = 1;
    }
    for (int64_t c = 0; c < need; ++c) seen[size_t(row[c])] = 0;

    auto it = number.find(query_items[size_t(q)]);
    if (it == number.end()) {
      ++m.queries_without_gallery_item;  // a miss at every k in both metrics
      continue;
    }
    const int32_t item = it->second;
    const int64_t relevant = gallery_count[size_t(item)];
    int64_t found = 0, c = 0;  // found: matches among the first c neighbours
    double precisions = 0;     // the sum of precision@i over the matches at ranks i <= c
    for (size_t t = 0; t < ks.size(); ++t) {
      for (; c < std::min(ks[t], ng); ++c)
        if (gallery_item[size_t(row[c])] == item) precisions += double(++found) / double(c + 1);
      m.top_k_accuracy[t] += found > 0 ? 1.0 : 0.0;
      m.recall_at_k[t] += double(found) / double(relevant);
      m.map_at_k[t] += precisions / double(std::min(relevant, ks[t]));
    }
  }
  for (size_t t = 0; t < ks.size() && queries > 0; ++t) {
    m.top_k_accuracy[t] /= double(queries);
    m.recall_at_k[t] /= double(queries);
    m.map_at_k[t] /= double(queries);
  }
  return m;
}

RetrievalReport evaluate_retrieval(const Embeddings& query, const Embeddings& gallery, const std::vector<int64_t>& ks,
                                   Device device, const std::string& query_name, const std::string& gallery_name) {
  FN_EXPECT(query.rows() > 0, query_name, ": no query embeddings (the set has 0 rows)");
  FN_EXPECT(gallery.rows() > 0, gallery_name, ": no gallery embeddings (the set has 0 rows)");
  FN_EXPECT(query.dim() == gallery.dim(), "dimension mismatch: ", query_name, " has ", query.dim(),
            "-dim embeddings but ", gallery_name, " has ", gallery.dim(), "-dim ones; embed query and gallery with "
            "the same model");
  FN_CHECK(!ks.empty(), "no k given");
  RetrievalReport r;
  r.dim = query.dim();
  r.device = device_name(device);
  Tensor q = query.features.clone(), g = gallery.features.clone();
  r.zero_query_rows = kernels::l2_normalize_rows(q);
  r.zero_gallery_rows = kernels::l2_normalize_rows(g);
  kernels::SearchOptions opt;
  opt.k = std::min(ks.back(), gallery.rows());
  auto t0 = std::chrono::steady_clock::now();
  kernels::Neighbours nb = device == Device::CUDA ? kernels::topk_search(q.to(Device::CUDA), g.to(Device::CUDA), opt)
                                                  : kernels::topk_search(q, g, opt);
  r.search_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.metrics = retrieval_metrics(nb.index.data(), nb.rows, nb.k, query.item_ids, gallery.item_ids, ks);
  return r;
}

std::string format_table(const RetrievalReport& r) {
  const RetrievalMetrics& m = r.metrics;
  std::string s = cat("retrieval: ", m.queries, " queries, ", m.gallery, " gallery images, ", r.dim,
                      " dims, exact search on ", r.device, " in ", r.search_seconds, " s\n");
  s += cat("queries whose item has no gallery image: ", m.queries_without_gallery_item, " (counted as misses)\n");
  if (r.zero_query_rows || r.zero_gallery_rows)
    s += cat("warning: all-zero embeddings: ", r.zero_query_rows, " queries, ", r.zero_gallery_rows, " gallery\n");
  s += "\n     k   top-k accuracy %   recall@k %   mAP@k %\n";
  char line[96];
  for (size_t t = 0; t < m.ks.size(); ++t) {
    std::snprintf(line, sizeof line, "  %4lld   %16.2f   %10.2f   %7.2f\n", (long long)m.ks[t], 100 * m.top_k_accuracy[t],
                  100 * m.recall_at_k[t], 100 * m.map_at_k[t]);
    s += line;
  }
  s += "\ntop-k accuracy: the paper's metric, the fraction of queries with at least one image of their item\n"
       "                among the k nearest gallery images.\n"
       "recall@k:       mmfashion's metric, the mean fraction of the query item's gallery images found among\n"
       "                the k nearest (at most k / that number, so lower than top-k accuracy).\n"
       "mAP@k:          mean average precision over the k nearest: 100% only when each query's first\n"
       "                neighbours are all its item's images.\n";
  return s;
}

nlohmann::json to_json(const RetrievalReport& r) {
  const RetrievalMetrics& m = r.metrics;
  nlohmann::json acc, rec, map;
  for (size_t t = 0; t < m.ks.size(); ++t) {
    acc[std::to_string(m.ks[t])] = m.top_k_accuracy[t];
    rec[std::to_string(m.ks[t])] = m.recall_at_k[t];
    map[std::to_string(m.ks[t])] = m.map_at_k[t];
  }
  return {{"queries", m.queries},
          {"gallery", m.gallery},
          {"dim", r.dim},
          {"device", r.device},
          {"search_seconds", r.search_seconds},
          {"queries_without_gallery_item", m.queries_without_gallery_item},
          {"zero_query_rows", r.zero_query_rows},
          {"zero_gallery_rows", r.zero_gallery_rows},
          {"ks", m.ks},
          {"top_k_accuracy", acc},
          {"recall_at_k_mmfashion", rec},
          {"map_at_k", map}};
}

}  // namespace fn::fashionnet
