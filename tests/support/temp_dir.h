// Temporary folders for tests that write files, removed when done, and whole-file reads and writes.
//   TempDir d("images_bad"): <tmp>/fn_test_images_bad_<pid>, emptied on entry and removed by the destructor;
//                            `create = false` leaves the folder absent for code that must create it.
//   process_temp_dir("safetensors"): <tmp>/fn_test_safetensors_<pid>, made on first use and removed when the
//                            test executable exits; for files the test cases of one executable share.
//   read_bytes(path), write_bytes(path, bytes): a whole file, in binary.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <system_error>

namespace fn::test {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name, bool create = true)
      : path(std::filesystem::temp_directory_path() / ("fn_test_" + name + "_" + std::to_string(::getpid()))) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (create) std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::string process_temp_dir(const std::string& name) {
  static std::map<std::string, std::unique_ptr<TempDir>> dirs;  // destroyed, and so removed, at exit
  auto& d = dirs[name];
  if (!d) d = std::make_unique<TempDir>(name);
  return d->path.string();
}

// The bytes of a file ("" where it cannot be read), and a file holding exactly `bytes`.
inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

}  // namespace fn::test
