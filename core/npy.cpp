// .npy reading and writing. Layout of a file (numpy's format spec, NEP 1):
//   "\x93NUMPY" | major | minor | header length (uint16 LE for 1.0, uint32 LE for 2.0/3.0) |
//   header: an ASCII Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (R, C), }
//           padded with spaces and ended by '\n' |
//   data: R*C little-endian float32 in C order.
#include "core/npy.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

namespace fn::npy {
namespace {

const char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

// A tiny recursive-descent reader for the header dictionary: exactly the literal forms numpy writes
// (quoted strings, True/False, tuples of non-negative integers), so any other text is a clear error.
class DictParser {
 public:
  DictParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') { ++i_; break; }
      std::string key = quoted();
      expect(':');
      if (key == "descr") {
        h.descr = quoted();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        have_fortran = true;
      } else if (key == "shape") {
        h.shape = tuple();
        have_shape = true;
      } else {
        fail(cat("unknown key '", key, "' in the header"));
      }
      skip_space();
      if (peek() == ',') { ++i_; continue; }
      expect('}');
      break;
    }
    skip_space();
    if (i_ != s_.size()) fail("text after the header dictionary");
    if (!have_descr || !have_fortran || !have_shape)
      fail("the header lacks one of the keys 'descr', 'fortran_order', 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    FN_USER_FAIL(path_, ": malformed .npy header: ", what, " (at character ", i_, " of \"", s_, "\")");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(cat("expected '", c, "'"));
    ++i_;
  }
  std::string quoted() {
    skip_space();
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    size_t end = s_.find(q, i_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string v = s_.substr(i_ + 1, end - i_ - 1);
    i_ = end + 1;
    return v;
  }
  bool boolean() {
    skip_space();
    if (s_.compare(i_, 4, "True") == 0) { i_ += 4; return true; }
    if (s_.compare(i_, 5, "False") == 0) { i_ += 5; return false; }
    fail("expected True or False");
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') { ++i_; break; }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("dimension too large");
        v = v * 10 + (s_[i_++] - '0');
      }
      if (peek() == 'L') ++i_;  // Python 2 long suffix, written by very old numpy
      dims.push_back(v);
      skip_space();
      if (peek() == ',') { ++i_; continue; }
      expect(')');
      break;
    }
    return dims;
  }

  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

// Opens `path` for reading, or throws a user error saying why it cannot be read.
std::ifstream open_for_reading(const std::string& path) {
  errno = 0;
  std::ifstream f(path, std::ios::binary);
  if (f.good()) {
    std::error_code ec;
    FN_EXPECT(!std::filesystem::is_directory(path, ec), path,
              ": cannot open for reading: it is a folder, not a .npy file");
    return f;
  }
  const int err = errno;
  FN_USER_FAIL(path, ": cannot open for reading", err ? cat(": ", std::strerror(err)) : std::string());
}

uint64_t file_size(std::ifstream& f) {
  f.seekg(0, std::ios::end);
  auto n = static_cast<uint64_t>(f.tellg());
  f.seekg(0, std::ios::beg);
  return n;
}

}  // namespace

Header read_header(const std::string& path) {
  std::ifstream f = open_for_reading(path);
  uint64_t size = file_size(f);
  unsigned char pre[10] = {};
  f.read(reinterpret_cast<char*>(pre), 8);
  FN_EXPECT(f.gcount() == 8 && std::memcmp(pre, kMagic, 6) == 0, path,
            ": not a .npy file (bad magic: the file must start with \\x93NUMPY)");
  Header h;
  h.major = pre[6];
  h.minor = pre[7];
  FN_EXPECT(h.major >= 1 && h.major <= 3 && h.minor == 0, path, ": unsupported .npy format version ", h.major, ".",
            h.minor, " (this reader takes 1.0, 2.0 and 3.0)");
  uint64_t hlen = 0;
  if (h.major == 1) {
    f.read(reinterpret_cast<char*>(pre + 8), 2);
    FN_EXPECT(f.gcount() == 2, path, ": truncated .npy header");
    hlen = uint64_t(pre[8]) | uint64_t(pre[9]) << 8;
    h.data_offset = 10 + hlen;
  } else {
    unsigned char l[4] = {};
    f.read(reinterpret_cast<char*>(l), 4);
    FN_EXPECT(f.gcount() == 4, path, ": truncated .npy header");
    hlen = uint64_t(l[0]) | uint64_t(l[1]) << 8 | uint64_t(l[2]) << 16 | uint64_t(l[3]) << 24;
    h.data_offset = 12 + hlen;
  }
  FN_EXPECT(h.data_offset <= size, path, ": truncated .npy header (header length ", hlen, " but the file has ", size,
            " bytes)");
  std::string text(hlen, '\0');
  f.read(text.data(), std::streamsize(hlen));
  FN_EXPECT(uint64_t(f.gcount()) == hlen, path, ": truncated .npy header");
  FN_EXPECT(!text.empty() && text.back() == '\n', path, ": malformed .npy header: it does not end with a newline");
  Header parsed = DictParser(text, path).parse();
  h.descr = parsed.descr;
  h.fortran_order = parsed.fortran_order;
  h.shape = parsed.shape;
  return h;
}

Tensor read_f32(const std::string& path, int64_t expect_cols) {
  Header h = read_header(path);
  FN_EXPECT(h.descr == "<f4", path, ": unsupported dtype '", h.descr,
            "' (expected '<f4', little-endian float32; convert with arr.astype('<f4'))");
  FN_EXPECT(!h.fortran_order, path, ": fortran_order is True (expected C order; save np.ascontiguousarray(arr))");
  FN_EXPECT(h.shape.size() == 2, path, ": expected a 2-D array (rows, dims), got ", h.shape.size(), " dimensions");
  int64_t rows = h.shape[0], cols = h.shape[1];
  if (expect_cols >= 0)
    FN_EXPECT(cols == expect_cols, path, ": shape mismatch: ", cols, " columns, expected ", expect_cols);
  FN_EXPECT(cols == 0 || rows <= std::numeric_limits<int64_t>::max() / 4 / cols, path, ": shape too large");
  std::ifstream f = open_for_reading(path);
  uint64_t size = file_size(f);
  uint64_t want = uint64_t(rows) * uint64_t(cols) * 4, have = size - h.data_offset;
  FN_EXPECT(have >= want, path, ": truncated data: shape (", rows, ", ", cols, ") needs ", want,
            " bytes, the file has ", have, " after the header");
  FN_EXPECT(have == want, path, ": ", have - want, " unexpected bytes after the data of shape (", rows, ", ", cols,
            ")");
  Tensor t = Tensor::empty({rows, cols});
  f.seekg(std::streamoff(h.data_offset));
  f.read(static_cast<char*>(t.raw()), std::streamsize(want));
  FN_EXPECT(uint64_t(f.gcount()) == want, path, ": read error in the data");
  static_assert(sizeof(float) == 4, "float32 expected");
  // The data is little-endian; every machine this engine runs on (x86-64, aarch64 Linux) is too.
  return t;
}

void write_f32(const std::string& path, const float* data, int64_t rows, int64_t cols) {
  FN_CHECK(rows >= 0 && cols >= 0, path, ": negative shape");
  std::string dict = cat("{'descr': '<f4', 'fortran_order': False, 'shape': (", rows, ", ", cols, "), }");
  // Pad with spaces so that magic + version + length + header (ending in '\n') is a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict.push_back('\n');
  FN_CHECK(dict.size() <= 65535, path, ": header too long for .npy version 1.0");
  errno = 0;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  const int err = errno;
  FN_EXPECT(f.good(), path, ": cannot open for writing", err ? cat(": ", std::strerror(err)) : std::string(),
            err == ENOENT ? " (does the folder exist?)" : "");
  f.write(kMagic, 6);
  const char ver[2] = {1, 0};
  f.write(ver, 2);
  const char len[2] = {char(dict.size() & 0xff), char(dict.size() >> 8)};
  f.write(len, 2);
  f.write(dict.data(), std::streamsize(dict.size()));
  f.write(reinterpret_cast<const char*>(data), std::streamsize(uint64_t(rows) * uint64_t(cols) * 4));
  f.close();
  FN_EXPECT(f.good(), path, ": write failed (is the disk full?)");
}

void write_f32(const std::string& path, const Tensor& t) {
  FN_CHECK(t.ndim() == 2 && t.dtype() == DType::F32, path, ": write_f32 needs a 2-D float32 tensor, got ",
           t.describe());
  Tensor h = t.is_cuda() ? t.cpu() : t;
  write_f32(path, h.f32(), h.size(0), h.size(1));
}

}  // namespace fn::npy
