#pragma once
// `testfarm run` and `testfarm list`: gather suites (executables, a manifest, a CTest build
// directory), list GoogleTest suites, select, and then either print the tests or run them with a
// coordinator and an in-process worker over inproc://.
#include <optional>
#include <string>
#include <vector>

#include "coordinator/discovery.h"
#include "shared/clock.h"
#include "shared/defaults.h"
#include "shared/duration.h"

namespace testfarm::cli {

// What to run: where the suites come from and which of their tests.
using SourceArgs = coordinator::SourceOptions;

// The live dashboard (`--http`, docs/dashboard.md).
struct HttpArgs {
  std::string address;  // HOST:PORT or PORT; empty: no dashboard
  std::string token;    // empty: $TESTFARM_HTTP_TOKEN, else none
};

struct RunArgs {
  SourceArgs source;
  std::string kill_grace = FormatDuration(kDefaultKillGrace);
  bool fail_fast = false;
  unsigned max_fail = 0;
  std::string isolation = "test";
  std::string batch_target = "200ms";
  std::string junit;
  std::string json;
  std::string trace;
  bool shuffle = false;
  std::string shuffle_seed;  // empty: a random seed (printed)
  // The console.
  std::string color = "auto";  // auto, always, never
  bool quiet = false;
  bool verbose = false;
  std::string success_output = "never";  // never, immediate, final, immediate-final
  std::string failure_output = "immediate";
  bool no_capture = false;
  std::string slow_timeout;     // empty: off
  unsigned repeat = 0;          // run the selection N times; 0: once (or by the options below)
  bool until_fail = false;      // stop starting iterations at the first failure
  std::string stress_duration;  // keep repeating until this much time has passed; empty: off
  unsigned retries = 0;         // a failed test runs again up to N times
  std::string flaky_result = "pass";  // pass, fail: what a test that passed on a retry makes
  std::size_t slowest = 0;            // list the N slowest tests at the end
  std::size_t hungriest = 0;          // list the N with the largest peak RSS
  // The fleet.
  std::string listen;                   // tcp://ADDR:PORT; empty: in-process worker only
  std::optional<unsigned> local_slots;  // slots of the in-process worker; 0: none
  unsigned min_workers = 1;
  std::string wait_workers = "30s";
  bool insecure = false;
  std::string key;          // this coordinator's secret key file
  std::string worker_keys;  // the allow-list of worker public keys
  std::string heartbeat = "1s";
  unsigned liveness = 3;
  HttpArgs http;
  // A standing farm.
  std::string farm;      // tcp://HOST:PORT of `testfarm serve`; empty: run here
  std::string farm_key;  // the farm's public key file
  unsigned max_slots = 0;
  std::string label;  // --run-label: shown by `testfarm status`, kept in the history
  // The history.
  std::string history;  // empty: .testfarm/history.sqlite
  bool no_history = false;
  bool rerun_failed = false;
  // Coverage.
  bool coverage = false;
  std::string coverage_output;  // empty: coverage.json, coverage.lcov or coverage-html
  std::string coverage_format = "json";
  bool coverage_summary = false;
  std::string llvm_profdata;  // empty: found on PATH
  std::string llvm_cov;
};

// How long `worker --once` keeps trying to join when --connect-timeout is not given.
inline constexpr Millis kOnceConnectTimeout{60000};

struct WorkerArgs {
  std::string connect;
  unsigned slots = 0;  // 0: the default slot count
  std::string labels;  // "k=v,k2=v2"
  std::string name;    // default: host:pid
  bool once = false;
  std::string connect_timeout;  // empty: 60s with --once, else never give up
  std::string key;              // this worker's secret key file
  std::string coordinator_key;  // the coordinator's public key file
  bool insecure = false;
  std::string cache_dir;  // empty: the default
  std::string cache_size = "10G";
  bool shared_fs = false;
  std::string llvm_profdata;  // empty: found on PATH (needed only for coverage runs)
  std::string heartbeat = "1s";
  unsigned liveness = 3;
  std::string drain_timeout = "25s";
  std::string health_file;  // empty: none
};

struct ServeArgs {
  std::string listen;
  std::string key;          // the farm's secret key file
  std::string worker_keys;  // allow-list of workers' public keys
  std::string client_keys;  // allow-list of clients' public keys
  bool insecure = false;
  std::string store_dir;  // empty: the default
  std::string store_size = "20G";
  std::string history;  // empty: STORE/history.sqlite
  bool no_history = false;
  HttpArgs http;
  std::string metrics;  // HOST:PORT or PORT of the Prometheus metrics; empty: none
  unsigned max_runs = 8;
  unsigned max_queued = 64;
  std::string heartbeat = "1s";
  unsigned liveness = 3;
};

struct StatusArgs {
  std::string farm;
  std::string key;
  std::string farm_key;
  bool insecure = false;
  bool json = false;
  std::string timeout = "10s";
};

// `testfarm history` and `testfarm flaky`.
struct HistoryQueryArgs {
  std::string history;  // empty: $TESTFARM_HISTORY, else .testfarm/history.sqlite
  // Or a farm's history.
  std::string farm;
  std::string key;
  std::string farm_key;
  bool insecure = false;
  std::string timeout = "10s";
  std::string test;  // a glob over full test names; empty: every test
  std::string since = "30d";
  bool json = false;
};

struct KeygenArgs {
  std::string base;  // writes BASE.key and BASE.pub
};

struct ListArgs {
  SourceArgs source;
  bool json = false;
};

// Exit codes: 0 all passed, 1 any failed, 2 bad input, 130 interrupted.
int Run(const RunArgs& args);
// `testfarm serve`: a standing farm; returns when interrupted.
int Serve(const ServeArgs& args);
// `testfarm status --farm`: prints what the farm is doing.
int Status(const StatusArgs& args);
// Exit codes: 0 listed, 1 a suite could not be listed (it crashed or hung), 2 bad input.
int List(const ListArgs& args);
// Exit codes: 0 stopped by a signal or done (--once), 1 socket failure or could not join within
// --connect-timeout, 2 bad input.
int Worker(const WorkerArgs& args);
// `testfarm history`: durations, peak RSS and outcomes over time per test. Exit codes: 0 shown,
// 2 bad input or no history to read.
int History(const HistoryQueryArgs& args);
// `testfarm flaky`: tests ranked by flake rate. Exit codes as History's.
int Flaky(const HistoryQueryArgs& args);
// Exit codes: 0 written, 2 cannot write (or a key is already there).
int Keygen(const KeygenArgs& args);

}  // namespace testfarm::cli
