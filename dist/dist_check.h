// Checked MPI and NCCL calls: a failure throws fn::Error naming the call and the library's error string,
// as core/cuda_check.h does for CUDA ("MPI error MPI_ERR_TRUNCATE: message truncated in MPI_Bcast(...)").
#pragma once
#include <string>

#include "core/error.h"

#ifdef FN_HAVE_MPI
#include <mpi.h>

namespace fn::dist::detail {
inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return cat("error code ", code);
  int cls = 0;
  MPI_Error_class(code, &cls);
  return cat(std::string(text, size_t(len)), " (class ", cls, ")");
}
}  // namespace fn::dist::detail

#define FN_MPI_CHECK(call)                                                                           \
  do {                                                                                               \
    const int e_ = (call);                                                                           \
    if (e_ != MPI_SUCCESS)                                                                           \
      ::fn::throw_error(__FILE__, __LINE__, ::fn::cat("MPI error ", ::fn::dist::detail::mpi_error_text(e_), \
                                                      " in ", #call));                               \
  } while (0)
#endif

#ifdef FN_HAVE_NCCL
#include <nccl.h>

// ncclGetLastError names the cause (a peer's connection closed, ...) beyond the result's name.
#define FN_NCCL_CHECK(call, comm)                                                                   \
  do {                                                                                              \
    const ncclResult_t r_ = (call);                                                                 \
    if (r_ != ncclSuccess)                                                                          \
      ::fn::throw_error(__FILE__, __LINE__,                                                         \
                        ::fn::cat("NCCL error ", ncclGetErrorString(r_), " (", ncclGetLastError(comm), \
                                  ") in ", #call));                                                 \
  } while (0)
#endif
