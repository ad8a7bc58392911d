// The testfarm binary: CLI11 subcommands that wire the pieces. No logic of its own.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli/run_command.h"
#include "coordinator/ordering.h"
#include "shared/logging.h"

namespace {

// An option naming a file must name one: `--junit ''` is a mistake, not "no report".
const CLI::Validator kNonEmpty(
    [](std::string& value) { return value.empty() ? std::string("a path is needed, not ''") : ""; },
    "", "non-empty");

// The dashboard's options, for `run` and `serve`.
void AddHttpOptions(CLI::App* command, testfarm::cli::HttpArgs& http, const char* what) {
  command->add_option("--http", http.address, what)->type_name("ADDR")->check(kNonEmpty);
  command
      ->add_option("--http-token", http.token,
                   "The dashboard's token (default: $TESTFARM_HTTP_TOKEN): its API answers only "
                   "requests carrying it (the page asks for it once); needed for --http on a "
                   "non-loopback address unless --insecure")
      ->type_name("TOKEN")
      ->check(kNonEmpty);
}

// The options `run` and `list` share: where tests come from and which of them.
void AddSourceOptions(CLI::App* command, testfarm::cli::SourceArgs* source) {
  command
      ->add_option("executables", source->executables,
                   "Test executables: GoogleTest binaries (detected) run one test per case, "
                   "others are one test each")
      ->type_name("PATH");
  command
      ->add_option("--manifest", source->manifest,
                   "Suites from a testfarm.toml (default: ./testfarm.toml when no executable "
                   "or --ctest is given)")
      ->type_name("FILE")
      ->check(kNonEmpty);
  command
      ->add_option("--ctest", source->ctest_dir,
                   "Import the tests a CMake build directory registered with CTest (with their "
                   "properties; a selected test brings its fixtures' setup and cleanup tests)")
      ->type_name("BUILD_DIR")
      ->check(kNonEmpty);
  command
      ->add_option("--filter", source->filters,
                   "Run only tests whose full name (suite or suite::Suite.Case) matches this "
                   "glob; one per flag, repeat the flag for more")
      ->type_name("GLOB")
      ->allow_extra_args(false);
  command
      ->add_option("--exclude", source->excludes,
                   "Skip tests whose full name matches this glob; one per flag, repeatable")
      ->type_name("GLOB")
      ->allow_extra_args(false);
  command
      ->add_option("--label", source->labels,
                   "Run only tests carrying this label (manifest or CTest LABELS); one per flag, "
                   "repeatable")
      ->type_name("LABEL")
      ->allow_extra_args(false);
  command
      ->add_option("--timeout", source->timeout,
                   "Per-test timeout where the suite sets none: seconds, or with a unit (500ms, "
                   "30s, 2m, 1h); 0 disables")
      ->type_name("DURATION")
      ->capture_default_str();
  command
      ->add_option("--partition", source->partition,
                   "Run only part M of N of the selection, for CI jobs that split a suite without "
                   "a farm: hash:M/N (by a hash of each test's name: stable as tests come and go) "
                   "or count:M/N (every Nth test, in listing order)")
      ->type_name("hash:M/N|count:M/N");
  command
      ->add_option("-j,--jobs", source->jobs,
                   "Tests run at once (default: half the hardware threads, 1 to 16)")
      ->check(CLI::Range(1u, 1024u));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"testfarm: run test executables in parallel across a farm of workers"};
  app.set_version_flag("--version", std::string("testfarm ") + TESTFARM_VERSION);
  app.require_subcommand(1);
  std::string log_level = "warn";
  CLI::Option* log_option =
      app.add_option(
             "--log-level", log_level,
             "Log verbosity: trace, debug, info, warn, error, off (`worker`, `serve`: info)")
          ->capture_default_str();

  testfarm::cli::RunArgs run_args;
  CLI::App* run = app.add_subcommand(
      "run",
      "Run tests: a coordinator plus a worker inside this process (with --listen, remote\n"
      "workers too), or on a standing farm (`testfarm serve`) with --farm.\n"
      "A plain test passes when it exits 0 (and leaves no process holding its output open).");
  AddSourceOptions(run, &run_args.source);
  run->add_option("--kill-grace", run_args.kill_grace,
                  "After a timeout or cancel: time between SIGTERM and SIGKILL to the test's "
                  "process group")
      ->type_name("DURATION")
      ->capture_default_str();
  CLI::Option* fail_fast =
      run->add_flag("--fail-fast", run_args.fail_fast,
                    "Stop at the first failure: cancel running tests, start no more");
  run->add_option("--max-fail", run_args.max_fail,
                  "Stop after N failures: cancel running tests, start no more")
      ->check(CLI::Range(1u, 1000000u))
      ->excludes(fail_fast);
  run->add_option("--isolation", run_args.isolation,
                  "test: one process per GoogleTest case; batch: many cases of one binary per "
                  "process (a case a batch cannot account for is re-run alone)")
      ->check(CLI::IsMember({"test", "batch"}))
      ->capture_default_str();
  run->add_option("--batch-target", run_args.batch_target,
                  "With --isolation batch: the time a batch should take")
      ->type_name("DURATION")
      ->capture_default_str();
  run->add_option("--junit", run_args.junit, "Write a JUnit XML report")
      ->type_name("FILE")
      ->check(kNonEmpty);
  run->add_option("--json", run_args.json,
                  "Write a JSON report: one object per test attempt (docs/json-report.md)")
      ->type_name("FILE")
      ->check(kNonEmpty);
  run->add_option("--trace", run_args.trace,
                  "Write a Chrome trace-event file, one track per worker slot (open in Perfetto)")
      ->type_name("FILE")
      ->check(kNonEmpty);
  // Like --coverage, the seed is given only as --shuffle=SEED, so `--shuffle build/t` keeps
  // build/t a test executable.
  CLI::Option* shuffle =
      run->add_flag("--shuffle", run_args.shuffle_seed,
                    "Start the tests in a random order; the seed is printed, and --shuffle=SEED "
                    "repeats that order")
          ->type_name("[=SEED]");

  // The console.
  run->add_option("--color", run_args.color,
                  "ANSI colours: auto (on a terminal, unless NO_COLOR is set), always (also into "
                  "a pipe, e.g. a CI log), never. The live progress line needs a terminal either "
                  "way")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  CLI::Option* quiet = run->add_flag(
      "-q,--quiet", run_args.quiet,
      "Show only failed tests (their lines and output) and the summary: no passing or skipped "
      "tests, no workers joining, no SLOW lines, no progress line");
  run->add_flag("-v,--verbose", run_args.verbose,
                "Also print a START line as each test begins (with its worker), where each test "
                "ran (worker, slot) on its result line, and a line for every test of a run of "
                "more than 10000 (which otherwise gets lines for failures and its progress)")
      ->excludes(quiet);
  const std::vector<std::string> output_modes = {"never", "immediate", "final", "immediate-final"};
  run->add_option("--success-output", run_args.success_output,
                  "When to show a passing test's captured stdout/stderr: never, immediate (under "
                  "its line), final (after all tests, before the summary), immediate-final")
      ->check(CLI::IsMember(output_modes))
      ->capture_default_str();
  run->add_option("--failure-output", run_args.failure_output,
                  "When to show a failed test's captured stdout/stderr (or a GoogleTest case's "
                  "failure message): never, immediate, final, immediate-final")
      ->check(CLI::IsMember(output_modes))
      ->capture_default_str();
  run->add_flag("--no-capture", run_args.no_capture,
                "Tests write straight to this terminal instead of being captured, one test at a "
                "time (overrides -j and --local-slots); no progress line. Not with --listen: "
                "remote workers' output cannot come here. CTest tests with PASS/FAIL/"
                "SKIP_REGULAR_EXPRESSION are then judged by exit code");
  run->add_option("--slow-timeout", run_args.slow_timeout,
                  "Print a SLOW line for a test still running after this long (once per test); "
                  "the progress line names the test running longest either way. Default: off")
      ->type_name("DURATION");

  // Nightly stress.
  run->add_option("--repeat", run_args.repeat,
                  "Run the selection N times: each iteration's tests are tests of their own "
                  "(copies of a test may run at once, each in its own scratch dir); the summary "
                  "says how many iterations of each test passed. Not with --farm yet")
      ->check(CLI::Range(1u, 1000000u));
  run->add_flag("--until-fail", run_args.until_fail,
                "Repeat the selection until a test fails, then start no further iteration and "
                "say which failed (with --repeat N: at most N iterations). Not with --farm yet");
  run->add_option("--stress-duration", run_args.stress_duration,
                  "Repeat the selection until this much time has passed (e.g. 2h); no iteration "
                  "starts after it (with --repeat N: at most N iterations). Not with --farm yet")
      ->type_name("DURATION");
  run->add_option("--retries", run_args.retries,
                  "Run a failed test again, up to N times, on another worker where there is one "
                  "(a manifest suite's `retries` overrides it). A test that fails and then "
                  "passes is FLAKY. Not for tests others wait on (CTest DEPENDS, fixtures)")
      ->check(CLI::Range(0u, testfarm::coordinator::kMaxRetries)
                  .description("at most " + std::to_string(testfarm::coordinator::kMaxRetries)))
      ->capture_default_str();
  run->add_option("--flaky-result", run_args.flaky_result,
                  "What a FLAKY test makes of the run: pass (with a warning naming them) or fail")
      ->check(CLI::IsMember({"pass", "fail"}))
      ->capture_default_str();
  run->add_option("--slowest", run_args.slowest,
                  "At the end, list the N slowest tests (with their peak RSS)")
      ->check(CLI::Range(1u, 1000000u));
  run->add_option("--hungriest", run_args.hungriest,
                  "At the end, list the N tests with the largest peak resident set (from the "
                  "rusage of their process; the cases of a batch share their process's)")
      ->check(CLI::Range(1u, 1000000u));

  run->add_option("--listen", run_args.listen,
                  "Also accept remote workers (`testfarm worker --connect`) on this endpoint, "
                  "e.g. tcp://127.0.0.1:7700 (port * picks a free one; the address in use is "
                  "printed). Each test's executable, the libraries it loads from the build tree "
                  "and its data files are hashed (SHA-256) and shipped to workers that lack them")
      ->type_name("tcp://ADDR:PORT");
  run->add_option("--local-slots", run_args.local_slots,
                  "Slots of the worker inside this process; 0 leaves the tests to remote "
                  "workers (needs --listen). Default: --jobs");
  run->add_option("--min-workers", run_args.min_workers,
                  "With --listen: start no test before this many workers (the local one "
                  "included) have joined, or --wait-workers has passed")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  run->add_option("--wait-workers", run_args.wait_workers,
                  "With --listen: how long to wait for --min-workers; with no worker by then the "
                  "run stops. Tests whose required labels no worker has then fail")
      ->type_name("DURATION")
      ->capture_default_str();
  run->add_option("--farm", run_args.farm,
                  "Run on a standing farm (`testfarm serve`) instead of here: the tests are "
                  "found and planned here, the files they need uploaded if the farm lacks "
                  "them, and the console, reports and coverage written here as for a local run. "
                  "Not with --listen, --local-slots or --no-capture")
      ->type_name("tcp://HOST:PORT");
  run->add_option("--farm-key", run_args.farm_key,
                  "With --farm: the farm's public key (with --key, this client's secret key)")
      ->type_name("FILE");
  run->add_option("--max-slots", run_args.max_slots,
                  "With --farm: fill at most this many of the farm's slots at once (default: a "
                  "fair share of all of them)")
      ->check(CLI::Range(1u, 1000000u));
  run->add_option("--run-label", run_args.label,
                  "A label for the run (e.g. the commit id): kept in the history with every "
                  "attempt, and shown by `testfarm status` on a farm")
      ->type_name("TEXT");
  CLI::Option* no_history =
      run->add_flag("--no-history", run_args.no_history,
                    "Neither read nor record the run history: tests start in the order given (with "
                    "--farm, the farm still records the run but keeps the given order)");
  run->add_option("--history", run_args.history,
                  "The run history (SQLite): every attempt's outcome, duration, peak RSS and CPU "
                  "is recorded there, and it orders the next run: tests that failed last time "
                  "first, then the longest first. Default: $TESTFARM_HISTORY (`off`: none), "
                  "else .testfarm/history.sqlite. With --farm the farm's history is used "
                  "(`testfarm serve --history`)")
      ->type_name("PATH")
      ->check(kNonEmpty)
      ->excludes(no_history);
  run->add_flag("--rerun-failed", run_args.rerun_failed,
                "Run only the selected tests that failed in the last recorded run (the last "
                "one whose --run-label starts with this run's, if given); with --farm, from the "
                "farm's history")
      ->excludes(no_history);
  run->add_option("--key", run_args.key,
                  "With --listen: this coordinator's CurveZMQ secret key (`testfarm keygen`); "
                  "connections are encrypted and only --worker-keys may join. With --farm: this "
                  "client's secret key")
      ->type_name("FILE");
  run->add_option("--worker-keys", run_args.worker_keys,
                  "The workers' public keys allowed to join: one per line, optionally followed "
                  "by a label (`cat *.pub` makes one)")
      ->type_name("FILE");
  run->add_flag("--insecure", run_args.insecure,
                "Allow --listen on a non-loopback address without keys (a worker runs whatever "
                "the coordinator sends it, so anyone who can connect gets tests run for them), "
                "and --http on one without --http-token");
  AddHttpOptions(run, run_args.http,
                 "Serve a live dashboard of this run (its workers, tests, failures and output) "
                 "at http://ADDR/ while it runs: HOST:PORT or PORT (loopback); port 0 picks a "
                 "free one. Not with --farm (`testfarm serve --http` shows the farm's runs)");
  // A flag that takes its value only as --coverage=FILE: `--coverage build/t` must never take
  // a test executable for the output file.
  CLI::Option* coverage =
      run->add_flag("--coverage", run_args.coverage_output,
                    "Collect LLVM source coverage (tests built with -fprofile-instr-generate "
                    "-fcoverage-mapping) from every worker and write it to FILE (default: "
                    "coverage.json, coverage.lcov or coverage-html by --coverage-format)")
          ->type_name("[=FILE]");
  run->add_option("--coverage-format", run_args.coverage_format,
                  "json: llvm-cov export (llvm.coverage.json.export); lcov: for genhtml and "
                  "Codecov; html: llvm-cov show, a directory")
      ->check(CLI::IsMember({"json", "lcov", "html"}))
      ->capture_default_str()
      ->needs(coverage);
  run->add_flag("--coverage-summary", run_args.coverage_summary,
                "With --coverage: print line, region and branch totals per file at the end")
      ->needs(coverage);
  run->add_option("--llvm-profdata", run_args.llvm_profdata,
                  "The llvm-profdata to use (default: llvm-profdata or llvm-profdata-NN on PATH)")
      ->type_name("PATH")
      ->needs(coverage);
  run->add_option("--llvm-cov", run_args.llvm_cov,
                  "The llvm-cov to use (default: llvm-cov or llvm-cov-NN on PATH)")
      ->type_name("PATH")
      ->needs(coverage);
  run->add_option("--heartbeat", run_args.heartbeat,
                  "Heartbeat interval with workers; one silent for --liveness intervals is dead "
                  "and its tests run elsewhere")
      ->type_name("DURATION")
      ->capture_default_str();
  run->add_option("--liveness", run_args.liveness, "Heartbeats a worker may miss")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();

  testfarm::cli::WorkerArgs worker_args;
  CLI::App* worker = app.add_subcommand(
      "worker",
      "Serve runs for a coordinator (`testfarm run --listen`) or a standing farm (`testfarm "
      "serve`): one run after another, reconnecting with backoff (1s up to 32s) when it is gone.\n"
      "SIGTERM drains it: no new tests, those not started go back to the coordinator at once,\n"
      "running ones may finish within --drain-timeout, then the rest go back and it exits 0.\n"
      "SIGINT, or a second SIGTERM, hands everything back at once (running tests are killed)");
  worker->add_option("--connect", worker_args.connect, "The coordinator's (or farm's) endpoint")
      ->type_name("tcp://HOST:PORT")
      ->required();
  worker
      ->add_option("--slots", worker_args.slots,
                   "Tests run at once (default: half the hardware threads, 1 to 16)")
      ->check(CLI::Range(1u, 1024u));
  worker
      ->add_option("--labels", worker_args.labels,
                   "What this worker offers, for suites that require it: k=v,k2=v2")
      ->type_name("LABELS");
  worker->add_option("--name", worker_args.name, "Shown in reports (default: HOST:PID)");
  worker
      ->add_option("--key", worker_args.key,
                   "This worker's CurveZMQ secret key (`testfarm keygen`)")
      ->type_name("FILE");
  worker
      ->add_option("--coordinator-key", worker_args.coordinator_key,
                   "The coordinator's (or farm's) public key: this worker talks to no other")
      ->type_name("FILE");
  worker
      ->add_option("--cache-dir", worker_args.cache_dir,
                   "Where fetched test files are kept, by content; workers may share one "
                   "(default: $XDG_CACHE_HOME/testfarm or ~/.cache/testfarm)")
      ->type_name("DIR");
  worker
      ->add_option("--cache-size", worker_args.cache_size,
                   "Bound on the cache; least recently used files go first (k, M, G, T)")
      ->type_name("SIZE")
      ->capture_default_str();
  worker->add_flag("--shared-fs", worker_args.shared_fs,
                   "This machine sees the coordinator's files at the same paths: run them in "
                   "place when their SHA-256 matches (else fetch them; a stale file never runs)");
  worker
      ->add_option("--llvm-profdata", worker_args.llvm_profdata,
                   "For coverage runs: the llvm-profdata that merges this worker's profiles "
                   "(default: llvm-profdata or llvm-profdata-NN on PATH)")
      ->type_name("PATH");
  worker->add_flag("--insecure", worker_args.insecure,
                   "Allow connecting to a non-loopback address without keys (whoever answers "
                   "there can run commands on this machine)");
  worker->add_flag("--once", worker_args.once, "Exit after serving one run");
  worker
      ->add_option("--connect-timeout", worker_args.connect_timeout,
                   "Give up (exit 1, saying why) when no coordinator could be joined for this "
                   "long, counted again after each run or lost coordinator (default: 60s with "
                   "--once, else keep trying)")
      ->type_name("DURATION");
  worker
      ->add_option("--heartbeat", worker_args.heartbeat,
                   "Heartbeat interval; a coordinator silent for --liveness intervals is gone: "
                   "running tests are killed and the worker reconnects")
      ->type_name("DURATION")
      ->capture_default_str();
  worker->add_option("--liveness", worker_args.liveness, "Heartbeats the coordinator may miss")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  worker
      ->add_option("--drain-timeout", worker_args.drain_timeout,
                   "On SIGTERM, how long running tests may finish before they are handed back "
                   "(killed here, run again elsewhere); 0: hand them back at once")
      ->type_name("DURATION")
      ->capture_default_str();
  worker
      ->add_option("--health-file", worker_args.health_file,
                   "Keep FILE saying \"connected ENDPOINT\" while joined to a coordinator "
                   "(\"connecting\" or \"draining\" otherwise), rewritten at least every "
                   "heartbeat and removed at exit: for readiness (grep ^connected) and liveness "
                   "(its age) probes")
      ->type_name("FILE");

  testfarm::cli::ServeArgs serve_args;
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Run a standing farm: workers (`testfarm worker --connect`) attach and stay; clients\n"
      "(`testfarm run --farm`) submit runs, which share the workers' slots fairly. Stop it with\n"
      "SIGINT/SIGTERM: running runs stop (their clients hear every test), then it exits");
  serve
      ->add_option("--listen", serve_args.listen,
                   "Where workers and clients connect, e.g. tcp://0.0.0.0:7700 (port * picks a "
                   "free one; the address in use is printed)")
      ->type_name("tcp://ADDR:PORT")
      ->required();
  serve
      ->add_option("--key", serve_args.key,
                   "The farm's CurveZMQ secret key (`testfarm keygen`); connections are "
                   "encrypted and only --worker-keys and --client-keys may connect")
      ->type_name("FILE");
  serve
      ->add_option("--worker-keys", serve_args.worker_keys,
                   "The workers' public keys allowed to join: one per line, optionally followed "
                   "by a label")
      ->type_name("FILE");
  serve
      ->add_option("--client-keys", serve_args.client_keys,
                   "The clients' public keys allowed to submit runs and ask for the status")
      ->type_name("FILE");
  serve->add_flag("--insecure", serve_args.insecure,
                  "Allow --listen on a non-loopback address without keys (anyone who can "
                  "connect can run commands on the workers), and --http on one without "
                  "--http-token");
  AddHttpOptions(serve, serve_args.http,
                 "Serve a live dashboard of the farm (workers and their slots, every run, "
                 "failures, output, the flaky ranking) at http://ADDR/: HOST:PORT or PORT "
                 "(loopback); port 0 picks a free one");
  serve
      ->add_option("--metrics", serve_args.metrics,
                   "Serve Prometheus metrics (text format 0.0.4) at http://ADDR/metrics: "
                   "HOST:PORT or PORT (loopback); port 0 picks a free one. Read-only counts, so "
                   "any address is allowed without a token. testfarm_workers, "
                   "testfarm_workers_draining, testfarm_slots, "
                   "testfarm_slots_busy, testfarm_runs{state}, testfarm_tests_queued, "
                   "testfarm_tests_finished_total{status}, testfarm_dispatch_latency_seconds, "
                   "testfarm_bytes_shipped_total, testfarm_info (README: Metrics)")
      ->type_name("ADDR")
      ->check(kNonEmpty);
  serve
      ->add_option("--store", serve_args.store_dir,
                   "Where uploaded test files are kept, by content, shared by every run "
                   "(default: $XDG_CACHE_HOME/testfarm/farm-store or ~/.cache/...)")
      ->type_name("DIR");
  serve
      ->add_option("--store-size", serve_args.store_size,
                   "Bound on the store; least recently used files go first, never those of a "
                   "run in progress (k, M, G, T)")
      ->type_name("SIZE")
      ->capture_default_str();
  CLI::Option* serve_no_history = serve->add_flag(
      "--no-history", serve_args.no_history, "Keep no run history: runs start in the order given");
  serve
      ->add_option("--history", serve_args.history,
                   "The run history (SQLite) of every run the farm serves: each attempt is "
                   "recorded, and every run starts with what failed last time, then the longest "
                   "tests; `testfarm history|flaky --farm` read it (default: STORE/history.sqlite)")
      ->type_name("PATH")
      ->check(kNonEmpty)
      ->excludes(serve_no_history);
  serve
      ->add_option("--max-runs", serve_args.max_runs,
                   "Runs sharing the slots at once; later ones wait their turn")
      ->check(CLI::Range(1u, 10000u))
      ->capture_default_str();
  serve
      ->add_option("--max-queued", serve_args.max_queued,
                   "Runs that may wait; beyond them a submission is refused, saying why")
      ->check(CLI::Range(0u, 100000u))
      ->capture_default_str();
  serve
      ->add_option("--heartbeat", serve_args.heartbeat,
                   "Heartbeat interval with workers and clients; one silent for --liveness "
                   "intervals is gone (a worker's tests run elsewhere, a client's run stops)")
      ->type_name("DURATION")
      ->capture_default_str();
  serve->add_option("--liveness", serve_args.liveness, "Heartbeats a peer may miss")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();

  testfarm::cli::StatusArgs status_args;
  CLI::App* status = app.add_subcommand(
      "status", "Print what a standing farm is doing: its workers and their tests, its runs");
  status->add_option("--farm", status_args.farm, "The farm's endpoint")
      ->type_name("tcp://HOST:PORT")
      ->required();
  status->add_option("--key", status_args.key, "This client's CurveZMQ secret key")
      ->type_name("FILE");
  status->add_option("--farm-key", status_args.farm_key, "The farm's public key")
      ->type_name("FILE");
  status->add_flag("--insecure", status_args.insecure, "Allow a non-loopback farm without keys");
  status->add_flag("--json", status_args.json, "Print it as JSON");
  status->add_option("--timeout", status_args.timeout, "Give up when the farm does not answer")
      ->type_name("DURATION")
      ->capture_default_str();

  // The history's queries.
  testfarm::cli::HistoryQueryArgs history_args;
  CLI::App* history = app.add_subcommand(
      "history",
      "Print each test's attempts from the run history: outcome, duration, peak RSS, CPU, worker "
      "and run, over time");
  testfarm::cli::HistoryQueryArgs flaky_args;
  CLI::App* flaky = app.add_subcommand(
      "flaky",
      "Rank tests by flake rate: the share of runs in which a test both failed and passed (on a "
      "retry or in another iteration), with counts and when it was last seen");
  for (auto [command, query] : {std::pair{history, &history_args}, std::pair{flaky, &flaky_args}}) {
    command
        ->add_option("--history", query->history,
                     "The history file (default: $TESTFARM_HISTORY, else "
                     ".testfarm/history.sqlite)")
        ->type_name("PATH")
        ->check(kNonEmpty);
    command->add_option("--since", query->since, "Only attempts this recent")
        ->type_name("DURATION")
        ->capture_default_str();
    command->add_flag("--json", query->json, "Print it as JSON (docs/history.md)");
    command
        ->add_option("--farm", query->farm,
                     "Ask a standing farm's history (every run it served) instead of a file")
        ->type_name("tcp://HOST:PORT");
    command->add_option("--key", query->key, "With --farm: this client's CurveZMQ secret key")
        ->type_name("FILE");
    command->add_option("--farm-key", query->farm_key, "With --farm: the farm's public key")
        ->type_name("FILE");
    command->add_flag("--insecure", query->insecure, "Allow a non-loopback farm without keys");
    command->add_option("--timeout", query->timeout, "With --farm: give up when it does not answer")
        ->type_name("DURATION")
        ->capture_default_str();
  }
  history
      ->add_option("--test", history_args.test,
                   "Only tests whose full name matches this glob (* ? [...])")
      ->type_name("GLOB");

  testfarm::cli::KeygenArgs keygen_args;
  CLI::App* keygen = app.add_subcommand(
      "keygen",
      "Write a CurveZMQ key pair: NAME.key (secret, mode 0600) and NAME.pub (public). Give the\n"
      "coordinator's .pub to workers (--coordinator-key) and the workers' .pub files to the\n"
      "coordinator (--worker-keys)");
  keygen->add_option("name", keygen_args.base, "Path and base name of the two files")
      ->type_name("NAME")
      ->required();

  testfarm::cli::ListArgs list_args;
  CLI::App* list = app.add_subcommand("list", "Print the tests a run would run, and exit");
  AddSourceOptions(list, &list_args.source);
  list->add_flag("--json", list_args.json, "Print them as a JSON array");

  // --log-level may come before or after the command: each command hands the options it does
  // not know to testfarm's own.
  for (CLI::App* command : {run, list, worker, serve, status, history, flaky, keygen}) {
    command->fallthrough();
  }

  // CLI11 reports an unknown command as "a subcommand is required"; name the culprit instead.
  std::string command_name;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--log-level") {
      ++i;
      continue;
    }
    if (arg.rfind('-', 0) == 0) continue;
    if (arg != "run" && arg != "list" && arg != "worker" && arg != "serve" && arg != "status" &&
        arg != "history" && arg != "flaky" && arg != "keygen") {
      std::fprintf(stderr,
                   "testfarm: error: unknown command '%s' (commands: run, list, worker, serve, "
                   "status, history, flaky, keygen)\n",
                   arg.c_str());
      return 2;
    }
    command_name = arg;
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "testfarm: error: %s\n", e.what());
    if (command_name.empty()) {
      std::fprintf(stderr, "Run 'testfarm --help' for usage.\n");
    } else {
      std::fprintf(stderr, "Run 'testfarm %s --help' for usage.\n", command_name.c_str());
    }
    return 2;
  }
  bool daemon = worker->parsed() || serve->parsed();
  if (daemon && log_option->count() == 0) log_level = "info";
  if (!testfarm::InitLogging(log_level, daemon)) {
    std::fprintf(stderr, "testfarm: error: --log-level: unknown level '%s'\n", log_level.c_str());
    return 2;
  }
  run_args.coverage = coverage->count() > 0;
  // CLI11 gives a bare value flag "true" (write ./true as such to mean a file of that name).
  if (run_args.coverage_output == "true") run_args.coverage_output.clear();
  run_args.shuffle = shuffle->count() > 0;
  if (run_args.shuffle_seed == "true") run_args.shuffle_seed.clear();
  // The commands report filesystem errors as values; this boundary makes sure one that slips
  // through is still a one-line error naming the path, never an abort.
  try {
    if (run->parsed()) return testfarm::cli::Run(run_args);
    if (list->parsed()) return testfarm::cli::List(list_args);
    if (worker->parsed()) return testfarm::cli::Worker(worker_args);
    if (serve->parsed()) return testfarm::cli::Serve(serve_args);
    if (status->parsed()) return testfarm::cli::Status(status_args);
    if (history->parsed()) return testfarm::cli::History(history_args);
    if (flaky->parsed()) return testfarm::cli::Flaky(flaky_args);
    if (keygen->parsed()) return testfarm::cli::Keygen(keygen_args);
  } catch (const std::filesystem::filesystem_error& e) {
    std::string path = e.path1().empty() ? "" : " '" + e.path1().string() + "'";
    std::fprintf(stderr, "testfarm: error:%s: %s\n", path.c_str(), e.code().message().c_str());
    return 2;
  }
  return 2;
}
