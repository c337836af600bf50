// A two-rank MPI job that loses rank 1, for tests/dist/expect_job_ends.cmake: rank 0 enters a gradient
// all-reduce that rank 1 never joins. "stall": rank 1 sleeps (alive but gone from the collective order);
// rank 0's watchdog (3 s timeout) must end the job. "kill": rank 1 dies by SIGKILL; mpirun must end the job.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "dist/bucketer.h"

namespace {
int run(int argc, char** argv) {
  if (argc != 2 || (std::strcmp(argv[1], "stall") != 0 && std::strcmp(argv[1], "kill") != 0)) {
    std::fprintf(stderr, "usage: mpirun -np 2 dist_hang_probe stall|kill\n");
    return 2;
  }
  const bool stall = std::strcmp(argv[1], "stall") == 0;
  fn::dist::CommOptions opt;
  opt.mpi = fn::dist::CommOptions::Mpi::Require;
  opt.timeout_s = stall ? 3 : 600;  // kill: rank 0 must be ended by mpirun, long before its watchdog
  fn::dist::Communicator comm(opt);
  if (comm.size() != 2) {
    std::fprintf(stderr, "probe: run with 2 ranks, not %d\n", comm.size());
    return 2;
  }
  fn::Tensor w = fn::Tensor::full({1000}, 1.0);
  w.set_requires_grad(true);
  w.set_grad(fn::Tensor::full({1000}, double(comm.rank())));
  fn::dist::GradBucketer bucketer(comm, {w}, 1000);  // collective: both ranks get here
  comm.barrier();
  if (comm.rank() == 1) {
    if (!stall) std::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::seconds(100));
    return 0;
  }
  std::printf("probe: rank 0 entered the all-reduce\n");
  std::fflush(stdout);
  bucketer.finish();
  std::printf("probe: rank 0 left the all-reduce (it should not have)\n");
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_hang_probe: %s\n", e.what());
    return 1;
  }
}
