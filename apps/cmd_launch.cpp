// fashionnet launch [MPIRUN OPTIONS...] -- COMMAND [OPTIONS...]
//   e.g. fashionnet launch -n 2 -- train --data data --preset cpu-small --out run
// Runs `mpirun MPIRUN-OPTIONS... <this executable> COMMAND OPTIONS...` and makes Ctrl-C stop the job the way
// it stops one process: every rank finishes its step, rank 0 saves last.safetensors once, exit 130.
//
// Why a launcher of our own: Open MPI's mpirun takes Ctrl-C (SIGINT) as an abort. It stops relaying the
// ranks' output, sends them SIGTERM and, a second later (odls_base_sigkill_timeout), SIGKILL, and it refuses
// to forward SIGINT or SIGTERM instead. It does forward SIGUSR1, which the trainer takes as "stop after this
// step and save". So mpirun runs here in a process group of its own, out of reach of the terminal's Ctrl-C,
// and this process turns the first Ctrl-C (or SIGTERM, SIGHUP) into SIGUSR1 to mpirun. A second Ctrl-C is
// passed on as SIGINT: Open MPI's abort, for a job that does not stop by itself. For a command other than
// train, which has nothing to save, the first Ctrl-C is passed on as SIGINT too.
// The exit status is mpirun's (128 + the signal's number if mpirun itself was killed).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/command.h"

extern char** environ;

namespace {

constexpr const char* kUsage =
    "usage: fashionnet launch [MPIRUN OPTIONS...] -- COMMAND [OPTIONS...]\n"
    "  e.g. fashionnet launch -n 2 -- train --data data --preset cpu-small --out run\n"
    "Runs mpirun (or $FN_MPIRUN) with the options before --, starting this executable with the command after it.\n"
    "Ctrl-C (or SIGTERM, SIGHUP) stops a training job with a save: every rank ends its step, rank 0 writes\n"
    "last.safetensors once, exit 130. Ctrl-C again aborts the job without a save (Open MPI's abort).\n";

// The signals this process acts on reach it through a pipe: a handler writes the signal's number and the loop
// below reads it. Not sigwaitinfo on blocked signals: OpenBLAS starts its worker threads as it loads, before
// main, and a sigprocmask here does not cover them; a SIGCHLD that one of them takes at its default is dropped,
// and a SIGINT there ends the process. A handler runs in whichever thread takes the signal.
int g_signal_pipe[2] = {-1, -1};
extern "C" void forward_to_pipe(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

int exit_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

int run_launch(int argc, char** argv) {
  int sep = 1;
  while (sep < argc && std::strcmp(argv[sep], "--") != 0) ++sep;
  if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (sep >= argc - 1) {
    std::fprintf(stderr, "fashionnet launch: no command after --\n%s", kUsage);
    return 2;
  }
  const std::string command = argv[sep + 1];
  const char* mpirun_env = std::getenv("FN_MPIRUN");
  const std::string mpirun = mpirun_env && *mpirun_env ? mpirun_env : "mpirun";
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();

  std::vector<std::string> words{mpirun};
  for (int i = 1; i < sep; ++i) words.push_back(argv[i]);
  words.push_back(self);
  for (int i = sep + 1; i < argc; ++i) words.push_back(argv[i]);
  std::vector<char*> args;
  for (auto& w : words) args.push_back(w.data());
  args.push_back(nullptr);

  // Handlers before mpirun starts, so that its end is never missed; mpirun starts with no signal blocked and
  // every one at its default, and without the pipe (close-on-exec).
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0 || fcntl(g_signal_pipe[1], F_SETFL, O_NONBLOCK) != 0) {
    std::fprintf(stderr, "fashionnet launch: cannot make a pipe: %s\n", std::strerror(errno));
    return 1;
  }
  const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
  struct sigaction sa {};
  sa.sa_handler = forward_to_pipe;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : handled) sigaction(s, &sa, nullptr);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);  // a group of its own: the terminal's Ctrl-C reaches this process only
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, mpirun.c_str(), nullptr, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    std::fprintf(stderr, "fashionnet launch: cannot start %s: %s (install Open MPI's mpirun, or set FN_MPIRUN)\n",
                 mpirun.c_str(), std::strerror(err));
    return 127;
  }

  int stops = 0;
  for (;;) {
    unsigned char b = 0;
    const ssize_t n = read(g_signal_pipe[0], &b, 1);
    if (n != 1) continue;  // EINTR
    const int sig = b;
    if (sig == SIGCHLD) {  // mpirun stopped, continued or ended
      int status = 0;
      const pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid && (WIFEXITED(status) || WIFSIGNALED(status))) return exit_status(status);
      continue;
    }
    ++stops;
    if (stops == 1 && command == "train") {
      std::fprintf(stderr,
                   "\nfashionnet launch: stopping: every rank ends its step and rank 0 saves last.safetensors "
                   "(Ctrl-C again to abort without a save)\n");
      kill(pid, SIGUSR1);
    } else {
      std::fprintf(stderr, "\nfashionnet launch: aborting the job (mpirun ends every rank)\n");
      kill(pid, SIGINT);
    }
  }
}

}  // namespace

FN_COMMAND("launch", "run a command on MPI ranks through mpirun, with Ctrl-C stopping a training job with a save",
           run_launch);
