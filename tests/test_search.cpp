// Exact k-nearest search: the blocked, threaded search equals the brute-force reference; k larger than the
// gallery; the tie rule (equal scores: lower gallery row first); distances; CUDA against the CPU.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "kernels/topk_search.h"
#include "tests/support/check.h"

namespace {

using fn::kernels::Neighbours;
using fn::kernels::SearchOptions;
using fn::kernels::CpuSchedule;

fn::Tensor random_unit_rows(int64_t rows, int64_t dim, uint64_t seed) {
  fn::Rng rng(seed, 3);
  fn::Tensor t = fn::Tensor::randn({rows, dim}, rng);
  fn::kernels::l2_normalize_rows(t);
  return t;
}

double dot(const fn::Tensor& a, int64_t i, const fn::Tensor& b, int64_t j) {
  const int64_t d = a.size(1);
  double s = 0;
  for (int64_t c = 0; c < d; ++c) s += double(a.f32()[i * d + c]) * double(b.f32()[j * d + c]);
  return s;
}

// got equals ref, except that two rows whose exact scores differ by less than float rounding (a near-tie)
// may trade places. Every row must list distinct gallery rows.
void require_same_neighbours(const Neighbours& got, const Neighbours& ref, const fn::Tensor& q, const fn::Tensor& g,
                             double tie_eps = 1e-5) {
  REQUIRE(got.rows == ref.rows);
  REQUIRE(got.k == ref.k);
  int64_t swapped = 0;
  for (int64_t r = 0; r < got.rows; ++r) {
    std::set<int32_t> seen;
    for (int64_t c = 0; c < got.k; ++c) {
      int32_t gi = got.row_index(r)[c], ri = ref.row_index(r)[c];
      INFO("query " << r << " rank " << c << ": got row " << gi << " reference row " << ri);
      REQUIRE(gi >= 0);
      REQUIRE(gi < g.size(0));
      REQUIRE(seen.insert(gi).second);
      if (gi != ri) {
        ++swapped;
        REQUIRE(std::fabs(dot(q, r, g, gi) - dot(q, r, g, ri)) < tie_eps);
      }
      REQUIRE(std::fabs(got.row_distance(r)[c] - ref.row_distance(r)[c]) < 1e-5);
    }
  }
  CHECK(swapped <= got.rows * got.k / 100);  // near-ties are rare on random data
}

}  // namespace

TEST_CASE("search: blocked threaded search equals brute force", "[search]") {
  struct Case { int64_t nq, ng, dim, k, block; int threads; CpuSchedule schedule; };
  const Case cases[] = {
      {45, 257, 17, 10, 8, 2, CpuSchedule::ThreadsOverBlocks},  // 45 is not a multiple of the block
      {45, 257, 17, 10, 8, 3, CpuSchedule::ThreadsOverBlocks},  // more threads than cores
      {45, 257, 17, 10, 16, 2, CpuSchedule::BlasThreads},
      {33, 100, 64, 1, 0, 1, CpuSchedule::ThreadsOverBlocks},
      {1, 33, 5, 33, 0, 2, CpuSchedule::ThreadsOverBlocks},    // k equal to the gallery size
      {130, 1000, 128, 50, 64, 2, CpuSchedule::ThreadsOverBlocks},
      {130, 1000, 128, 50, 64, 2, CpuSchedule::BlasThreads},
  };
  for (const Case& c : cases) {
    INFO("nq " << c.nq << " ng " << c.ng << " dim " << c.dim << " k " << c.k << " block " << c.block << " threads "
               << c.threads);
    fn::Tensor q = random_unit_rows(c.nq, c.dim, 11 + uint64_t(c.nq)), g = random_unit_rows(c.ng, c.dim, 12);
    SearchOptions opt;
    opt.k = c.k;
    opt.query_block = c.block;
    opt.threads = c.threads;
    opt.schedule = c.schedule;
    Neighbours got = fn::kernels::topk_search(q, g, opt);
    Neighbours ref = fn::kernels::topk_search_reference(q.f32(), c.nq, g.f32(), c.ng, c.dim, c.k);
    require_same_neighbours(got, ref, q, g);
  }
}

TEST_CASE("search: the CPU search is bitwise identical for any thread count", "[search]") {
  fn::Tensor q = random_unit_rows(77, 40, 5), g = random_unit_rows(300, 40, 6);
  SearchOptions opt;
  opt.k = 20;
  opt.query_block = 10;
  opt.threads = 1;
  Neighbours one = fn::kernels::topk_search(q, g, opt);
  opt.threads = 2;
  Neighbours two = fn::kernels::topk_search(q, g, opt);
  REQUIRE(one.index == two.index);
  REQUIRE(std::memcmp(one.distance.data(), two.distance.data(), one.distance.size() * 4) == 0);
}

TEST_CASE("search: k larger than the gallery returns the whole gallery ranked", "[search]") {
  fn::Tensor q = random_unit_rows(9, 6, 1), g = random_unit_rows(7, 6, 2);
  SearchOptions opt;
  opt.k = 50;
  Neighbours got = fn::kernels::topk_search(q, g, opt);
  REQUIRE(got.k == 7);
  REQUIRE(got.index.size() == 9 * 7);
  for (int64_t r = 0; r < got.rows; ++r) {
    std::set<int32_t> all(got.row_index(r), got.row_index(r) + got.k);
    REQUIRE(all.size() == 7);
    for (int64_t c = 1; c < got.k; ++c) REQUIRE(got.row_distance(r)[c - 1] <= got.row_distance(r)[c]);
  }
  require_same_neighbours(got, fn::kernels::topk_search_reference(q.f32(), 9, g.f32(), 7, 6, 50), q, g);
}

TEST_CASE("search: equal scores rank the lower gallery row first", "[search][ties]") {
  // Query e0; gallery row j has first coordinate v_j in {1, 0.5, 0} (the rest changes the row but not its
  // inner product with e0), so every score is exact and the ties are real ties.
  const int64_t ng = 40, dim = 4;
  std::vector<float> gv(size_t(ng * dim), 0.0f);
  std::vector<int32_t> ones = {3, 10, 17, 24, 31, 38}, halves = {0, 1, 20, 39};
  for (int64_t j = 0; j < ng; ++j) gv[size_t(j * dim + 1 + j % 3)] = 1.0f;
  for (int32_t j : ones) gv[size_t(j * dim)] = 1.0f;
  for (int32_t j : halves) gv[size_t(j * dim)] = 0.5f;
  fn::Tensor g = fn::Tensor::from(gv, {ng, dim});
  fn::Tensor q = fn::Tensor::from(std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0}, {2, dim});  // two identical queries
  for (int64_t k : {1, 5, 8, 12, 40}) {
    for (auto schedule : {CpuSchedule::ThreadsOverBlocks, CpuSchedule::BlasThreads}) {
      SearchOptions opt;
      opt.k = k;
      opt.query_block = 1;
      opt.schedule = schedule;
      Neighbours got = fn::kernels::topk_search(q, g, opt);
      // The expected order: the ones ascending, then the halves ascending, then every other row ascending.
      std::vector<int32_t> expect = ones;
      expect.insert(expect.end(), halves.begin(), halves.end());
      for (int32_t j = 0; j < ng; ++j)
        if (std::find(expect.begin(), expect.end(), j) == expect.end()) expect.push_back(j);
      expect.resize(size_t(k));
      for (int64_t r = 0; r < 2; ++r) {
        INFO("k " << k << " query " << r);
        REQUIRE(std::vector<int32_t>(got.row_index(r), got.row_index(r) + k) == expect);
      }
      Neighbours ref = fn::kernels::topk_search_reference(q.f32(), 2, g.f32(), ng, dim, k);
      REQUIRE(ref.index == got.index);
    }
  }
}

TEST_CASE("search: distances are Euclidean between unit vectors", "[search]") {
  fn::Tensor g = fn::Tensor::from(std::vector<float>{1, 0, 0, 1, -1, 0, 0.6f, 0.8f}, {4, 2});
  fn::Tensor q = fn::Tensor::from(std::vector<float>{1, 0}, {1, 2});
  SearchOptions opt;
  opt.k = 4;
  Neighbours got = fn::kernels::topk_search(q, g, opt);
  REQUIRE(std::vector<int32_t>(got.index) == std::vector<int32_t>{0, 3, 1, 2});
  FN_REQUIRE_CLOSE(std::vector<double>(got.distance.begin(), got.distance.end()),
                   (std::vector<double>{0.0, std::sqrt(0.16 + 0.64), std::sqrt(2.0), 2.0}), 1e-6, 1e-6);
}

TEST_CASE("search: l2_normalize_rows gives unit rows and counts zero rows", "[search]") {
  fn::Tensor x = fn::Tensor::from(std::vector<float>{3, 4, 0, 0, 0, 0, 1e-20f, 0, 0}, {3, 3});
  REQUIRE(fn::kernels::l2_normalize_rows(x) == 1);
  FN_REQUIRE_CLOSE(x.to_vector_f64(), (std::vector<double>{0.6, 0.8, 0, 0, 0, 0, 1, 0, 0}), 1e-7, 1e-7);
}

TEST_CASE("search: bad arguments are refused", "[search]") {
  fn::Tensor q = random_unit_rows(3, 4, 1), g = random_unit_rows(5, 4, 2), g5 = random_unit_rows(5, 5, 2);
  SearchOptions opt;
  opt.k = 0;
  REQUIRE_THROWS_WITH(fn::kernels::topk_search(q, g, opt), Catch::Contains("k must be at least 1"));
  opt.k = 3;
  REQUIRE_THROWS_WITH(fn::kernels::topk_search(q, g5, opt), Catch::Contains("differs from gallery dimension"));
}

TEST_CASE("search: CUDA equals the CPU (both selection kernels)", "[search][cuda]") {
  FN_REQUIRE_CUDA();
  for (int version : {1, 2}) {
    for (int64_t k : {1, 7, 50, 64}) {
      INFO("version " << version << " k " << k);
      fn::Tensor q = random_unit_rows(301, 96, 21), g = random_unit_rows(1003, 96, 22);
      SearchOptions opt;
      opt.k = k;
      opt.query_block = 128;  // several blocks, the last one partial
      opt.cuda_version = version;
      Neighbours cpu = fn::kernels::topk_search(q, g, opt);
      Neighbours gpu = fn::kernels::topk_search(q.to(fn::Device::CUDA), g.to(fn::Device::CUDA), opt);
      require_same_neighbours(gpu, cpu, q, g);
    }
    // Exact ties on the GPU follow the same rule as on the CPU.
    std::vector<float> gv(64 * 4, 0.0f);
    for (int j = 0; j < 64; ++j) gv[size_t(j * 4 + (j % 5 == 2 ? 0 : 1))] = 1.0f;
    fn::Tensor g = fn::Tensor::from(gv, {64, 4}), q = fn::Tensor::from(std::vector<float>{1, 0, 0, 0}, {1, 4});
    SearchOptions opt;
    opt.k = 20;
    opt.cuda_version = version;
    Neighbours cpu = fn::kernels::topk_search(q, g, opt);
    Neighbours gpu = fn::kernels::topk_search(q.to(fn::Device::CUDA), g.to(fn::Device::CUDA), opt);
    REQUIRE(gpu.index == cpu.index);
  }
}
