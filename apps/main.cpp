// fashionnet <command> [options]: dispatches to the subcommands registered in apps/cmd_*.cpp.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "apps/command.h"
#include "kernels/gemm.h"

namespace fn::apps {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace fn::apps

static void usage() {
  auto cmds = fn::apps::commands();
  std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::printf("usage: fashionnet <command> [options]   (fashionnet <command> --help for its options)\n\ncommands:\n");
  for (auto& c : cmds) std::printf("  %-14s %s\n", c.name.c_str(), c.summary.c_str());
}

int main(int argc, char** argv) {
  fn::kernels::configure_blas(argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage();
    return argc < 2 ? 2 : 0;
  }
  for (auto& c : fn::apps::commands()) {
    if (c.name != argv[1]) continue;
    std::string prog = std::string("fashionnet ") + argv[1];
    argv[1] = prog.data();
    // Every error ends here, printed once as "fashionnet <command>: error: <message>" with exit status 1. The
    // message is the exception's own text: user errors (core/error.h: FN_EXPECT, FN_USER_FAIL) name the file
    // or option and what is wrong; internal ones (FN_CHECK) also carry their source location.
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const std::exception& e) {
      std::fflush(stdout);  // progress printed so far comes before the error when both go to one terminal or file
      std::fprintf(stderr, "fashionnet %s: error: %s\n", c.name.c_str(), e.what());
      return 1;
    } catch (...) {
      std::fflush(stdout);
      std::fprintf(stderr, "fashionnet %s: error: an unknown exception was thrown (an internal error)\n",
                   c.name.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "fashionnet: unknown command '%s'\n\n", argv[1]);
  usage();
  return 2;
}
