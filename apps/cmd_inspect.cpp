// fashionnet inspect FILE.safetensors: lists a checkpoint's metadata and tensors (name, dtype, shape, size),
// optionally with value statistics. This listing is the authoritative list of a checkpoint's tensor names.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>

#include "apps/command.h"
#include "core/safetensors.h"
#include "dist/comm.h"

namespace {

int run_inspect(int argc, char** argv) {
  CLI::App app{"List the metadata and tensors of a .safetensors file"};
  std::string path, only;
  bool stats = false, full = false, checksum = false;
  app.add_option("file", path, "checkpoint or weights file (.safetensors)")->required()->check(CLI::ExistingFile);
  app.add_flag("--stats", stats, "also print min / max / mean / rms of each tensor (reads all data)");
  app.add_flag("--full", full, "print metadata values in full (long ones are cut at 200 characters)");
  app.add_option("--filter", only, "only tensors whose name contains this text");
  app.add_flag("--checksum", checksum,
               "end with one checksum of the listed tensors' shapes and bits (equal checksums: bitwise equal "
               "tensors, whatever the metadata)");
  CLI11_PARSE(app, argc, argv);

  fn::SafetensorsFile f = fn::load_safetensors(path);
  std::printf("%s: %zu tensors, header %llu bytes, file %llu bytes\n", path.c_str(), f.names.size(),
              (unsigned long long)f.header_bytes, (unsigned long long)f.file_bytes);
  if (!f.metadata.empty()) {
    std::printf("metadata:\n");
    for (const auto& [k, v] : f.metadata) {
      std::string s = v;
      if (!full && s.size() > 200) s = s.substr(0, 200) + fn::cat("... (", v.size(), " characters; --full)");
      std::printf("  %-16s %s\n", k.c_str(), s.c_str());
    }
  }
  std::printf("tensors:\n");
  uint64_t total = 0;
  int64_t params = 0;
  std::vector<fn::Tensor> listed;  // for --checksum
  for (const auto& name : f.names) {
    if (!only.empty() && name.find(only) == std::string::npos) continue;
    const auto& e = f.entry(name);
    if (checksum) listed.push_back(f.get(name));
    total += e.end - e.begin;
    params += fn::shape_numel(e.shape);
    std::printf("  %-40s %s %-20s %10.3f MB", name.c_str(), fn::safetensors_dtype(e.dtype), fn::shape_str(e.shape).c_str(),
                double(e.end - e.begin) / 1e6);
    if (stats && fn::shape_numel(e.shape) > 0) {
      auto v = f.get(name).to_vector_f64();
      double lo = v[0], hi = v[0], sum = 0, sq = 0;
      for (double x : v) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        sum += x;
        sq += x * x;
      }
      std::printf("  min %.4g max %.4g mean %.4g rms %.4g", lo, hi, sum / double(v.size()), std::sqrt(sq / double(v.size())));
    }
    std::printf("\n");
  }
  std::printf("total: %lld values, %.1f MB\n", (long long)params, double(total) / 1e6);
  if (checksum)
    std::printf("checksum: %016llx (%zu tensors)\n", (unsigned long long)fn::dist::tensor_checksum(listed),
                listed.size());
  return 0;
}

}  // namespace

FN_COMMAND("inspect", "list the metadata and tensors of a .safetensors checkpoint", run_inspect);
