// GradBucketer: averages parameter gradients across the ranks of a Communicator, in buckets launched while
// the backward still runs (issue 20, item 3; the scheme of PyTorch DDP's reducer, written for this engine).
//
// Layout. The parameters are taken in reverse order of registration (backward produces the last layers'
// gradients first) and packed into buckets of at most `bucket_bytes` (default 25 MiB). A tensor that does
// not fit in what is left of a bucket is split by element ranges and spans buckets, so every bucket but the
// last is exactly full; a bucket holds one dtype. plan_buckets() is that layout, alone, for tests.
//
// A step. For each parameter, once its gradient is final, mark_ready(param) copies it into its buckets'
// flat buffers; a bucket whose segments are all in is launched: MPI_Iallreduce (sum, in place) on the
// host, or ncclAllReduce (ncclAvg) on the Communicator's NCCL stream after an event on the compute stream.
// Buckets are launched strictly in index order on every rank (a full bucket waits for the ones before
// it), as MPI and NCCL require the same order of collectives everywhere. finish() takes every parameter not
// yet marked as ready now, launches what is left, waits, divides by the world size (MPI; NCCL's ncclAvg
// already did) and copies the averages back into the gradients. On CUDA finish() does not block the host:
// the compute stream waits for NCCL's events, and the watchdog polls them.
//
// mark_ready calls come from the autograd's leaf-gradient hook (LeafGradHook in core/autograd.h; install
// with GradReadyHook) or from the caller. A parameter with no gradient on a rank counts as zeros there, and
// has a gradient (the average) after finish() when some rank had one; one that no rank had stays without. Gradient accumulation over micro-batches: install the hook (and call
// finish) only for the last micro-batch.
//
// Sums and bits. MPI sums in its own order, which for a given job size and message size is fixed; each
// element is reduced once (or by pairwise exchanges in which both sides add the same two numbers, and IEEE
// addition is commutative), so every rank receives the same bits. check_identical() (dist/comm.h) checks
// this on the parameters. Averages: sum / size with one rounding, the same on all ranks (MPI). NCCL's ncclAvg
// on floats multiplies each rank's value by 1/size before summing: the same bits on all ranks too, exact for
// 1, 2 and 4 ranks, but for other sizes not bitwise the MPI path's average or that of one process's parts.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"
#include "dist/comm.h"

namespace fn::dist {

constexpr size_t kDefaultBucketBytes = size_t(25) << 20;

struct Segment {
  int param = 0;        // index into the parameter list
  int64_t begin = 0;    // first element of the parameter's (flattened) range
  int64_t count = 0;    // elements
  int bucket = 0;
  int64_t offset = 0;   // element offset in the bucket
};

struct BucketPlan {
  struct Bucket {
    DType dtype = DType::F32;
    int64_t numel = 0;
    std::vector<Segment> segments;
  };
  std::vector<Bucket> buckets;
  std::vector<std::vector<Segment>> param_segments;  // per parameter, in element order
};

BucketPlan plan_buckets(const std::vector<Tensor>& params, size_t bucket_bytes);

struct BucketStats {
  int64_t steps = 0;
  int64_t buckets_launched = 0;        // over all steps
  int64_t buckets_launched_early = 0;  // launched from mark_ready, before finish(): overlapped with backward
  double last_finish_wait_s = 0;       // host time in the last finish()
};

class GradBucketer {
 public:
  // `params`: the trainable parameters (Module::trainable_parameters()), the same shapes and order on every
  // rank (checked here, collectively), all on one device.
  GradBucketer(Communicator& comm, std::vector<Tensor> params, size_t bucket_bytes = kDefaultBucketBytes);
  ~GradBucketer();
  GradBucketer(const GradBucketer&) = delete;
  GradBucketer& operator=(const GradBucketer&) = delete;

  void mark_ready(const Tensor& param);  // its gradient is final; tensors not in the list are ignored
  void finish();                         // every gradient averaged across ranks (see above)

  const BucketPlan& plan() const { return plan_; }
  const BucketStats& stats() const { return stats_; }

  struct State;  // buffers, requests, events (dist/bucketer.cpp)

 private:
  void copy_in(int param);  // the gradient (or zeros) into its buckets
  void launch_ready();
  void launch(int b);
  void poke();  // lets MPI progress the open requests

  Communicator& comm_;
  std::vector<Tensor> params_;
  std::unordered_map<const TensorImpl*, int> index_;
  BucketPlan plan_;
  std::vector<char> marked_;
  std::vector<float> had_grad_;  // per parameter: 1 where this rank had a gradient (summed over ranks in finish)
  std::vector<int64_t> pending_;  // per bucket: segments not yet copied in
  int next_launch_ = 0;
  BucketStats stats_;
  std::unique_ptr<State> state_;
};

// While alive, every leaf gradient that backward() finishes on this thread goes to bucketer.mark_ready.
class GradReadyHook {
 public:
  explicit GradReadyHook(GradBucketer& bucketer);
  ~GradReadyHook();
  GradReadyHook(const GradReadyHook&) = delete;
  GradReadyHook& operator=(const GradReadyHook&) = delete;

 private:
  LeafGradHook previous_;
};

}  // namespace fn::dist
