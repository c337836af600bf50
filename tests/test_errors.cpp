// The two kinds of error (core/error.h): user errors (FN_EXPECT, FN_USER_FAIL) say which file is wrong and
// how, and nothing of the engine's internals unless FN_ERROR_LOCATION=1 asks for the source location;
// internal errors (FN_CHECK, FN_FAIL) always carry the check and its [file:line].
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/npy.h"
#include "data/dataset.h"
#include "tests/support/annotation_fixtures.h"
#include "tests/support/temp_dir.h"

namespace {

// Sets or clears FN_ERROR_LOCATION for one scope, and restores the previous value (and the cached flag).
struct ErrorLocationEnv {
  std::optional<std::string> before;
  explicit ErrorLocationEnv(const char* value) {
    if (const char* v = std::getenv("FN_ERROR_LOCATION")) before = v;
    if (value) ::setenv("FN_ERROR_LOCATION", value, 1);
    else ::unsetenv("FN_ERROR_LOCATION");
    fn::reload_error_location();
  }
  ~ErrorLocationEnv() {
    if (before) ::setenv("FN_ERROR_LOCATION", before->c_str(), 1);
    else ::unsetenv("FN_ERROR_LOCATION");
    fn::reload_error_location();
  }
};

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const fn::Error& e) {
    return e.what();
  }
  FAIL("no fn::Error was thrown");
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Nothing of the engine's inside: no check text, no source file, no path of the source tree.
void require_plain(const std::string& msg) {
  INFO(msg);
  CHECK_FALSE(contains(msg, "check '"));
  CHECK_FALSE(contains(msg, ".cpp:"));
  CHECK_FALSE(contains(msg, ".h:"));
  CHECK_FALSE(contains(msg, FN_SOURCE_DIR));
}

}  // namespace

TEST_CASE("errors: a missing .npy names the file and says what is wrong, nothing more", "[errors]") {
  ErrorLocationEnv env(nullptr);
  fn::test::TempDir dir("errors_npy");
  const std::string path = (dir.path / "x.npy").string();
  const std::string msg = error_of([&] { fn::npy::read_f32(path); });
  INFO(msg);
  CHECK(msg.rfind(path + ": cannot open for reading", 0) == 0);
  CHECK(contains(msg, "No such file or directory"));
  require_plain(msg);

  // A folder where a file is expected.
  const std::string folder_msg = error_of([&] { fn::npy::read_f32(dir.path.string()); });
  CHECK(folder_msg.rfind(dir.path.string() + ": cannot open for reading", 0) == 0);
  require_plain(folder_msg);

  // A bad header: the file and the problem in words.
  fn::test::write_bytes(path, "not numpy at all");
  const std::string magic_msg = error_of([&] { fn::npy::read_f32(path); });
  CHECK(magic_msg.rfind(path + ": not a .npy file", 0) == 0);
  require_plain(magic_msg);

  // Writing into a folder that does not exist.
  const std::string nowhere = (dir.path / "no" / "y.npy").string();
  const float v[2] = {1, 2};
  const std::string write_msg = error_of([&] { fn::npy::write_f32(nowhere, v, 1, 2); });
  CHECK(write_msg.rfind(nowhere + ": cannot open for writing", 0) == 0);
  require_plain(write_msg);
}

TEST_CASE("errors: FN_ERROR_LOCATION=1 appends the source location to user errors", "[errors]") {
  fn::test::TempDir dir("errors_location");
  const std::string path = (dir.path / "missing.npy").string();
  {
    ErrorLocationEnv env("1");
    CHECK(fn::error_location_enabled());
    const std::string msg = error_of([&] { fn::npy::read_f32(path); });
    INFO(msg);
    CHECK(msg.rfind(path + ": cannot open for reading", 0) == 0);
    CHECK(contains(msg, "core/npy.cpp:"));
    CHECK(msg.back() == ']');
    CHECK_FALSE(contains(msg, "check '"));

    const int line = __LINE__ + 1;
    const std::string here = error_of([] { FN_USER_FAIL("cfg.json: 'batch' must be positive"); });
    CHECK(here.rfind("cfg.json: 'batch' must be positive [", 0) == 0);
    CHECK(contains(here, fn::cat("test_errors.cpp:", line, "]")));
  }
  {
    ErrorLocationEnv env("0");  // only "1" turns it on
    CHECK_FALSE(fn::error_location_enabled());
    require_plain(error_of([&] { fn::npy::read_f32(path); }));
  }
  {
    ErrorLocationEnv env(nullptr);
    CHECK_FALSE(fn::error_location_enabled());
    CHECK(error_of([] { FN_USER_FAIL("a.txt: ", 3, " problems"); }) == "a.txt: 3 problems");
  }
  // The formatting itself, without the environment.
  CHECK(fn::user_error_message("f.npy: truncated data", "core/npy.cpp", 12, false) == "f.npy: truncated data");
  CHECK(fn::user_error_message("f.npy: truncated data", "core/npy.cpp", 12, true) ==
        "f.npy: truncated data [core/npy.cpp:12]");
}

TEST_CASE("errors: FN_EXPECT builds its message only when the check fails", "[errors]") {
  ErrorLocationEnv env(nullptr);
  int built = 0;
  auto part = [&] {
    ++built;
    return std::string("part");
  };
  FN_EXPECT(1 + 1 == 2, "never ", part());
  CHECK(built == 0);
  CHECK(error_of([&] { FN_EXPECT(1 + 1 == 3, "f.txt: ", part()); }) == "f.txt: part");
  CHECK(built == 1);
}

TEST_CASE("errors: an internal FN_CHECK keeps the check and its [file:line]", "[errors]") {
  ErrorLocationEnv env(nullptr);
  const int line = __LINE__ + 1;
  const std::string msg = error_of([] { FN_CHECK(2 + 2 == 5, "arithmetic: ", 4); });
  INFO(msg);
  CHECK(msg.rfind("arithmetic: 4 (check '2 + 2 == 5' failed) [", 0) == 0);
  CHECK(contains(msg, fn::cat("test_errors.cpp:", line, "]")));

  // The engine's own invariants too: write_f32 of a tensor that is not 2-D is a programming error.
  fn::test::TempDir dir("errors_internal");
  const std::string path = (dir.path / "t.npy").string();
  const std::string engine = error_of([&] { fn::npy::write_f32(path, fn::Tensor::zeros({3})); });
  INFO(engine);
  CHECK(contains(engine, "check '"));
  CHECK(contains(engine, "npy.cpp:"));

  const std::string failed = error_of([] { FN_FAIL("unreachable state ", 7); });
  CHECK(failed.rfind("unreachable state 7 [", 0) == 0);
  CHECK(contains(failed, "test_errors.cpp:"));
}

TEST_CASE("errors: a bad annotation line names the file and the line", "[errors]") {
  ErrorLocationEnv env(nullptr);
  fn::test::TempDir dir("errors_annotations");
  auto files = fn::test::inshop_files();
  std::string& bbox = files["Anno/list_bbox_inshop.txt"];
  const size_t line4 = bbox.find('\n', bbox.find('\n', bbox.find('\n') + 1) + 1) + 1;  // the 2nd record
  const size_t end = bbox.find('\n', line4);
  bbox.replace(line4, end - line4, "img/WOMEN/Dresses/id_00000001/01_2_side.jpg 3 2 60 2O 190 240");
  for (const auto& [rel, text] : files) {
    std::filesystem::create_directories((dir.path / rel).parent_path());
    fn::test::write_bytes(dir.path / rel, text);
  }
  const std::string msg = error_of([&] { fn::data::load_dataset(dir.path.string(), "inshop"); });
  INFO(msg);
  CHECK(contains(msg, "Anno/list_bbox_inshop.txt:4: y1 '2O' is not an integer"));
  require_plain(msg);

  // A missing annotation file names the file.
  std::filesystem::remove(dir.path / "Anno/list_bbox_inshop.txt");
  const std::string missing = error_of([&] { fn::data::load_dataset(dir.path.string(), "inshop"); });
  CHECK(contains(missing, "Anno/list_bbox_inshop.txt: missing"));
  require_plain(missing);

  // An unknown benchmark is a user error too.
  const std::string bench = error_of([&] { fn::data::load_dataset(dir.path.string(), "deepfashion2"); });
  CHECK(bench.rfind("unknown benchmark 'deepfashion2'", 0) == 0);
  require_plain(bench);
}
