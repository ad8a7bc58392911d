#include "coordinator/history_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <system_error>
#include <thread>

namespace testfarm::coordinator {

namespace {

constexpr std::chrono::milliseconds kBusyTimeout{10000};
constexpr int64_t kSchemaVersion = 1;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS runs(
  id TEXT PRIMARY KEY, label TEXT NOT NULL, client TEXT NOT NULL, started_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS attempts(
  run TEXT NOT NULL, label TEXT NOT NULL, test TEXT NOT NULL, suite TEXT NOT NULL,
  outcome TEXT NOT NULL, duration_ms INTEGER NOT NULL, peak_rss_kb INTEGER NOT NULL,
  cpu_ms INTEGER NOT NULL, worker TEXT NOT NULL, attempt INTEGER NOT NULL,
  iteration INTEGER NOT NULL, time_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_by_test ON attempts(test, time_ms);
CREATE INDEX IF NOT EXISTS attempts_by_run ON attempts(run);
CREATE INDEX IF NOT EXISTS attempts_by_time ON attempts(time_ms);
CREATE TABLE IF NOT EXISTS tests(
  name TEXT PRIMARY KEY, suite TEXT NOT NULL, mean_ms INTEGER, last_outcome TEXT,
  last_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tests_by_suite ON tests(suite);
)sql";

constexpr std::chrono::milliseconds kBusyRetry{20};

bool IsBusy(int extended_code) {
  const int code = extended_code & 0xff;
  return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

bool IsCorrupt(int extended_code) {
  const int code = extended_code & 0xff;
  return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

// "20261202T131500Z": for the name a corrupt file is moved aside to.
std::string UtcStamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &tm);
  return text;
}

// WAL mode, the schema, and its version. Fails (with the database's error code noted) on a file
// that is not a history database.
Status SetUp(sqlite::Database& db, bool read_only) {
  auto version_query = db.Prepare("PRAGMA user_version");
  if (!version_query) return version_query.error();
  auto row = version_query->Step();
  if (!row) return row.error();
  const int64_t version = *row ? version_query->Int(0) : 0;
  version_query->Reset();  // no statement may be active while the journal mode changes
  if (version > kSchemaVersion) {
    return Error{db.path().string() + ": written by a newer testfarm (schema " +
                 std::to_string(version) + ", this one knows " + std::to_string(kSchemaVersion) +
                 ")"};
  }
  if (read_only) return Ok{};
  if (Status wal = db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"); !wal) {
    return wal;
  }
  if (Status schema = db.Exec(kSchema); !schema) return schema;
  return db.Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
}

// Moves `path` (and its WAL and shared-memory files) aside; returns the new name.
Result<std::filesystem::path> MoveAside(const std::filesystem::path& path) {
  std::filesystem::path aside = path;
  aside += ".corrupt-" + UtcStamp();
  std::error_code ec;
  std::filesystem::rename(path, aside, ec);
  if (ec) return Error{path.string() + ": cannot move it aside: " + ec.message()};
  for (const char* suffix : {"-wal", "-shm"}) {
    std::filesystem::path side = path;
    side += suffix;
    std::filesystem::path side_aside = aside;
    side_aside += suffix;
    std::filesystem::rename(side, side_aside, ec);  // absent is fine
  }
  return aside;
}

std::string LikePrefix(const std::string& prefix) {
  std::string pattern;
  for (char c : prefix) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  return pattern + "%";
}

}  // namespace

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewRunId() {
  std::random_device device;
  char text[48];
  std::snprintf(text, sizeof text, "%llx-%x-%08x", static_cast<unsigned long long>(UnixMillisNow()),
                static_cast<unsigned>(::getpid()), static_cast<unsigned>(device()));
  return text;
}

Result<std::unique_ptr<HistoryStore>> HistoryStore::Open(const std::filesystem::path& path,
                                                         std::vector<std::string>* warnings,
                                                         bool read_only) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Error{path.string() + ": is a directory, not a history file"};
  }
  if (read_only && !std::filesystem::exists(path, ec)) {
    return Error{path.string() + ": no history there (no run has recorded one)"};
  }
  if (!read_only && path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return Error{path.parent_path().string() + ": cannot create: " + ec.message()};
  }
  const auto mode =
      read_only ? sqlite::Database::Mode::kReadOnly : sqlite::Database::Mode::kReadWriteCreate;
  const auto busy_until = std::chrono::steady_clock::now() + kBusyTimeout;
  for (int tries = 0;; ++tries) {
    auto db = sqlite::Database::Open(path, mode, kBusyTimeout);
    if (!db) return db.error();
    Status ready = SetUp(*db, read_only);
    // Two runs opening a new history at once both switch it to WAL and create the schema; the
    // switch can answer "busy" without waiting on the busy timeout. Try again, as long as the
    // timeout would have waited.
    while (!ready && IsBusy(db->last_error()) && std::chrono::steady_clock::now() < busy_until) {
      std::this_thread::sleep_for(kBusyRetry);
      ready = SetUp(*db, read_only);
    }
    if (!ready && read_only &&
        ((db->last_error() & 0xff) == SQLITE_CANTOPEN ||
         (db->last_error() & 0xff) == SQLITE_READONLY)) {
      // A WAL database in a directory we cannot write: its shared-memory index cannot be made,
      // so read the file as it is.
      db = sqlite::Database::Open(path, sqlite::Database::Mode::kImmutable, kBusyTimeout);
      if (!db) return db.error();
      ready = SetUp(*db, read_only);
    }
    if (ready) {
      std::unique_ptr<HistoryStore> store(new HistoryStore(std::move(*db)));
      if (!read_only) {
        if (Status prepared = store->Prepare(); !prepared) return prepared.error();
      }
      return store;
    }
    if (read_only || tries > 0 || !IsCorrupt(db->last_error())) return ready.error();
    // Not a database, or a damaged one: keep it for whoever wants to look, start afresh.
    { sqlite::Database closing = std::move(*db); }  // closed before the rename
    auto aside = MoveAside(path);
    if (!aside) return aside.error();
    warnings->push_back(path.string() + " was not a usable history (" + ready.error().message +
                        "); moved it to " + aside->string() + " and started a new one");
  }
}

Status HistoryStore::Prepare() {
  auto insert = db_->Prepare(
      "INSERT INTO attempts(run, label, test, suite, outcome, duration_ms, peak_rss_kb, cpu_ms, "
      "worker, attempt, iteration, time_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
      "?11, ?12)");
  if (!insert) return insert.error();
  insert_attempt_ = std::move(*insert);
  // The estimate is a moving average (each new duration weighs half); the last outcome is the
  // last decisive one (passed, failed, lost), never a cancel or a not-run.
  auto upsert = db_->Prepare(
      "INSERT INTO tests(name, suite, mean_ms, last_outcome, last_ms) VALUES(?1, ?2, ?3, ?4, ?5) "
      "ON CONFLICT(name) DO UPDATE SET suite = excluded.suite, "
      "mean_ms = CASE WHEN excluded.mean_ms IS NULL THEN tests.mean_ms "
      "WHEN tests.mean_ms IS NULL THEN excluded.mean_ms "
      "ELSE (tests.mean_ms + excluded.mean_ms) / 2 END, "
      "last_outcome = COALESCE(excluded.last_outcome, tests.last_outcome), "
      "last_ms = excluded.last_ms");
  if (!upsert) return upsert.error();
  upsert_test_ = std::move(*upsert);
  return Ok{};
}

Status HistoryStore::BeginRun(const RunRecord& run) {
  auto statement = db_->Prepare(
      "INSERT OR REPLACE INTO runs(id, label, client, started_ms) VALUES(?1, ?2, ?3, ?4)");
  if (!statement) return statement.error();
  statement->Bind(1, run.id).Bind(2, run.label).Bind(3, run.client).Bind(4, run.started_ms);
  return statement->Run();
}

Status HistoryStore::Record(const std::string& run_id, const std::string& label,
                            const std::vector<AttemptRecord>& attempts) {
  if (attempts.empty()) return Ok{};
  if (!insert_attempt_ || !upsert_test_) return Error{path().string() + ": opened read-only"};
  auto transaction = sqlite::Transaction::Begin(*db_);
  if (!transaction) return transaction.error();
  for (const AttemptRecord& a : attempts) {
    insert_attempt_->Bind(1, run_id)
        .Bind(2, label)
        .Bind(3, a.test)
        .Bind(4, a.suite)
        .Bind(5, a.outcome)
        .Bind(6, a.duration_ms)
        .Bind(7, static_cast<int64_t>(a.peak_rss_kb))
        .Bind(8, static_cast<int64_t>(a.cpu_ms))
        .Bind(9, a.worker)
        .Bind(10, static_cast<int64_t>(a.attempt))
        .Bind(11, static_cast<int64_t>(a.iteration))
        .Bind(12, a.time_ms);
    if (Status inserted = insert_attempt_->Run(); !inserted) return inserted;
    upsert_test_->Bind(1, a.test).Bind(2, a.suite).Bind(5, a.time_ms);
    if (a.ran) {
      upsert_test_->Bind(3, a.duration_ms);
    } else {
      upsert_test_->BindNull(3);
    }
    const bool decisive = a.outcome == "passed" || a.outcome == "flaky" || a.outcome == "failed" ||
                          a.outcome == "lost";
    if (decisive) {
      upsert_test_->Bind(4, a.outcome);
    } else {
      upsert_test_->BindNull(4);
    }
    if (Status upserted = upsert_test_->Run(); !upserted) return upserted;
  }
  return transaction->Commit();
}

Result<HistoryEstimates> HistoryStore::Estimates(const std::set<std::string>& suites) {
  // By suite (indexed): a run pays for the history of its own suites, not of every test ever.
  auto query =
      db_->Prepare("SELECT name, suite, mean_ms, last_outcome FROM tests WHERE suite = ?1");
  if (!query) return query.error();
  HistoryEstimates estimates;
  for (const std::string& suite : suites) {
    query->Reset();
    query->Bind(1, suite);
    for (;;) {
      auto row = query->Step();
      if (!row) return row.error();
      if (!*row) break;
      TestHistory& known = estimates[query->Text(0)];
      known.suite = query->Text(1);
      known.timed = !query->IsNull(2);
      known.expected = Millis(known.timed ? query->Int(2) : 0);
      const std::string last = query->Text(3);
      known.failed_last = last == "failed" || last == "lost";
    }
  }
  return estimates;
}

Result<std::optional<std::vector<std::string>>> HistoryStore::FailedInLastRun(
    const std::string& label_prefix) {
  auto last_run = db_->Prepare(
      "SELECT id FROM runs WHERE label LIKE ?1 ESCAPE '\\' "
      "AND EXISTS (SELECT 1 FROM attempts WHERE attempts.run = runs.id) "
      "ORDER BY started_ms DESC, rowid DESC LIMIT 1");
  if (!last_run) return last_run.error();
  last_run->Bind(1, LikePrefix(label_prefix));
  auto found = last_run->Step();
  if (!found) return found.error();
  if (!*found) return std::optional<std::vector<std::string>>();
  const std::string run = last_run->Text(0);
  // Failed in some iteration and not passed by a later attempt of that iteration.
  auto failed = db_->Prepare(
      "SELECT test FROM attempts AS a WHERE run = ?1 AND outcome IN ('failed', 'lost') "
      "AND NOT EXISTS (SELECT 1 FROM attempts AS b WHERE b.run = a.run AND b.test = a.test "
      "AND b.iteration = a.iteration AND b.attempt > a.attempt "
      "AND b.outcome IN ('passed', 'flaky')) "
      "GROUP BY test ORDER BY MIN(rowid)");
  if (!failed) return failed.error();
  failed->Bind(1, run);
  std::vector<std::string> tests;
  for (;;) {
    auto row = failed->Step();
    if (!row) return row.error();
    if (!*row) break;
    tests.push_back(failed->Text(0));
  }
  return std::optional<std::vector<std::string>>(std::move(tests));
}

Result<std::vector<HistoryRow>> HistoryStore::Attempts(const std::string& glob, int64_t since_ms) {
  auto query = db_->Prepare(
      "SELECT test, suite, outcome, duration_ms, peak_rss_kb, cpu_ms, worker, attempt, "
      "iteration, time_ms, run, label FROM attempts "
      "WHERE time_ms >= ?1 AND (?2 = '' OR test GLOB ?2) ORDER BY time_ms, rowid");
  if (!query) return query.error();
  query->Bind(1, since_ms).Bind(2, glob);
  std::vector<HistoryRow> rows;
  for (;;) {
    auto row = query->Step();
    if (!row) return row.error();
    if (!*row) break;
    HistoryRow r;
    r.attempt.test = query->Text(0);
    r.attempt.suite = query->Text(1);
    r.attempt.outcome = query->Text(2);
    r.attempt.duration_ms = query->Int(3);
    r.attempt.peak_rss_kb = static_cast<uint64_t>(query->Int(4));
    r.attempt.cpu_ms = static_cast<uint64_t>(query->Int(5));
    r.attempt.worker = query->Text(6);
    r.attempt.attempt = static_cast<unsigned>(query->Int(7));
    r.attempt.iteration = static_cast<unsigned>(query->Int(8));
    r.attempt.time_ms = query->Int(9);
    r.run = query->Text(10);
    r.label = query->Text(11);
    rows.push_back(std::move(r));
  }
  return rows;
}

Result<std::vector<FlakyRow>> HistoryStore::Flaky(int64_t since_ms) {
  auto query = db_->Prepare(
      "WITH per_run AS (SELECT test, run, SUM(outcome IN ('failed', 'lost')) AS failures, "
      "SUM(outcome IN ('passed', 'flaky')) AS passes, COUNT(*) AS attempts, MAX(time_ms) AS "
      "last_ms "
      "FROM attempts WHERE time_ms >= ?1 GROUP BY test, run), "
      "flagged AS (SELECT *, (failures > 0 AND passes > 0) AS flaky FROM per_run) "
      "SELECT test, COUNT(*), SUM(flaky), SUM(CASE WHEN flaky THEN failures ELSE 0 END), "
      "SUM(CASE WHEN flaky THEN attempts ELSE 0 END), MAX(CASE WHEN flaky THEN last_ms END) "
      "FROM flagged GROUP BY test HAVING SUM(flaky) > 0 "
      "ORDER BY SUM(flaky) * 1.0 / COUNT(*) DESC, SUM(flaky) DESC, test");
  if (!query) return query.error();
  query->Bind(1, since_ms);
  std::vector<FlakyRow> rows;
  for (;;) {
    auto row = query->Step();
    if (!row) return row.error();
    if (!*row) break;
    FlakyRow r;
    r.test = query->Text(0);
    r.runs = query->Int(1);
    r.flaky_runs = query->Int(2);
    r.failures = query->Int(3);
    r.attempts = query->Int(4);
    r.last_seen_ms = query->Int(5);
    rows.push_back(std::move(r));
  }
  return rows;
}

namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& json) {
  return json.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace

Result<std::string> HistoryJson(HistoryStore& store, const std::string& glob, int64_t since_ms) {
  auto rows = store.Attempts(glob, since_ms);
  if (!rows) return rows.error();
  // Per test, in the order each was first seen.
  std::map<std::string, std::size_t> index;
  Json tests = Json::array();
  for (const HistoryRow& row : *rows) {
    const AttemptRecord& a = row.attempt;
    auto [it, added] = index.try_emplace(a.test, tests.size());
    if (added) {
      tests.push_back({{"test", a.test},
                       {"suite", a.suite},
                       {"summary",
                        {{"attempts", 0},
                         {"passed", 0},
                         {"failed", 0},
                         {"mean_ms", 0},
                         {"max_ms", 0},
                         {"max_peak_rss_kb", 0}}},
                       {"attempts", Json::array()}});
    }
    Json& test = tests[it->second];
    Json& summary = test["summary"];
    const int64_t n = summary["attempts"].get<int64_t>();
    summary["attempts"] = n + 1;
    if (a.outcome == "passed" || a.outcome == "flaky") {
      summary["passed"] = summary["passed"].get<int64_t>() + 1;
    }
    if (a.outcome == "failed" || a.outcome == "lost") {
      summary["failed"] = summary["failed"].get<int64_t>() + 1;
    }
    summary["mean_ms"] = (summary["mean_ms"].get<int64_t>() * n + a.duration_ms) / (n + 1);
    summary["max_ms"] = std::max(summary["max_ms"].get<int64_t>(), a.duration_ms);
    summary["max_peak_rss_kb"] =
        std::max(summary["max_peak_rss_kb"].get<uint64_t>(), a.peak_rss_kb);
    test["attempts"].push_back({{"time_ms", a.time_ms},
                                {"run", row.run},
                                {"label", row.label},
                                {"outcome", a.outcome},
                                {"duration_ms", a.duration_ms},
                                {"peak_rss_kb", a.peak_rss_kb},
                                {"cpu_ms", a.cpu_ms},
                                {"worker", a.worker},
                                {"attempt", a.attempt},
                                {"iteration", a.iteration}});
  }
  Json root = {{"testfarm_history", 1}, {"since_ms", since_ms}, {"tests", std::move(tests)}};
  return Dump(root);
}

Result<std::string> FlakyJson(HistoryStore& store, int64_t since_ms, std::size_t limit) {
  auto rows = store.Flaky(since_ms);
  if (!rows) return rows.error();
  Json tests = Json::array();
  for (const FlakyRow& row : *rows) {
    if (tests.size() >= limit) break;
    tests.push_back({{"test", row.test},
                     {"flake_rate", row.rate()},
                     {"runs", row.runs},
                     {"flaky_runs", row.flaky_runs},
                     {"failures", row.failures},
                     {"attempts", row.attempts},
                     {"last_seen_ms", row.last_seen_ms}});
  }
  Json root = {{"testfarm_flaky", 1}, {"since_ms", since_ms}, {"tests", std::move(tests)}};
  return Dump(root);
}

std::string GlobLiteral(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '*' || c == '?' || c == '[') {
      out += '[';
      out += c;
      out += ']';
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::string> TrendJson(HistoryStore& store, const std::string& test, int64_t since_ms) {
  auto rows = store.Attempts(GlobLiteral(test), since_ms);
  if (!rows) return rows.error();
  struct Day {
    int64_t attempts = 0;
    int64_t failed = 0;
    int64_t timed = 0;
    int64_t total_ms = 0;
    int64_t max_ms = 0;
  };
  std::map<int64_t, Day> days;  // by days since the epoch
  constexpr int64_t kDayMs = 24 * 3600 * 1000;
  for (const HistoryRow& row : *rows) {
    const AttemptRecord& a = row.attempt;
    if (a.outcome != "passed" && a.outcome != "failed" && a.outcome != "lost" &&
        a.outcome != "flaky") {
      continue;  // skipped, cancelled, not run: no duration, no verdict
    }
    Day& day = days[a.time_ms / kDayMs];
    ++day.attempts;
    if (a.outcome == "failed" || a.outcome == "lost") ++day.failed;
    if (a.outcome != "lost") {
      ++day.timed;
      day.total_ms += a.duration_ms;
      day.max_ms = std::max(day.max_ms, a.duration_ms);
    }
  }
  Json out = Json::array();
  for (const auto& [number, day] : days) {
    std::chrono::sys_days date{std::chrono::days(number)};
    std::chrono::year_month_day ymd(date);
    char text[16];
    std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    out.push_back({{"day", text},
                   {"attempts", day.attempts},
                   {"failed", day.failed},
                   {"mean_ms", day.timed == 0 ? 0 : day.total_ms / day.timed},
                   {"max_ms", day.max_ms},
                   {"fail_rate", static_cast<double>(day.failed) / day.attempts}});
  }
  return Dump(Json{{"test", test}, {"since_ms", since_ms}, {"days", std::move(out)}});
}

Result<std::string> FailedJson(HistoryStore& store, const std::string& label_prefix) {
  auto failed = store.FailedInLastRun(label_prefix);
  if (!failed) return failed.error();
  return *failed ? Json(**failed).dump() : std::string("null");
}

// Writes batches of attempts in the background, in order, on its own connection.
class HistoryReporter::Writer {
 public:
  Writer(std::unique_ptr<HistoryStore> store, RunRecord run)
      : store_(std::move(store)), run_(std::move(run)), thread_([this] { Loop(); }) {}
  ~Writer() { Finish(); }

  void Enqueue(std::vector<AttemptRecord> batch) {
    std::lock_guard lock(mutex_);
    batches_.push_back(std::move(batch));
    wake_.notify_one();
  }
  // Writes what waits, then ends the thread.
  void Finish() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }
  // The first failure, once.
  std::optional<std::string> TakeError() {
    std::lock_guard lock(mutex_);
    if (error_.empty() || error_told_) return std::nullopt;
    error_told_ = true;
    return error_;
  }
  std::size_t recorded() const {
    std::lock_guard lock(mutex_);
    return recorded_;
  }

 private:
  void Loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [&] { return closing_ || !batches_.empty(); });
      if (batches_.empty()) return;
      std::vector<AttemptRecord> batch = std::move(batches_.front());
      batches_.pop_front();
      if (!error_.empty()) continue;  // a store that failed is no longer written
      lock.unlock();
      Status written = store_->Record(run_.id, run_.label, batch);
      lock.lock();
      if (written) {
        recorded_ += batch.size();
      } else {
        error_ = written.error().message;
      }
    }
  }

  std::unique_ptr<HistoryStore> store_;
  const RunRecord run_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::vector<AttemptRecord>> batches_;
  bool closing_ = false;
  std::string error_;
  bool error_told_ = false;
  std::size_t recorded_ = 0;
  std::thread thread_;  // last: started once the rest is ready
};

HistoryReporter::HistoryReporter(const Clock& clock, Reporter& inner, HistoryStore& store,
                                 RunRecord run, std::function<void(const std::string&)> warn)
    : ForwardingReporter(inner),
      clock_(clock),
      store_(store),
      run_(std::move(run)),
      warn_(std::move(warn)),
      last_flush_(clock.Now()) {
  // A connection of the writer's own; without one (an odd file system), the loop writes.
  std::vector<std::string> ignored;
  if (auto own = HistoryStore::Open(store_.path(), &ignored); own && (*own)->writable()) {
    writer_ = std::make_unique<Writer>(std::move(*own), run_);
  }
}

HistoryReporter::~HistoryReporter() = default;

std::size_t HistoryReporter::recorded() const {
  return writer_ ? writer_->recorded() : recorded_;
}

void HistoryReporter::OnRunStart(std::size_t test_count) {
  if (Status begun = store_.BeginRun(run_); !begun) {
    failed_ = true;
    warn_(begun.error().message + "; this run is not recorded");
  }
  inner_.OnRunStart(test_count);
}

void HistoryReporter::OnTestFinished(const TestReport& report, std::size_t running) {
  inner_.OnTestFinished(report, running);
  if (failed_) return;
  pending_.push_back(RecordOf(report, UnixMillisNow()));
  if (pending_.size() >= kBatch || clock_.Now() - last_flush_ >= kFlushEvery) Flush();
}

void HistoryReporter::OnRunEnd(const RunSummary& summary) {
  Flush();
  if (writer_) writer_->Finish();  // every attempt is in the history before the run ends
  CheckWriter();
  inner_.OnRunEnd(summary);
}

void HistoryReporter::CheckWriter() {
  if (!writer_) return;
  if (auto error = writer_->TakeError()) {
    failed_ = true;
    warn_(*error + "; the rest of this run is not recorded");
  }
}

void HistoryReporter::Flush() {
  last_flush_ = clock_.Now();
  CheckWriter();
  if (failed_ || pending_.empty()) return;
  if (writer_) {
    writer_->Enqueue(std::exchange(pending_, {}));
    return;
  }
  if (Status recorded = store_.Record(run_.id, run_.label, pending_); !recorded) {
    failed_ = true;
    warn_(recorded.error().message + "; the rest of this run is not recorded");
  } else {
    recorded_ += pending_.size();
  }
  pending_.clear();
}

}  // namespace testfarm::coordinator
