// Communicator's internals (dist/comm.h), shared with the bucketed all-reduce (dist/bucketer.cpp) and the
// benchmark; not for other code: the MPI and NCCL handles live here so that dist/comm.h needs neither.
#pragma once
#include <climits>
#include <cstdint>
#include <memory>
#include <string>

#include "dist/comm.h"
#include "dist/dist_check.h"
#ifdef FN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace fn::dist {

struct Communicator::Impl {
  CommOptions options;
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
  int cuda_device = -1;
  std::string host;
  std::unique_ptr<Watchdog> watchdog;
#ifdef FN_HAVE_MPI
  bool mpi = false;
  MPI_Comm world = MPI_COMM_NULL;  // a duplicate of MPI_COMM_WORLD, errors returned
  MPI_Comm local = MPI_COMM_NULL;  // this host's ranks
#endif
#ifdef FN_HAVE_NCCL
  ncclComm_t nccl = nullptr;
  cudaStream_t nccl_stream = nullptr;  // NCCL's collectives run here, beside the compute stream
#endif
  bool uses_nccl() const {
#ifdef FN_HAVE_NCCL
    return nccl != nullptr;
#else
    return false;
#endif
  }
  // allgather's limit on the elements of one MPI call (MPI counts are ints); tests lower it to exercise the rounds.
  int64_t allgather_max_count = INT_MAX / 8;
  // Waits for an MPI request under the watchdog ("what" names the collective in its message).
#ifdef FN_HAVE_MPI
  void wait(MPI_Request& req, const std::string& what);
#endif
};

}  // namespace fn::dist
