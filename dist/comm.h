// Communicator: the process's place in a data-parallel job (issue 20). One process per GPU (or per CPU
// worker), launched by mpirun; MPI carries the CPU path and the set-up, NCCL the GPU gradients.
//
//   fn::dist::Communicator comm;            // MPI when launched by mpirun (or a single process: size 1)
//   comm.rank(), comm.size(), comm.local_rank()   // local rank: index among the ranks of this host
//
// Construction initialises MPI once per process (MPI_Init_thread, MPI_THREAD_MULTIPLE requested so that
// the watchdog may call MPI_Abort) and MPI_Finalize runs at process exit; each Communicator owns a
// duplicate of MPI_COMM_WORLD (errors returned, not fatal, so that checks can name them) and the
// shared-memory split (MPI_Comm_split_type MPI_COMM_TYPE_SHARED) that gives the local rank. With
// CommOptions::device == CUDA it takes GPU local_rank % device_count (before anything else touches CUDA:
// fn::cuda::stream() is created on the current device) and, in builds with NCCL, creates an NCCL
// communicator from rank 0's ncclUniqueId broadcast over MPI, and a stream of its own for NCCL's work.
//
// Without MPI in the build, or when the process was not started by an MPI launcher, the communicator is a
// single process (size 1) and every collective is a copy at most.
//
// Every collective is watched (dist/watchdog.h): one that has not completed after CommOptions::timeout_s
// prints "fn::dist watchdog: rank R of N on HOST: collective '...' has not completed ..." and ends the
// job (ncclCommAbort, MPI_Abort with exit code kWatchdogExitCode).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/shard.h"
#include "core/tensor.h"
#include "dist/watchdog.h"

namespace fn::dist {

constexpr int kWatchdogExitCode = 124;

bool mpi_compiled();   // built with FN_HAVE_MPI
bool nccl_compiled();  // built with FN_HAVE_NCCL (implies CUDA)
// Whether an MPI launcher started this process (mpirun/orterun, Hydra, PMIx, Slurm's srun with PMI).
bool launched_by_mpi();
// The device a command's Communicator sets up: the run's device for ranks under mpirun, or when one process
// asks for the data-parallel path alone (train --dist-alone); the CPU otherwise, since a plain single process
// needs neither a GPU chosen by local rank nor NCCL (whose start-up costs seconds and can fail in sandboxes).
inline Device comm_device(Device run_device, bool dist_alone = false) {
  return launched_by_mpi() || dist_alone ? run_device : Device::CPU;
}

struct CommOptions {
  enum class Mpi { Auto, Require, Never };
  Mpi mpi = Mpi::Auto;       // Auto: MPI when launched_by_mpi(); Require: an error when MPI is not there
  Device device = Device::CPU;  // CUDA: select the GPU by local rank and (with NCCL) set up NCCL
  double timeout_s = 300;    // collective timeout; <= 0 disables the watchdog
};

class Communicator {
 public:
  explicit Communicator(CommOptions options = {});
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int size() const;
  int local_rank() const;  // rank among the processes of this host (shared-memory split)
  int local_size() const;
  bool uses_mpi() const;   // false for a single process without MPI
  bool uses_nccl() const;  // CUDA device and an NCCL communicator
  Device device() const;
  int cuda_device() const;  // the GPU taken (-1 on CPU)
  const std::string& host() const;
  std::string describe() const;  // "rank 1 of 2 (local 1 of 2) on host-a, cpu, MPI"
  Watchdog& watchdog();

  // Prints `message` and ends every rank of the job with `exit_code` (MPI_Abort: mpirun then stops the others),
  // for an error on one rank that the others, waiting in a collective, cannot see.
  [[noreturn]] void abort_job(const std::string& message, int exit_code);

  // Blocking collectives over MPI on host memory, each watched. Identity for a single process.
  void barrier();
  void broadcast_bytes(void* data, size_t bytes, int root);
  void allreduce_sum(float* data, int64_t count);
  void allreduce_sum(double* data, int64_t count);
  uint64_t allreduce_min(uint64_t v);
  uint64_t allreduce_max(uint64_t v);
  // Every rank's `local` block, concatenated in rank order, on every rank (MPI_Iallgatherv; the blocks may
  // differ in length, and be empty). For sharded work whose results every rank needs: evaluation's rows.
  std::vector<float> allgather(const std::vector<float>& local);
  std::vector<int> allgather(const std::vector<int>& local);
  std::vector<std::string> allgather(const std::vector<std::string>& local);
  // Rank `root`'s values of each tensor, into every rank's (CPU or CUDA tensors; NCCL for CUDA ones when
  // in use, else through host memory). For the initial parameters and, each step, batch norm's buffers.
  void broadcast(const std::vector<Tensor>& tensors, int root = 0);

  struct Impl;  // dist/comm_impl.h, for the bucketed all-reduce
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Rank `rank`'s contiguous share of n items (core/shard.h): the shards in rank order are the items in
// order, so results gathered with allgather keep it.
using ::fn::Shard;
using ::fn::shard_of;

// Runs `work` (this rank's share of some sharded job), then, collectively, tells every rank whether it threw
// anywhere: a rank that stopped alone would leave the others waiting in the next collective until the
// watchdog ends the job. The rank that threw rethrows its own error; the others throw a user error naming
// the first rank that failed, `what` and its message. For a single process, just `work()`.
void run_together(Communicator& comm, const std::string& what, const std::function<void()>& work);

// A 64-bit FNV-1a hash of the shapes, dtypes and bytes of `tensors` (copied to the host when on a GPU).
uint64_t tensor_checksum(const std::vector<Tensor>& tensors);

// Whether every rank holds bitwise the same tensors: the checksums' MIN and MAX across ranks compared.
struct ChecksumCheck {
  uint64_t local = 0, min = 0, max = 0;
  bool identical() const { return min == max; }
};
ChecksumCheck check_identical(Communicator& comm, const std::vector<Tensor>& tensors);
// The debug check (every N steps, behind a trainer flag): throws on every rank, naming `what` ("the
// parameters after step 120") and the checksums, when the ranks' tensors differ. Collective.
void require_identical(Communicator& comm, const std::vector<Tensor>& tensors, const std::string& what);

}  // namespace fn::dist
