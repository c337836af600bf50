// AtomicFile: temporary file + fsync + rename. See atomic_file.h.
#include "core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace fn {
namespace {

std::atomic<int64_t> g_fail_after{-1};

std::string folder_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void atomic_file_inject_failure(int64_t after_bytes) { g_fail_after = after_bytes; }

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  FN_EXPECT(!path.empty(), "cannot write a file: the path is empty");
  tmp_ = cat(path, ".tmp.", ::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    FN_USER_FAIL(path, ": cannot open for writing (temporary file '", tmp_, "'): ", std::strerror(err),
                 err == ENOENT ? " (does the folder exist?)" : "");
  }
}

AtomicFile::~AtomicFile() {
  if (!committed_) abort();
}

void AtomicFile::abort() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  FN_CHECK(fd_ >= 0, path_, ": write after the file was closed");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    int64_t limit = g_fail_after.load();
    if (limit >= 0 && written_ + chunk > uint64_t(limit)) {
      // Simulated full disk: write what fits, then fail as write(2) would.
      size_t fits = uint64_t(limit) > written_ ? size_t(uint64_t(limit) - written_) : 0;
      if (fits > 0 && ::write(fd_, p, fits) == ssize_t(fits)) written_ += fits;
      g_fail_after = -1;
      FN_USER_FAIL(path_, ": write failed after ", written_, " bytes: No space left on device (injected failure)");
    }
    ssize_t w = ::write(fd_, p, chunk);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) FN_USER_FAIL(path_, ": write failed after ", written_, " bytes: ", std::strerror(errno));
    p += w;
    n -= size_t(w);
    written_ += uint64_t(w);
  }
}

void AtomicFile::commit() {
  FN_CHECK(fd_ >= 0 && !committed_, path_, ": commit of a file that is not open");
  g_fail_after = -1;
  if (::fsync(fd_) != 0) FN_USER_FAIL(path_, ": cannot flush the file to disk: ", std::strerror(errno));
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) FN_USER_FAIL(path_, ": cannot finish writing the file: ", std::strerror(errno));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    FN_USER_FAIL(path_, ": cannot move the finished file '", tmp_, "' into place: ", std::strerror(errno));
  committed_ = true;
  // Make the rename itself durable. A failure here is not fatal: the file is complete and in place.
  int dfd = ::open(folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace fn

namespace fn {

void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

std::vector<std::string> remove_dead_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at + 5 == name.size()) continue;
    const std::string pid_text = name.substr(at + 5);
    if (!std::all_of(pid_text.begin(), pid_text.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    // kill(pid, 0) fails with ESRCH once no process has that id; a live one (even another program that
    // got the id since) keeps its file.
    if (pid <= 0 || pid == long(::getpid()) || ::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    if (std::filesystem::remove(e.path(), rm)) removed.push_back(name);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace fn
