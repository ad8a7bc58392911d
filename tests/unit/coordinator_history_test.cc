// The history: the order it gives a run (pure), the SQLite store (on real files: concurrent
// writers, a corrupt file, a read-only one) and LPT scheduling on a fake clock.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <latch>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/farm_core.h"
#include "coordinator/history.h"
#include "coordinator/history_store.h"
#include "coordinator/run_core.h"
#include "coordinator_run_fixtures.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

using fixtures::Spec;
using test::TempDir;

TestSpec Case(const std::string& suite, const std::string& name) {
  TestSpec spec = Spec(suite + "::" + name);
  spec.suite = suite;
  spec.gtest_case = name;
  return spec;
}

TestHistory Known(const std::string& suite, int64_t ms, bool failed = false) {
  return TestHistory{suite, Millis(ms), true, failed};
}

std::vector<std::string> Names(const std::vector<TestSpec>& tests,
                               const std::vector<std::size_t>& order) {
  std::vector<std::string> names;
  for (std::size_t t : order) names.push_back(tests[t].name);
  return names;
}

TEST(HistoryOrder, FailedLastTimeFirstThenLongestFirst) {
  std::vector<TestSpec> tests = {Spec("short"), Spec("long"), Spec("broken"), Spec("middle")};
  HistoryEstimates history = {{"short", Known("short", 10)},
                              {"long", Known("long", 900)},
                              {"broken", Known("broken", 5, true)},
                              {"middle", Known("middle", 300)}};
  EXPECT_EQ(Names(tests, StartOrder(tests, history)),
            (std::vector<std::string>{"broken", "long", "middle", "short"}));
}

TEST(HistoryOrder, AnUnknownTestIsExpectedToTakeItsSuitesMeanElseTheDefault) {
  std::vector<TestSpec> tests = {Case("fast", "A.new"), Case("slow", "B.new"), Spec("alone"),
                                 Case("slow", "B.known")};
  HistoryEstimates history = {{"fast::A.old", Known("fast", 20)},
                              {"slow::B.old", Known("slow", 3000)},
                              {"slow::B.known", Known("slow", 5000)}};
  std::vector<Millis> expected = ExpectedDurations(tests, history, Millis(700));
  EXPECT_EQ(expected, (std::vector<Millis>{Millis(20), Millis(4000), Millis(700), Millis(5000)}));
  EXPECT_EQ(Names(tests, StartOrder(tests, history, Millis(700))),
            (std::vector<std::string>{"slow::B.known", "slow::B.new", "alone", "fast::A.new"}));
}

TEST(HistoryOrder, WithoutHistoryTheGivenOrderStands) {
  std::vector<TestSpec> tests = {Spec("c"), Spec("a"), Spec("b")};
  EXPECT_EQ(StartOrder(tests, {}), (std::vector<std::size_t>{0, 1, 2}));
  // A test never timed (it never ran to an end) counts as unknown.
  HistoryEstimates untimed = {{"a", TestHistory{"a", Millis(0), false, false}}};
  EXPECT_EQ(StartOrder(tests, untimed), (std::vector<std::size_t>{0, 1, 2}));
}

TEST(HistoryOrder, ExpectedCaseTimeIsTheMeanOfTheSuitesKnownCasesInTheRun) {
  std::vector<TestSpec> tests = {Case("s", "A.a"), Case("s", "A.b"), Case("s", "A.c"),
                                 Spec("plain")};
  HistoryEstimates history = {
      {"s::A.a", Known("s", 10)}, {"s::A.b", Known("s", 30)}, {"plain", Known("plain", 99)}};
  EXPECT_EQ(ExpectedCaseTimes(tests, history), (std::map<std::string, Millis>{{"s", Millis(20)}}));
}

TEST(HistoryRecord, AReportBecomesAnAttempt) {
  TestReport report;
  report.name = "s::A.b";
  report.suite = "s";
  report.state = TestStatus::kExpired;
  report.duration = Millis(42);
  report.worker = "w1";
  report.attempt = 2;
  AttemptRecord lost = RecordOf(report, 1234);
  EXPECT_EQ(lost.outcome, "lost");
  EXPECT_FALSE(lost.ran) << "no process: its time says nothing of the test's";
  EXPECT_EQ(lost.attempt, 2u);
  EXPECT_EQ(lost.time_ms, 1234);
  report.state = TestStatus::kPassed;
  report.result = protocol::JobResult{};
  report.result->peak_rss_kb = 4096;
  report.result->cpu_ms = 7;
  AttemptRecord passed = RecordOf(report, 1);
  EXPECT_TRUE(passed.ran);
  EXPECT_EQ(passed.peak_rss_kb, 4096u);
  EXPECT_EQ(passed.cpu_ms, 7u);
  report.result->state = ExitState::Cancelled("run stopped");
  EXPECT_FALSE(RecordOf(report, 1).ran);
}

// ---- The store ----

AttemptRecord Attempt(const std::string& test, const std::string& outcome, int64_t ms,
                      int64_t time_ms, unsigned attempt = 1, unsigned iteration = 1) {
  AttemptRecord a;
  a.test = test;
  a.suite = test.substr(0, test.find(':'));
  a.outcome = outcome;
  a.duration_ms = ms;
  a.ran = outcome == "passed" || outcome == "failed";
  a.peak_rss_kb = 1000;
  a.cpu_ms = static_cast<uint64_t>(ms);
  a.worker = "w";
  a.attempt = attempt;
  a.iteration = iteration;
  a.time_ms = time_ms;
  return a;
}

std::unique_ptr<HistoryStore> OpenOrDie(const std::filesystem::path& path,
                                        std::vector<std::string>* warnings = nullptr) {
  std::vector<std::string> ignored;
  auto store = HistoryStore::Open(path, warnings != nullptr ? warnings : &ignored);
  EXPECT_TRUE(store.ok()) << (store ? "" : store.error().message);
  return store ? std::move(*store) : nullptr;
}

void RecordRun(HistoryStore& store, const std::string& id, const std::string& label,
               int64_t started, const std::vector<AttemptRecord>& attempts) {
  ASSERT_TRUE(store.BeginRun(RunRecord{id, label, "me@here:1", started}).ok());
  Status recorded = store.Record(id, label, attempts);
  ASSERT_TRUE(recorded.ok()) << recorded.error().message;
}

TEST(HistoryStore, EstimatesFollowRecentDurationsAndTheLastDecisiveOutcome) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() / "sub" / "history.sqlite");  // its directory is made
  ASSERT_NE(store, nullptr);
  RecordRun(*store, "r1", "", 1000,
            {Attempt("a", "passed", 100, 1000), Attempt("b", "failed", 50, 1001),
             Attempt("c", "not_run", 0, 1002)});
  RecordRun(*store, "r2", "", 2000,
            {Attempt("a", "passed", 300, 2000), Attempt("b", "cancelled", 0, 2001)});
  auto estimates = store->Estimates({"a", "b", "c"});
  ASSERT_TRUE(estimates.ok()) << estimates.error().message;
  EXPECT_EQ(estimates->at("a").expected, Millis(200)) << "each new duration weighs half";
  EXPECT_TRUE(estimates->at("a").timed);
  EXPECT_FALSE(estimates->at("a").failed_last);
  EXPECT_EQ(estimates->at("b").expected, Millis(50)) << "a cancel does not say how long";
  EXPECT_TRUE(estimates->at("b").failed_last) << "a cancel does not hide the last failure";
  EXPECT_FALSE(estimates->at("c").timed);
}

// A run reads the history of its own suites only: every test of those (a new test gets its
// suite's mean), none of the others, however many the history holds.
TEST(HistoryStore, EstimatesAreReadForTheRunsSuitesOnly) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() / "h.sqlite");
  ASSERT_NE(store, nullptr);
  std::vector<AttemptRecord> attempts;
  for (int i = 0; i < 1000; ++i) {
    attempts.push_back(Attempt("other" + std::to_string(i) + "::T.c", "passed", 5, 1));
  }
  attempts.push_back(Attempt("mine::T.a", "passed", 100, 1));
  attempts.push_back(Attempt("mine::T.b", "failed", 300, 1));
  RecordRun(*store, "r1", "", 1, attempts);
  auto estimates = store->Estimates({"mine", "new"});
  ASSERT_TRUE(estimates.ok()) << estimates.error().message;
  ASSERT_EQ(estimates->size(), 2u);
  EXPECT_EQ(estimates->at("mine::T.b").expected, Millis(300));
  EXPECT_TRUE(estimates->at("mine::T.b").failed_last);
  // A case the history has not seen gets the mean of its suite's.
  std::vector<TestSpec> run = {Spec("mine::T.new"), Spec("mine::T.a")};
  for (TestSpec& test : run) test.suite = "mine";
  EXPECT_EQ(ExpectedDurations(run, *estimates), (std::vector<Millis>{Millis(200), Millis(100)}));
}

TEST(HistoryStore, TheLastRunsFailuresByLabelPrefixNotCountingWhatPassedOnRetry) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() / "h.sqlite");
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->FailedInLastRun("").value().has_value()) << "no run yet";
  RecordRun(*store, "r1", "main-1", 1000,
            {Attempt("a", "failed", 1, 1000), Attempt("b", "passed", 1, 1000)});
  RecordRun(*store, "r2", "pr-7", 2000,
            {Attempt("a", "passed", 1, 2000), Attempt("b", "failed", 1, 2000),
             Attempt("c", "failed", 1, 2000), Attempt("c", "passed", 1, 2001, 2),
             Attempt("d", "lost", 1, 2002)});
  EXPECT_EQ(store->FailedInLastRun("").value(), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(store->FailedInLastRun("main").value(), (std::vector<std::string>{"a"}));
  EXPECT_FALSE(store->FailedInLastRun("nightly").value().has_value());
  // A prefix is a prefix, not a LIKE pattern.
  EXPECT_FALSE(store->FailedInLastRun("pr_").value().has_value());
}

TEST(HistoryStore, QueriesByGlobAndTimeAndFlakeRates) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() / "h.sqlite");
  ASSERT_NE(store, nullptr);
  RecordRun(*store, "r1", "", 1000,
            {Attempt("net::Up", "failed", 5, 1000), Attempt("net::Up", "passed", 5, 1001, 2),
             Attempt("net::Down", "passed", 5, 1002), Attempt("disk::Io", "passed", 5, 1003)});
  RecordRun(*store, "r2", "", 5000,
            {Attempt("net::Up", "passed", 5, 5000), Attempt("net::Down", "failed", 5, 5001, 1, 1),
             Attempt("net::Down", "passed", 5, 5002, 1, 2)});
  auto net = store->Attempts("net::*", 0);
  ASSERT_TRUE(net.ok());
  EXPECT_EQ(net->size(), 6u);
  auto recent = store->Attempts("", 5000);
  ASSERT_TRUE(recent.ok());
  EXPECT_EQ(recent->size(), 3u);
  EXPECT_EQ(recent->front().run, "r2");
  auto flaky = store->Flaky(0);
  ASSERT_TRUE(flaky.ok()) << flaky.error().message;
  ASSERT_EQ(flaky->size(), 2u);
  for (const FlakyRow& row : *flaky) {
    EXPECT_EQ(row.runs, 2);
    EXPECT_EQ(row.flaky_runs, 1);
    EXPECT_EQ(row.failures, 1);
    EXPECT_EQ(row.attempts, 2);
    EXPECT_DOUBLE_EQ(row.rate(), 0.5);
  }
  EXPECT_EQ(flaky->at(0).test, "net::Down") << "equal rates: by name";
  EXPECT_EQ(flaky->at(0).last_seen_ms, 5002);
  EXPECT_EQ(store->Flaky(5000)->size(), 1u) << "since: only net::Down flaked since 5000";
}

TEST(HistoryStore, ATestsTrendIsOneRowPerDayAndItsNameIsTakenLiterally) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() / "h.sqlite");
  ASSERT_NE(store, nullptr);
  constexpr int64_t kDay = 24 * 3600 * 1000;
  const int64_t day1 = 20000 * kDay;  // 2024-10-04
  RecordRun(
      *store, "r1", "", day1,
      {Attempt("p/x[1]*", "passed", 100, day1 + 1), Attempt("p/x[1]*", "failed", 300, day1 + 2),
       Attempt("p/x1a", "passed", 999, day1 + 3), Attempt("p/x[1]*", "skipped", 0, day1 + 4)});
  RecordRun(*store, "r2", "", day1 + kDay, {Attempt("p/x[1]*", "passed", 50, day1 + kDay + 5)});
  auto json = TrendJson(*store, "p/x[1]*", 0);
  ASSERT_TRUE(json.ok()) << json.error().message;
  auto trend = nlohmann::json::parse(*json);
  ASSERT_EQ(trend["days"].size(), 2u);
  EXPECT_EQ(trend["days"][0]["day"], "2024-10-04");
  EXPECT_EQ(trend["days"][0]["attempts"], 2) << "a skip has no verdict; p/x1a is another test";
  EXPECT_EQ(trend["days"][0]["failed"], 1);
  EXPECT_EQ(trend["days"][0]["mean_ms"], 200);
  EXPECT_EQ(trend["days"][0]["max_ms"], 300);
  EXPECT_DOUBLE_EQ(trend["days"][0]["fail_rate"].get<double>(), 0.5);
  EXPECT_EQ(trend["days"][1]["day"], "2024-10-05");
  EXPECT_EQ(GlobLiteral("a*b?[c"), "a[*]b[?][[]c");
  auto flaky = nlohmann::json::parse(FlakyJson(*store, 0, 0).value());
  EXPECT_EQ(flaky["tests"].size(), 0u) << "a limit of 0 lists none";
}

TEST(HistoryStore, TwoWritersAtOnceAreBothRecorded) {
  TempDir dir;
  const auto path = dir.path() / "h.sqlite";
  ASSERT_NE(OpenOrDie(path), nullptr);  // created first, as a run before them would have
  constexpr int kBatches = 40;
  auto writer = [&](const std::string& run) {
    auto store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->BeginRun(RunRecord{run, "", "me", 1}).ok());
    for (int batch = 0; batch < kBatches; ++batch) {
      std::vector<AttemptRecord> attempts;
      for (int i = 0; i < 50; ++i) {
        attempts.push_back(Attempt(run + "::t" + std::to_string(batch * 50 + i), "passed", 1, 1));
      }
      Status recorded = store->Record(run, "", attempts);
      ASSERT_TRUE(recorded.ok()) << recorded.error().message;
    }
  };
  std::thread a(writer, "ra");
  std::thread b(writer, "rb");
  a.join();
  b.join();
  auto store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Attempts("ra::*", 0)->size(), 50u * kBatches);
  EXPECT_EQ(store->Attempts("rb::*", 0)->size(), 50u * kBatches);
}

TEST(HistoryStore, TwoRunsOpeningANewHistoryAtOnceBothGetIt) {
  // Both switch the new file to WAL and create the schema; SQLite may answer one of them
  // "database is locked" at once (waiting could deadlock), without the busy timeout.
  TempDir dir;
  for (int round = 0; round < 100; ++round) {
    const auto path = dir.path() / ("h" + std::to_string(round) + ".sqlite");
    std::latch start(2);
    auto open = [&] {
      start.arrive_and_wait();
      std::vector<std::string> warnings;
      return HistoryStore::Open(path, &warnings);
    };
    auto first = std::async(std::launch::async, open);
    auto second = std::async(std::launch::async, open);
    auto a = first.get();
    auto b = second.get();
    ASSERT_TRUE(a.ok()) << "round " << round << ": " << a.error().message;
    ASSERT_TRUE(b.ok()) << "round " << round << ": " << b.error().message;
  }
}

TEST(HistoryStore, ACorruptFileIsMovedAsideAndAFreshOneStarted) {
  TempDir dir;
  const auto path = dir.path() / "h.sqlite";
  {
    std::ofstream garbage(path);
    garbage << std::string(8192, 'x');
  }
  std::vector<std::string> warnings;
  auto store = OpenOrDie(path, &warnings);
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("moved it to"), std::string::npos) << warnings[0];
  RecordRun(*store, "r", "", 1, {Attempt("a", "passed", 1, 1)});
  // The bad file is kept, beside the new one.
  std::set<std::string> aside;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("h.sqlite.corrupt-", 0) == 0) aside.insert(name);
  }
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_EQ(std::filesystem::file_size(dir.path() / *aside.begin()), 8192u);
}

// 0 if the history at `path` cannot be opened for writing but reads as written by the test
// below; else the number of the check that failed.
int CheckReadOnly(const std::filesystem::path& path) {
  std::vector<std::string> warnings;
  if (HistoryStore::Open(path, &warnings).ok()) return 1;
  auto read_only = HistoryStore::Open(path, &warnings, true);
  if (!read_only.ok()) return 2;
  if ((*read_only)->writable()) return 3;
  auto estimates = (*read_only)->Estimates({"a"});
  if (!estimates.ok() || estimates->count("a") == 0) return 4;
  return estimates->at("a").expected == Millis(70) ? 0 : 5;
}

TEST(HistoryStore, AReadOnlyFileIsReadButNotWritten) {
  TempDir dir;
  const auto path = dir.path() / "h.sqlite";
  {
    auto store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    RecordRun(*store, "r", "", 1, {Attempt("a", "passed", 70, 1)});
  }
  // Read-only for everyone; root writes anyway, so as root the check runs as nobody.
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0555), 0);
  if (::geteuid() != 0) {
    EXPECT_EQ(CheckReadOnly(path), 0);
  } else {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(100);
      ::_exit(CheckReadOnly(path));
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "the check that failed (100: could not become nobody)";
  }
  ::chmod(dir.path().c_str(), 0755);
}

TEST(HistoryStore, ADirectoryIsAClearError) {
  TempDir dir;
  std::vector<std::string> warnings;
  auto store = HistoryStore::Open(dir.path(), &warnings);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("is a directory"), std::string::npos);
}

// ---- LPT on a fake clock ----

// Runs `tests` (each taking durations[name]) on one worker of `slots` slots, started in `order`,
// on a fake clock; returns the makespan.
Millis Simulate(std::vector<TestSpec> tests, const std::map<std::string, Millis>& durations,
                std::vector<std::size_t> order, unsigned slots) {
  FakeClock clock;
  fixtures::RecordingReporter reporter;
  FarmCore core(clock,
                FarmOptions{.liveness = LivenessOptions{Millis(100000), 3}, .single_run = true});
  RunId id = core.NewRunId();
  RunOptions options;
  options.scheduler.first_lease = FarmCore::FirstLease(id);
  options.scheduler.prefetch = 0;  // the worker starts what it is given: the order is the core's
  options.run_id = id;
  options.start_order = std::move(order);
  auto run = std::make_unique<RunCore>(clock, std::move(tests), options, reporter);
  run->Start();
  core.AddRun(id, std::move(run));
  protocol::Message hello = protocol::Hello{"w", slots, "linux", "x86_64", {}};
  core.OnMessage("w", hello);
  const SteadyTime start = clock.Now();
  std::multimap<SteadyTime, protocol::JobAssign> running;
  fixtures::Mailboxes mail;
  for (int steps = 0; steps < 10000; ++steps) {
    core.Tick();
    mail.Sort(core.TakeOutbox());
    for (const protocol::JobAssign& job : mail.TakeJobs("w")) {
      protocol::Message started = protocol::JobStarted{job.lease};
      core.OnMessage("w", started);
      running.emplace(clock.Now() + durations.at(job.name), job);
    }
    if (running.empty()) break;
    auto next = running.begin();
    clock.Advance(next->first - clock.Now());
    protocol::Message result = fixtures::ResultOf(next->second);
    running.erase(next);
    core.OnMessage("w", result);
  }
  EXPECT_EQ(core.FinishRun(id).passed, durations.size());
  return std::chrono::duration_cast<Millis>(clock.Now() - start);
}

TEST(HistoryScheduling, RecordedDurationsPutTheLongTestFirstAndMeetTheBound) {
  // Ten 1 s tests listed before one 5 s test, on two slots: in the given order the long one
  // starts last and runs alone (10 s); longest first, it overlaps the short ones.
  std::vector<TestSpec> tests;
  std::map<std::string, Millis> durations;
  for (int i = 0; i < 10; ++i) {
    tests.push_back(Spec("short" + std::to_string(i)));
    durations["short" + std::to_string(i)] = Millis(1000);
  }
  tests.push_back(Spec("long"));
  durations["long"] = Millis(5000);

  // The first run fills the history; the second reads it back.
  TempDir dir;
  auto store = OpenOrDie(dir.path() / "h.sqlite");
  ASSERT_NE(store, nullptr);
  std::vector<AttemptRecord> attempts;
  for (const auto& [name, ms] : durations)
    attempts.push_back(Attempt(name, "passed", ms.count(), 1));
  RecordRun(*store, "first", "", 1, attempts);
  auto estimates = store->Estimates(SuitesOf(tests));
  ASSERT_TRUE(estimates.ok());
  std::vector<std::size_t> lpt = StartOrder(tests, *estimates);
  EXPECT_EQ(tests[lpt.front()].name, "long");

  const Millis given = Simulate(tests, durations, {}, 2);
  const Millis ordered = Simulate(tests, durations, lpt, 2);
  EXPECT_EQ(given, Millis(10000));
  // The bound is max(longest, total / slots) = max(5 s, 7.5 s); whole seconds make it 8 s.
  EXPECT_EQ(ordered, Millis(8000));
}

}  // namespace
}  // namespace testfarm::coordinator
