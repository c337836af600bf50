// Errors: one exception type, fn::Error, thrown by two kinds of checks.
//
//   User errors: FN_EXPECT(cond, parts...) and FN_USER_FAIL(parts...).
//     For problems in what the user gave the engine: files and their contents, command-line options,
//     configuration values. what() is exactly the message, e.g. "runs/x.npy: cannot open for reading: No
//     such file or directory": it names the file (and the line, for text files) and says in words what is
//     wrong, with no check text and no source location. When the environment variable FN_ERROR_LOCATION=1
//     is set, " [file:line]" of the throwing check is appended (the variable is read once per process;
//     reload_error_location() re-reads it).
//
//   Internal errors: FN_CHECK(cond, parts...) and FN_FAIL(parts...).
//     For the engine's own invariants (programming errors: shapes, devices, kernel arguments), which no
//     input should be able to trip. what() is "parts... (check 'cond' failed) [file:line]" (FN_FAIL:
//     "parts... [file:line]"), always, so that a bug report carries where it happened.
//
// Both build their message only when the check fails. Library calls (CUDA, cuBLAS, cuDNN) have their own
// macros in core/cuda_check.h.
#pragma once
#include <atomic>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fn {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void cat_into(std::ostringstream&) {}
template <class T, class... R>
void cat_into(std::ostringstream& os, const T& v, const R&... rest) {
  os << v;
  cat_into(os, rest...);
}
}  // namespace detail

// cat("a", 1, 'b') == "a1b": builds messages without printf format strings.
template <class... A>
std::string cat(const A&... a) {
  std::ostringstream os;
  detail::cat_into(os, a...);
  return os.str();
}

// Internal errors: the message, then " [file:line]".
[[noreturn]] inline void throw_error(const char* file, int line, const std::string& what) {
  throw Error(cat(what, " [", file, ":", line, "]"));
}

namespace detail {
// -1: FN_ERROR_LOCATION not read yet; 0: off; 1: on.
inline std::atomic<int>& error_location_state() {
  static std::atomic<int> state{-1};
  return state;
}
inline bool read_error_location_env() {
  const char* v = std::getenv("FN_ERROR_LOCATION");
  return v != nullptr && std::string(v) == "1";
}
}  // namespace detail

// Whether user errors carry their source location: FN_ERROR_LOCATION=1, read on the first call.
inline bool error_location_enabled() {
  int s = detail::error_location_state().load(std::memory_order_relaxed);
  if (s < 0) {
    s = detail::read_error_location_env() ? 1 : 0;
    detail::error_location_state().store(s, std::memory_order_relaxed);
  }
  return s == 1;
}

// Re-reads FN_ERROR_LOCATION (for tests that change it with setenv).
inline void reload_error_location() {
  detail::error_location_state().store(detail::read_error_location_env() ? 1 : 0, std::memory_order_relaxed);
}

// The what() of a user error: the message, and " [file:line]" when `with_location`.
inline std::string user_error_message(const std::string& what, const char* file, int line, bool with_location) {
  return with_location ? cat(what, " [", file, ":", line, "]") : what;
}

[[noreturn]] inline void throw_user_error(const char* file, int line, const std::string& what) {
  throw Error(user_error_message(what, file, line, error_location_enabled()));
}

// A library's exception text without its leading "[tag] " (nlohmann::json's "[json.exception.parse_error.101] "),
// for messages shown to users.
inline std::string without_library_tag(const std::string& what) {
  if (what.size() > 1 && what[0] == '[') {
    const size_t end = what.find("] ");
    if (end != std::string::npos) return what.substr(end + 2);
  }
  return what;
}

}  // namespace fn

// FN_CHECK(cond, parts...): internal invariant. Throws fn::Error("parts... (check 'cond' failed) [file:line]")
// when cond is false.
#define FN_CHECK(cond, ...)                                                                      \
  do {                                                                                           \
    if (!(cond))                                                                                 \
      ::fn::throw_error(__FILE__, __LINE__, ::fn::cat(__VA_ARGS__, " (check '" #cond "' failed)")); \
  } while (0)

// FN_FAIL(parts...): internal error, thrown unconditionally: fn::Error("parts... [file:line]").
#define FN_FAIL(...) ::fn::throw_error(__FILE__, __LINE__, ::fn::cat(__VA_ARGS__))

// FN_EXPECT(cond, parts...): user error. Throws fn::Error("parts...") when cond is false (plus
// " [file:line]" under FN_ERROR_LOCATION=1). The parts name the file (or option) and say what is wrong.
#define FN_EXPECT(cond, ...)                                                        \
  do {                                                                              \
    if (!(cond)) ::fn::throw_user_error(__FILE__, __LINE__, ::fn::cat(__VA_ARGS__)); \
  } while (0)

// FN_USER_FAIL(parts...): user error, thrown unconditionally.
#define FN_USER_FAIL(...) ::fn::throw_user_error(__FILE__, __LINE__, ::fn::cat(__VA_ARGS__))
