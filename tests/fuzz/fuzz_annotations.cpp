// Coverage-guided fuzzing of the annotation readers with libFuzzer (clang only; CMake option FN_LIBFUZZER,
// how to run: docs/architecture.md, "Bad input"). The deterministic mutation test
// (tests/test_bad_input_fuzz.cpp) runs in ctest; this one searches for as long as it is given.
//
// Input: byte 0 picks the benchmark, byte 1 the file of its fixture to replace; the rest is that file's
// bytes. Whatever the readers make of it, the outcome must be a Dataset or an fn::Error; anything else
// (another exception, a crash, a sanitizer report) is a finding.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "core/error.h"
#include "data/dataset.h"
#include "tests/support/annotation_fixtures.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* kBenchmarks[] = {"inshop", "category", "landmark"};
  const std::string benchmark = kBenchmarks[data[0] % 3];
  fn::test::FileSet files = benchmark == "inshop"     ? fn::test::inshop_files()
                            : benchmark == "category" ? fn::test::category_files()
                                                      : fn::test::landmark_files();
  auto it = std::next(files.begin(), long(data[1] % files.size()));
  it->second.assign(reinterpret_cast<const char*>(data + 2), size - 2);

  static const fs::path root = fs::temp_directory_path() / ("fn_libfuzzer_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fn::test::write_files(root, files);
  try {
    fn::data::LoadReport report;
    fn::data::load_dataset(root.string(), benchmark, data[0] & 0x80, &report);
  } catch (const fn::Error&) {
    // refused with a message: the expected outcome for bad input
  }
  return 0;
}
