// .npy reading and writing: round trip, agreement with numpy in both directions (where Debian's numpy is
// installed), and a clear refusal, naming the file, of every malformed header and size.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/npy.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

namespace {

// Removed when the test executable exits.
std::string temp_dir() { return fn::test::process_temp_dir("npy"); }

// Writes a .npy file from parts, so each test can break exactly one thing.
void write_raw(const std::string& path, int major, int minor, std::string dict, size_t data_bytes,
               bool newline = true, const char* magic = "\x93NUMPY") {
  if (newline) dict.push_back('\n');
  std::ofstream f(path, std::ios::binary);
  f.write(magic, 6);
  f.put(char(major));
  f.put(char(minor));
  if (major == 1) {
    f.put(char(dict.size() & 0xff));
    f.put(char(dict.size() >> 8));
  } else {
    for (int b = 0; b < 4; ++b) f.put(char((dict.size() >> (8 * b)) & 0xff));
  }
  f << dict;
  std::string data(data_bytes, '\0');
  f << data;
}

bool have_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

void require_refused(const std::string& path, const std::string& phrase, int64_t expect_cols = -1) {
  try {
    fn::npy::read_f32(path, expect_cols);
    FAIL("read_f32 accepted " << path << " (expected: " << phrase << ")");
  } catch (const fn::Error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(path) != std::string::npos);  // the message names the file
    CHECK(msg.find(phrase) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("npy: write then read returns the same matrix bit for bit", "[npy]") {
  for (int64_t rows : {0, 1, 7, 33}) {
    const int64_t cols = 5;
    fn::Rng rng(uint64_t(rows) + 1, 0);
    fn::Tensor t = fn::Tensor::randn({rows, cols}, rng);
    if (rows > 1) t.f32()[3] = -0.0f;
    std::string path = temp_dir() + "/round_" + std::to_string(rows) + ".npy";
    fn::npy::write_f32(path, t);
    fn::Tensor back = fn::npy::read_f32(path, cols);
    REQUIRE(back.shape() == t.shape());
    for (int64_t i = 0; i < t.numel(); ++i)
      REQUIRE(std::memcmp(&back.f32()[i], &t.f32()[i], 4) == 0);
    auto h = fn::npy::read_header(path);
    CHECK(h.major == 1);
    CHECK(h.data_offset % 64 == 0);  // numpy's alignment
  }
}

TEST_CASE("npy: numpy reads our file and we read numpy's", "[npy][numpy]") {
  if (!have_numpy()) {
    std::printf("SKIPPED: /usr/bin/python3 has no numpy\n");
    return;
  }
  const std::string ours = temp_dir() + "/ours.npy", theirs = temp_dir() + "/theirs.npy",
                    v2 = temp_dir() + "/theirs_v2.npy";
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[size_t(i)] = 0.25f * float(i) - 1.0f;
  fn::npy::write_f32(ours, v.data(), 3, 4);
  // numpy checks our file, then writes 2*ours + 1 (as version 1.0 and 2.0) for us to read.
  std::string cmd = "/usr/bin/python3 -c \"import numpy as np, sys\n"
                    "a = np.load('" + ours + "')\n"
                    "assert a.dtype == np.float32 and a.shape == (3, 4) and a.flags.c_contiguous, (a.dtype, a.shape)\n"
                    "assert (a.ravel() == np.arange(12, dtype=np.float32) * 0.25 - 1).all(), a\n"
                    "np.save('" + theirs + "', 2 * a + 1)\n"
                    "f = open('" + v2 + "', 'wb'); np.lib.format.write_array(f, 2 * a + 1, version=(2, 0)); f.close()\"";
  REQUIRE(std::system(cmd.c_str()) == 0);
  for (const std::string& p : {theirs, v2}) {
    fn::Tensor t = fn::npy::read_f32(p);
    REQUIRE(t.shape() == fn::Shape{3, 4});
    for (int i = 0; i < 12; ++i) REQUIRE(t.f32()[i] == 2 * v[size_t(i)] + 1);
  }
  CHECK(fn::npy::read_header(v2).major == 2);
}

TEST_CASE("npy: every malformed file is refused with a message naming it", "[npy]") {
  const std::string d = temp_dir();
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  // The well-formed baseline is accepted, so each refusal below is caused by its one change.
  write_raw(d + "/ok.npy", 1, 0, good, 24);
  REQUIRE(fn::npy::read_f32(d + "/ok.npy").shape() == fn::Shape{2, 3});

  write_raw(d + "/magic.npy", 1, 0, good, 24, true, "\x93NUMPZ");
  require_refused(d + "/magic.npy", "bad magic");
  {
    std::ofstream(d + "/empty.npy", std::ios::binary);
  }
  require_refused(d + "/empty.npy", "bad magic");
  require_refused(d + "/does_not_exist.npy", "cannot open");
  write_raw(d + "/version.npy", 4, 0, good, 24);
  require_refused(d + "/version.npy", "unsupported .npy format version 4.0");
  write_raw(d + "/minor.npy", 1, 1, good, 24);
  require_refused(d + "/minor.npy", "unsupported .npy format version 1.1");
  write_raw(d + "/f8.npy", 1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 48);
  require_refused(d + "/f8.npy", "unsupported dtype '<f8'");
  write_raw(d + "/bigendian.npy", 1, 0, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
  require_refused(d + "/bigendian.npy", "unsupported dtype '>f4'");
  write_raw(d + "/fortran.npy", 1, 0, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24);
  require_refused(d + "/fortran.npy", "fortran_order is True");
  write_raw(d + "/one_d.npy", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24);
  require_refused(d + "/one_d.npy", "expected a 2-D array");
  write_raw(d + "/three_d.npy", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", 24);
  require_refused(d + "/three_d.npy", "expected a 2-D array");
  write_raw(d + "/truncated.npy", 1, 0, good, 23);
  require_refused(d + "/truncated.npy", "truncated data");
  write_raw(d + "/extra.npy", 1, 0, good, 28);
  require_refused(d + "/extra.npy", "unexpected bytes after the data");
  write_raw(d + "/cols.npy", 1, 0, good, 24);
  require_refused(d + "/cols.npy", "shape mismatch: 3 columns, expected 4", 4);
  write_raw(d + "/nokey.npy", 1, 0, "{'descr': '<f4', 'shape': (2, 3), }", 24);
  require_refused(d + "/nokey.npy", "lacks one of the keys");
  write_raw(d + "/badkey.npy", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 24);
  require_refused(d + "/badkey.npy", "unknown key 'x'");
  write_raw(d + "/badshape.npy", 1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 24);
  require_refused(d + "/badshape.npy", "expected a dimension");
  write_raw(d + "/badbool.npy", 1, 0, "{'descr': '<f4', 'fortran_order': no, 'shape': (2, 3), }", 24);
  require_refused(d + "/badbool.npy", "expected True or False");
  write_raw(d + "/notdict.npy", 1, 0, "['descr', '<f4']", 24);
  require_refused(d + "/notdict.npy", "expected '{'");
  write_raw(d + "/trailing.npy", 1, 0, good + " junk", 24);
  require_refused(d + "/trailing.npy", "text after the header dictionary");
  write_raw(d + "/nonewline.npy", 1, 0, good, 24, false);
  require_refused(d + "/nonewline.npy", "does not end with a newline");
  {  // a header length pointing past the end of the file
    std::ofstream f(d + "/shortheader.npy", std::ios::binary);
    f.write("\x93NUMPY\x01\x00\xff\x00{'descr'", 18);
  }
  require_refused(d + "/shortheader.npy", "truncated .npy header");
}
