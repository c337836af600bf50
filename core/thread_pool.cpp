#include "core/thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fn {
namespace {

thread_local bool t_in_task = false;  // set while this thread runs a task: nested calls run inline

// How long a waiting thread polls before it sleeps. Waking a sleeping thread through the kernel takes tens of
// microseconds on a virtual machine, as long as a whole pass over a small tensor, and a batch norm makes four
// parallel calls in a row; a poll this short costs the other work on the core (BLAS's threads) at most this
// much per call.
constexpr auto kSpin = std::chrono::microseconds(50);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Polls ready() until it holds or kSpin has passed (the caller then waits on its condition variable).
template <class Ready>
void spin_until(Ready&& ready) {
  const auto end = std::chrono::steady_clock::now() + kSpin;
  do {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return;
      cpu_relax();
    }
  } while (std::chrono::steady_clock::now() < end);
}

// Runs every task on the caller, in order; the first exception propagates after the rest have run, as in
// the pooled path.
void run_inline(int n, const std::function<void(int)>& task) {
  std::exception_ptr error;
  for (int i = 0; i < n; ++i) {
    try {
      task(i);
    } catch (...) {
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(int n, const std::function<void(int)>& task) {
    if (t_in_task) return run_inline(n, task);  // before the lock: this thread may hold it already
    std::unique_lock<std::mutex> busy(call_, std::try_to_lock);
    if (!busy.owns_lock()) return run_inline(n, task);
    grow(n - 1);
    {
      std::lock_guard<std::mutex> lk(m_);
      task_ = &task;
      tasks_ = n;
      pending_ = n - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_one(0);
    spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lk(m_);
    done_.wait(lk, [&] { return pending_ == 0; });
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  int workers() {
    std::lock_guard<std::mutex> lk(m_);
    return int(workers_.size());
  }

 private:
  void grow(int want) {
    std::lock_guard<std::mutex> lk(m_);
    while (int(workers_.size()) < want) {
      const int index = int(workers_.size()) + 1;  // task index this worker runs; the caller runs 0
      workers_.emplace_back([this, index, seen = generation_.load()] { loop(index, seen); });
    }
  }

  void run_one(int index) {
    t_in_task = true;
    try {
      (*task_)(index);
    } catch (...) {
      std::lock_guard<std::mutex> lk(m_);
      if (!error_) error_ = std::current_exception();
    }
    t_in_task = false;
  }

  void loop(int index, unsigned long seen) {
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (index >= tasks_) continue;  // this call needs fewer workers
      }
      run_one(index);
      std::lock_guard<std::mutex> lk(m_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex call_;  // one parallel call at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;
  int tasks_ = 0;
  // Written under m_; atomic so that a waiting thread may poll them without it (spin_until).
  std::atomic<int> pending_{0};
  std::atomic<unsigned long> generation_{0};
  bool stop_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void parallel_run(int n, const std::function<void(int)>& task) {
  if (n <= 0) return;
  if (n == 1) return task(0);
  pool().run(n, task);
}

int thread_pool_workers() { return pool().workers(); }

}  // namespace fn
