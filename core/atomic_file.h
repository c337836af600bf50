// AtomicFile: writes a file so that `path` holds either the previous file or the complete new one, never a
// half-written one. The bytes go to `path.tmp.<pid>` in the same folder; commit() flushes, fsyncs, renames
// over `path` (atomic within one filesystem on POSIX) and fsyncs the folder. Destroying an AtomicFile that
// was not committed (an error, an exception) removes the temporary file and leaves `path` untouched.
//
//   AtomicFile f(path);
//   f.write(header.data(), header.size());
//   f.write(data, n);
//   f.commit();
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fn {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // opens path.tmp.<pid>; throws fn::Error naming path
  ~AtomicFile();                                  // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws on a short write (disk full, ...)
  void commit();                           // fsync, close, rename over path, fsync the folder
  void abort();                            // close and remove the temporary file (the destructor does this)

  const std::string& path() const { return path_; }
  const std::string& tmp_path() const { return tmp_; }
  uint64_t written() const { return written_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

// The whole of `text` into `path` through an AtomicFile (config.json, reports, SVG charts).
void write_text_file(const std::string& path, const std::string& text);

// Removes the temporary files `<name>.tmp.<pid>` in `dir` whose process is no longer running on this host (a
// run killed while it wrote a checkpoint); returns their names. A missing folder has none.
std::vector<std::string> remove_dead_temporaries(const std::string& dir);

// Test hook: the next AtomicFile writes fail (throw) once `after_bytes` bytes have been written in total, as
// a full disk would. -1 (the default) disables it. It applies to one file only, then resets itself.
void atomic_file_inject_failure(int64_t after_bytes);

}  // namespace fn
