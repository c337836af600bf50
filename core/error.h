// Errors: one exception type, and check macros that name the file, the line and what failed.
// Library calls (CUDA, cuBLAS, cuDNN) have their own macros in core/cuda_check.h.
#pragma once
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

[[noreturn]] inline void throw_error(const char* file, int line, const std::string& what) {
  throw Error(cat(what, " [", file, ":", line, "]"));
}

}  // namespace fn

// FN_CHECK(cond, parts...): throws fn::Error("parts... (check 'cond' failed) [file:line]") when cond is false.
#define FN_CHECK(cond, ...)                                                                      \
  do {                                                                                           \
    if (!(cond))                                                                                 \
      ::fn::throw_error(__FILE__, __LINE__, ::fn::cat(__VA_ARGS__, " (check '" #cond "' failed)")); \
  } while (0)

// FN_FAIL(parts...): throws unconditionally.
#define FN_FAIL(...) ::fn::throw_error(__FILE__, __LINE__, ::fn::cat(__VA_ARGS__))
