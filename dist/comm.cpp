// Communicator (dist/comm.h): MPI set-up and teardown, the local rank, the GPU choice, NCCL's
// communicator, the blocking collectives, and the checksum that compares parameters across ranks.
#include "dist/comm.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>

#include "dist/comm_impl.h"
#ifdef FN_WITH_CUDA
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

namespace fn::dist {

bool mpi_compiled() {
#ifdef FN_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool nccl_compiled() {
#ifdef FN_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

namespace {

#ifdef FN_HAVE_MPI
// MPI_Init_thread once per process, MPI_Finalize at exit (a function-local static: destroyed after every
// Communicator built after it). MPI initialised by someone else is left to them.
struct MpiRuntime {
  bool ours = false;
  int thread_level = MPI_THREAD_SINGLE;
  MpiRuntime() {
    int initialised = 0;
    FN_MPI_CHECK(MPI_Initialized(&initialised));
    if (!initialised) {
      FN_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &thread_level));
      ours = true;
    } else {
      FN_MPI_CHECK(MPI_Query_thread(&thread_level));
    }
  }
  ~MpiRuntime() {
    int finalised = 1;
    MPI_Finalized(&finalised);
    if (ours && !finalised) MPI_Finalize();
  }
};
MpiRuntime& mpi_runtime() {
  static MpiRuntime r;
  return r;
}
bool mpi_finalised() {
  int f = 1;
  MPI_Finalized(&f);
  return f != 0;
}
// MPI counts are ints: larger buffers go in pieces.
constexpr int64_t kMaxCount = INT_MAX / 8;
#endif

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

// The default timeout action: say why, then end the job. MPI_Abort makes mpirun kill every rank; should
// it not return promptly (or MPI lack thread support), the process ends itself after a grace period.
// `main_thread`: MPI may be called from this thread whatever the thread level MPI granted.
[[noreturn]] void abort_job(Communicator::Impl* impl, const std::string& message, int exit_code = kWatchdogExitCode,
                            bool main_thread = false) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::thread([exit_code] {
    std::this_thread::sleep_for(std::chrono::seconds(10));
    std::_Exit(exit_code);
  }).detach();
#ifdef FN_HAVE_NCCL
  if (impl->nccl) ncclCommAbort(impl->nccl);  // unblocks kernels waiting for a peer
#endif
#ifdef FN_HAVE_MPI
  if (impl->mpi && (main_thread || mpi_runtime().thread_level == MPI_THREAD_MULTIPLE)) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
  (void)impl;
  (void)main_thread;
  std::_Exit(exit_code);
}

}  // namespace

#ifdef FN_HAVE_MPI
void Communicator::Impl::wait(MPI_Request& req, const std::string& what) {
  const uint64_t ticket = watchdog->begin(what);
  const int rc = MPI_Wait(&req, MPI_STATUS_IGNORE);
  watchdog->end(ticket);
  FN_MPI_CHECK(rc);
}
#endif

Communicator::Communicator(CommOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.options = options;
  m.host = host_name();
  bool want_mpi = false;
  switch (options.mpi) {
    case CommOptions::Mpi::Never: break;
    case CommOptions::Mpi::Auto: want_mpi = mpi_compiled() && launched_by_mpi(); break;
    case CommOptions::Mpi::Require:
      FN_EXPECT(mpi_compiled(), "distributed training needs MPI, and this build has none (configure with FN_MPI=ON; "
                                "Debian: apt-get install libopenmpi-dev openmpi-bin)");
      want_mpi = true;
      break;
  }
  if (!want_mpi && launched_by_mpi() && !mpi_compiled())
    std::fprintf(stderr, "fn::dist: started by an MPI launcher, but this build has no MPI: running as a single process\n");
#ifdef FN_HAVE_MPI
  if (want_mpi) {
    mpi_runtime();
    m.mpi = true;
    FN_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &m.world));
    FN_MPI_CHECK(MPI_Comm_set_errhandler(m.world, MPI_ERRORS_RETURN));
    FN_MPI_CHECK(MPI_Comm_rank(m.world, &m.rank));
    FN_MPI_CHECK(MPI_Comm_size(m.world, &m.size));
    FN_MPI_CHECK(MPI_Comm_split_type(m.world, MPI_COMM_TYPE_SHARED, m.rank, MPI_INFO_NULL, &m.local));
    FN_MPI_CHECK(MPI_Comm_set_errhandler(m.local, MPI_ERRORS_RETURN));
    FN_MPI_CHECK(MPI_Comm_rank(m.local, &m.local_rank));
    FN_MPI_CHECK(MPI_Comm_size(m.local, &m.local_size));
  }
#endif
  Impl* raw = impl_.get();
  m.watchdog = std::make_unique<Watchdog>(options.timeout_s, cat("rank ", m.rank, " of ", m.size, " on ", m.host),
                                          [raw](const std::string& msg) { ::fn::dist::abort_job(raw, msg); });
  if (options.device == Device::CUDA) {
#ifdef FN_WITH_CUDA
    FN_EXPECT(cuda_available(), "--device cuda: no GPU answers on ", m.host, " (rank ", m.rank, ")");
    int count = 0;
    CUDA_CHECK(cudaGetDeviceCount(&count));
    FN_EXPECT(m.local_size <= count, m.host, " runs ", m.local_size, " ranks but has ", count,
              " GPUs: one rank per GPU (mpirun -np <= GPUs per host, or --map-by ppr:<GPUs>:node)");
    m.cuda_device = m.local_rank % count;
    CUDA_CHECK(cudaSetDevice(m.cuda_device));
#ifdef FN_HAVE_NCCL
    ncclUniqueId id;
    std::memset(&id, 0, sizeof id);
    if (m.rank == 0) FN_NCCL_CHECK(ncclGetUniqueId(&id), nullptr);
    broadcast_bytes(&id, sizeof id, 0);
    CUDA_CHECK(cudaStreamCreateWithFlags(&m.nccl_stream, cudaStreamNonBlocking));
    const uint64_t ticket = m.watchdog->begin("ncclCommInitRank");
    const ncclResult_t r = ncclCommInitRank(&m.nccl, m.size, id, m.rank);
    m.watchdog->end(ticket);
    FN_NCCL_CHECK(r, nullptr);
#endif
#else
    FN_USER_FAIL("--device cuda: this build has no CUDA");
#endif
  }
}

Communicator::~Communicator() {
  Impl& m = *impl_;
  m.watchdog.reset();  // no timeout action during teardown
#ifdef FN_HAVE_NCCL
  if (m.nccl) ncclCommDestroy(m.nccl);
  if (m.nccl_stream) cudaStreamDestroy(m.nccl_stream);
#endif
#ifdef FN_HAVE_MPI
  if (m.mpi && !mpi_finalised()) {
    if (m.local != MPI_COMM_NULL) MPI_Comm_free(&m.local);
    if (m.world != MPI_COMM_NULL) MPI_Comm_free(&m.world);
  }
#endif
}

int Communicator::rank() const { return impl_->rank; }
int Communicator::size() const { return impl_->size; }
int Communicator::local_rank() const { return impl_->local_rank; }
int Communicator::local_size() const { return impl_->local_size; }
bool Communicator::uses_mpi() const {
#ifdef FN_HAVE_MPI
  return impl_->mpi;
#else
  return false;
#endif
}
bool Communicator::uses_nccl() const { return impl_->uses_nccl(); }
Device Communicator::device() const { return impl_->options.device; }
int Communicator::cuda_device() const { return impl_->cuda_device; }
const std::string& Communicator::host() const { return impl_->host; }
Watchdog& Communicator::watchdog() { return *impl_->watchdog; }

std::string Communicator::describe() const {
  const Impl& m = *impl_;
  return cat("rank ", m.rank, " of ", m.size, " (local ", m.local_rank, " of ", m.local_size, ") on ", m.host, ", ",
             m.cuda_device >= 0 ? cat("cuda:", m.cuda_device) : std::string("cpu"),
             uses_nccl() ? ", NCCL" : uses_mpi() ? ", MPI" : ", single process");
}

void Communicator::abort_job(const std::string& message, int exit_code) {
  ::fn::dist::abort_job(impl_.get(), message, exit_code, /*main_thread=*/true);
}

void Communicator::barrier() {
#ifdef FN_HAVE_MPI
  if (!impl_->mpi) return;
  MPI_Request req;
  FN_MPI_CHECK(MPI_Ibarrier(impl_->world, &req));
  impl_->wait(req, "MPI_Ibarrier");
#endif
}

void Communicator::broadcast_bytes(void* data, size_t bytes, int root) {
  FN_CHECK(root >= 0 && root < size(), "broadcast from rank ", root, " in a job of ", size());
#ifdef FN_HAVE_MPI
  if (!impl_->mpi) return;
  char* p = static_cast<char*>(data);
  for (size_t done = 0; done < bytes;) {
    const int n = int(std::min<size_t>(bytes - done, size_t(kMaxCount)));
    MPI_Request req;
    FN_MPI_CHECK(MPI_Ibcast(p + done, n, MPI_BYTE, root, impl_->world, &req));
    impl_->wait(req, cat("MPI_Ibcast of ", n, " bytes from rank ", root));
    done += size_t(n);
  }
#else
  (void)data;
  (void)bytes;
#endif
}

namespace {
#ifdef FN_HAVE_MPI
template <class T>
void allreduce_host(Communicator::Impl& m, T* data, int64_t count, MPI_Datatype type, MPI_Op op, const char* what) {
  for (int64_t done = 0; done < count;) {
    const int n = int(std::min<int64_t>(count - done, kMaxCount));
    MPI_Request req;
    FN_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data + done, n, type, op, m.world, &req));
    m.wait(req, cat("MPI_Iallreduce (", what, ") of ", n, " elements"));
    done += n;
  }
}
#endif
}  // namespace

void Communicator::allreduce_sum(float* data, int64_t count) {
#ifdef FN_HAVE_MPI
  if (impl_->mpi) allreduce_host(*impl_, data, count, MPI_FLOAT, MPI_SUM, "sum");
#else
  (void)data;
  (void)count;
#endif
}

void Communicator::allreduce_sum(double* data, int64_t count) {
#ifdef FN_HAVE_MPI
  if (impl_->mpi) allreduce_host(*impl_, data, count, MPI_DOUBLE, MPI_SUM, "sum");
#else
  (void)data;
  (void)count;
#endif
}

uint64_t Communicator::allreduce_min(uint64_t v) {
#ifdef FN_HAVE_MPI
  if (impl_->mpi) allreduce_host(*impl_, &v, 1, MPI_UINT64_T, MPI_MIN, "min");
#endif
  return v;
}

uint64_t Communicator::allreduce_max(uint64_t v) {
#ifdef FN_HAVE_MPI
  if (impl_->mpi) allreduce_host(*impl_, &v, 1, MPI_UINT64_T, MPI_MAX, "max");
#endif
  return v;
}

namespace {
#ifdef FN_HAVE_MPI
// Every rank's `count` elements, concatenated in rank order. MPI's counts and displacements are ints, so
// large blocks go in rounds of at most allgather_max_count / size elements per rank, through a buffer;
// blocks that fit in one round (every evaluation so far) land in place in one call.
template <class T>
std::vector<T> allgather_host(Communicator::Impl& m, const T* data, int64_t count, MPI_Datatype type,
                              const char* what) {
  const size_t n = size_t(m.size);
  std::vector<int64_t> counts(n);
  MPI_Request req;
  FN_MPI_CHECK(MPI_Iallgather(&count, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, m.world, &req));
  m.wait(req, cat("MPI_Iallgather of the block sizes (", what, ")"));
  std::vector<int64_t> offset(n + 1, 0);
  for (size_t r = 0; r < n; ++r) offset[r + 1] = offset[r] + counts[r];
  std::vector<T> out(static_cast<size_t>(offset[n]));
  const int64_t chunk = std::max<int64_t>(1, m.allgather_max_count / int64_t(n));
  const int64_t largest = *std::max_element(counts.begin(), counts.end());
  std::vector<int> round_count(n), round_offset(n);
  std::vector<T> buffer;
  for (int64_t start = 0; start < largest; start += chunk) {
    int total = 0;
    for (size_t r = 0; r < n; ++r) {
      round_count[r] = int(std::clamp<int64_t>(counts[r] - start, 0, chunk));
      round_offset[r] = total;
      total += round_count[r];
    }
    // One round covers everything exactly when every block fits in a chunk: the layout is then the final one.
    const bool in_place = largest <= chunk;
    if (!in_place) buffer.resize(size_t(total));
    T* recv = in_place ? out.data() : buffer.data();
    const int mine = round_count[size_t(m.rank)];
    FN_MPI_CHECK(MPI_Iallgatherv(mine > 0 ? data + start : data, mine, type, recv, round_count.data(),
                                 round_offset.data(), type, m.world, &req));
    m.wait(req, cat("MPI_Iallgatherv (", what, ") of ", total, " elements"));
    if (!in_place)
      for (size_t r = 0; r < n; ++r)
        std::copy(buffer.begin() + round_offset[r], buffer.begin() + round_offset[r] + round_count[r],
                  out.begin() + offset[r] + start);
  }
  return out;
}
#endif
}  // namespace

std::vector<float> Communicator::allgather(const std::vector<float>& local) {
#ifdef FN_HAVE_MPI
  if (impl_->mpi) return allgather_host(*impl_, local.data(), int64_t(local.size()), MPI_FLOAT, "float");
#endif
  return local;
}

std::vector<int> Communicator::allgather(const std::vector<int>& local) {
#ifdef FN_HAVE_MPI
  if (impl_->mpi) return allgather_host(*impl_, local.data(), int64_t(local.size()), MPI_INT, "int");
#endif
  return local;
}

std::vector<std::string> Communicator::allgather(const std::vector<std::string>& local) {
#ifdef FN_HAVE_MPI
  if (impl_->mpi) {
    // The lengths, then the characters back to back: no separator, so any byte may appear in a string.
    std::vector<int> lengths;
    std::vector<char> chars;
    for (const std::string& s : local) {
      FN_CHECK(s.size() <= size_t(INT_MAX), "allgather: a string of ", s.size(), " bytes");
      lengths.push_back(int(s.size()));
      chars.insert(chars.end(), s.begin(), s.end());
    }
    const std::vector<int> all_lengths = allgather(lengths);
    const std::vector<char> all_chars =
        allgather_host(*impl_, chars.data(), int64_t(chars.size()), MPI_CHAR, "string characters");
    std::vector<std::string> out;
    out.reserve(all_lengths.size());
    size_t at = 0;
    for (int len : all_lengths) {
      out.emplace_back(all_chars.data() + at, size_t(len));
      at += size_t(len);
    }
    FN_CHECK(at == all_chars.size(), "allgather: ", all_chars.size(), " characters for strings of ", at);
    return out;
  }
#endif
  return local;
}

void Communicator::broadcast(const std::vector<Tensor>& tensors, int root) {
  if (size() == 1) return;
#ifdef FN_HAVE_NCCL
  Impl& m = *impl_;
  if (m.nccl) {
    // Queued behind the compute stream's work, and the compute stream waits for it; the host waits too
    // (broadcasts are rare: the initial parameters, batch norm's buffers), watched.
    cudaEvent_t ready, done;
    CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(ready, fn::cuda::stream()));
    CUDA_CHECK(cudaStreamWaitEvent(m.nccl_stream, ready, 0));
    // Watched from before the enqueue: NCCL sets up its connections inside the first collective, blocking.
    const uint64_t ticket = m.watchdog->begin(cat("ncclBroadcast of ", tensors.size(), " tensors from rank ", root));
    FN_NCCL_CHECK(ncclGroupStart(), m.nccl);
    for (const Tensor& t : tensors) {
      if (!t.is_cuda()) continue;
      FN_NCCL_CHECK(ncclBroadcast(t.raw(), t.raw(), t.nbytes(), ncclUint8, root, m.nccl, m.nccl_stream), m.nccl);
    }
    FN_NCCL_CHECK(ncclGroupEnd(), m.nccl);
    CUDA_CHECK(cudaEventRecord(done, m.nccl_stream));
    CUDA_CHECK(cudaStreamWaitEvent(fn::cuda::stream(), done, 0));
    const cudaError_t e = cudaEventSynchronize(done);
    m.watchdog->end(ticket);
    cudaEventDestroy(ready);
    cudaEventDestroy(done);
    CUDA_CHECK(e);
    for (const Tensor& t : tensors)
      if (!t.is_cuda()) broadcast_bytes(t.raw(), t.nbytes(), root);
    return;
  }
#endif
  for (const Tensor& t : tensors) {
    if (!t.is_cuda()) {
      broadcast_bytes(t.raw(), t.nbytes(), root);
    } else {  // through host memory
      Tensor h = t.cpu();
      broadcast_bytes(h.raw(), h.nbytes(), root);
      Tensor(t).copy_from(h);
    }
  }
}

void run_together(Communicator& comm, const std::string& what, const std::function<void()>& work) {
  if (comm.size() == 1) return work();
  std::exception_ptr failure;
  std::string message;
  try {
    work();
  } catch (const std::exception& e) {
    failure = std::current_exception();
    message = *e.what() ? e.what() : "an error without a message";
  } catch (...) {
    failure = std::current_exception();
    message = "an unknown exception (an internal error)";
  }
  const std::vector<std::string> errors = comm.allgather(std::vector<std::string>{message});
  if (failure) std::rethrow_exception(failure);
  for (size_t q = 0; q < errors.size(); ++q)
    FN_EXPECT(errors[q].empty(), what, " stopped: rank ", q, " of ", comm.size(), " failed: ", errors[q]);
}

uint64_t tensor_checksum(const std::vector<Tensor>& tensors) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, 64 bits
  auto mix = [&h](const void* p, size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  for (const Tensor& t : tensors) {
    if (!t.defined()) {
      mix("undef", 5);
      continue;
    }
    const int64_t nd = t.ndim();
    mix(&nd, sizeof nd);
    for (int64_t d : t.shape()) mix(&d, sizeof d);
    const int dt = int(t.dtype());
    mix(&dt, sizeof dt);
    const Tensor h = t.cpu();
    mix(h.raw(), h.nbytes());
  }
  return h;
}

ChecksumCheck check_identical(Communicator& comm, const std::vector<Tensor>& tensors) {
  ChecksumCheck c;
  c.local = tensor_checksum(tensors);
  c.min = comm.allreduce_min(c.local);
  c.max = comm.allreduce_max(c.local);
  return c;
}

void require_identical(Communicator& comm, const std::vector<Tensor>& tensors, const std::string& what) {
  const ChecksumCheck c = check_identical(comm, tensors);
  if (!c.identical())
    FN_FAIL(what, " differ across the ", comm.size(), " ranks: checksums from ", c.min, " to ", c.max,
            " (rank ", comm.rank(), ": ", c.local, ")");
}

}  // namespace fn::dist
