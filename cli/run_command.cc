#include "cli/run_command.h"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "coordinator/console_reporter.h"
#include "coordinator/coordinator.h"
#include "shared/duration.h"
#include "shared/unique_fd.h"
#include "worker/subprocess_pool.h"
#include "worker/worker_node.h"

namespace testfarm::cli {

namespace {

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

int UsageError(const std::string& message) {
  std::fprintf(stderr, "testfarm: error: %s\n", message.c_str());
  return kExitUsage;
}

// A path the user named must be a readable file; whether it can be executed is the test's
// business (a test that cannot start is reported as a failed test).
std::optional<std::string> CheckExecutable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return "cannot run '" + path + "': " + std::strerror(errno);
  }
  if (S_ISDIR(st.st_mode)) return "cannot run '" + path + "': it is a directory";
  if (!S_ISREG(st.st_mode)) return "cannot run '" + path + "': not a regular file";
  if (::access(path.c_str(), R_OK) != 0) {
    return "cannot run '" + path + "': " + std::strerror(errno);
  }
  return std::nullopt;
}

// SIGINT, SIGTERM, SIGHUP and SIGQUIT are blocked in every thread (so zmq's threads never take
// them) and read from a signalfd in the coordinator's poll loop; each stops the run. Children
// start with an empty mask and default dispositions (posix_spawn).
UniqueFd BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, signal);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // An inherited SIGCHLD=SIG_IGN would make the kernel reap tests before we read their status.
  ::signal(SIGCHLD, SIG_DFL);
  return UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
}

}  // namespace

int Run(const RunArgs& args) {
  auto timeout = ParseDuration(args.timeout);
  if (!timeout)
    return UsageError("--timeout: not a duration: '" + args.timeout + "' (try 30s, 500ms, 2m)");
  auto kill_grace = ParseDuration(args.kill_grace);
  if (!kill_grace) return UsageError("--kill-grace: not a duration: '" + args.kill_grace + "'");

  std::vector<coordinator::TestSpec> tests;
  for (const std::string& path : args.executables) {
    if (auto problem = CheckExecutable(path)) return UsageError(*problem);
    coordinator::TestSpec test;
    test.name = path;
    test.argv = {std::filesystem::absolute(path).lexically_normal().string()};
    test.timeout = *timeout;
    tests.push_back(std::move(test));
  }

  UniqueFd signal_fd = BlockTerminationSignals();
  SteadyClock clock;
  zmq::context_t context;

  coordinator::CoordinatorOptions options;
  options.scheduler.kill_grace = *kill_grace;
  options.scheduler.max_failures = args.fail_fast ? 1 : args.max_fail;
  coordinator::ConsoleReporter reporter(stdout, coordinator::ConsoleOptionsFromEnvironment());
  coordinator::Coordinator coordinator(context, clock, std::move(tests), options, reporter);
  auto endpoint = coordinator.Bind("inproc://testfarm-coordinator");
  if (!endpoint) return UsageError(endpoint.error().message);

  worker::WorkerNodeOptions worker_options;
  worker_options.endpoint = *endpoint;
  worker_options.name = "local";
  worker_options.slots =
      args.jobs != 0 ? args.jobs : worker::DefaultSlots(std::thread::hardware_concurrency());
  std::thread worker_thread([&] {
    pthread_setname_np(pthread_self(), "tf-worker");
    worker::WorkerNode node(context, clock, worker_options);
    auto served = node.ServeOneRun();
    if (!served) spdlog::error("local worker stopped: {}", served.error().message);
  });

  coordinator::RunSummary summary = coordinator.Run(signal_fd.get());
  // The run is over (or given up on): end the in-process worker now, whatever it is doing.
  // Its pool kills anything still running.
  context.shutdown();
  worker_thread.join();

  if (summary.interrupted) return kExitInterrupted;
  return summary.passed == summary.total() ? kExitPassed : kExitFailed;
}

}  // namespace testfarm::cli
