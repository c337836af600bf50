// The CPU kernels' worker threads. Starting and joining a std::thread costs tens of microseconds, which is
// a visible share of a memory-bound pass over a small tensor (batch norm on a 5x5 map, global average
// pooling); so the threads are started once and kept, and a parallel loop only wakes them. Waking a
// sleeping thread costs tens of microseconds too on a virtual machine, so a waiting thread (a worker between
// calls, the caller while its workers finish) polls for up to 50 microseconds before it sleeps.
//
//   parallel_run(n, task): runs task(0) .. task(n - 1), task(0) on the calling thread and the others on
//   the pool's workers (one each, started on first use and kept until exit), and returns when all are done.
//   The task index, not the thread that runs it, decides what a task does, so results do not depend on
//   which worker ran what. A call made from inside a task, or while another thread's call holds the pool,
//   runs its tasks one after another on the calling thread instead (same results, no deadlock).
#pragma once
#include <functional>

namespace fn {

void parallel_run(int n, const std::function<void(int task)>& task);

// How many workers the pool has started so far (tests).
int thread_pool_workers();

}  // namespace fn
