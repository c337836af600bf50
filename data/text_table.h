// The tokeniser shared by every DeepFashion list file: reads the file, drops a UTF-8 BOM and CR line ends,
// splits records on spaces and tabs, checks the count header, and gives typed column access whose errors
// name the file and the line ("Anno/list_bbox_inshop.txt:17: ...").
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"

namespace fn::data {

// One record's parse failure: the message already carries "file:line: ".
struct LineError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Record {
 public:
  Record(const std::string* path, int line, std::vector<std::string_view> tokens, std::string_view text)
      : path_(path), line_(line), tok_(std::move(tokens)), text_(text) {}
  int line() const { return line_; }
  const std::string& path() const { return *path_; }
  size_t size() const { return tok_.size(); }
  std::string_view text() const { return text_; }  // the whole line
  std::string str(size_t col) const;
  // Typed access; `what` names the column in the error ("visibility", "x1", ...).
  int to_int(size_t col, const char* what) const;
  int to_int(size_t col, const char* what, int lo, int hi) const;
  float to_float(size_t col, const char* what) const;
  void expect_columns(size_t n) const;
  [[noreturn]] void fail(const std::string& msg) const;
  std::string where() const;  // "file:line"

 private:
  std::string_view tok(size_t col) const;
  const std::string* path_;
  int line_;
  std::vector<std::string_view> tok_;
  std::string_view text_;
};

// How a file starts. DeepFashion list files carry the record count on line 1 and column names on line 2;
// list_item_* files have only the count; some third-party copies dropped the count line.
enum class Header { CountAndColumns, CountOnly, OptionalCount };

struct TextTable {
  std::string path;     // as shown in messages (relative to the dataset root)
  std::string text;     // the file's bytes; records point into it, so a TextTable is not copied
  int64_t declared = -1;  // the count on line 1, -1 when the file has none
  std::vector<Record> records;
  TextTable() = default;
  TextTable(const TextTable&) = delete;
  TextTable& operator=(const TextTable&) = delete;
};

// Reads `full_path` (shown as `shown_path`). A missing or unreadable file throws fn::Error; a header
// that disagrees with the number of records is reported to `report` (the records are still returned).
void read_table(TextTable& out, const std::string& full_path, const std::string& shown_path, Header header,
                LoadReport& report);

// Splits a line on spaces and tabs.
std::vector<std::string_view> split_tokens(std::string_view line);

}  // namespace fn::data
