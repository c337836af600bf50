// A synthetic dataset for a test: data::synthesize into `out` with the given sizes; returns `out`.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "data/synth.h"

namespace fn::test {

inline std::string synth_dataset(const std::filesystem::path& out, const std::string& benchmark, int items, int views,
                                 int size, uint64_t seed) {
  data::SynthConfig sc;
  sc.out = out.string();
  sc.benchmark = benchmark;
  sc.items = items;
  sc.views = views;
  sc.size = size;
  sc.seed = seed;
  data::synthesize(sc);
  return sc.out;
}

}  // namespace fn::test
