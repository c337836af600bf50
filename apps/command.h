// The `fashionnet` driver is one executable with subcommands. Each subcommand lives in its own
// apps/cmd_<name>.cpp and registers itself with FN_COMMAND, so adding one touches no shared file.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace fn::apps {

struct Command {
  std::string name;
  std::string summary;
  std::function<int(int argc, char** argv)> run;  // argv[0] is "fashionnet <name>"
};

std::vector<Command>& commands();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { commands().push_back(std::move(c)); }
};

}  // namespace fn::apps

#define FN_CONCAT_INNER(a, b) a##b
#define FN_CONCAT(a, b) FN_CONCAT_INNER(a, b)
#define FN_COMMAND(name, summary, func) \
  static ::fn::apps::CommandRegistrar FN_CONCAT(fn_command_, __LINE__)({name, summary, func})
