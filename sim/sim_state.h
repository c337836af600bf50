// cudasim's host-side state shared by the scheduler, the runtime and the simulator's own tests: the last
// error, as cudaGetLastError returns it, the count of kernels run, and the order threads run in.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace fnsim {

// Records an error for cudaGetLastError (the first one sticks until read) and prints what happened.
void set_error(cudaError_t e, const std::string& what);
void count_launch();
uint64_t launches();
// Threads between two barriers run from the last to the first (FNSIM_ORDER=reverse sets it at start).
void set_reverse_order(bool reverse);
bool reverse_order();

}  // namespace fnsim
