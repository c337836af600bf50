// Part k of n items split into `parts` contiguous, nearly equal shares: [k*n/parts, (k+1)*n/parts). The one
// rule behind a rank's share of the global batch (data/loader), a process's loss parts (fashionnet/train/step)
// and a rank's share of evaluation's images (dist): they must agree for ranks and parts to compute the same
// step. The shares in order are the items in order.
#pragma once
#include <cstdint>

#include "core/error.h"

namespace fn {

struct Shard {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

inline Shard shard_of(int64_t n, int k, int parts) {
  FN_CHECK(parts > 0 && k >= 0 && k < parts && n >= 0, "share ", k, " of ", parts, " of ", n, " items");
  return {n * k / parts, n * (k + 1) / parts};
}

}  // namespace fn
