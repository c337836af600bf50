// cudasim's scheduler: a launch's blocks one after another, a block's threads as fibers that run in
// turn on the calling thread (on x86-64 a six-register switch of our own, as ucontext's swapcontext makes
// two system calls a switch; ucontext elsewhere). A fiber runs until it waits at a barrier or returns:
//   __syncthreads     waits until every thread of the block that has not returned waits there too;
//   a warp shuffle    writes its value to the warp's slots, waits until every live lane of the warp has, and
//                     reads its partner's slot.
// The warps run one after another, each as far as it can: when every live lane of the warp waits in a
// shuffle, the shuffle opens; when every live thread of the block waits at __syncthreads, the barrier opens.
// Lanes of one warp split between a shuffle and __syncthreads are stuck (a barrier in a divergent branch):
// that is reported and the process stops, as a hung GPU would have to be killed.
// FNSIM_ORDER=reverse runs the threads from the last to the first between barriers: a result that changes
// with the order reads memory that another thread writes with no barrier between them (a race).
// The kernels run under AddressSanitizer (a SIM build always links it): every switch tells it which stack the code is about
// to run on (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber), as it must know for fibers.
// This file itself is not instrumented: the scheduler's loops are most of the simulator's time, and a fiber's
// first frame (fiber_main) never returns, so its red zones would stay poisoned on the stack's next use.
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <sys/mman.h>
#include <sanitizer/common_interface_defs.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <mutex>
#include <string>
#include <vector>

#include "sim/cuda_sim.h"
#include "sim/sim_state.h"

namespace fnsim {

Coords g_coords;

namespace {

constexpr int kWarp = 32;
// A thread's locals (the top-k lists are the largest, 512 bytes) with AddressSanitizer's red zones around each.
constexpr size_t kStackBytes = 240 * 1024;
constexpr size_t kGuardBytes = 4096;

enum class State { Ready, AtBlockBarrier, AtWarpBarrier, Done };

// The stack a context runs on, and AddressSanitizer's saved state of it while it is switched out.
struct StackBounds {
  const void* bottom = nullptr;
  size_t size = 0;
  void* fake_stack = nullptr;
};

// A suspended execution: its stack pointer (x86-64) or its ucontext.
#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;
  StackBounds stack;
};
}  // namespace
}  // namespace fnsim
// fnsim_switch(from, to): saves the callee-saved registers on the current stack, stores the stack pointer in
// *from, loads `to` and restores the same from there. The floating-point control registers are the thread's
// and nothing here changes them, so they are not saved (fnstcw / fldcw cost most of a switch).
extern "C" void fnsim_switch(void** from, void* to);
asm(R"(
.text
.globl fnsim_switch
.type fnsim_switch,@function
fnsim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size fnsim_switch, .-fnsim_switch
)");
namespace fnsim {
namespace {
void raw_switch(Context& from, Context& to) { fnsim_switch(&from.sp, to.sp); }
// A fresh stack whose first switch "returns" into entry, as if entry had been called.
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  auto top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15);
  auto* a = reinterpret_cast<uint64_t*>(top - 16);  // entry's address, 16-aligned: rsp = a + 8 after ret
  a[0] = reinterpret_cast<uint64_t>(entry);
  a[1] = 0;
  for (int i = 1; i <= 6; ++i) a[-i] = 0;  // rbp, rbx, r12 .. r15
  c.sp = a - 6;
  c.stack = StackBounds{stack, bytes, nullptr};
}
#else
struct Context {
  ucontext_t uc;
  StackBounds stack;
};
void raw_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
void make_context(Context& c, char* stack, size_t bytes, void (*entry)()) {
  c.stack = StackBounds{stack, bytes, nullptr};
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

// `from` stops and `to` runs; a `from` that has returned for good lets AddressSanitizer drop its state.
void switch_to(Context& from, Context& to, bool from_finished = false) {
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &from.stack.fake_stack, to.stack.bottom, to.stack.size);
  raw_switch(from, to);
  __sanitizer_finish_switch_fiber(from.stack.fake_stack, nullptr, nullptr);  // `from` runs again
}

// A fiber's first instructions: the scheduler's stack (the launching thread's) is learnt here.
void entered_fiber(Context& scheduler) {
  __sanitizer_finish_switch_fiber(nullptr, &scheduler.stack.bottom, &scheduler.stack.size);
}

// A fiber's stack, with an inaccessible page below it so that an overflow faults instead of writing over
// the next stack.
struct Stack {
  char* base = nullptr;
  Stack() {
    void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mprotect(p, kGuardBytes, PROT_NONE);
    base = static_cast<char*>(p);
  }
  ~Stack() {
    if (base) munmap(base, kStackBytes + kGuardBytes);
  }
  Stack(Stack&& o) noexcept : base(o.base) { o.base = nullptr; }
  Stack& operator=(Stack&&) = delete;
  char* bottom() const { return base + kGuardBytes; }
};

struct Fiber {
  Context ctx;
  Stack stack;
  State state = State::Ready;
  uint3 idx;
  unsigned shuffles = 0;
};

struct BlockRun {
  std::vector<Fiber> fibers;  // kept between launches: their stacks are reused
  std::vector<uint64_t> slots;
  std::unique_ptr<unsigned char[]> dynamic_smem;  // exactly the launch's bytes: a read past them is reported
  size_t dynamic_bytes = 0;
  Context scheduler;
  int current = -1, count = 0;
  Body body{};
  Site site{};
};
BlockRun g_run;
std::mutex g_launch_mutex;  // one launch at a time, whichever host thread launches

bool g_reverse = [] {
  const char* e = std::getenv("FNSIM_ORDER");
  return e && std::string(e) == "reverse";
}();

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "cudasim: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void fiber_main() {
  BlockRun& r = g_run;
  entered_fiber(r.scheduler);
  r.body.run(r.body.arg);
  r.fibers[r.current].state = State::Done;
  switch_to(r.fibers[r.current].ctx, r.scheduler, /*from_finished=*/true);
  die("a finished thread was resumed");
}

void wait(State s) {
  BlockRun& r = g_run;
  if (r.current < 0) die("__syncthreads or a warp shuffle called outside a kernel");
  r.fibers[r.current].state = s;
  switch_to(r.fibers[r.current].ctx, r.scheduler);
}

std::string launched_at(Site s) {
  return "the kernel launched at " + std::string(s.file) + ":" + std::to_string(s.line);
}

std::string triple(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string where(const Fiber& f) {
  return launched_at(g_run.site) + ", block " + triple(g_coords.block) + " thread " + triple(f.idx);
}

void run_block(uint3 block) {
  BlockRun& r = g_run;
  const dim3 bd = g_coords.block_dim;
  g_coords.block = block;
  std::memset(r.dynamic_smem.get(), 0xFF, r.dynamic_bytes);  // unwritten shared floats read as NaN
  for (int t = 0; t < r.count; ++t) {
    Fiber& f = r.fibers[t];
    f.idx = uint3{unsigned(t % bd.x), unsigned(t / bd.x % bd.y), unsigned(t / (bd.x * bd.y))};
    f.state = State::Ready;
    f.shuffles = 0;
    make_context(f.ctx, f.stack.bottom(), kStackBytes, fiber_main);
  }
  const bool rev = g_reverse;
  const int warps = (r.count + kWarp - 1) / kWarp;
  for (;;) {
    // Each warp runs as far as it can: its shuffles are settled among its own 32 lanes.
    int live = 0;
    for (int i = 0; i < warps; ++i) {
      const int w = rev ? warps - 1 - i : i, first = w * kWarp, end = std::min(r.count, first + kWarp);
      for (;;) {
        for (int j = first; j < end; ++j) {
          const int t = rev ? end - 1 - (j - first) : j;
          Fiber& f = r.fibers[t];
          if (f.state != State::Ready) continue;
          r.current = t;
          g_coords.thread = f.idx;
          switch_to(r.scheduler, f.ctx);
        }
        r.current = -1;
        int wlive = 0, at_warp = 0;
        for (int t = first; t < end; ++t) {
          const State st = r.fibers[t].state;
          wlive += st != State::Done;
          at_warp += st == State::AtWarpBarrier;
        }
        if (at_warp == 0) {
          live += wlive;
          break;
        }
        if (at_warp < wlive)
          die(where(r.fibers[first]) + "'s warp: some lanes wait in a warp shuffle while others wait at "
                                       "__syncthreads (a barrier or a shuffle in a divergent branch)");
        for (int t = first; t < end; ++t)
          if (r.fibers[t].state == State::AtWarpBarrier) r.fibers[t].state = State::Ready;
      }
    }
    if (live == 0) return;
    // Every live thread now waits at __syncthreads: the barrier opens.
    for (int t = 0; t < r.count; ++t)
      if (r.fibers[t].state == State::AtBlockBarrier) r.fibers[t].state = State::Ready;
  }
}

}  // namespace

void run_grid(dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t, Body body, Site site) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0 || threads > 1024 || block.x > 1024 ||
      block.y > 1024 || block.z > 64 || grid.y > 65535 || grid.z > 65535 || grid.x > 2147483647u) {
    set_error(cudaErrorInvalidConfiguration,
              launched_at(site) + " with grid " + triple(grid) + " and block " + triple(block));
    return;
  }
  if (dynamic_smem > 48 * 1024) {
    set_error(cudaErrorInvalidValue, launched_at(site) + " with " + std::to_string(dynamic_smem) +
                                         " bytes of dynamic shared memory (48 KiB without an opt-in)");
    return;
  }
  BlockRun& r = g_run;
  r.count = int(threads);
  while (r.fibers.size() < threads) r.fibers.emplace_back();
  r.slots.assign(2 * threads, 0);
  r.dynamic_smem.reset(new unsigned char[dynamic_smem]);
  r.dynamic_bytes = dynamic_smem;
  r.body = body;
  r.site = site;
  g_coords.block_dim = block;
  g_coords.grid_dim = grid;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) run_block(uint3{x, y, z});
  count_launch();
}

void host_pointer_argument(Site site, int index) {
  set_error(cudaErrorIllegalAddress, launched_at(site) + " is given a host pointer as argument " +
                                         std::to_string(index) + " (a GPU faults on it); it did not run");
}

void set_reverse_order(bool reverse) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  g_reverse = reverse;
}

bool reverse_order() {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  return g_reverse;
}

void syncthreads() { wait(State::AtBlockBarrier); }

// Slots in two sets used in turn (a lane's shuffle count's parity): a lane writes set p for its next shuffle
// only after every lane has passed the barrier of the shuffle between, so every read of set p is done by then.
uint64_t shfl_xor_bits(uint64_t bits, int lane_mask) {
  BlockRun& r = g_run;
  const int t = r.current, warp0 = t / kWarp * kWarp, src = warp0 + ((t - warp0) ^ lane_mask);
  Fiber& f = r.fibers[t];
  uint64_t* set = r.slots.data() + (f.shuffles++ & 1) * r.count;
  set[t] = bits;
  wait(State::AtWarpBarrier);
  // The partner wrote this shuffle's value if it has made as many shuffles (it may have gone on since).
  if (src >= r.count || r.fibers[src].shuffles < f.shuffles)
    die(where(f) + " reads lane " + std::to_string(src % kWarp) +
        " in a shuffle, and that lane has returned or does not exist");
  return set[src];
}

void* dynamic_shared() { return g_run.dynamic_smem.get(); }

}  // namespace fnsim
