#include "cli/run_command.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "coordinator/console_reporter.h"
#include "coordinator/coordinator.h"
#include "coordinator/coverage.h"
#include "coordinator/ctest_import.h"
#include "coordinator/dashboard_server.h"
#include "coordinator/discovery.h"
#include "coordinator/farm_client.h"
#include "coordinator/farm_server.h"
#include "coordinator/gtest.h"
#include "coordinator/history_store.h"
#include "coordinator/manifest.h"
#include "coordinator/metrics_server.h"
#include "coordinator/plan.h"
#include "coordinator/report_writers.h"
#include "coordinator/test_order.h"
#include "protocol/curve.h"
#include "protocol/endpoint_policy.h"
#include "shared/blob_cache.h"
#include "shared/duration.h"
#include "shared/errno_text.h"
#include "shared/file_io.h"
#include "shared/llvm_tools.h"
#include "shared/terminal_text.h"
#include "shared/unique_fd.h"
#include "worker/daemon.h"
#include "worker/run_local.h"
#include "worker/scratch_dir.h"
#include "worker/subprocess_pool.h"
#include "worker/worker_node.h"

namespace testfarm::cli {

namespace {

namespace fs = std::filesystem;
using coordinator::SuiteKind;
using coordinator::SuiteSpec;
using coordinator::TestSpec;

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

// Messages name paths and tests, which may hold control characters: shown escaped. A message
// may span lines (a tool's stderr); a test's name in `list` must not.
void PrintTo(std::FILE* out, const std::string& prefix, const std::string& message,
             Newlines newlines = Newlines::kKeep) {
  std::string line = prefix + EscapeForTerminal(message, newlines) + "\n";
  std::fwrite(line.data(), 1, line.size(), out);
}

int UsageError(const std::string& message) {
  PrintTo(stderr, "testfarm: error: ", message);
  return kExitUsage;
}

coordinator::OutputWhen OutputWhenOf(const std::string& mode) {
  if (mode == "never") return coordinator::OutputWhen::kNever;
  if (mode == "final") return coordinator::OutputWhen::kFinal;
  if (mode == "immediate-final") return coordinator::OutputWhen::kImmediateFinal;
  return coordinator::OutputWhen::kImmediate;
}

coordinator::ConsoleOptions ConsoleOptionsFor(const RunArgs& args) {
  coordinator::ColorChoice color = args.color == "always"  ? coordinator::ColorChoice::kAlways
                                   : args.color == "never" ? coordinator::ColorChoice::kNever
                                                           : coordinator::ColorChoice::kAuto;
  coordinator::ConsoleOptions options = coordinator::ConsoleOptionsFromEnvironment(color);
  options.verbosity = args.quiet     ? coordinator::Verbosity::kQuiet
                      : args.verbose ? coordinator::Verbosity::kVerbose
                                     : coordinator::Verbosity::kNormal;
  options.success_output = OutputWhenOf(args.success_output);
  options.failure_output = OutputWhenOf(args.failure_output);
  options.slowest = args.slowest;
  options.hungriest = args.hungriest;
  // The tests write to the terminal themselves: a progress line would be torn through.
  if (args.no_capture) options.progress = false;
  return options;
}

// A report must be writable before the run starts, not found unwritable after it. It is
// written as PATH.tmp and renamed over PATH (WriteFile), so that is what is tried: a path whose
// directory takes no new file (/proc/version) fails here, not after the tests ran.
std::optional<std::string> CheckWritable(const std::string& option, const std::string& path) {
  if (path.empty()) return std::nullopt;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return option + ": '" + path + "' is a directory";
    if (!S_ISREG(st.st_mode)) return option + ": '" + path + "' is not a regular file";
  } else if (errno != ENOENT) {
    return option + ": cannot write '" + path + "': " + ErrnoText(errno);
  }
  std::string temp = path + ".tmp";
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return option + ": cannot write '" + path + "': " + ErrnoText(errno);
  ::unlink(temp.c_str());
  return std::nullopt;
}

// Two outputs given the same file would overwrite each other.
std::optional<std::string> CheckDistinct(
    const std::vector<std::pair<std::string, std::string>>& outputs) {
  std::map<std::string, std::string> seen;  // normalized absolute path -> option
  for (const auto& [option, path] : outputs) {
    if (path.empty()) continue;
    std::error_code ec;
    fs::path absolute = fs::absolute(path, ec);
    std::string key = (ec ? fs::path(path) : absolute).lexically_normal().string();
    auto [it, inserted] = seen.emplace(key, option);
    if (!inserted) {
      return option + " and " + it->second + " name the same file '" + path +
             "': each report needs its own";
    }
  }
  return std::nullopt;
}

// Writes through a temporary file and a rename, so a reader never sees half a report.
std::optional<std::string> WriteFile(const std::string& path,
                                     const std::function<void(std::ostream&)>& write) {
  std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    write(out);
    out.flush();
    if (!out) return "cannot write '" + temp + "'";
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return "cannot rename '" + temp + "' to '" + path + "': " + ErrnoText(errno);
  }
  return std::nullopt;
}

unsigned SlotCount(const SourceArgs& args) {
  return args.jobs != 0 ? args.jobs : worker::DefaultSlots(std::thread::hardware_concurrency());
}

// Discovery's helper programs (listings, ctest), run on a local pool like tests. What they print
// (ctest's listing of a large project is megabytes) and what one writes to its output file are
// not capped like a test's output, only kept below this.
constexpr std::size_t kMaxToolOutputBytes = std::size_t{1} << 30;
std::vector<coordinator::Listing> RunTools(std::vector<coordinator::ToolRun> runs,
                                           unsigned parallel) {
  // Files the tools write their output to (ToolRun::output_arg), one per run, gone with this.
  std::optional<worker::ScratchDir> outputs;
  std::vector<std::string> output_files(runs.size());
  std::vector<worker::LaunchSpec> specs;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    coordinator::ToolRun& run = runs[i];
    worker::LaunchSpec spec;
    spec.argv = std::move(run.argv);
    if (!run.output_arg.empty()) {
      if (!outputs) {
        auto dir = worker::ScratchDir::Create(worker::SystemTempDir(), "testfarm-listings-");
        if (dir) outputs.emplace(std::move(*dir));  // else: only the printed output
      }
      if (outputs) {
        output_files[i] = (outputs->path() / ("tool-" + std::to_string(i) + ".out")).string();
        spec.argv.push_back(run.output_arg + output_files[i]);
      }
    }
    spec.env = std::move(run.env);
    spec.cwd = std::move(run.cwd);
    spec.timeout = run.timeout;
    spec.kill_grace = run.kill_grace;
    specs.push_back(std::move(spec));
  }
  std::vector<coordinator::Listing> results;
  for (worker::FinishedJob& job :
       worker::RunToCompletion(std::move(specs), parallel, kMaxToolOutputBytes)) {
    results.push_back({job.state, std::move(job.out.text), std::move(job.err.text), {}});
  }
  for (std::size_t i = 0; i < results.size() && i < output_files.size(); ++i) {
    if (output_files[i].empty()) continue;
    auto written = ReadWholeFile(output_files[i], kMaxToolOutputBytes);
    if (written) results[i].json = std::move(*written);
  }
  return results;
}

// Suites become tests (discovery); what it warns of is said here.
Result<std::vector<TestSpec>> PlanTests(const SourceArgs& args) {
  coordinator::DiscoveryNotes notes;
  auto tests = coordinator::DiscoverTests(args, RunTools, SlotCount(args), &notes);
  for (const std::string& warning : notes.warnings) {
    PrintTo(stderr, "testfarm: warning: ", warning);
  }
  for (const std::string& note : notes.notes) spdlog::info("{}", note);
  return tests;
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

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

int WriteReports(const RunArgs& args, const coordinator::RunSummary& summary,
                 const coordinator::RunInfo& info) {
  struct Output {
    const std::string& path;
    void (*write)(const std::vector<coordinator::TestReport>&, const coordinator::RunInfo&,
                  std::ostream&);
  };
  const Output outputs[] = {{args.junit, coordinator::WriteJunitXml},
                            {args.json, coordinator::WriteJsonReport},
                            {args.trace, coordinator::WriteChromeTrace}};
  int status = 0;
  for (const Output& output : outputs) {
    if (output.path.empty()) continue;
    auto write = [&](std::ostream& out) { output.write(summary.reports, info, out); };
    if (auto problem = WriteFile(output.path, write)) {
      PrintTo(stderr, "testfarm: error: ", *problem);
      status = kExitUsage;
    }
  }
  return status;
}

Result<std::map<std::string, std::string>> ParseLabels(const std::string& text) {
  std::map<std::string, std::string> labels;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error{"--labels: expected KEY=VALUE[,KEY=VALUE...], got '" + item + "'"};
    }
    labels[item.substr(0, eq)] = item.substr(eq + 1);
    start = end + 1;
  }
  return labels;
}

// "10G", "512M", "64k", "1000": bytes, with binary multiples.
std::optional<uint64_t> ParseByteSize(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t end = 0;
  uint64_t value = 0;
  try {
    value = std::stoull(text, &end);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = text.substr(end);
  static const std::map<std::string, int> kShifts = {{"", 0},   {"k", 10}, {"K", 10},
                                                     {"M", 20}, {"G", 30}, {"T", 40}};
  auto shift = kShifts.find(unit);
  if (shift == kShifts.end() || text[0] == '-' || value > (UINT64_MAX >> shift->second)) {
    return std::nullopt;
  }
  return value << shift->second;
}

// $XDG_CACHE_HOME/testfarm, else ~/.cache/testfarm, else a per-user directory in /tmp.
std::filesystem::path DefaultCacheDir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    return std::filesystem::path(xdg) / "testfarm";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    return std::filesystem::path(home) / ".cache" / "testfarm";
  }
  return std::filesystem::path("/tmp") / ("testfarm-cache-" + std::to_string(::getuid()));
}

// Runs a tool to completion with the same launching as tests; stdout goes to a file through
// the shell's redirection (llvm-cov writes its export to stdout, which can be large).
coordinator::CommandResult RunTool(const std::vector<std::string>& argv,
                                   const std::string& stdout_file) {
  coordinator::ToolRun run;
  if (stdout_file.empty()) {
    run.argv = argv;
  } else {
    run.argv = {"/bin/sh", "-c", "out=$1; shift; exec \"$@\" >\"$out\"", "sh", stdout_file};
    run.argv.insert(run.argv.end(), argv.begin(), argv.end());
  }
  run.timeout = Millis(0);  // a large export takes what it takes
  coordinator::Listing done = std::move(RunTools({std::move(run)}, 1).front());
  return {done.state.passed(), done.state.Describe(), done.err};
}

// After the run: merge, export and report. Returns the exit status it adds (0 or kExitUsage).
int WriteCoverage(const RunArgs& args, const coordinator::RunSummary& summary,
                  const coordinator::CoverageObjects& objects, const std::string& llvm_profdata,
                  const std::string& llvm_cov, const std::filesystem::path& work_dir,
                  SteadyTime tests_done) {
  const coordinator::CoverageSummary& collected = summary.coverage;
  coordinator::CoverageExport how;
  how.llvm_profdata = llvm_profdata;
  how.llvm_cov = llvm_cov;
  how.format = args.coverage_format;
  how.output = args.coverage_output;
  how.summary = args.coverage_summary;
  how.work_dir = work_dir;
  for (const std::string& empty : collected.empty) {
    PrintTo(stderr, "testfarm: coverage: no profile from ", empty);
  }
  for (const std::string& bad : collected.bad) {
    PrintTo(stderr, "testfarm: coverage: corrupt profile skipped: ", bad);
  }
  for (const std::string& error : collected.errors) PrintTo(stderr, "testfarm: coverage: ", error);
  auto outcome = coordinator::ExportCoverage(collected, objects, how, RunTool);
  if (!outcome) {
    PrintTo(stderr, "testfarm: error: coverage: ", outcome.error().message);
    return kExitUsage;
  }
  for (const std::string& warning : outcome->warnings) {
    PrintTo(stderr, "testfarm: coverage: ", warning);
  }
  auto elapsed = std::chrono::duration_cast<Millis>(SteadyClock().Now() - tests_done);
  std::string table = EscapeForTerminal(outcome->summary, Newlines::kKeep);  // source paths
  std::fwrite(table.data(), 1, table.size(), stdout);
  std::printf(
      "coverage: %s written %s after the last test; %zu profiles merged, %zu empty, %zu "
      "corrupt\n",
      EscapeForTerminal(args.coverage_output).c_str(), FormatDuration(elapsed).c_str(),
      static_cast<std::size_t>(collected.merged), collected.empty.size(), collected.bad.size());
  return 0;
}

}  // namespace

int Keygen(const KeygenArgs& args) {
  if (!protocol::CurveAvailable()) {
    return UsageError("keygen: this libzmq was built without CurveZMQ support");
  }
  auto keys = protocol::GenerateKeyPair();
  if (!keys) return UsageError(keys.error().message);
  auto written = protocol::WriteKeyPair(*keys, args.base);
  if (!written) return UsageError(written.error().message);
  std::printf("testfarm: wrote %s (secret, keep it private) and %s (public)\n",
              written->first.c_str(), written->second.c_str());
  return kExitPassed;
}

int Worker(const WorkerArgs& args) {
  if (auto host = protocol::TcpHost("--connect", args.connect, protocol::PortUse::kConnect);
      !host) {
    return UsageError(host.error().message);
  }
  auto heartbeat = ParseDuration(args.heartbeat);
  if (!heartbeat || heartbeat->count() == 0) {
    return UsageError("--heartbeat: not a positive duration: '" + args.heartbeat + "'");
  }
  std::optional<Millis> connect_timeout;
  if (!args.connect_timeout.empty()) {
    auto parsed = ParseDuration(args.connect_timeout);
    if (!parsed || parsed->count() == 0) {
      return UsageError("--connect-timeout: not a positive duration: '" + args.connect_timeout +
                        "'");
    }
    connect_timeout = *parsed;
  } else if (args.once) {
    connect_timeout = kOnceConnectTimeout;
  }
  auto drain_timeout = ParseDuration(args.drain_timeout);
  if (!drain_timeout) {
    return UsageError("--drain-timeout: not a duration: '" + args.drain_timeout + "'");
  }
  auto labels = ParseLabels(args.labels);
  if (!labels) return UsageError(labels.error().message);
  auto security =
      protocol::LoadSecurity("--key", args.key, "--coordinator-key", args.coordinator_key, false);
  if (!security) return UsageError(security.error().message);
  if (auto allowed = protocol::CheckEndpoint("--connect", args.connect, protocol::PortUse::kConnect,
                                             security->keys.has_value(), args.insecure);
      !allowed) {
    return UsageError(allowed.error().message);
  }
  auto cache_size = ParseByteSize(args.cache_size);
  if (!cache_size || *cache_size == 0) {
    return UsageError("--cache-size: expected a size such as 10G, 512M or 1000000, got '" +
                      args.cache_size + "'");
  }
  std::filesystem::path cache_dir =
      args.cache_dir.empty() ? DefaultCacheDir() : std::filesystem::path(args.cache_dir);
  auto cache = BlobCache::Open({cache_dir, *cache_size});
  if (!cache) return UsageError("--cache-dir: " + cache.error().message);
  UniqueFd stop_fd = BlockTerminationSignals();
  SteadyClock clock;
  zmq::context_t context;
  worker::DaemonOptions options;
  options.node.cache = &*cache;
  options.node.shared_fs = args.shared_fs;
  // Needed only when a run asks for coverage; a worker without it says so in those runs.
  if (auto profdata = FindLlvmTool("llvm-profdata", args.llvm_profdata, "--llvm-profdata")) {
    options.node.llvm_profdata = *profdata;
  } else if (!args.llvm_profdata.empty()) {
    return UsageError(profdata.error().message);
  }
  options.once = args.once;
  options.connect_timeout = connect_timeout;
  options.node.endpoint = args.connect;
  options.node.name = args.name.empty() ? HostName() + ":" + std::to_string(::getpid()) : args.name;
  options.node.slots =
      args.slots != 0 ? args.slots : worker::DefaultSlots(std::thread::hardware_concurrency());
  options.node.labels = std::move(*labels);
  options.node.liveness = LivenessOptions{*heartbeat, args.liveness};
  options.node.stop_fd = stop_fd.get();
  options.node.drain_timeout = *drain_timeout;
  std::optional<worker::HealthFile> health;
  if (!args.health_file.empty()) {
    health.emplace(args.health_file, args.connect, *heartbeat);
    health->Set("connecting", clock.Now());
    if (!health->error().empty()) return UsageError("--health-file: " + health->error());
    options.node.health = &*health;
  }
  options.node.keys = security->keys;
  options.node.coordinator_key = security->peer_key;
  spdlog::info("worker {}: {} slot{}, serving {}", options.node.name, options.node.slots,
               options.node.slots == 1 ? "" : "s", args.connect);
  return worker::RunDaemon(context, clock, options);
}

int List(const ListArgs& args) {
  auto tests = PlanTests(args.source);
  if (!tests) return UsageError(tests.error().message);
  // A suite whose listing crashed or hung is listed as a failing test, and the listing fails.
  int status = kExitPassed;
  for (const TestSpec& test : *tests) {
    if (!test.error.empty()) status = kExitFailed;
  }
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const TestSpec& test : *tests) {
      out.push_back({{"name", test.name},
                     {"suite", test.suite},
                     {"case", test.gtest_case},
                     {"kind", test.gtest() ? "gtest" : "plain"},
                     {"command", test.settings().command},
                     {"labels", test.labels},
                     {"timeout_ms", test.timeout.count()},
                     {"skipped", test.skip_reason},
                     {"error", test.error},
                     {"cannot_run", test.cannot_run}});
    }
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return status;
  }
  // NAME  [timeout 10m]  [labels: a, b]  (skipped: ...) / (error: ...)
  for (const TestSpec& test : *tests) {
    std::string line = test.name;
    line += test.timeout.count() > 0 ? "  [timeout " + FormatDuration(test.timeout) + "]"
                                     : std::string("  [no timeout]");
    if (!test.labels.empty()) {
      std::string labels;
      for (const std::string& label : test.labels) labels += (labels.empty() ? "" : ", ") + label;
      line += "  [labels: " + labels + "]";
    }
    if (!test.skip_reason.empty()) line += "  (skipped: " + test.skip_reason + ")";
    if (!test.error.empty()) line += "  (error: " + test.error + ")";
    if (!test.cannot_run.empty()) line += "  (cannot run: " + test.cannot_run + ")";
    PrintTo(stdout, "", line, Newlines::kEscape);
  }
  if (status != kExitPassed) {
    std::fprintf(stderr, "testfarm: error: a suite could not be listed (see the errors above)\n");
  }
  return status;
}

namespace {

// The exit code of a finished run: interrupted, all passed (or skipped), or not.
// Where the history is: --history, else $TESTFARM_HISTORY, else .testfarm/history.sqlite;
// nullopt with --no-history or TESTFARM_HISTORY=off.
std::optional<std::string> HistoryPath(const RunArgs& args) {
  if (args.no_history) return std::nullopt;
  if (!args.history.empty()) return args.history;
  if (const char* env = std::getenv("TESTFARM_HISTORY"); env != nullptr && *env != '\0') {
    if (std::string_view(env) == "off") return std::nullopt;
    return env;
  }
  return coordinator::kDefaultHistoryPath;
}

void WarnHistory(const std::string& problem) {
  PrintTo(stderr, "testfarm: warning: history: ", problem);
}

// The history at `path`, or nullptr (with a warning: a run without history still runs). A file
// this run cannot write is still read, to order the run.
// Starts the dashboard (--http) of a run or a farm, and says where it is.
Result<std::unique_ptr<coordinator::DashboardServer>> StartDashboard(const HttpArgs& http,
                                                                     bool insecure,
                                                                     const char* mode,
                                                                     std::string history,
                                                                     const Clock& clock) {
  coordinator::DashboardOptions options;
  options.address = http.address;
  options.token = http.token;
  if (options.token.empty()) {
    if (const char* env = std::getenv("TESTFARM_HTTP_TOKEN")) options.token = env;
  }
  options.insecure = insecure;
  options.mode = mode;
  options.version = TESTFARM_VERSION;
  options.history = std::move(history);
  auto server = coordinator::DashboardServer::Start(std::move(options), clock);
  if (!server) return server.error();
  std::printf("testfarm: dashboard on %s\n", (*server)->url().c_str());
  std::fflush(stdout);
  return server;
}

std::unique_ptr<coordinator::HistoryStore> OpenHistory(const std::string& path) {
  std::vector<std::string> warnings;
  auto store = coordinator::HistoryStore::Open(path, &warnings);
  for (const std::string& warning : warnings) WarnHistory(warning);
  if (store) return std::move(*store);
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    auto read_only = coordinator::HistoryStore::Open(path, &warnings, true);
    if (read_only) {
      WarnHistory(store.error().message + "; it orders this run, which is not recorded");
      return std::move(*read_only);
    }
  }
  WarnHistory(store.error().message + "; this run is neither ordered nor recorded by it");
  return nullptr;
}

coordinator::RunRecord NewRunRecord(const std::string& label) {
  coordinator::RunRecord run;
  run.id = coordinator::NewRunId();
  run.label = label;
  run.client = HostName() + ":" + std::to_string(::getpid());
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') {
    run.client = std::string(user) + "@" + run.client;
  }
  run.started_ms = coordinator::UnixMillisNow();
  return run;
}

// --rerun-failed: keeps the tests that failed in the last run (with a label starting with
// `label`) as `failed` names them (nullopt: the history at `where` has no such run). Returns an
// exit status when there is nothing to run, else -1.
int KeepLastFailures(const Result<std::optional<std::vector<std::string>>>& failed,
                     const std::string& where, const std::string& label,
                     std::vector<TestSpec>* tests) {
  if (!failed) return UsageError("--rerun-failed: " + failed.error().message);
  const std::string which = label.empty() ? "" : " labelled " + label + "*";
  if (!*failed) return UsageError("--rerun-failed: " + where + " holds no run" + which);
  std::set<std::string> names((*failed)->begin(), (*failed)->end());
  std::vector<TestSpec> kept;
  for (const TestSpec& test : *tests) {
    if (names.count(test.name) > 0) kept.push_back(test);
  }
  if (kept.empty()) {
    std::printf("testfarm: --rerun-failed: no selected test failed in the last run%s\n",
                which.c_str());
    return kExitPassed;
  }
  std::printf("testfarm: --rerun-failed: %zu of the %zu tests that failed in the last run%s\n",
              kept.size(), names.size(), which.c_str());
  // With the setup and cleanup of the fixtures they need, as a selection gets them.
  *tests = coordinator::WithFixtureTests(*tests, std::move(kept));
  return -1;
}

// 0 when every test passed or skipped itself, FLAKY ones too unless --flaky-result fail; they
// are named in a warning either way.
int ExitCodeOf(const coordinator::RunSummary& summary, const RunArgs& args) {
  if (summary.flaky > 0) {
    std::string names;
    for (const coordinator::TestReport* report : summary.Flaky()) {
      names += (names.empty() ? "" : ", ") + report->name;
    }
    PrintTo(stderr, "testfarm: warning: ",
            std::to_string(summary.flaky) + (summary.flaky == 1 ? " test" : " tests") +
                " failed and then passed on a retry (FLAKY): " + names +
                (args.flaky_result == "fail" ? "; --flaky-result fail: the run fails"
                                             : "; --flaky-result fail would fail the run"));
  }
  if (summary.interrupted) return kExitInterrupted;
  const std::size_t flaky_ok = args.flaky_result == "fail" ? 0 : summary.flaky;
  return summary.passed + summary.skipped_tests + flaky_ok == summary.total() ? kExitPassed
                                                                              : kExitFailed;
}

// What a --coverage run on a farm needs to turn the profiles it gets back into a report.
struct FarmCoverage {
  const RunArgs& resolved;  // with the coverage output's default filled in
  const coordinator::CoverageObjects& objects;
  std::string llvm_profdata;
  std::string llvm_cov;
  std::filesystem::path profile_dir;  // empty: no coverage
};

int RunOnFarm(const RunArgs& args, std::vector<TestSpec> tests,
              const coordinator::RunOptions& policy, const protocol::Security& security,
              LivenessOptions liveness, const FarmCoverage& coverage) {
  // Every file a test needs goes with it: the farm's workers share nothing with this machine.
  coordinator::ArtifactCatalog catalog;
  std::vector<const coordinator::ArtifactSet*> shipped = coordinator::ShipTests(catalog, tests);
  UniqueFd signal_fd = BlockTerminationSignals();
  SteadyClock clock;
  zmq::context_t context;
  coordinator::FarmClientOptions options;
  options.endpoint = args.farm;
  options.keys = security.keys;
  options.farm_key = security.peer_key;
  options.liveness = liveness;
  options.client_name = HostName() + ":" + std::to_string(::getpid());
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') {
    options.client_name = std::string(user) + "@" + options.client_name;
  }
  options.label = args.label;
  options.max_slots = args.max_slots;
  options.keep_order = args.shuffle || args.no_history;
  options.profile_dir = coverage.profile_dir;
  coordinator::RunInfo info{HostName(), UtcNow(), Millis(0)};
  coordinator::ConsoleReporter reporter(stdout, ConsoleOptionsFor(args));
  coordinator::FarmClient client(context, clock, options);
  coordinator::RunSummary summary =
      client.Run(std::move(tests), shipped, policy, reporter, signal_fd.get());
  SteadyTime tests_done = clock.Now() - summary.coverage.collect;
  info.wall = summary.wall;
  if (int status = WriteReports(args, summary, info); status != 0) return status;
  if (!client.failure().empty()) {
    PrintTo(stderr, "testfarm: error: ", client.failure());
    return kExitFailed;
  }
  if (args.coverage && !summary.interrupted) {
    if (int status =
            WriteCoverage(coverage.resolved, summary, coverage.objects, coverage.llvm_profdata,
                          coverage.llvm_cov, coverage.profile_dir, tests_done);
        status != 0) {
      return status;
    }
  }
  return ExitCodeOf(summary, args);
}

}  // namespace

int Serve(const ServeArgs& args) {
  auto heartbeat = ParseDuration(args.heartbeat);
  if (!heartbeat || heartbeat->count() == 0) {
    return UsageError("--heartbeat: not a positive duration: '" + args.heartbeat + "'");
  }
  auto security =
      protocol::LoadSecurity("--key", args.key, "--worker-keys", args.worker_keys, true);
  if (!security) return UsageError(security.error().message);
  std::vector<protocol::AllowedKey> allowed = security->allowed;
  if (!args.client_keys.empty()) {
    if (!security->keys) return UsageError("--client-keys needs --key and --worker-keys");
    auto clients = protocol::ReadAllowList(args.client_keys);
    if (!clients) return UsageError("--client-keys: " + clients.error().message);
    allowed.insert(allowed.end(), clients->begin(), clients->end());
  } else if (security->keys) {
    return UsageError(
        "--key needs --client-keys too: the public keys of the clients (`testfarm run --farm`) "
        "allowed to submit runs");
  }
  auto allowed_endpoint =
      protocol::CheckEndpoint("--listen", args.listen, protocol::PortUse::kListen,
                              security->keys.has_value(), args.insecure);
  if (!allowed_endpoint) return UsageError(allowed_endpoint.error().message);
  auto store_size = ParseByteSize(args.store_size);
  if (!store_size || *store_size == 0) {
    return UsageError("--store-size: expected a size such as 20G, 512M or 1000000, got '" +
                      args.store_size + "'");
  }
  UniqueFd signal_fd = BlockTerminationSignals();
  SteadyClock clock;
  zmq::context_t context;
  coordinator::FarmServerOptions options;
  options.service.liveness = LivenessOptions{*heartbeat, args.liveness};
  options.service.max_runs = std::max(1u, args.max_runs);
  options.service.max_queued = args.max_queued;
  options.keys = security->keys;
  options.allowed = std::move(allowed);
  options.store.dir = args.store_dir.empty() ? DefaultCacheDir() / "farm-store"
                                             : std::filesystem::path(args.store_dir);
  options.store.max_bytes = *store_size;
  if (!args.no_history) {
    options.history =
        args.history.empty() ? (options.store.dir / "history.sqlite").string() : args.history;
  }
  // The dashboard and the metrics outlive the farm that feeds them.
  std::unique_ptr<coordinator::DashboardServer> dashboard;
  if (!args.http.address.empty()) {
    auto started = StartDashboard(args.http, args.insecure, "serve", options.history, clock);
    if (!started) return UsageError(started.error().message);
    dashboard = std::move(*started);
    options.service.dashboard = dashboard.get();
  }
  std::unique_ptr<coordinator::MetricsServer> metrics;
  std::unique_ptr<coordinator::TeeSink> both;
  if (!args.metrics.empty()) {
    coordinator::MetricsOptions metrics_options;
    metrics_options.address = args.metrics;
    metrics_options.version = TESTFARM_VERSION;
    auto started = coordinator::MetricsServer::Start(std::move(metrics_options));
    if (!started) return UsageError(started.error().message);
    metrics = std::move(*started);
    std::printf("testfarm: metrics on %s\n", metrics->url().c_str());
    std::fflush(stdout);
    spdlog::info("farm: Prometheus metrics on {}", metrics->url());
    if (dashboard) {
      both = std::make_unique<coordinator::TeeSink>(*dashboard, *metrics);
      options.service.dashboard = both.get();
    } else {
      options.service.dashboard = metrics.get();
    }
  }
  auto farm = coordinator::FarmServer::Create(context, clock, options);
  if (!farm) return UsageError("--store: " + farm.error().message);
  auto bound = (*farm)->Bind(args.listen);
  if (!bound) return UsageError(bound.error().message);
  std::printf("testfarm: listening on %s\n", bound->c_str());
  std::fflush(stdout);
  spdlog::info("farm: serving on {} (at most {} runs at once, {} waiting; store {})", *bound,
               options.service.max_runs, options.service.max_queued, options.store.dir.string());
  (*farm)->Serve(signal_fd.get());
  spdlog::info("farm: stopped");
  return 0;
}

// How a one-question client (`status`, `history --farm`, `flaky --farm`) reaches the farm: its
// endpoint, keys and how long to wait for the answer; an error names the option at fault.
Result<coordinator::FarmClientOptions> FarmQueryOptions(const std::string& farm,
                                                        const std::string& key,
                                                        const std::string& farm_key, bool insecure,
                                                        const std::string& wait) {
  auto timeout = ParseDuration(wait);
  if (!timeout || timeout->count() == 0) {
    return Error{"--timeout: not a positive duration: '" + wait + "'"};
  }
  auto security = protocol::LoadSecurity("--key", key, "--farm-key", farm_key, false);
  if (!security) return security.error();
  auto allowed = protocol::CheckEndpoint("--farm", farm, protocol::PortUse::kSubmit,
                                         security->keys.has_value(), insecure);
  if (!allowed) return allowed.error();
  coordinator::FarmClientOptions options;
  options.endpoint = farm;
  options.keys = security->keys;
  options.farm_key = security->peer_key;
  options.connect_timeout = *timeout;
  return options;
}

int Status(const StatusArgs& args) {
  auto options = FarmQueryOptions(args.farm, args.key, args.farm_key, args.insecure, args.timeout);
  if (!options) return UsageError(options.error().message);
  SteadyClock clock;
  zmq::context_t context;
  auto status = coordinator::QueryFarmStatus(context, clock, *options);
  if (!status) {
    PrintTo(stderr, "testfarm: error: ", status.error().message);
    return kExitFailed;
  }
  if (args.json) {
    nlohmann::ordered_json out;
    out["workers"] = nlohmann::ordered_json::array();
    for (const protocol::WorkerStatus& w : status->workers) {
      out["workers"].push_back({{"name", w.name},
                                {"labels", w.labels},
                                {"slots", w.slots},
                                {"busy", w.busy},
                                {"draining", w.draining},
                                {"tests", w.tests}});
    }
    out["runs"] = nlohmann::ordered_json::array();
    for (const protocol::RunStatus& r : status->runs) {
      out["runs"].push_back({{"id", r.run_id},
                             {"client", r.client},
                             {"label", r.label},
                             {"state", r.state},
                             {"tests", r.tests},
                             {"finished", r.finished},
                             {"failed", r.failed},
                             {"slots", r.slots},
                             {"running", r.running}});
    }
    out["max_runs"] = status->max_runs;
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kExitPassed;
  }
  unsigned slots = 0;
  unsigned busy = 0;
  for (const protocol::WorkerStatus& w : status->workers) {
    slots += w.slots;
    busy += w.busy;
  }
  std::printf("Workers: %zu (%u of %u slots busy)\n", status->workers.size(), busy, slots);
  for (const protocol::WorkerStatus& w : status->workers) {
    std::string labels;
    for (const auto& [k, v] : w.labels) labels += (labels.empty() ? " [" : ",") + k + "=" + v;
    if (!labels.empty()) labels += "]";
    std::printf("  %s%s: %u/%u busy%s", w.name.c_str(), labels.c_str(), w.busy, w.slots,
                w.draining ? " (draining: takes no new tests)" : "");
    for (std::size_t i = 0; i < w.tests.size(); ++i) {
      std::printf("%s%s", i == 0 ? ": " : ", ", w.tests[i].c_str());
    }
    std::printf("\n");
  }
  std::size_t waiting = 0;
  for (const protocol::RunStatus& r : status->runs) waiting += r.state == "waiting" ? 1 : 0;
  std::printf("Runs: %zu running, %zu waiting (at most %u at once)\n",
              status->runs.size() - waiting, waiting, status->max_runs);
  for (const protocol::RunStatus& r : status->runs) {
    std::string label = r.label.empty() ? "" : " " + r.label;
    std::printf("  %s%s from %s: %s, %llu/%llu done, %llu failed, %u running, %u slots\n",
                r.run_id.c_str(), label.c_str(), r.client.c_str(), r.state.c_str(),
                static_cast<unsigned long long>(r.finished),
                static_cast<unsigned long long>(r.tests), static_cast<unsigned long long>(r.failed),
                r.running, r.slots);
  }
  return kExitPassed;
}

int Run(const RunArgs& args) {
  auto kill_grace = ParseDuration(args.kill_grace);
  if (!kill_grace) return UsageError("--kill-grace: not a duration: '" + args.kill_grace + "'");
  auto batch_target = ParseDuration(args.batch_target);
  if (!batch_target || batch_target->count() == 0) {
    return UsageError("--batch-target: not a positive duration: '" + args.batch_target + "'");
  }
  for (const auto& [option, path] : {std::pair<std::string, std::string>{"--junit", args.junit},
                                     {"--json", args.json},
                                     {"--trace", args.trace}}) {
    if (auto problem = CheckWritable(option, path)) return UsageError(*problem);
  }
  std::optional<uint64_t> shuffle_seed;
  if (args.shuffle) {
    if (args.shuffle_seed.empty()) {
      std::random_device device;
      shuffle_seed = (uint64_t{device()} << 32) | device();
    } else if (args.shuffle_seed.size() > 20 ||
               args.shuffle_seed.find_first_not_of("0123456789") != std::string::npos) {
      return UsageError("--shuffle: the seed must be a number, got '" + args.shuffle_seed + "'");
    } else {
      try {
        shuffle_seed = std::stoull(args.shuffle_seed);
      } catch (const std::out_of_range&) {
        return UsageError("--shuffle: the seed is out of range: '" + args.shuffle_seed + "'");
      }
    }
  }
  auto heartbeat = ParseDuration(args.heartbeat);
  if (!heartbeat || heartbeat->count() == 0) {
    return UsageError("--heartbeat: not a positive duration: '" + args.heartbeat + "'");
  }
  auto wait_workers = ParseDuration(args.wait_workers);
  if (!wait_workers)
    return UsageError("--wait-workers: not a duration: '" + args.wait_workers + "'");
  coordinator::RepeatOptions repeat;
  repeat.iterations = args.repeat > 0 ? args.repeat : (args.until_fail ? 0 : 1);
  repeat.until_fail = args.until_fail;
  if (!args.stress_duration.empty()) {
    auto parsed = ParseDuration(args.stress_duration);
    if (!parsed || parsed->count() == 0) {
      return UsageError("--stress-duration: not a positive duration: '" + args.stress_duration +
                        "' (e.g. 30m, 2h)");
    }
    repeat.duration = *parsed;
    if (args.repeat == 0) repeat.iterations = 0;  // as many as fit in the time
  }
  if (args.farm.empty()) {
    if (!args.farm_key.empty()) return UsageError("--farm-key needs --farm");
    if (args.max_slots != 0) return UsageError("--max-slots needs --farm");
  } else {
    for (const auto& [given, option] :
         {std::pair<bool, const char*>{!args.listen.empty(), "--listen"},
          {args.local_slots.has_value(), "--local-slots"},
          {!args.worker_keys.empty(), "--worker-keys"},
          {args.no_capture, "--no-capture"}}) {
      if (given) {
        return UsageError(std::string(option) +
                          " does not work with --farm: the farm's workers run the tests");
      }
    }
    if (!args.history.empty()) {
      return UsageError(
          "--history does not work with --farm: the farm keeps the history of every run it "
          "serves (`testfarm serve --history`)");
    }
    for (const auto& [given, option] : {std::pair<bool, const char*>{args.repeat > 0, "--repeat"},
                                        {args.until_fail, "--until-fail"},
                                        {!args.stress_duration.empty(), "--stress-duration"}}) {
      if (given) {
        return UsageError(std::string(option) +
                          " does not work with --farm yet: repeat the run here, or run "
                          "`testfarm run --listen` with the farm's workers");
      }
    }
  }
  auto security =
      args.farm.empty()
          ? protocol::LoadSecurity("--key", args.key, "--worker-keys", args.worker_keys, true)
          : protocol::LoadSecurity("--key", args.key, "--farm-key", args.farm_key, false);
  if (!security) return UsageError(security.error().message);
  if (security->keys && args.listen.empty() && args.farm.empty()) {
    return UsageError("--key and --worker-keys are for remote workers: they need --listen");
  }
  if (!args.farm.empty()) {
    auto allowed = protocol::CheckEndpoint("--farm", args.farm, protocol::PortUse::kSubmit,
                                           security->keys.has_value(), args.insecure);
    if (!allowed) return UsageError(allowed.error().message);
  }
  if (!args.listen.empty()) {
    auto allowed = protocol::CheckEndpoint("--listen", args.listen, protocol::PortUse::kListen,
                                           security->keys.has_value(), args.insecure);
    if (!allowed) return UsageError(allowed.error().message);
  }
  Millis slow_timeout{0};
  if (!args.slow_timeout.empty()) {
    auto parsed = ParseDuration(args.slow_timeout);
    if (!parsed || parsed->count() == 0) {
      return UsageError("--slow-timeout: not a positive duration: '" + args.slow_timeout + "'");
    }
    slow_timeout = *parsed;
  }
  if (args.no_capture && !args.listen.empty()) {
    return UsageError(
        "--no-capture works only without --listen: remote workers' tests cannot write to this "
        "terminal");
  }
  // --no-capture: one test at a time, so that outputs do not interleave.
  unsigned local_slots = args.no_capture ? 1 : args.local_slots.value_or(SlotCount(args.source));
  if (args.listen.empty() && local_slots == 0) {
    return UsageError("--local-slots 0 needs --listen: nothing else would run the tests");
  }
  RunArgs resolved = args;
  std::string llvm_profdata;
  std::string llvm_cov;
  if (args.coverage) {
    // The tools are checked before any test runs: a coverage run without them is wasted.
    auto profdata = FindLlvmTool("llvm-profdata", args.llvm_profdata, "--llvm-profdata");
    if (!profdata) return UsageError("--coverage: " + profdata.error().message);
    auto cov = FindSiblingLlvmTool("llvm-cov", *profdata, args.llvm_cov, "--llvm-cov");
    if (!cov) return UsageError("--coverage: " + cov.error().message);
    llvm_profdata = *profdata;
    llvm_cov = *cov;
    if (resolved.coverage_output.empty()) {
      resolved.coverage_output = args.coverage_format == "html"   ? "coverage-html"
                                 : args.coverage_format == "lcov" ? "coverage.lcov"
                                                                  : "coverage.json";
    }
    if (args.coverage_format != "html") {
      if (auto problem = CheckWritable("--coverage", resolved.coverage_output)) {
        return UsageError(*problem);
      }
    }
  }
  if (auto problem = CheckDistinct({{"--junit", args.junit},
                                    {"--json", args.json},
                                    {"--trace", args.trace},
                                    {"--coverage", resolved.coverage_output}})) {
    return UsageError(*problem);
  }
  auto tests = PlanTests(args.source);
  if (!tests) return UsageError(tests.error().message);
  if (args.no_capture) {
    // Their output goes to the terminal, so no expression can be held against it.
    std::vector<std::string> judged_by_exit;
    for (TestSpec& test : *tests) {
      if (test.settings().output_rules.empty()) continue;
      judged_by_exit.push_back(test.name);
      test.EditSettings().output_rules = {};
    }
    if (!judged_by_exit.empty()) {
      PrintTo(stderr, "testfarm: warning: ",
              "--no-capture: " + std::to_string(judged_by_exit.size()) +
                  " tests have PASS/FAIL/SKIP_REGULAR_EXPRESSION, which need their output; "
                  "they are judged by their exit codes (the first: " +
                  judged_by_exit.front() + ")");
    }
  }
  for (TestSpec& test : *tests) {
    if (!test.retries) test.retries = args.retries;
  }
  // The history orders the run (unless it is shuffled) and records it.
  std::unique_ptr<coordinator::HistoryStore> history;
  if (args.farm.empty()) {
    if (auto path = HistoryPath(args)) history = OpenHistory(*path);
  }
  if (args.rerun_failed && !args.farm.empty()) {
    // The farm's history: what failed in the last run any pipeline made with this label.
    SteadyClock clock;
    zmq::context_t context;
    coordinator::FarmClientOptions ask;
    ask.endpoint = args.farm;
    ask.keys = security->keys;
    ask.farm_key = security->peer_key;
    auto json = coordinator::QueryFarmHistory(context, clock, ask,
                                              protocol::HistoryQuery{"failed", "", args.label, 0});
    Result<std::optional<std::vector<std::string>>> failed = Error{""};
    if (json) {
      nlohmann::json names = nlohmann::json::parse(*json, nullptr, false);
      if (names.is_null()) {
        failed = std::optional<std::vector<std::string>>();
      } else if (names.is_array() && std::all_of(names.begin(), names.end(),
                                                 [](const auto& n) { return n.is_string(); })) {
        failed = std::optional<std::vector<std::string>>(names.get<std::vector<std::string>>());
      } else {
        failed = Error{"the farm's answer is not a list of tests"};
      }
    } else {
      failed = json.error();
    }
    if (int status = KeepLastFailures(failed, "the farm's history", args.label, &*tests);
        status >= 0) {
      return status;
    }
  } else if (args.rerun_failed) {
    if (!history) return UsageError("--rerun-failed: there is no usable history to read");
    if (int status = KeepLastFailures(history->FailedInLastRun(args.label),
                                      history->path().string(), args.label, &*tests);
        status >= 0) {
      return status;
    }
  }
  if (shuffle_seed) {
    coordinator::Shuffle(&*tests, *shuffle_seed);
    std::printf("testfarm: shuffled with seed %llu (--shuffle=%llu repeats this order)\n",
                static_cast<unsigned long long>(*shuffle_seed),
                static_cast<unsigned long long>(*shuffle_seed));
  }
  coordinator::RunOptions policy;
  policy.scheduler.kill_grace = *kill_grace;
  policy.scheduler.max_failures = args.fail_fast ? 1 : args.max_fail;
  policy.slow_timeout = slow_timeout;
  policy.batch = args.isolation == "batch";
  policy.batcher.target = *batch_target;
  policy.min_workers = std::max(1u, args.min_workers);
  policy.repeat = repeat;
  std::vector<Millis> expected;  // each test's duration by the history: the dashboard's ETA
  if (history) {
    auto estimates = history->Estimates(coordinator::SuitesOf(*tests));
    if (!estimates) {
      PrintTo(stderr, "testfarm: warning: history: ",
              estimates.error().message + "; tests start in the order given");
    } else {
      if (!shuffle_seed) {
        policy.start_order = coordinator::StartOrder(*tests, *estimates);
        policy.expected_case_time = coordinator::ExpectedCaseTimes(*tests, *estimates);
      }
      if (!args.http.address.empty()) expected = coordinator::ExpectedDurations(*tests, *estimates);
    }
  }
  coordinator::CoverageObjects coverage_objects;
  std::optional<worker::ScratchDir> coverage_dir;
  if (args.coverage) {
    coverage_objects = coordinator::FindCoverageObjects(*tests);
    if (coverage_objects.objects.empty()) {
      return UsageError(
          "--coverage: none of the tests' executables has a coverage mapping (build them with "
          "clang's -fprofile-instr-generate -fcoverage-mapping), so there is nothing to measure");
    }
    for (const std::string& path : coverage_objects.uninstrumented) {
      PrintTo(stderr, "testfarm: warning: --coverage: ",
              path +
                  " has no coverage mapping (build it with -fprofile-instr-generate "
                  "-fcoverage-mapping); its tests run without coverage");
    }
    auto dir = worker::ScratchDir::Create(worker::SystemTempDir(), "testfarm-profiles-");
    if (!dir) return UsageError("--coverage: " + dir.error().message);
    coverage_dir = std::move(*dir);
  }

  policy.coverage = args.coverage;
  if (!args.farm.empty()) {
    if (!args.http.address.empty()) {
      return UsageError(
          "--http with --farm: the farm serves the dashboard of every run it holds "
          "(`testfarm serve --http ADDR`)");
    }
    // A farm's run waits for workers as long as asked (they may be restarting).
    policy.wait_workers = *wait_workers;
    FarmCoverage coverage{resolved, coverage_objects, llvm_profdata, llvm_cov,
                          coverage_dir ? coverage_dir->path() : std::filesystem::path()};
    return RunOnFarm(args, std::move(*tests), policy, *security,
                     LivenessOptions{*heartbeat, args.liveness}, coverage);
  }
  UniqueFd signal_fd = BlockTerminationSignals();
  SteadyClock clock;
  zmq::context_t context;
  coordinator::RunInfo info{HostName(), UtcNow(), Millis(0)};

  coordinator::CoordinatorOptions options;
  static_cast<coordinator::RunOptions&>(options) = policy;
  // --no-capture: the worker holds no test beyond the running one, so the next starts only
  // after this one's result line is printed.
  if (args.no_capture) {
    options.scheduler.prefetch = 0;
    options.start_at_assignment = true;  // the test's own output follows its START line
  }
  options.liveness = LivenessOptions{*heartbeat, args.liveness};
  options.wait_workers = args.listen.empty() ? Millis(0) : *wait_workers;
  options.keys = security->keys;
  options.allowed_workers = security->allowed;
  options.ship_artifacts = !args.listen.empty();
  if (coverage_dir) options.profile_dir = coverage_dir->path();
  coordinator::ConsoleReporter console(stdout, ConsoleOptionsFor(args));
  std::optional<coordinator::HistoryReporter> recorder;
  if (history && history->writable()) {
    recorder.emplace(clock, console, *history, NewRunRecord(args.label), WarnHistory);
  }
  coordinator::Reporter* reporter = recorder ? static_cast<coordinator::Reporter*>(&*recorder)
                                             : static_cast<coordinator::Reporter*>(&console);
  std::unique_ptr<coordinator::DashboardServer> dashboard;
  std::optional<coordinator::WatchedReporter> watched;
  if (!args.http.address.empty()) {
    auto started = StartDashboard(args.http, args.insecure, "run",
                                  history ? history->path().string() : "", clock);
    if (!started) return UsageError(started.error().message);
    dashboard = std::move(*started);
    coordinator::RunStartView start;
    start.id = "run-1";
    start.label = args.label;
    start.client = HostName();
    start.started_ms = coordinator::UnixMillisNow();
    for (const TestSpec& test : *tests) start.names.push_back(test.name);
    start.expected = std::move(expected);
    options.dashboard = dashboard.get();
    options.dashboard_run.id = start.id;
    options.dashboard_run.label = start.label;
    options.dashboard_run.client = start.client;
    dashboard->RunStarted(std::move(start));
    watched.emplace(*reporter, *dashboard, "run-1");
    reporter = &*watched;
  }
  coordinator::Coordinator coordinator(context, clock, std::move(*tests), options, *reporter);
  coordinator.Prepare();  // before any worker connects: hashing can take a while
  if (!args.listen.empty()) {
    auto listening = coordinator.Bind(args.listen);
    if (!listening) return UsageError(listening.error().message);
    std::printf("testfarm: listening on %s\n", listening->c_str());
    std::fflush(stdout);
  }
  auto endpoint = coordinator.Bind("inproc://testfarm-coordinator");
  if (!endpoint) return UsageError(endpoint.error().message);

  worker::WorkerNodeOptions worker_options;
  worker_options.endpoint = *endpoint;
  worker_options.name = "local";
  worker_options.slots = local_slots;
  worker_options.liveness = options.liveness;
  worker_options.shared_fs = true;  // it sees the very files the coordinator hashed
  worker_options.llvm_profdata = llvm_profdata;
  worker_options.inherit_output = args.no_capture;
  if (security->keys) {  // the in-process worker holds the coordinator's own keys
    worker_options.keys = security->keys;
    worker_options.coordinator_key = security->keys->public_key;
  }
  std::thread worker_thread([&] {
    if (local_slots == 0) return;  // --local-slots 0: remote workers only
    pthread_setname_np(pthread_self(), "tf-worker");
    try {
      worker::WorkerNode node(context, clock, worker_options);
      auto served = node.ServeOneRun();
      if (!served) spdlog::error("local worker stopped: {}", served.error().message);
    } catch (const zmq::error_t& e) {
      // The run ended before the worker got going (the context is already shut down).
      if (e.num() != ETERM) spdlog::error("local worker failed: {}", e.what());
    }
  });

  coordinator::RunSummary summary = coordinator.Run(signal_fd.get());
  // The run is over (or given up on): end the in-process worker now, whatever it is doing.
  // Its pool kills anything still running.
  context.shutdown();
  worker_thread.join();

  SteadyTime tests_done = clock.Now() - summary.coverage.collect;
  info.wall = summary.wall;
  if (int status = WriteReports(args, summary, info); status != 0) return status;
  if (args.coverage && !summary.interrupted) {
    if (int status = WriteCoverage(resolved, summary, coverage_objects, llvm_profdata, llvm_cov,
                                   coverage_dir->path(), tests_done);
        status != 0) {
      return status;
    }
  }
  return ExitCodeOf(summary, args);
}

namespace {

// "2026-12-02 13:05:00" (UTC) for a time in Unix ms.
std::string UtcTime(int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Kib(uint64_t kib) {
  char buf[32];
  if (kib < 1024) {
    std::snprintf(buf, sizeof buf, "%lluK", static_cast<unsigned long long>(kib));
  } else {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(kib) / 1024);
  }
  return buf;
}

// The answer to a history query as JSON text: from the local history file, or from the farm's
// with --farm. `since_ms` gets the start of the window.
Result<std::string> AskHistory(const HistoryQueryArgs& args, const std::string& what,
                               int64_t* since_ms) {
  auto since = ParseDuration(args.since);
  if (!since) return Error{"--since: not a duration: '" + args.since + "' (e.g. 30d, 12h)"};
  *since_ms = coordinator::UnixMillisNow() - since->count();
  if (!args.farm.empty()) {
    if (!args.history.empty()) return Error{"--history and --farm: give one of them"};
    auto options =
        FarmQueryOptions(args.farm, args.key, args.farm_key, args.insecure, args.timeout);
    if (!options) return options.error();
    SteadyClock clock;
    zmq::context_t context;
    return coordinator::QueryFarmHistory(
        context, clock, *options,
        protocol::HistoryQuery{what, args.test, "", static_cast<uint64_t>(*since_ms)});
  }
  RunArgs run;
  run.history = args.history;
  std::optional<std::string> path = HistoryPath(run);
  if (!path) return Error{"TESTFARM_HISTORY is off: give --history PATH"};
  std::vector<std::string> warnings;
  auto store = coordinator::HistoryStore::Open(*path, &warnings, true);
  for (const std::string& warning : warnings) WarnHistory(warning);
  if (!store) return store.error();
  return what == "flaky" ? coordinator::FlakyJson(**store, *since_ms)
                         : coordinator::HistoryJson(**store, args.test, *since_ms);
}

}  // namespace

namespace {

// Asks `what` of the history (local or the farm's): with --json prints the answer as it is, else
// hands the document and the window's start to `render`. An answer not shaped as testfarm writes
// it is an error, never a crash.
int Query(const HistoryQueryArgs& args, const std::string& what,
          const std::function<void(const nlohmann::json&, int64_t)>& render) {
  int64_t since_ms = 0;
  auto text = AskHistory(args, what, &since_ms);
  if (!text) return UsageError(text.error().message);
  if (args.json) {
    std::fwrite(text->data(), 1, text->size(), stdout);
    return kExitPassed;
  }
  const nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
  try {
    if (!doc.is_object() || !doc.at("tests").is_array()) throw std::invalid_argument("no tests");
    render(doc, since_ms);
  } catch (const std::exception&) {
    return UsageError("the history's answer is not shaped as testfarm writes it");
  }
  return kExitPassed;
}

}  // namespace

int History(const HistoryQueryArgs& args) {
  return Query(args, "attempts", [&](const nlohmann::json& doc, int64_t since_ms) {
    if (doc.at("tests").empty()) {
      std::printf("no attempts recorded since %s%s\n", UtcTime(since_ms).c_str(),
                  args.test.empty() ? "" : (" for " + args.test).c_str());
      return;
    }
    for (const auto& test : doc.at("tests")) {
      const auto& sum = test.at("summary");
      PrintTo(stdout, "", test.at("test").get<std::string>());
      std::printf("  %lld attempts: %lld passed, %lld failed; mean %s, max %s; peak RSS up to %s\n",
                  sum.at("attempts").get<long long>(), sum.at("passed").get<long long>(),
                  sum.at("failed").get<long long>(),
                  FormatDuration(Millis(sum.at("mean_ms").get<int64_t>())).c_str(),
                  FormatDuration(Millis(sum.at("max_ms").get<int64_t>())).c_str(),
                  Kib(sum.at("max_peak_rss_kb").get<uint64_t>()).c_str());
      for (const auto& a : test.at("attempts")) {
        std::string label = a.at("label").get<std::string>();
        std::string line = "  " + UtcTime(a.at("time_ms").get<int64_t>()) + "  ";
        char columns[128];
        std::snprintf(columns, sizeof columns, "%-9s %9s %8s %9s CPU  ",
                      a.at("outcome").get<std::string>().c_str(),
                      FormatDuration(Millis(a.at("duration_ms").get<int64_t>())).c_str(),
                      Kib(a.at("peak_rss_kb").get<uint64_t>()).c_str(),
                      FormatDuration(Millis(a.at("cpu_ms").get<int64_t>())).c_str());
        line += columns;
        line += a.at("worker").get<std::string>() + "  run " + a.at("run").get<std::string>();
        if (!label.empty()) line += " [" + label + "]";
        if (a.at("attempt").get<int>() > 1)
          line += "  attempt " + std::to_string(a.at("attempt").get<int>());
        if (a.at("iteration").get<int>() > 1) {
          line += "  iteration " + std::to_string(a.at("iteration").get<int>());
        }
        PrintTo(stdout, "", line);
      }
    }
  });
}

int Flaky(const HistoryQueryArgs& args) {
  return Query(args, "flaky", [&](const nlohmann::json& doc, int64_t since_ms) {
    if (doc.at("tests").empty()) {
      std::printf("no flaky test since %s\n", UtcTime(since_ms).c_str());
      return;
    }
    std::printf("%6s  %-11s  %-16s  %-19s  %s\n", "RATE", "FLAKY RUNS", "FAILED ATTEMPTS",
                "LAST SEEN (UTC)", "TEST");
    for (const auto& t : doc.at("tests")) {
      char line[160];
      std::snprintf(line, sizeof line, "%5.1f%%  %4lld of %-4lld  %5lld of %-7lld  %-19s  ",
                    t.at("flake_rate").get<double>() * 100, t.at("flaky_runs").get<long long>(),
                    t.at("runs").get<long long>(), t.at("failures").get<long long>(),
                    t.at("attempts").get<long long>(),
                    UtcTime(t.at("last_seen_ms").get<int64_t>()).c_str());
      PrintTo(stdout, line, t.at("test").get<std::string>());
    }
  });
}

}  // namespace testfarm::cli
