// core/thread_pool.h: every task runs once, workers are kept, nested and concurrent calls and exceptions.
#include <atomic>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/launch.h"

using namespace fn;

TEST_CASE("parallel_run runs every task index exactly once") {
  for (int n : {1, 2, 3, 8}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    parallel_run(n, [&](int t) { hits[size_t(t)]++; });
    for (int t = 0; t < n; ++t) CHECK(hits[size_t(t)] == 1);
  }
}

TEST_CASE("parallel_run keeps its workers between calls") {
  parallel_run(3, [](int) {});
  const int started = thread_pool_workers();
  CHECK(started >= 2);
  for (int i = 0; i < 200; ++i) parallel_run(3, [](int) {});
  CHECK(thread_pool_workers() == started);
}

TEST_CASE("task 0 runs on the calling thread; a nested call runs inline") {
  const auto caller = std::this_thread::get_id();
  std::thread::id first;
  std::atomic<int> inner{0};
  std::vector<std::thread::id> outer_ids(2), inner_ids(4);  // Catch's CHECK is not thread-safe: check after
  parallel_run(2, [&](int t) {
    if (t == 0) first = std::this_thread::get_id();
    outer_ids[size_t(t)] = std::this_thread::get_id();
    parallel_run(2, [&](int u) {
      inner++;
      inner_ids[size_t(2 * t + u)] = std::this_thread::get_id();
    });
  });
  CHECK(first == caller);
  for (int t = 0; t < 2; ++t) {
    CHECK(inner_ids[size_t(2 * t)] == outer_ids[size_t(t)]);
    CHECK(inner_ids[size_t(2 * t + 1)] == outer_ids[size_t(t)]);
  }
  CHECK(inner == 4);
}

TEST_CASE("an exception in a task reaches the caller after every task has run") {
  std::atomic<int> ran{0};
  CHECK_THROWS_AS(parallel_run(4, [&](int t) {
                    ran++;
                    if (t == 2) throw std::runtime_error("task 2");
                  }),
                  std::runtime_error);
  CHECK(ran == 4);
  std::atomic<int> after{0};
  parallel_run(4, [&](int) { after++; });  // the pool still works
  CHECK(after == 4);
}

TEST_CASE("calls from two threads at once both complete with the same results") {
  auto work = [](std::vector<int64_t>& out) {
    for (int rep = 0; rep < 100; ++rep)
      kernels::cpu_parallel_ranges(1000, 2, [&](int64_t a, int64_t b) {
        for (int64_t i = a; i < b; ++i) out[size_t(i)] += i;
      });
  };
  std::vector<int64_t> x(1000, 0), y(1000, 0);
  std::thread other([&] { work(y); });
  work(x);
  other.join();
  for (int64_t i = 0; i < 1000; ++i) {
    REQUIRE(x[size_t(i)] == 100 * i);
    REQUIRE(y[size_t(i)] == 100 * i);
  }
}
