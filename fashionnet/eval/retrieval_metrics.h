// Retrieval metrics of the In-shop and Consumer-to-shop benchmarks (docs/search.md has the definitions with
// examples). For query q with item id y_q, let N_1..N_k be its k nearest gallery rows (nearest first, by
// Euclidean distance on L2-normalised embeddings, ties to the lower gallery row) and n_q the number of
// gallery rows whose item id is y_q.
//
//   top-k accuracy (the paper's, DeepFashion, Liu et al. 2016): the fraction of queries that are hits, a hit
//     being a query with at least one of N_1..N_k of item y_q.
//   recall@k (mmfashion's "Recall@k", open-mmlab/mmfashion retrieval_eval.py): the mean over queries of
//     |{i <= k : item(N_i) = y_q}| / n_q, the fraction of the item's gallery images found in the top k.
//     It is at most k / n_q, so it is well below the hit rate whenever items have several gallery images.
//   mAP@k (mean average precision over the top k, the usual ranking measure of image retrieval): the mean over
//     queries of AP@k = (1 / min(n_q, k)) sum_{i <= k, item(N_i) = y_q} precision@i, precision@i being the
//     fraction of N_1..N_i of item y_q. It is 1 only when the item's first min(n_q, k) neighbours are all its
//     images, so it keeps telling rankings apart after top-k accuracy (and top-1) have reached 100%.
//
// All three average over all queries. A query whose item has no gallery image (n_q = 0) cannot be found: it
// counts as a miss (0) in each, and is counted in queries_without_gallery_item.
// When k exceeds the gallery size, the top k is the whole gallery.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/device.h"
#include "fashionnet/eval/embedding_io.h"

namespace fn::fashionnet {

std::vector<int64_t> default_retrieval_ks();  // 1, 5, 10, 20, 30, 40, 50
// Parses "1,5,10": positive integers, strictly increasing; errors name the offending entry.
std::vector<int64_t> parse_ks(const std::string& text);

struct RetrievalMetrics {
  std::vector<int64_t> ks;
  std::vector<double> top_k_accuracy;  // per k, in [0, 1]
  std::vector<double> recall_at_k;     // per k, in [0, 1]
  std::vector<double> map_at_k;        // per k, in [0, 1]
  int64_t queries = 0;
  int64_t gallery = 0;
  int64_t queries_without_gallery_item = 0;
};

// neighbours: (queries, cols) gallery rows, nearest first; cols must be at least min(max k, gallery size).
// Refuses rows out of range or repeated within a query's list.
RetrievalMetrics retrieval_metrics(const int32_t* neighbours, int64_t queries, int64_t cols,
                                   const std::vector<std::string>& query_items,
                                   const std::vector<std::string>& gallery_items, const std::vector<int64_t>& ks);

// The whole evaluation from embeddings: checks that query and gallery agree in dimension and are not
// empty, L2-normalises copies of both, searches on `device`, and computes the metrics.
struct RetrievalReport {
  RetrievalMetrics metrics;
  int64_t dim = 0;
  std::string device;
  double search_seconds = 0;
  int64_t zero_query_rows = 0, zero_gallery_rows = 0;  // all-zero embeddings (left at zero by normalisation)
};
RetrievalReport evaluate_retrieval(const Embeddings& query, const Embeddings& gallery, const std::vector<int64_t>& ks,
                                   Device device, const std::string& query_name = "query",
                                   const std::string& gallery_name = "gallery");

std::string format_table(const RetrievalReport& r);  // the human table, both metrics named
nlohmann::json to_json(const RetrievalReport& r);

}  // namespace fn::fashionnet
