#include "data/text_table.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace fn::data {

std::vector<std::string_view> split_tokens(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string Record::where() const { return cat(*path_, ":", line_); }

void Record::fail(const std::string& msg) const { throw LineError(cat(where(), ": ", msg)); }

std::string_view Record::tok(size_t col) const {
  if (col >= tok_.size()) fail(cat("missing column ", col + 1, " (the line has ", tok_.size(), ")"));
  return tok_[col];
}

std::string Record::str(size_t col) const { return std::string(tok(col)); }

int Record::to_int(size_t col, const char* what) const {
  const std::string_view t = tok(col);
  int v = 0;
  const char* end = t.data() + t.size();
  auto [p, ec] = std::from_chars(t.data() + (t.size() > 1 && t[0] == '+'), end, v);
  if (ec != std::errc() || p != end) fail(cat(what, " '", t, "' is not an integer"));
  return v;
}

int Record::to_int(size_t col, const char* what, int lo, int hi) const {
  const int v = to_int(col, what);
  if (v < lo || v > hi) fail(cat(what, " ", v, " is out of range [", lo, ", ", hi, "]"));
  return v;
}

float Record::to_float(size_t col, const char* what) const {
  const std::string_view t = tok(col);
  float v = 0;
  const char* end = t.data() + t.size();
  auto [p, ec] = std::from_chars(t.data() + (t.size() > 1 && t[0] == '+'), end, v);
  if (ec != std::errc() || p != end || !std::isfinite(v)) fail(cat(what, " '", t, "' is not a number"));
  return v;
}

void Record::expect_columns(size_t n) const {
  if (tok_.size() != n) fail(cat("expected ", n, " columns, found ", tok_.size()));
}

static bool is_count(const std::vector<std::string_view>& tok, int64_t& value) {
  if (tok.size() != 1) return false;
  auto [p, ec] = std::from_chars(tok[0].data(), tok[0].data() + tok[0].size(), value);
  return ec == std::errc() && p == tok[0].data() + tok[0].size() && value >= 0;
}

void read_table(TextTable& out, const std::string& full_path, const std::string& shown_path, Header header,
                LoadReport& report) {
  out.path = shown_path;
  out.records.clear();
  out.declared = -1;
  {
    errno = 0;
    std::ifstream f(full_path, std::ios::binary);
    const int err = errno;
    if (!f)
      FN_USER_FAIL(shown_path, ": cannot open for reading (", full_path, ")",
                   err ? cat(": ", std::strerror(err)) : std::string());
    std::ostringstream ss;
    ss << f.rdbuf();
    out.text = ss.str();
  }
  std::string_view all(out.text);
  if (all.substr(0, 3) == "\xEF\xBB\xBF") all.remove_prefix(3);  // UTF-8 BOM (Consumer-to-shop files)

  int line_no = 0;
  bool seen_count = false, seen_columns = false;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string_view::npos) nl = all.size();
    std::string_view line = all.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF
    auto tokens = split_tokens(line);
    if (tokens.empty()) continue;  // blank lines (a trailing one is common) carry nothing

    if (!seen_count && header != Header::OptionalCount) {
      seen_count = true;
      if (!is_count(tokens, out.declared)) {
        report.error(cat(shown_path, ":", line_no, ": expected the record count on the first line, found '",
                         line, "'"));
        out.declared = -1;
      }
      if (header == Header::CountOnly) seen_columns = true;
      continue;
    }
    if (!seen_count) {  // OptionalCount: a single non-negative integer is the count, anything else the columns
      seen_count = true;
      if (is_count(tokens, out.declared)) continue;
      out.declared = -1;
    }
    if (!seen_columns) {  // the column-name line
      seen_columns = true;
      continue;
    }
    out.records.emplace_back(&out.path, line_no, std::move(tokens), line);
  }
  if (!seen_count) report.error(cat(shown_path, ":1: the file is empty"));
  if (out.declared >= 0 && out.declared != (int64_t)out.records.size())
    report.error(cat(shown_path, ":1: the header says ", out.declared, " records but the file has ",
                     out.records.size()));
}

}  // namespace fn::data
