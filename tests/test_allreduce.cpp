// The communication layer for data-parallel training (dist/, issue 20): the bucket layout (reverse
// registration order, odd bucket sizes, tensors spanning buckets), the bucketed all-reduce (the mean of
// rank-dependent gradients, bitwise, on every rank), the autograd's leaf-gradient hook that launches
// buckets during the backward, the cross-rank checksum, broadcast, the all-gather, and the watchdog.
//
// Runs as a single process (ctest's per-case entries: size 1) and under mpirun with 2 and 3 ranks
// (mpi_test_allreduce_np2/np3): every case is written for any world size, and every rank runs the same
// cases in the same order, so the collectives pair up. A rank that fails alone leaves the others in a
// collective: the watchdog (120 s here) then ends the job.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

#include <catch2/catch.hpp>

#include "core/autograd.h"
#include "core/philox.h"
#include "dist/bucketer.h"
#include "dist/comm.h"
#include "dist/comm_impl.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using namespace fn::dist;

namespace {

Communicator& comm() {
  static Communicator c([] {
    CommOptions o;
    o.timeout_s = 120;
    return o;
  }());
  return c;
}

// Rank-dependent gradient values that are multiples of 1/4 and small: their sums are exact in any order,
// so the expected mean is known to the bit: float(sum) / float(n), one rounding, as GradBucketer divides.
float grad_value(int rank, int param, int64_t k) { return float((rank + 1) * (int((k * 7 + param) % 17) - 8) + param) * 0.25f; }

std::vector<Tensor> make_params(const std::vector<Shape>& shapes) {
  std::vector<Tensor> ps;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor p = Tensor::zeros(shapes[i]);
    p.set_requires_grad(true);
    p.set_name(cat("p", i));
    ps.push_back(p);
  }
  return ps;
}

// Three layers, 16->32->32->4 (weights and biases), the same on every rank, on device d.
std::vector<Tensor> three_layers(Device d) {
  Rng init(7);
  std::vector<Tensor> ps;
  for (auto [in, out] : {std::pair{16, 32}, {32, 32}, {32, 4}}) {
    ps.push_back(Tensor::randn({in, out}, init, 0.2).to(d).set_requires_grad(true));
    ps.push_back(Tensor::randn({out}, init, 0.1).to(d).set_requires_grad(true));
  }
  return ps;
}
// Their loss on a batch of 8 drawn for `rank`: mean of the squared outputs, ReLU between the layers.
Tensor three_layers_loss(const std::vector<Tensor>& ps, int rank) {
  const Device d = ps[0].device();
  Rng data(100 + uint64_t(rank));
  Tensor h = Tensor::randn({8, 16}, data).to(d);
  for (size_t l = 0; l < ps.size(); l += 2) {
    Tensor ones = Tensor::full({8, 1}, 1.0).to(d);
    Tensor z = F::add(F::matmul(h, ps[l]), F::matmul(ones, F::reshape(ps[l + 1], {1, -1})));
    h = l + 2 < ps.size() ? F::relu(z) : z;
  }
  return F::mean(F::mul(h, h));
}

void set_rank_grads(const std::vector<Tensor>& ps, int rank) {
  for (size_t i = 0; i < ps.size(); ++i) {
    Tensor g = Tensor::empty_like(ps[i]);
    for (int64_t k = 0; k < g.numel(); ++k) g.f32()[k] = grad_value(rank, int(i), k);
    Tensor(ps[i]).set_grad(g);
  }
}

bool bits_equal(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::vector<Tensor> grads_of(const std::vector<Tensor>& ps) {
  std::vector<Tensor> gs;
  for (const Tensor& p : ps) gs.push_back(p.grad());
  return gs;
}

}  // namespace

TEST_CASE("plan_buckets packs parameters in reverse order and splits tensors across buckets", "[dist]") {
  const std::vector<Tensor> ps = make_params({{3}, {10}, {1}, {7}});
  SECTION("7-element buckets (28 bytes)") {
    const BucketPlan plan = plan_buckets(ps, 28);
    REQUIRE(plan.buckets.size() == 3);
    // bucket 0: p3 whole; bucket 1: p2, then p1[0,6); bucket 2: p1[6,10), then p0.
    REQUIRE(plan.buckets[0].segments.size() == 1);
    CHECK(plan.buckets[0].segments[0].param == 3);
    CHECK(plan.buckets[0].numel == 7);
    REQUIRE(plan.buckets[1].segments.size() == 2);
    CHECK(plan.buckets[1].segments[0].param == 2);
    CHECK(plan.buckets[1].segments[1].param == 1);
    CHECK(plan.buckets[1].segments[1].begin == 0);
    CHECK(plan.buckets[1].segments[1].count == 6);
    CHECK(plan.buckets[1].segments[1].offset == 1);
    REQUIRE(plan.buckets[2].segments.size() == 2);
    CHECK(plan.buckets[2].segments[0].param == 1);
    CHECK(plan.buckets[2].segments[0].begin == 6);
    CHECK(plan.buckets[2].segments[0].count == 4);
    CHECK(plan.buckets[2].segments[1].param == 0);
    CHECK(plan.buckets[2].numel == 7);
    REQUIRE(plan.param_segments[1].size() == 2);  // p1 spans buckets 1 and 2
  }
  SECTION("one-element buckets: a bucket per element") {
    const BucketPlan plan = plan_buckets(ps, 4);
    CHECK(plan.buckets.size() == 21);
    for (const auto& b : plan.buckets) CHECK(b.numel == 1);
    CHECK(plan.param_segments[1].size() == 10);
  }
  SECTION("1000 bytes (250 floats) holds all of them") {
    const BucketPlan plan = plan_buckets(ps, 1000);
    REQUIRE(plan.buckets.size() == 1);
    CHECK(plan.buckets[0].numel == 21);
    CHECK(plan.buckets[0].segments.front().param == 3);
    CHECK(plan.buckets[0].segments.back().param == 0);
  }
  SECTION("a bucket smaller than an element is an error") {
    CHECK_THROWS_WITH(plan_buckets(ps, 3), Catch::Contains("smaller than one float32 element"));
  }
  SECTION("float64 parameters start buckets of their own") {
    std::vector<Tensor> mixed = ps;
    mixed.push_back(Tensor::zeros({2}, DType::F64));
    const BucketPlan plan = plan_buckets(mixed, 1000);
    REQUIRE(plan.buckets.size() == 2);
    CHECK(plan.buckets[0].dtype == DType::F64);
    CHECK(plan.buckets[1].dtype == DType::F32);
  }
}

TEST_CASE("GradBucketer averages gradients across ranks, bitwise the same on every rank", "[dist]") {
  Communicator& c = comm();
  const int n = c.size(), r = c.rank();
  const std::vector<Shape> shapes = {{3, 5}, {7}, {1}, {300}, {2, 2, 2}, {33}};
  // 1 element, 7 elements, 1000 bytes, 25 MiB (one bucket), a bucket of 13 elements (odd, spans everywhere).
  for (size_t bucket_bytes : {size_t(4), size_t(28), size_t(1000), size_t(52), kDefaultBucketBytes}) {
    INFO("bucket of " << bucket_bytes << " bytes, " << c.describe());
    std::vector<Tensor> ps = make_params(shapes);
    GradBucketer b(c, ps, bucket_bytes);
    for (int step = 0; step < 2; ++step) {  // twice: the per-step state resets
      set_rank_grads(ps, r + step);
      // Some parameters are marked in a scrambled order; finish() takes the rest.
      b.mark_ready(ps[5]);
      b.mark_ready(ps[1]);
      b.mark_ready(ps[4]);
      b.finish();
      bool all_bitwise = true;
      for (size_t i = 0; i < ps.size(); ++i) {
        const Tensor g = ps[i].grad();
        for (int64_t k = 0; k < g.numel(); ++k) {
          float want = 0;
          for (int rr = 0; rr < n; ++rr) want += grad_value(rr + step, int(i), k);
          want /= float(n);
          if (!bits_equal(g.f32()[k], want)) {
            all_bitwise = false;
            FAIL_CHECK("param " << i << "[" << k << "] = " << g.f32()[k] << ", want " << want);
          }
        }
      }
      CHECK(all_bitwise);
      const ChecksumCheck cs = check_identical(c, grads_of(ps));
      CHECK(cs.identical());
    }
    CHECK(b.stats().steps == 2);
    CHECK(b.stats().buckets_launched == 2 * int64_t(b.plan().buckets.size()));
  }
}

TEST_CASE("GradBucketer: arbitrary values reach the same bits on every rank; missing gradients count as zeros",
          "[dist]") {
  Communicator& c = comm();
  const int n = c.size(), r = c.rank();
  std::vector<Tensor> ps = make_params({{1000}, {17}, {5}});
  Rng rng(1234 + uint64_t(r));
  Tensor(ps[0]).set_grad(Tensor::randn({1000}, rng));
  if (r == 0) Tensor(ps[1]).set_grad(Tensor::full({17}, 3.0));  // only rank 0 has one
  // ps[2]: no rank has a gradient
  GradBucketer b(c, ps, 333);  // 83 floats: the 1000-element tensor spans 13 buckets
  b.finish();
  const ChecksumCheck cs = check_identical(c, {ps[0].grad(), ps[1].grad()});
  CHECK(cs.identical());
  REQUIRE(ps[1].grad().defined());
  CHECK_FALSE(ps[2].grad().defined());  // as a single process leaves it: the optimizer skips it
  for (float v : ps[1].grad().to_vector()) CHECK(v == 3.0f / float(n));
  // Against the mean computed here from every rank's draws, in float: equal to rounding.
  std::vector<float> want(1000, 0.0f);
  for (int rr = 0; rr < n; ++rr) {
    Rng other(1234 + uint64_t(rr));
    const std::vector<float> v = Tensor::randn({1000}, other).to_vector();
    for (size_t k = 0; k < v.size(); ++k) want[k] += v[k];
  }
  const std::vector<float> got = ps[0].grad().to_vector();
  for (size_t k = 0; k < got.size(); ++k) REQUIRE(std::fabs(got[k] - want[k] / float(n)) <= 1e-6f * (1 + std::fabs(want[k])));
}

TEST_CASE("the leaf-gradient hook reports each parameter once, last layer first, with its final gradient", "[dist]") {
  Tensor x = Tensor::from(std::vector<float>{1, -2, 3, 0.5f, 1.5f, -1}, {2, 3});
  Tensor w1 = Tensor::from(std::vector<float>{0.1f, 0.2f, -0.3f, 0.4f, 0.5f, -0.6f, 0.7f, 0.8f, 0.9f, -1.0f, 1.1f, 1.2f}, {3, 4});
  Tensor w2 = Tensor::from(std::vector<float>{0.3f, -0.2f, 0.1f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f}, {4, 2});
  w1.set_requires_grad(true);
  w2.set_requires_grad(true);
  std::vector<std::pair<const TensorImpl*, std::vector<float>>> seen;
  {
    // w1 is used twice (the second use late in the forward): its gradient is final only after its first use.
    Tensor h = F::relu(F::matmul(x, w1));
    Tensor y = F::matmul(h, w2);
    Tensor loss = F::add(F::sum(F::mul(y, y)), F::sum(F::mul(w1, w1)));
    LeafGradHook prev = set_leaf_grad_hook([&](const Tensor& leaf) {
      seen.emplace_back(leaf.impl(), leaf.grad().defined() ? leaf.grad().to_vector() : std::vector<float>{});
    });
    backward(loss);
    set_leaf_grad_hook(std::move(prev));
  }
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].first == w2.impl());
  CHECK(seen[1].first == w1.impl());
  CHECK(seen[0].second == w2.grad().to_vector());
  CHECK(seen[1].second == w1.grad().to_vector());
  // No hook: nothing is reported, and the gradients are those of a plain backward.
  seen.clear();
  w1.zero_grad();
  w2.zero_grad();
  Tensor loss2 = F::sum(F::matmul(F::relu(F::matmul(x, w1)), w2));
  backward(loss2);
  CHECK(seen.empty());
}

TEST_CASE("buckets launch during the backward through the hook, and the result is the cross-rank mean", "[dist]") {
  Communicator& c = comm();
  const int n = c.size(), r = c.rank();
  std::vector<Tensor> ps = three_layers(Device::CPU);
  auto loss_of = [&](int rank) { return three_layers_loss(ps, rank); };
  // The expected mean: every rank's gradients computed here, one after the other.
  std::vector<std::vector<float>> want(ps.size());
  for (int rr = 0; rr < n; ++rr) {
    for (Tensor& p : ps) p.zero_grad();
    backward(loss_of(rr));
    for (size_t i = 0; i < ps.size(); ++i) {
      const std::vector<float> g = ps[i].grad().to_vector();
      want[i].resize(g.size(), 0.0f);
      for (size_t k = 0; k < g.size(); ++k) want[i][k] += g[k];
    }
  }
  for (Tensor& p : ps) p.zero_grad();
  GradBucketer b(c, ps, 1000);
  {
    GradReadyHook hook(b);
    backward(loss_of(r));
  }
  CHECK(b.stats().buckets_launched_early == int64_t(b.plan().buckets.size()));  // all before finish()
  b.finish();
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::vector<float> g = ps[i].grad().to_vector();
    for (size_t k = 0; k < g.size(); ++k)
      REQUIRE(std::fabs(g[k] - want[i][k] / float(n)) <= 1e-5f * (1 + std::fabs(want[i][k])));
  }
  CHECK(check_identical(c, grads_of(ps)).identical());
}

TEST_CASE("Communicator: ranks, sums, broadcast and the parameter checksum", "[dist]") {
  Communicator& c = comm();
  const int n = c.size(), r = c.rank();
  CHECK(r >= 0);
  CHECK(r < n);
  CHECK(c.local_rank() < c.local_size());
  CHECK(c.local_size() <= n);
  CHECK(c.uses_mpi() == (n > 1 || launched_by_mpi()));
  double s = r + 1;
  c.allreduce_sum(&s, 1);
  CHECK(s == n * (n + 1) / 2.0);
  CHECK(c.allreduce_min(uint64_t(r) + 10) == 10);
  CHECK(c.allreduce_max(uint64_t(r) + 10) == uint64_t(n) + 9);

  std::vector<Tensor> ts = {Tensor::full({5, 3}, 1.0 + r), Tensor::full({2}, 10.0 * (r + 1), DType::F64)};
  const uint64_t before = tensor_checksum(ts);
  CHECK(check_identical(c, ts).identical() == (n == 1));  // rank-dependent values differ across ranks
  c.broadcast(ts, n - 1);  // the last rank's values everywhere
  CHECK(ts[0].to_vector() == std::vector<float>(15, float(n)));
  CHECK(ts[1].to_vector_f64() == std::vector<double>(2, 10.0 * n));
  CHECK(check_identical(c, ts).identical());
  if (n == 1) CHECK(tensor_checksum(ts) == before);
  CHECK_NOTHROW(require_identical(c, ts, "the parameters after step 3"));
  std::vector<Tensor> differing = {Tensor::full({4}, double(r))};
  if (n > 1) CHECK_THROWS_WITH(require_identical(c, differing, "the parameters after step 3"),
                               Catch::Contains("the parameters after step 3 differ across the"));

  // One flipped bit changes the checksum.
  std::vector<Tensor> a = {Tensor::full({100}, 0.5)};
  std::vector<Tensor> b2 = {a[0].clone()};
  uint32_t bits;
  std::memcpy(&bits, b2[0].f32() + 37, 4);
  bits ^= 1u;
  std::memcpy(b2[0].f32() + 37, &bits, 4);
  CHECK(tensor_checksum(a) != tensor_checksum(b2));
  CHECK(tensor_checksum({Tensor::zeros({2, 3})}) != tensor_checksum({Tensor::zeros({3, 2})}));  // shapes count
}

TEST_CASE("allgather concatenates blocks of any length, empty ones too, in rank order", "[dist]") {
  Communicator& c = comm();
  const int n = c.size(), r = c.rank();
  // Rank q holds (q * 3 + 2) % 5 elements: 2, 0, 3 for ranks 0, 1, 2 (uneven, and one empty block).
  auto block_length = [](int q) { return (q * 3 + 2) % 5; };
  auto floats_of = [&](int q) {
    std::vector<float> v;
    for (int k = 0; k < block_length(q); ++k) v.push_back(float(q) * 100 + float(k) + 0.25f);
    return v;
  };
  auto ints_of = [&](int q) {
    std::vector<int> v;
    for (int k = 0; k < block_length(q); ++k) v.push_back(-(q * 1000 + k));
    return v;
  };
  auto strings_of = [&](int q) {  // an empty string, white space and a NUL travel as they are
    std::vector<std::string> v;
    for (int k = 0; k < block_length(q); ++k)
      v.push_back(k == 0 ? std::string() : cat("rank ", q, " row\n", k, std::string(1, '\0'), "end"));
    return v;
  };
  std::vector<float> want_f;
  std::vector<int> want_i;
  std::vector<std::string> want_s;
  for (int q = 0; q < n; ++q) {
    for (float x : floats_of(q)) want_f.push_back(x);
    for (int x : ints_of(q)) want_i.push_back(x);
    for (const std::string& x : strings_of(q)) want_s.push_back(x);
  }
  SECTION("one call") {
    CHECK(c.allgather(floats_of(r)) == want_f);
    CHECK(c.allgather(ints_of(r)) == want_i);
    CHECK(c.allgather(strings_of(r)) == want_s);
  }
  SECTION("in rounds, as blocks beyond MPI's int counts go") {
    Communicator::Impl& m = c.impl();
    const int64_t limit = m.allgather_max_count;
    m.allgather_max_count = n;  // one element per rank and round
    CHECK(c.allgather(floats_of(r)) == want_f);
    CHECK(c.allgather(strings_of(r)) == want_s);
    m.allgather_max_count = limit;
  }
  SECTION("every block empty") {
    CHECK(c.allgather(std::vector<float>{}).empty());
    CHECK(c.allgather(std::vector<std::string>{}).empty());
  }
  SECTION("a block on one rank only") {
    const std::vector<int> mine = r == n - 1 ? std::vector<int>{7, 8, 9} : std::vector<int>{};
    CHECK(c.allgather(mine) == std::vector<int>{7, 8, 9});
  }
}

TEST_CASE("shard_of splits items into contiguous shards in rank order, and run_together stops every rank", "[dist]") {
  for (int64_t items : {0, 1, 2, 7, 14218}) {
    for (int size : {1, 2, 3, 8}) {
      int64_t next = 0;
      for (int q = 0; q < size; ++q) {
        const Shard s = shard_of(items, q, size);
        CHECK(s.begin == next);
        CHECK(s.size() >= items / size);
        CHECK(s.size() <= items / size + 1);
        next = s.end;
      }
      CHECK(next == items);
    }
  }
  Communicator& c = comm();
  const int n = c.size(), r = c.rank();
  int runs = 0;
  CHECK_NOTHROW(run_together(c, "embedding", [&] { ++runs; }));
  CHECK(runs == 1);
  auto last_fails = [&] {
    if (r == n - 1) FN_USER_FAIL("image ", r, ".jpg is broken");
  };
  if (r == n - 1)
    CHECK_THROWS_WITH(run_together(c, "embedding", last_fails), Catch::Contains(cat("image ", r, ".jpg is broken")));
  else
    CHECK_THROWS_WITH(run_together(c, "embedding", last_fails),
                      Catch::Contains(cat("embedding stopped: rank ", n - 1, " of ", n, " failed: image ", n - 1,
                                          ".jpg is broken")));
}

TEST_CASE("GradBucketer refuses ranks that disagree on the parameters", "[dist]") {
  Communicator& c = comm();
  if (c.size() == 1) {
    SUCCEED("needs 2 ranks");
    return;
  }
  std::vector<Tensor> ps = make_params(c.rank() == 0 ? std::vector<Shape>{{4}} : std::vector<Shape>{{5}});
  CHECK_THROWS_WITH(GradBucketer(c, ps, 100), Catch::Contains("the ranks disagree on the parameters"));
}

TEST_CASE("the watchdog reports a collective that does not complete, and only that", "[dist]") {
  std::atomic<int> fired{0};
  std::string message;
  std::mutex mu;
  Watchdog w(0.2, "rank 7 of 8 on test-host", [&](const std::string& m) {
    std::lock_guard<std::mutex> lock(mu);
    message = m;
    ++fired;
  });
  // Completed in time: never reported.
  const uint64_t quick = w.begin("quick collective");
  w.end(quick);
  std::atomic<bool> flag{false};
  w.begin_polled("polled collective", [&] { return flag.load(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  flag = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(w.open_count() == 0);  // the watchdog polled it to completion
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(fired == 0);
  // Left open: reported once, within the timeout plus the polling period.
  const auto t0 = std::chrono::steady_clock::now();
  w.begin("MPI_Iallreduce of gradient bucket 3 of 9 (1000 bytes)");
  while (fired == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(fired == 1);
  CHECK(took >= 0.2);
  CHECK(took < 1.0);
  std::lock_guard<std::mutex> lock(mu);
  CHECK_THAT(message, Catch::Contains("fn::dist watchdog: rank 7 of 8 on test-host: collective "
                                      "'MPI_Iallreduce of gradient bucket 3 of 9 (1000 bytes)' has not completed"));
}

TEST_CASE("GradBucketer on CUDA through NCCL, one rank: gradients kept to the bit, buckets launched during the "
          "backward, no watchdog entry left (CUDA)", "[dist]") {
  FN_REQUIRE_CUDA();
  if (!nccl_compiled() || comm().size() > 1) {  // every rank takes the same branch: the collectives stay paired
    std::printf("SKIPPED: %s\n", nccl_compiled() ? "one rank only (a GPU of its own)" : "built without NCCL");
    return;
  }
  // A Communicator of its own (not a static one: NCCL and its stream must go before the CUDA runtime does).
  CommOptions o;
  o.mpi = CommOptions::Mpi::Never;
  o.device = Device::CUDA;
  o.timeout_s = 120;
  Communicator c(o);
  REQUIRE(c.size() == 1);
  const std::vector<Shape> shapes = {{3, 5}, {7}, {1}, {300}, {2, 2, 2}, {33}};
  std::vector<Tensor> ps;
  for (const Shape& s : shapes) ps.push_back(Tensor::zeros(s, DType::F32, Device::CUDA).set_requires_grad(true));
  {
    GradBucketer b(c, ps, 52);  // 13 floats: tensors span buckets
    for (int step = 0; step < 3; ++step) {  // more steps than the watchdog polls: its entries must not pile up
      std::vector<std::vector<float>> want;
      for (size_t i = 0; i < ps.size(); ++i) {
        Tensor g = Tensor::empty(shapes[i]);
        for (int64_t k = 0; k < g.numel(); ++k) g.f32()[k] = grad_value(step, int(i), k);
        want.push_back(g.to_vector());
        Tensor(ps[i]).set_grad(g.to(Device::CUDA));
      }
      b.mark_ready(ps[5]);
      b.mark_ready(ps[1]);
      b.finish();
      for (size_t i = 0; i < ps.size(); ++i) REQUIRE(ps[i].grad().to_vector() == want[i]);  // the mean of one: x
    }
    CHECK(b.stats().buckets_launched == 3 * int64_t(b.plan().buckets.size()));
  }
  CHECK(c.watchdog().open_count() == 0);
  // Through the hook: a small network on the GPU launches every bucket before finish().
  std::vector<Tensor> net = three_layers(Device::CUDA);
  auto loss = [&] { return three_layers_loss(net, 0); };
  backward(loss());
  std::vector<std::vector<float>> want;
  for (Tensor& p : net) {
    want.push_back(p.grad().to_vector());
    p.zero_grad();
  }
  {
    GradBucketer b(c, net, 1000);
    {
      GradReadyHook hook(b);
      backward(loss());
    }
    CHECK(b.stats().buckets_launched_early == int64_t(b.plan().buckets.size()));
    b.finish();
    for (size_t i = 0; i < net.size(); ++i) REQUIRE(net[i].grad().to_vector() == want[i]);
  }
  CHECK(c.watchdog().open_count() == 0);
}
