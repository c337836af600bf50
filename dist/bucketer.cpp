// GradBucketer (dist/bucketer.h): the bucket layout, the copies in and out of the flat buffers, and the
// launches and waits of the per-bucket all-reduces (MPI_Iallreduce on the host, ncclAllReduce on a GPU).
#include "dist/bucketer.h"

#include <chrono>
#include <climits>

#include "dist/comm_impl.h"
#ifdef FN_WITH_CUDA
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

namespace fn::dist {

BucketPlan plan_buckets(const std::vector<Tensor>& params, size_t bucket_bytes) {
  BucketPlan plan;
  plan.param_segments.resize(params.size());
  int cur = -1;
  for (int i = int(params.size()) - 1; i >= 0; --i) {
    const Tensor& p = params[size_t(i)];
    const DType dt = p.dtype();
    const int64_t cap = int64_t(bucket_bytes / dtype_size(dt));
    FN_EXPECT(cap >= 1, "gradient bucket of ", bucket_bytes, " bytes is smaller than one ", dtype_name(dt), " element");
    FN_EXPECT(cap <= INT_MAX, "gradient bucket of ", bucket_bytes, " bytes holds more than 2^31 elements");
    const int64_t total = p.numel();
    for (int64_t begin = 0; begin < total;) {
      if (cur < 0 || plan.buckets[size_t(cur)].dtype != dt || plan.buckets[size_t(cur)].numel == cap) {
        plan.buckets.push_back(BucketPlan::Bucket{dt, 0, {}});
        cur = int(plan.buckets.size()) - 1;
      }
      BucketPlan::Bucket& b = plan.buckets[size_t(cur)];
      const int64_t take = std::min(total - begin, cap - b.numel);
      const Segment s{i, begin, take, cur, b.numel};
      b.segments.push_back(s);
      plan.param_segments[size_t(i)].push_back(s);
      b.numel += take;
      begin += take;
    }
  }
  return plan;
}

struct GradBucketer::State {
  std::vector<Tensor> buffers;  // one flat buffer per bucket: on the GPU with NCCL, on the host otherwise
  std::vector<uint64_t> tickets;  // the watchdog's, per bucket (0: none open)
#ifdef FN_HAVE_MPI
  std::vector<MPI_Request> requests;
#endif
#ifdef FN_HAVE_NCCL
  std::vector<cudaEvent_t> ready, done;  // compute stream -> NCCL stream -> compute stream
#endif
};

namespace {
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Tensor flat_range(const Tensor& t, int64_t begin, int64_t count) { return t.view({-1}).slice0(begin, begin + count); }
}  // namespace

GradBucketer::GradBucketer(Communicator& comm, std::vector<Tensor> params, size_t bucket_bytes)
    : comm_(comm), params_(std::move(params)), state_(std::make_unique<State>()) {
  std::string layout = cat(params_.size(), " parameters, buckets of ", bucket_bytes, " bytes:");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    FN_CHECK(p.defined(), "GradBucketer: parameter ", i, " is undefined");
    FN_CHECK(p.device() == params_[0].device(), "GradBucketer: parameters on two devices: ", params_[0].describe(),
             " and ", p.describe());
    FN_CHECK(index_.emplace(p.impl(), int(i)).second, "GradBucketer: parameter ", p.describe(), " listed twice");
    layout += cat(" ", dtype_name(p.dtype()), shape_str(p.shape()));
  }
  // Every rank must bucket the same tensors, or the collectives would pair unrelated bytes.
  const uint64_t h = fnv1a(layout);
  FN_EXPECT(comm_.allreduce_min(h) == comm_.allreduce_max(h), "rank ", comm_.rank(),
            ": the ranks disagree on the parameters to average (this rank: ", params_.size(),
            " tensors); every rank must build the same model with the same frozen parameters");

  plan_ = plan_buckets(params_, bucket_bytes);
  const size_t nb = plan_.buckets.size();
  const bool on_gpu = !params_.empty() && params_[0].is_cuda();
  const Device buf_device = on_gpu && comm_.uses_nccl() ? Device::CUDA : Device::CPU;
  for (const auto& b : plan_.buckets) state_->buffers.push_back(Tensor::empty({b.numel}, b.dtype, buf_device));
  state_->tickets.assign(nb, 0);
#ifdef FN_HAVE_MPI
  state_->requests.assign(nb, MPI_REQUEST_NULL);
#endif
#ifdef FN_HAVE_NCCL
  if (buf_device == Device::CUDA) {
    state_->ready.resize(nb);
    state_->done.resize(nb);
    for (size_t b = 0; b < nb; ++b) {
      CUDA_CHECK(cudaEventCreateWithFlags(&state_->ready[b], cudaEventDisableTiming));
      CUDA_CHECK(cudaEventCreateWithFlags(&state_->done[b], cudaEventDisableTiming));
    }
  }
#endif
  marked_.assign(params_.size(), 0);
  had_grad_.assign(params_.size(), 0.f);
  pending_.resize(nb);
  for (size_t b = 0; b < nb; ++b) pending_[b] = int64_t(plan_.buckets[b].segments.size());
}

GradBucketer::~GradBucketer() {
  // Collectives still in flight (an exception mid-step) write into the buffers: wait for them first,
  // still watched (a peer that never joins ends the job instead of hanging it here).
#ifdef FN_HAVE_MPI
  for (MPI_Request& r : state_->requests)
    if (r != MPI_REQUEST_NULL) MPI_Wait(&r, MPI_STATUS_IGNORE);
#endif
#ifdef FN_HAVE_NCCL
  if (!state_->done.empty()) cudaStreamSynchronize(comm_.impl().nccl_stream);
#endif
  for (uint64_t& t : state_->tickets) {
    if (t) comm_.watchdog().end(t);
    t = 0;
  }
#ifdef FN_HAVE_NCCL
  for (size_t b = 0; b < state_->done.size(); ++b) {
    cudaEventDestroy(state_->ready[b]);
    cudaEventDestroy(state_->done[b]);
  }
#endif
}

void GradBucketer::mark_ready(const Tensor& param) {
  auto it = index_.find(param.impl());
  if (it == index_.end()) return;
  copy_in(it->second);
  const int before = next_launch_;
  launch_ready();
  stats_.buckets_launched_early += next_launch_ - before;
  poke();
}

void GradBucketer::copy_in(int i) {
  const Tensor& param = params_[size_t(i)];
  FN_CHECK(!marked_[size_t(i)], "GradBucketer: ", param.describe(), " marked ready twice in one step");
  marked_[size_t(i)] = 1;
  const Tensor g = param.grad();
  had_grad_[size_t(i)] = g.defined() ? 1.f : 0.f;
  if (g.defined())
    FN_CHECK(g.numel() == param.numel() && g.dtype() == param.dtype(), "GradBucketer: gradient ", g.describe(),
             " of ", param.describe());
  for (const Segment& s : plan_.param_segments[size_t(i)]) {
    Tensor dst = state_->buffers[size_t(s.bucket)].slice0(s.offset, s.offset + s.count);
    if (g.defined()) dst.copy_from(flat_range(g, s.begin, s.count));
    else dst.zero_();
    --pending_[size_t(s.bucket)];
  }
}

void GradBucketer::launch_ready() {
  while (next_launch_ < int(plan_.buckets.size()) && pending_[size_t(next_launch_)] == 0) launch(next_launch_++);
}

void GradBucketer::launch(int b) {
  ++stats_.buckets_launched;
  const BucketPlan::Bucket& bk = plan_.buckets[size_t(b)];
  Tensor& buf = state_->buffers[size_t(b)];
  const std::string what = cat("gradient bucket ", b, " of ", plan_.buckets.size(), " (", buf.nbytes(), " bytes)");
#ifdef FN_HAVE_NCCL
  Communicator::Impl& m = comm_.impl();
  if (buf.is_cuda()) {
    FN_CHECK(bk.dtype == DType::F32, "gradient buckets on the GPU hold float32");  // ncclFloat32 below
    CUDA_CHECK(cudaEventRecord(state_->ready[size_t(b)], fn::cuda::stream()));
    CUDA_CHECK(cudaStreamWaitEvent(m.nccl_stream, state_->ready[size_t(b)], 0));
    // Watched from before the enqueue: NCCL sets up its connections inside the first collective, blocking.
    const uint64_t enqueue = m.watchdog->begin(cat("ncclAllReduce (enqueue) of ", what));
    FN_NCCL_CHECK(ncclAllReduce(buf.raw(), buf.raw(), size_t(bk.numel), ncclFloat32, ncclAvg, m.nccl, m.nccl_stream),
                  m.nccl);
    m.watchdog->end(enqueue);
    cudaEvent_t done = state_->done[size_t(b)];
    CUDA_CHECK(cudaEventRecord(done, m.nccl_stream));
    // Polled on the watchdog's thread, which must use this rank's GPU (not create a context on GPU 0).
    const int dev = m.cuda_device;
    // The previous step's entry polls this same event. End it here (this all-reduce follows it on the NCCL
    // stream, so the new entry covers both), or it outlives ~GradBucketer and polls a destroyed event.
    if (state_->tickets[size_t(b)]) m.watchdog->end(state_->tickets[size_t(b)]);
    state_->tickets[size_t(b)] = m.watchdog->begin_polled(cat("ncclAllReduce of ", what), [done, dev] {
      cudaSetDevice(dev);
      return cudaEventQuery(done) != cudaErrorNotReady;
    });
    return;
  }
#endif
#ifdef FN_HAVE_MPI
  if (comm_.uses_mpi()) {
    Communicator::Impl& mm = comm_.impl();
    const MPI_Datatype type = bk.dtype == DType::F32 ? MPI_FLOAT : MPI_DOUBLE;
    FN_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf.raw(), int(bk.numel), type, MPI_SUM, mm.world,
                                &state_->requests[size_t(b)]));
    state_->tickets[size_t(b)] = mm.watchdog->begin(cat("MPI_Iallreduce of ", what));
  }
#endif
  (void)bk;
}

void GradBucketer::poke() {
#ifdef FN_HAVE_MPI
  // Open MPI progresses non-blocking collectives only inside MPI calls: a test per ready gradient keeps
  // the launched buckets moving while the backward computes.
  for (int b = 0; b < next_launch_; ++b) {
    MPI_Request& r = state_->requests[size_t(b)];
    if (r == MPI_REQUEST_NULL) continue;
    int flag = 0;
    FN_MPI_CHECK(MPI_Test(&r, &flag, MPI_STATUS_IGNORE));
    if (flag) {
      comm_.watchdog().end(state_->tickets[size_t(b)]);
      state_->tickets[size_t(b)] = 0;
    }
  }
#endif
}

void GradBucketer::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < params_.size(); ++i)
    if (!marked_[i]) copy_in(int(i));
  launch_ready();
  FN_CHECK(next_launch_ == int(plan_.buckets.size()), "GradBucketer: ", next_launch_, " of ", plan_.buckets.size(),
           " buckets launched");
  const int n = comm_.size();
  // Which parameters some rank had a gradient for: one that none had stays without one, as in a single
  // process (the optimizer skips it; zeros would still move it by weight decay and momentum).
  if (n > 1) comm_.allreduce_sum(had_grad_.data(), int64_t(had_grad_.size()));
  for (size_t b = 0; b < plan_.buckets.size(); ++b) {
    Tensor& buf = state_->buffers[b];
#ifdef FN_HAVE_NCCL
    if (buf.is_cuda()) {  // the compute stream waits; the watchdog polls the event
      CUDA_CHECK(cudaStreamWaitEvent(fn::cuda::stream(), state_->done[b], 0));
      continue;
    }
#endif
#ifdef FN_HAVE_MPI
    MPI_Request& r = state_->requests[b];
    if (r != MPI_REQUEST_NULL) {
      const int rc = MPI_Wait(&r, MPI_STATUS_IGNORE);
      comm_.watchdog().end(state_->tickets[b]);
      state_->tickets[b] = 0;
      FN_MPI_CHECK(rc);
    }
#endif
    if (n > 1) {  // the sum to the mean: one division per element, the same on every rank
      const int64_t cnt = buf.numel();
      FN_DISPATCH_FLOAT(buf.dtype(), T, {
        T* p = buf.data<T>();
        const T d = T(n);
        for (int64_t k = 0; k < cnt; ++k) p[k] /= d;
      });
    }
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (had_grad_[i] == 0.f) continue;
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) {
      g = Tensor::empty_like(p);
      if (p.numel() == 0) g.zero_();
      p.set_grad(g);
    }
    for (const Segment& s : plan_.param_segments[i])
      flat_range(g, s.begin, s.count).copy_from(state_->buffers[size_t(s.bucket)].slice0(s.offset, s.offset + s.count));
  }
  std::fill(marked_.begin(), marked_.end(), 0);
  for (size_t b = 0; b < plan_.buckets.size(); ++b) pending_[b] = int64_t(plan_.buckets[b].segments.size());
  next_launch_ = 0;
  ++stats_.steps;
  stats_.last_finish_wait_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

GradReadyHook::GradReadyHook(GradBucketer& bucketer)
    : previous_(set_leaf_grad_hook([&bucketer](const Tensor& leaf) { bucketer.mark_ready(leaf); })) {}

GradReadyHook::~GradReadyHook() { set_leaf_grad_hook(std::move(previous_)); }

}  // namespace fn::dist
