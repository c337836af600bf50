#include "fashionnet/train/benchmark_weights.h"

#include "core/error.h"

namespace fn::fashionnet {

bool landmark_only(const std::string& benchmark) { return benchmark == "landmark"; }

std::string apply_benchmark_weights(TrainConfig& cfg, const std::string& benchmark) {
  if (!landmark_only(benchmark)) return "";
  bool category = false, attributes = false, triplet = false;
  for (StageConfig& st : cfg.stages) {
    category |= st.weights.category != 0, attributes |= st.weights.attributes != 0, triplet |= st.weights.triplet != 0;
    st.weights.category = st.weights.attributes = st.weights.triplet = 0;
  }
  std::string zeroed;
  for (auto [on, name] : {std::pair{category, "category"}, {attributes, "attributes"}, {triplet, "triplet"}})
    if (on) zeroed += (zeroed.empty() ? "" : ", ") + std::string(name);
  return cat("landmark benchmark: training the landmark and visibility terms only (",
             zeroed.empty() ? "the configuration weighs category, attributes and triplet 0 already"
                            : cat("weights of ", zeroed, " set to 0: the benchmark has no such labels"),
             ")");
}

std::string trained_terms(const TrainConfig& cfg) {
  LossWeights any{0, 0, 0, 0, 0};
  for (const StageConfig& st : cfg.stages) {
    any.landmarks += st.weights.landmarks > 0, any.visibility += st.weights.visibility > 0;
    any.category += st.weights.category > 0, any.attributes += st.weights.attributes > 0;
    any.triplet += st.weights.triplet > 0;
  }
  std::string s;
  for (auto [w, name] : {std::pair{any.landmarks, "landmarks"}, {any.visibility, "visibility"},
                         {any.category, "category"}, {any.attributes, "attributes"}, {any.triplet, "triplet"}})
    if (w > 0) s += (s.empty() ? "" : ", ") + std::string(name);
  return s.empty() ? "none" : s;
}

}  // namespace fn::fashionnet
