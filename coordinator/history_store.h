#pragma once
// The run history in SQLite: one row per test attempt (outcome, duration, peak RSS, CPU, worker,
// attempt, iteration, run, label, time) and a summary row per test that orders the next run.
// WAL mode and a busy timeout, so runs writing at once all get recorded; writes go in batched
// transactions. A file that is not a database (or is corrupt) is moved aside and a fresh one
// started; problems are reported to the caller, who warns and runs on without history.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/history.h"
#include "coordinator/report.h"
#include "coordinator/sqlite.h"
#include "shared/clock.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// Where local runs keep their history, relative to the working directory.
inline const char* const kDefaultHistoryPath = ".testfarm/history.sqlite";

struct RunRecord {
  std::string id;      // unique: a farm's run number is not
  std::string label;   // --run-label (e.g. a commit); may be empty
  std::string client;  // who ran it: user@host:pid
  int64_t started_ms = 0;
};

// One row of `testfarm history`.
struct HistoryRow {
  AttemptRecord attempt;
  std::string run;
  std::string label;
};

// One row of `testfarm flaky`: a test that failed and passed in one run (on a retry or in another
// iteration).
struct FlakyRow {
  std::string test;
  int64_t runs = 0;        // runs that ran it
  int64_t flaky_runs = 0;  // of those, runs where it both failed and passed
  int64_t failures = 0;    // failed attempts in those runs
  int64_t attempts = 0;    // attempts in those runs
  int64_t last_seen_ms = 0;
  double rate() const { return runs == 0 ? 0.0 : static_cast<double>(flaky_runs) / runs; }
};

class HistoryStore {
 public:
  // Opens (creating it and its directory) the history at `path`. A file that is not a history
  // database is renamed PATH.corrupt-<time> (said in `warnings`) and a fresh one started.
  // `read_only`: only for queries; a missing file is an error then.
  static Result<std::unique_ptr<HistoryStore>> Open(const std::filesystem::path& path,
                                                    std::vector<std::string>* warnings,
                                                    bool read_only = false);

  const std::filesystem::path& path() const { return db_->path(); }
  bool writable() const { return insert_attempt_.has_value(); }

  // Records a run's start.
  Status BeginRun(const RunRecord& run);
  // Records attempts of run `run_id` in one transaction.
  Status Record(const std::string& run_id, const std::string& label,
                const std::vector<AttemptRecord>& attempts);

  // What the history knows of every test it has seen of these suites.
  Result<HistoryEstimates> Estimates(const std::set<std::string>& suites);
  // The tests that failed (and did not pass on a retry) in the last run, the last one whose label
  // starts with `label_prefix` if that is not empty. nullopt: no such run.
  Result<std::optional<std::vector<std::string>>> FailedInLastRun(const std::string& label_prefix);
  // Attempts since `since_ms` (Unix ms) of tests matching `glob` (empty: all), oldest first.
  Result<std::vector<HistoryRow>> Attempts(const std::string& glob, int64_t since_ms);
  // Tests that were flaky in some run since `since_ms`, highest flake rate first.
  Result<std::vector<FlakyRow>> Flaky(int64_t since_ms);

 private:
  explicit HistoryStore(sqlite::Database db)
      : db_(std::make_unique<sqlite::Database>(std::move(db))) {}
  Status Prepare();
  std::unique_ptr<sqlite::Database> db_;
  std::optional<sqlite::Statement> insert_attempt_;
  std::optional<sqlite::Statement> upsert_test_;
};

// What `testfarm history` and `testfarm flaky` print with --json (docs/history.md), from a local
// file or a farm's store.
Result<std::string> HistoryJson(HistoryStore& store, const std::string& glob, int64_t since_ms);
// At most `limit` tests, worst first.
Result<std::string> FlakyJson(HistoryStore& store, int64_t since_ms,
                              std::size_t limit = static_cast<std::size_t>(-1));
// One test's attempts per UTC day since `since_ms`: count, failures, mean and max duration (the
// dashboard's charts).
Result<std::string> TrendJson(HistoryStore& store, const std::string& test, int64_t since_ms);
// `name` as a GLOB pattern that matches only itself.
std::string GlobLiteral(const std::string& name);
// FailedInLastRun as JSON: an array of test names, or null when there is no such run.
Result<std::string> FailedJson(HistoryStore& store, const std::string& label_prefix);

// Passes every report on to `inner` and records each finished attempt in the history: in one
// transaction per kBatch attempts or per second, whichever comes first, and the rest at the end.
// The transactions are written by a thread of the reporter's own, on a connection of its own to
// the store's file, so the run's event loop never waits on the disk; the run's end waits for
// them. A store that fails is warned about once (through `warn`, on the caller's thread) and no
// longer written; the run goes on.
class HistoryReporter final : public ForwardingReporter {
 public:
  static constexpr std::size_t kBatch = 2048;
  static constexpr Millis kFlushEvery{1000};

  HistoryReporter(const Clock& clock, Reporter& inner, HistoryStore& store, RunRecord run,
                  std::function<void(const std::string&)> warn);
  ~HistoryReporter() override;

  void OnRunStart(std::size_t test_count) override;
  void OnTestFinished(const TestReport& report, std::size_t running) override;
  void OnRunEnd(const RunSummary& summary) override;

  // Attempts recorded so far (all of them once the run ended).
  std::size_t recorded() const;

 private:
  class Writer;
  void Flush();
  // Says the writer's failure, if it failed since the last look.
  void CheckWriter();

  const Clock& clock_;
  HistoryStore& store_;
  RunRecord run_;
  std::function<void(const std::string&)> warn_;
  bool failed_ = false;
  std::vector<AttemptRecord> pending_;
  SteadyTime last_flush_;
  std::size_t recorded_ = 0;  // without a writer
  std::unique_ptr<Writer> writer_;
};

// Unix time in ms, now.
int64_t UnixMillisNow();
// A run id no other run shares: time, pid and randomness in hex.
std::string NewRunId();

}  // namespace testfarm::coordinator
