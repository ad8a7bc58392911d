#include "coordinator/run_core.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <numeric>

#include "coordinator/gtest.h"
#include "coordinator/outcome.h"
#include "shared/duration.h"

namespace testfarm::coordinator {

namespace {

// What the scheduler needs to know of a job's end: whether its tests passed as far as the jobs
// waiting for them are concerned (a test that skipped itself or was expected to fail did).
Verdict VerdictOf(const JobVerdicts& verdicts, const ExitState& state) {
  if (state.kind() == ExitState::Kind::kCancelled) return Verdict::kCancelled;
  bool cancelled = false;
  for (const CaseVerdict& v : verdicts.decided) {
    if (IsFailure(v.state)) return Verdict::kFailed;
    cancelled = cancelled || v.state == TestStatus::kCancelled;
  }
  return cancelled ? Verdict::kCancelled : Verdict::kPassed;
}

// Why a test waiting for a fixture's setup did not run.
std::string BlockedReason(const std::string& fixture, const std::string& setup, JobState state) {
  std::string how = state == JobState::kNotRun      ? "was not run"
                    : state == JobState::kCancelled ? "was cancelled"
                                                    : "failed";
  return "fixture '" + fixture + "': its setup test '" + setup + "' " + how;
}

// A report of a test that did not run to a result of its own.
TestReport Decided(TestStatus status, std::string reason) {
  TestReport report;
  report.state = status;
  report.reason = std::move(reason);
  return report;
}

}  // namespace

RunCore::RunCore(const Clock& clock, std::vector<TestSpec> tests, RunOptions options,
                 Reporter& reporter, std::vector<const ArtifactSet*> shipped, ProfileSink profiles)
    : clock_(clock),
      tests_(std::move(tests)),
      options_(options),
      reporter_(reporter),
      shipped_(std::move(shipped)),
      profile_sink_(std::move(profiles)),
      scheduler_(clock, options.scheduler),
      running_(options.slow_timeout),
      batcher_(options.batcher),
      workers_(clock, LivenessOptions{}),
      ledger_(clock, tests_, reporter) {
  base_tests_ = tests_.size();
  for (const TestSpec& test : tests_) {
    if (test.decided()) continue;
    if (std::find(label_needs_.begin(), label_needs_.end(), test.settings().required_labels) ==
        label_needs_.end()) {
      label_needs_.push_back(test.settings().required_labels);
    }
  }
}

bool RunCore::CanUse(const std::map<std::string, std::string>& labels) const {
  return std::any_of(label_needs_.begin(), label_needs_.end(), [&](const auto& needs) {
    return std::all_of(needs.begin(), needs.end(), [&](const auto& need) {
      auto it = labels.find(need.first);
      return it != labels.end() && it->second == need.second;
    });
  });
}

void RunCore::Send(const std::string& peer, protocol::Message message) {
  outbox_.push_back(Outgoing{peer, std::move(message)});
}

std::vector<Outgoing> RunCore::TakeOutbox() {
  return std::exchange(outbox_, {});
}

JobId RunCore::AddJob(std::vector<std::size_t> tests, bool batch, unsigned attempt, bool front,
                      std::optional<WorkerId> avoid) {
  const TestSpec& first = tests_[tests.front()];
  JobNeeds needs;
  needs.serial = first.run_serial;
  needs.processors = first.settings().ordering.processors;
  needs.required_labels = first.settings().required_labels;
  needs.locks = first.settings().ordering.resource_locks;
  // An iteration's copies keep their fixture group (on the worker the group is pinned to).
  const std::size_t base = BaseOf(tests.front());
  if (tests.size() == 1 && base < order_.group.size() && order_.group[base]) {
    needs.group = *order_.group[base];
  }
  needs.avoid = std::move(avoid);
  JobId id = scheduler_.AddJob(first.timeout, std::move(needs), front);
  if (jobs_.size() <= id) jobs_.resize(id + 1);
  jobs_[id] = Job{std::move(tests), batch, attempt, std::nullopt};
  return id;
}

void RunCore::UntilFail(std::size_t t) {
  if (!options_.repeat.until_fail || until_fail_stopped_) return;
  until_fail_stopped_ = true;
  until_fail_reason_ = "--until-fail: iteration " + std::to_string(tests_[t].iteration) +
                       " failed (" + tests_[t].name + "); no iteration started after that";
}

bool RunCore::Retries(std::size_t t) const {
  return phase_ == RunPhase::kDispatching && !scheduler_.stopped() && !awaited_[t] &&
         failed_attempts_[t] < tests_[t].retries.value_or(0);
}

void RunCore::Start() {
  ledger_.Start();
  reporter_.OnRunStart(tests_.size());
  Result<TestOrder> order = OrderTests(tests_);
  if (order) {
    order_ = std::move(*order);
  } else {  // the command line refuses cycles before a run; never wait forever on one
    spdlog::error("coordinator: {}; running without DEPENDS and fixtures", order.error().message);
  }
  failed_attempts_.assign(tests_.size(), 0);
  awaited_.assign(tests_.size(), false);
  for (const std::vector<TestOrder::Wait>& waits : order_.waits) {
    for (const TestOrder::Wait& wait : waits) awaited_[wait.on] = true;
  }
  if (options_.repeat.duration.count() > 0) stress_ends_ = clock_.Now() + options_.repeat.duration;
  PlanIteration(0);
  Tick();
}

bool RunCore::MoreIterations() const {
  const RepeatOptions& repeat = options_.repeat;
  if (scheduler_.stopped() || until_fail_stopped_) return false;
  // Tests decided before the run (skipped, unlistable) are not run again and again.
  if (std::all_of(tests_.begin(), tests_.begin() + static_cast<std::ptrdiff_t>(base_tests_),
                  [](const TestSpec& test) { return test.decided(); })) {
    return false;
  }
  if (repeat.iterations != 0 && iterations_ >= repeat.iterations) return false;
  if (stress_ends_ && clock_.Now() >= *stress_ends_) return false;
  // Without a count or a time, only --until-fail ends it (or the user).
  return repeat.iterations != 1 || stress_ends_.has_value() || repeat.until_fail;
}

void RunCore::StartIterationIfDue() {
  // The next iteration's tests are added once this one's are all handed out and slots are
  // free for more, so that iterations overlap at their edges and no slot waits.
  if (!MoreIterations() || (options_.batch && !batcher_.empty())) return;
  if (scheduler_.WantedJobs() == 0) return;
  const std::size_t first = tests_.size();
  tests_.reserve(first + base_tests_);
  for (std::size_t b = 0; b < base_tests_; ++b) {
    tests_.push_back(tests_[b]);
    tests_.back().iteration = iterations_ + 1;
  }
  ++iterations_;
  ledger_.TestsAdded();
  failed_attempts_.resize(tests_.size(), 0);
  awaited_.resize(tests_.size(), false);
  for (std::size_t b = 0; b < base_tests_; ++b) awaited_[first + b] = awaited_[b];
  PlanIteration(first);
}

void RunCore::PlanIteration(std::size_t first) {
  std::map<std::string, std::vector<std::size_t>> batches;  // suite -> its cases
  std::vector<std::string> batch_order;
  // Every test decided before the run is a job too, already ended, so others can wait for it.
  std::vector<std::optional<JobId>> job_of(base_tests_);  // by index in the iteration
  auto ended = [&](std::size_t t, JobState state) {
    JobId id = scheduler_.AddEndedJob(state);
    if (jobs_.size() <= id) jobs_.resize(id + 1);
    jobs_[id] = Job{{t}, false, 1, std::nullopt};
    job_of[t - first] = id;
  };
  std::vector<std::size_t> start_order = options_.start_order;
  if (start_order.size() != base_tests_) {
    start_order.resize(base_tests_);
    std::iota(start_order.begin(), start_order.end(), std::size_t{0});
  }
  for (std::size_t b : start_order) {
    const std::size_t t = first + b;
    const TestSpec& test = tests_[t];
    if (!test.error.empty()) {
      TestReport report = Decided(TestStatus::kFailed, test.error);
      report.message = test.error_output;
      Report(t, std::move(report));
      ended(t, JobState::kFailed);
      UntilFail(t);
    } else if (!test.cannot_run.empty()) {
      // Reported as the test that could not start it is: ERROR, with the reason.
      protocol::JobResult never_started;
      never_started.state = ExitState::SpawnFailed(ENOENT, test.cannot_run);
      Report(t, Decided(TestStatus::kFailed, {}), &never_started);
      ended(t, JobState::kFailed);
      UntilFail(t);
    } else if (!test.skip_reason.empty()) {
      Report(t, Decided(TestStatus::kSkipped, test.skip_reason));
      ended(t, JobState::kSkipped);
    } else if (options_.batch && test.gtest()) {
      if (batches.find(test.suite) == batches.end()) batch_order.push_back(test.suite);
      batches[test.suite].push_back(t);
    } else {
      job_of[b] = AddJob({t}, false, 1, false);
    }
  }
  // An iteration's tests wait for those of the same iteration.
  for (std::size_t b = 0; b < order_.waits.size() && b < base_tests_; ++b) {
    if (!job_of[b] || tests_[first + b].decided()) continue;
    for (const TestOrder::Wait& wait : order_.waits[b]) {
      if (!job_of[wait.on]) continue;  // a batched GoogleTest case: never part of an order
      if (!wait.fixture.empty()) fixture_of_[{first + b, first + wait.on}] = wait.fixture;
      scheduler_.AddDependency(*job_of[b], *job_of[wait.on], !wait.fixture.empty());
    }
  }
  ReportBlocked();
  for (const std::string& suite : batch_order) {
    std::optional<Millis> expected;
    if (auto known = options_.expected_case_time.find(suite);
        known != options_.expected_case_time.end()) {
      expected = known->second;
    }
    // Every runnable case of the binary, in whatever order the history put them: gtest's shards
    // can split it, and it goes to the batcher in the binary's own order, which is the order
    // gtest deals its shards' cases in.
    std::vector<std::size_t>& cases = batches[suite];
    const bool whole = IsWholeBinary(cases);
    if (whole) {
      std::sort(cases.begin(), cases.end(), [&](std::size_t a, std::size_t b) {
        return tests_[a].gtest_index < tests_[b].gtest_index;
      });
    }
    std::vector<std::size_t> name_bytes;
    for (std::size_t t : cases) name_bytes.push_back(tests_[t].gtest_case.size());
    std::size_t id = batcher_.AddSuite(cases, std::move(name_bytes), expected, whole);
    for (std::size_t t : batches[suite]) batch_suite_of_[t] = id;
  }
}

bool RunCore::IsWholeBinary(const std::vector<std::size_t>& cases) const {
  std::vector<bool> seen(cases.size(), false);
  for (std::size_t t : cases) {
    const TestSpec& test = tests_[t];
    if (test.gtest_runnable != cases.size() || test.gtest_index >= cases.size() ||
        seen[test.gtest_index]) {
      return false;
    }
    seen[test.gtest_index] = true;
  }
  return !cases.empty();
}

void RunCore::ReportBlocked() {
  for (const Scheduler::Blocked& blocked : scheduler_.TakeBlocked()) {
    std::size_t test = jobs_[blocked.job].tests.front();
    std::size_t setup = jobs_[blocked.because].tests.front();
    auto fixture = fixture_of_.find({test, setup});
    Report(test,
           Decided(TestStatus::kNotRun,
                   BlockedReason(fixture == fixture_of_.end() ? std::string("?") : fixture->second,
                                 tests_[setup].name, scheduler_.state(blocked.because))));
  }
}

void RunCore::RefillBatches() {
  if (scheduler_.stopped()) return;
  while (scheduler_.WantedJobs() > 0) {
    auto batch = batcher_.Next(scheduler_.total_slots());
    if (!batch) return;
    bool shared = batch->tests.size() > 1;  // a batch of one is simply a case run alone
    JobId id = AddJob(std::move(batch->tests), shared, 1, false);
    if (batch->sharded) jobs_[id].shard = std::move(batch->shard);
  }
}

bool RunCore::DispatchDone() const {
  return scheduler_.Done() && (scheduler_.stopped() || batcher_.empty()) &&
         !(MoreIterations() && !workers_.empty());
}

void RunCore::RemoveWorker(const std::string& peer, const std::string& why, bool lost) {
  if (!workers_.Contains(peer)) return;
  tick_due_ = true;
  bool resume_profiles = false;
  // Its merged profile goes with it: say so rather than write a coverage.json that silently
  // lacks those tests. (Once its profile was asked for, EndCollectingProfiles says it.)
  if (options_.coverage && raw_profiles_[peer] > 0 && profiles_.count(peer) == 0) {
    summary_.coverage.errors.push_back(workers_.NameOf(peer) + " left or was lost (" + why +
                                       "): the coverage of " + std::to_string(raw_profiles_[peer]) +
                                       " profiles of its tests is missing");
  }
  // What it was asked for will not come: the room it held goes to the others' pieces (its
  // download stays unfinished, and EndCollectingProfiles says so).
  if (auto it = profiles_.find(peer); it != profiles_.end() && it->second.in_flight > 0) {
    ReleaseRoom(it->second);
    resume_profiles = true;
  }
  // While running, its jobs go back to the queue; once stopped, they end as cancelled.
  Scheduler::Removal removal = scheduler_.RemoveWorker(peer, lost);
  for (JobId job : removal.cancelled) ReportJob(job, TestStatus::kCancelled, why);
  for (JobId job : removal.quarantined) {
    std::string names;
    for (const WorkerId& id : scheduler_.LostWorkers(job)) {
      names += (names.empty() ? "" : ", ") + workers_.NameOf(id);
    }
    ReportJob(job, TestStatus::kFailed,
              "worker lost: it was running when workers " + names + " were lost; not retried");
  }
  workers_.Remove(peer);
  if (resume_profiles) ResumeProfiles();
}

void RunCore::AddWorker(const std::string& peer, const std::string& name, unsigned slots,
                        const std::map<std::string, std::string>& labels, unsigned grant) {
  if (!workers_.Add(peer, name, slots, labels)) return;
  tick_due_ = true;
  scheduler_.AddWorker(peer, slots, labels);
  scheduler_.SetGrant(peer, grant);
  reporter_.OnWorkerJoined(name, slots);
}

void RunCore::SetGrant(const std::string& peer, unsigned grant) {
  tick_due_ = true;
  scheduler_.SetGrant(peer, grant);
}

void RunCore::OnWorkerProgress(const std::string& peer) {
  if (workers_.Contains(peer)) scheduler_.OnProgress(peer);
}

bool RunCore::AcceptsWorkers() const {
  return phase_ != RunPhase::kCollectingProfiles && phase_ != RunPhase::kDone && !DispatchDone();
}

std::size_t RunCore::Demand(std::size_t cap) const {
  if (phase_ != RunPhase::kDispatching) return 0;
  // Cases still in the batcher become batches as slots free: they want slots too.
  if (options_.batch && !batcher_.empty()) return cap;
  return scheduler_.Demand(cap);
}

void RunCore::Report(std::size_t test, TestReport report, const protocol::JobResult* result) {
  ledger_.Record(test, std::move(report), result, scheduler_.outstanding());
}

void RunCore::ReportJob(JobId job, TestStatus status, const std::string& reason) {
  for (std::size_t t : jobs_[job].tests) {
    TestReport report = Decided(status, reason);
    report.attempt = jobs_[job].attempt;
    report.batch = jobs_[job].batch;
    Report(t, std::move(report));
    if (IsFailure(status)) UntilFail(t);
  }
  if (IsFailure(status)) scheduler_.RecordFailures(static_cast<unsigned>(jobs_[job].tests.size()));
}

void RunCore::OnStarted(const std::string& peer, const protocol::JobStarted& started) {
  if (!workers_.Contains(peer) || !scheduler_.OnStarted(peer, started.lease)) return;
  WatchRunning();  // its START line now, even if its result is the next message
}

void RunCore::OnResult(const std::string& peer, protocol::JobResult& result) {
  const WorkerRegistry::Worker* worker = workers_.Find(peer);
  if (worker == nullptr) {
    spdlog::warn("coordinator: result from an unknown worker dropped (lease {})", result.lease);
    return;
  }
  auto job_id = scheduler_.JobOf(peer, result.lease);
  if (!job_id) {
    spdlog::info("coordinator: stale result for lease {} dropped", result.lease);
    return;
  }
  const Job job = jobs_[*job_id];
  JobVerdicts verdicts = Interpret(job.tests, job.batch, tests_, result);
  scheduler_.OnResult(peer, result.lease, VerdictOf(verdicts, result.state));
  summary_.coverage.raw_profiles += result.profiles;
  raw_profiles_[peer] += result.profiles;
  if (options_.coverage && result.profiles_empty > 0) {
    summary_.coverage.empty.push_back(JobName(*job_id) + " (" + result.state.Describe() + ")");
  }
  unsigned failures = 0;
  std::vector<std::size_t> retry;
  for (CaseVerdict& v : verdicts.decided) {
    if (auto suite = batch_suite_of_.find(v.test); suite != batch_suite_of_.end()) {
      batcher_.RecordDuration(suite->second, v.duration);
    }
    TestReport report = Decided(v.state, std::move(v.reason));
    report.message = std::move(v.message);
    report.duration = v.duration;
    report.worker = worker->name;
    report.attempt = job.attempt;
    report.batch = job.batch;
    if (IsFailure(v.state) && Retries(v.test)) {
      // Not its last word: it runs again, and only the last attempt counts (also for
      // --fail-fast).
      report.retried = true;
      ++failed_attempts_[v.test];
      retry.push_back(v.test);
    } else if (IsFailure(v.state)) {
      ++failures;
      UntilFail(v.test);
    } else if (v.state == TestStatus::kPassed && failed_attempts_[v.test] > 0) {
      report.state = TestStatus::kFlaky;
      report.reason = "passed on attempt " + std::to_string(failed_attempts_[v.test] + 1) +
                      " after " + std::to_string(failed_attempts_[v.test]) +
                      (failed_attempts_[v.test] == 1 ? " failure" : " failures");
    }
    Report(v.test, std::move(report), &result);
  }
  // Retries go ahead of the rest, alone, on another worker where there is one.
  for (auto it = retry.rbegin(); it != retry.rend(); ++it) {
    AddJob({*it}, false, job.attempt + 1, true, peer);
  }
  // Cases the batch could not vouch for run again ahead of the rest: alone, or (many) in
  // smaller batches that split again until the culprit is alone. All of them are its second
  // attempt.
  std::vector<std::size_t> name_bytes;
  for (std::size_t t : verdicts.rerun) name_bytes.push_back(tests_[t].gtest_case.size());
  std::vector<std::vector<std::size_t>> parts =
      RerunParts(verdicts.rerun, name_bytes, options_.batcher.max_filter_bytes);
  const unsigned attempt = job.batch && job.attempt > 1 ? job.attempt : job.attempt + 1;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    const bool batch = it->size() > 1;
    AddJob(std::move(*it), batch, attempt, true);
  }
  scheduler_.RecordFailures(failures);
}

void RunCore::OnMessage(const std::string& peer, protocol::Message& message) {
  tick_due_ = true;
  if (auto* started = std::get_if<protocol::JobStarted>(&message)) {
    OnStarted(peer, *started);
  } else if (auto* result = std::get_if<protocol::JobResult>(&message)) {
    OnResult(peer, *result);
  } else if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
    // A worker that cannot answer the profile request (an older testfarm) will never send one.
    if (auto it = profiles_.find(peer); it != profiles_.end() && !it->second.done) {
      summary_.coverage.errors.push_back(it->second.name + ": " + error->text);
      FinishDownload(it->second);
      ResumeProfiles();
    }
  } else if (auto* profile = std::get_if<protocol::ProfileChunk>(&message)) {
    OnProfileChunk(peer, *profile);
  } else if (auto* request = std::get_if<protocol::SetRequest>(&message)) {
    OnSetRequest(peer, *request);
  } else if (auto* handed = std::get_if<protocol::HandBack>(&message)) {
    OnHandBack(peer, *handed);
  }
}

void RunCore::OnHandBack(const std::string& peer, const protocol::HandBack& handed) {
  if (!workers_.Contains(peer)) return;
  auto job = scheduler_.JobOf(peer, handed.lease);
  switch (scheduler_.HandBack(peer, handed.lease)) {
    case Scheduler::HandedBack::kRefused:
      spdlog::info(
          "coordinator: {} handed back lease {}, which it does not hold unstarted; ignored",
          Describe(peer), handed.lease);
      break;
    case Scheduler::HandedBack::kRequeued:
      spdlog::debug("coordinator: {} handed back {}: {}", Describe(peer), JobName(*job),
                    handed.reason);
      break;
    case Scheduler::HandedBack::kCancelled:
      ReportJob(*job, TestStatus::kCancelled,
                "handed back by " + workers_.NameOf(peer) + " (" + handed.reason +
                    ") after the run stopped");
      break;
  }
}

uint64_t RunCore::SetIdOf(const ArtifactSet* set) {
  auto [it, added] = set_ids_.try_emplace(set, sets_by_id_.size() + 1);
  if (added) sets_by_id_.push_back(set);
  return it->second;
}

void RunCore::OnSetRequest(const std::string& peer, const protocol::SetRequest& request) {
  protocol::SetManifest manifest;
  manifest.run = request.run;
  manifest.set = request.set;
  if (request.set == 0 || request.set > sets_by_id_.size()) {
    manifest.error = "the run has no file set " + std::to_string(request.set);
  } else {
    const ArtifactSet& set = *sets_by_id_[request.set - 1];
    manifest.root = set.root;
    manifest.files = set.files;
    manifest.library_dirs = set.library_dirs;
  }
  Send(peer, std::move(manifest));
}

void RunCore::OnProfileChunk(const std::string& peer, protocol::ProfileChunk& chunk) {
  auto it = profiles_.find(peer);
  if (it == profiles_.end() || it->second.done) {
    spdlog::warn("coordinator: unasked-for coverage profile from {}; dropped", Describe(peer));
    return;
  }
  ProfileDownload& download = it->second;
  CoverageSummary& coverage = summary_.coverage;
  auto fail = [&](const std::string& why) {
    coverage.errors.push_back(download.name + ": " + why);
    FinishDownload(download);
    ResumeProfiles();
  };
  if (chunk.offset != download.received || chunk.size > (uint64_t{1} << 32) ||
      chunk.offset + chunk.data.size() > chunk.size) {
    return fail("profile chunks out of order or beyond the stated size");
  }
  if (!chunk.data.empty()) {
    // Handed on as it comes: the profile is never held whole here.
    if (!profile_sink_) return fail("nowhere to keep it");
    if (!download.index) download.index = next_profile_index_++;
    download.received += chunk.data.size();
    Result<std::filesystem::path> kept =
        profile_sink_(*download.index, chunk.offset, chunk.size, chunk.data);
    if (!kept) return fail(kept.error().message);
    if (!kept->empty()) download.kept = *kept;
  }
  if (download.in_flight > 0) {
    --download.in_flight;
    --profile_in_flight_;
  }
  if (!chunk.last) {
    if (download.next_request == 0) download.next_request = chunk.data.size();
    download.size = chunk.size;
    AskProfilePieces(peer, download);
    return;
  }
  FinishDownload(download);
  ResumeProfiles();
  coverage.merged += chunk.merged;
  for (const std::string& bad : chunk.bad) coverage.bad.push_back(download.name + ": " + bad);
  if (!chunk.error.empty()) coverage.errors.push_back(download.name + ": " + chunk.error);
  if (download.received != chunk.size) return fail("profile incomplete");
  if (chunk.size == 0) return;  // the worker had none
  if (download.kept.empty()) return fail("profile incomplete");
  coverage.profiles.push_back(download.kept);
}

void RunCore::AskProfilePieces(const std::string& peer, ProfileDownload& download) {
  // Pulled a piece at a time, a few in flight: the worker never queues the whole profile, and a
  // sink with credit (a farm's client) is never sent more than it has room for.
  constexpr unsigned kProfileWindow = 4;
  if (!workers_.Contains(peer)) return;  // gone: nothing more will come
  while (!download.done && download.in_flight < kProfileWindow &&
         (!profile_room_ || profile_in_flight_ < profile_room_())) {
    uint64_t offset = download.next_request;
    if (!download.asked_first) {
      offset = 0;  // how big the profile is, the first piece says
      download.asked_first = true;
    } else if (download.next_request < download.size) {
      download.next_request += protocol::kMaxChunkBytes;
    } else {
      return;  // everything is asked for (or the size is not known yet)
    }
    Send(peer, protocol::ProfileRequest{options_.run_id, offset});
    ++download.in_flight;
    ++profile_in_flight_;
  }
}

void RunCore::ReleaseRoom(ProfileDownload& download) {
  profile_in_flight_ -= download.in_flight;
  download.in_flight = 0;
}

void RunCore::FinishDownload(ProfileDownload& download) {
  download.done = true;
  ReleaseRoom(download);
}

void RunCore::ResumeProfiles() {
  if (phase_ != RunPhase::kCollectingProfiles) return;
  for (auto& [peer, download] : profiles_) {
    if (!download.done) AskProfilePieces(peer, download);
  }
}

void RunCore::StartCollectingProfiles() {
  phase_ = RunPhase::kCollectingProfiles;
  profiles_asked_at_ = clock_.Now();
  // Bounded: a worker that dies or falls silent is removed by its farm, an interrupt
  // ends the wait, and so does kProfileWait.
  profile_deadline_ = profiles_asked_at_ + kProfileWait;
  for (const std::string& peer : workers_.Peers()) {
    ProfileDownload download;
    download.name = workers_.NameOf(peer);
    profiles_[peer] = std::move(download);
  }
  // Within the sink's room, first pieces included: a thousand workers' first pieces do not all
  // come at once to a client that has room for a few.
  ResumeProfiles();
}

void RunCore::EndCollectingProfiles() {
  profile_deadline_.reset();
  for (const auto& [peer, download] : profiles_) {
    if (!download.done) {
      summary_.coverage.errors.push_back(
          download.name +
          ": its profile never came (the worker was lost, or did not answer within " +
          FormatDuration(kProfileWait) + ")");
    }
  }
  summary_.coverage.collect = std::chrono::duration_cast<Millis>(clock_.Now() - profiles_asked_at_);
  phase_ = RunPhase::kDone;
}

void RunCore::PerformActions() {
  for (Action& action : scheduler_.TakeActions()) {
    if (auto* assign = std::get_if<AssignAction>(&action)) {
      const Job& job = jobs_[assign->job];
      std::size_t first_index = job.tests.front();
      const TestSpec& first = tests_[first_index];
      WarnIfClamped(first_index, assign->worker);
      protocol::JobAssign message;
      message.lease = assign->lease;
      message.job_id = assign->job;
      message.name = JobName(assign->job);
      message.argv = first.settings().command;
      message.env = first.settings().env;
      if (first.gtest() && job.shard) {
        // gtest picks the shard's cases itself; the ones handed out before are left out.
        message.env["GTEST_TOTAL_SHARDS"] = std::to_string(job.shard->count);
        message.env["GTEST_SHARD_INDEX"] = std::to_string(job.shard->index);
        if (!job.shard->excluded.empty()) {
          std::vector<std::string> excluded;
          for (std::size_t t : job.shard->excluded) excluded.push_back(tests_[t].gtest_case);
          message.argv.push_back("--gtest_filter=-" + GtestFilterFor(excluded));
        }
        message.report_env = "GTEST_OUTPUT=json:";
      } else if (first.gtest()) {
        std::vector<std::string> cases;
        for (std::size_t t : job.tests) cases.push_back(tests_[t].gtest_case);
        message.argv.push_back("--gtest_filter=" + GtestFilterFor(cases));
        message.report_env = "GTEST_OUTPUT=json:";
      }
      message.cwd = first.settings().cwd;
      message.timeout_ms = static_cast<uint64_t>(first.timeout.count());
      message.kill_grace_ms = static_cast<uint64_t>(options_.scheduler.kill_grace.count());
      message.coverage = options_.coverage;
      message.run = options_.run_id;
      // An iteration's copy of a test ships what the test does.
      const std::size_t shipped_index = BaseOf(first_index);
      if (shipped_index < shipped_.size() && shipped_[shipped_index] != nullptr &&
          !shipped_[shipped_index]->files.empty()) {
        message.artifact_set = SetIdOf(shipped_[shipped_index]);
      }
      if (options_.start_at_assignment) {
        reporter_.OnTestStarted(message.name, workers_.NameOf(assign->worker));
      }
      Send(assign->worker, std::move(message));
    } else {
      const auto& cancel = std::get<CancelAction>(action);
      Send(cancel.worker, protocol::Cancel{cancel.lease});
    }
  }
}

void RunCore::WarnIfClamped(std::size_t test, const std::string& peer) {
  const WorkerRegistry::Worker* worker = workers_.Find(peer);
  unsigned wanted = tests_[test].settings().ordering.processors;
  if (worker == nullptr || wanted <= worker->slots) return;
  if (!clamp_warned_.insert(BaseOf(test)).second) return;  // once, not per iteration
  spdlog::warn(
      "{} asks for PROCESSORS {}, more than the {} slot{} of worker {}: it runs there "
      "holding all of them",
      tests_[test].name, wanted, worker->slots, worker->slots == 1 ? "" : "s", worker->name);
}

void RunCore::OnInterrupt() {
  tick_due_ = true;
  SteadyTime now = clock_.Now();
  if (phase_ == RunPhase::kCollectingProfiles) {
    spdlog::warn("coordinator: interrupted while collecting coverage profiles");
    summary_.interrupted = true;
    EndCollectingProfiles();
    return;
  }
  if (phase_ == RunPhase::kDone) return;
  if (!first_interrupt_at_) {
    first_interrupt_at_ = now;
    summary_.interrupted = true;
    // The console's summary says so ("Stopped early: interrupted").
    spdlog::info("coordinator: interrupted; stopping running tests");
    scheduler_.Stop("interrupted");
  } else if (now - *first_interrupt_at_ >= kSecondSignalAfter) {
    // A second signal: stop waiting for the cancelled tests. (One sent to the process and then
    // to its group, as `timeout` does, arrives twice at once; that counts as one.)
    give_up_at_ = now;
  }
}

void RunCore::AbandonOutstanding(const std::string& why) {
  for (JobId job : scheduler_.AbandonOutstanding()) ReportJob(job, TestStatus::kCancelled, why);
}

void RunCore::Abort(const std::string& why) {
  scheduler_.Stop(why);
  scheduler_.TakeActions();  // nothing can be sent any more
  AbandonOutstanding(why);
  phase_ = RunPhase::kDone;
}

void RunCore::StopIfNoWorkerCanCome() {
  // Without --listen nobody else can come: a run whose every worker is gone stops (else it
  // would wait on a socket no one will ever write to).
  if (dispatch_open_ && workers_.empty() && options_.wait_workers.count() == 0 &&
      !scheduler_.stopped()) {
    scheduler_.Stop("every worker was lost");
  }
}

bool RunCore::DispatchOpen() {
  if (dispatch_open_) return true;
  bool waited = clock_.Now() >= ledger_.started() + options_.wait_workers;
  if (workers_.size() >= options_.min_workers || (waited && !workers_.empty())) {
    dispatch_open_ = true;
    if (workers_.size() < options_.min_workers) {
      spdlog::warn(
          "only {} of the {} workers asked for (--min-workers) joined within {}; "
          "starting with {}",
          workers_.size(), options_.min_workers, FormatDuration(options_.wait_workers),
          workers_.size() == 1 ? "it" : "them");
    }
  } else if (waited && options_.wait_workers.count() > 0) {
    scheduler_.Stop("no worker joined within " + FormatDuration(options_.wait_workers));
  }
  return dispatch_open_;
}

void RunCore::FailUnplaceable() {
  if (clock_.Now() < ledger_.started() + options_.wait_workers) return;
  for (JobId job : scheduler_.TakeUnplaceable()) {
    std::string wanted;
    for (const auto& [key, value] : tests_[jobs_[job].tests.front()].settings().required_labels) {
      wanted += (wanted.empty() ? "" : ", ") + key + "=" + value;
    }
    ReportJob(job, TestStatus::kFailed,
              "no connected worker has the labels it requires: " + wanted);
  }
}

std::optional<SteadyTime> RunCore::NextDeadline() const {
  if (phase_ == RunPhase::kDone) return std::nullopt;
  if (tick_due_) return clock_.Now();
  std::optional<SteadyTime> next;
  auto consider = [&](std::optional<SteadyTime> at) {
    if (at && (!next || *at < *next)) next = at;
  };
  if (phase_ == RunPhase::kCollectingProfiles) {  // the run's own deadlines are over
    consider(profile_deadline_);
    return next;
  }
  consider(scheduler_.NextDeadline());
  consider(give_up_at_);
  if (!dispatch_open_ && options_.wait_workers.count() > 0) {
    consider(ledger_.started() + options_.wait_workers);
  }
  consider(running_.NextSlowDeadline());
  return next;
}

std::string RunCore::JobName(JobId id) const {
  const Job& job = jobs_[id];
  const TestSpec& first = tests_[job.tests.front()];
  return job.tests.size() == 1 ? first.name : first.suite + " (batch)";
}

std::vector<RunCore::RunningTest> RunCore::RunningNow() const {
  std::vector<RunningTest> running;
  for (const Scheduler::RunningLease& lease : scheduler_.Running()) {
    running.push_back({lease.worker, JobName(lease.job), lease.since});
  }
  std::stable_sort(running.begin(), running.end(),
                   [](const RunningTest& a, const RunningTest& b) { return a.since < b.since; });
  return running;
}

std::size_t RunCore::TestsWaiting() const {
  if (phase_ != RunPhase::kDispatching || scheduler_.stopped()) return 0;
  std::size_t running = 0;
  for (const Scheduler::RunningLease& lease : scheduler_.Running()) {
    for (std::size_t t : jobs_[lease.job].tests) running += ledger_.Reported(t) ? 0 : 1;
  }
  const std::size_t accounted = summary_.total() + running;
  return tests_.size() > accounted ? tests_.size() - accounted : 0;
}

void RunCore::Stop(const std::string& reason) {
  tick_due_ = true;
  if (phase_ == RunPhase::kCollectingProfiles) {
    EndCollectingProfiles();
    return;
  }
  if (phase_ == RunPhase::kDone) return;
  scheduler_.Stop(reason);
}

void RunCore::WatchRunning() {
  SteadyTime now = clock_.Now();
  auto name_of = [&](const Scheduler::RunningLease& lease) { return JobName(lease.job); };
  RunningTests::Changes changes = running_.Update(scheduler_.TakeRunningChanges(), now);
  // Leases the run is already cancelling may still be marked running: not worth a START line.
  if (!scheduler_.stopped() && !options_.start_at_assignment) {
    for (const auto& lease : changes.started) {
      reporter_.OnTestStarted(name_of(lease), workers_.NameOf(lease.worker));
    }
  }
  for (const auto& lease : changes.slow) {
    reporter_.OnTestSlow(name_of(lease), std::chrono::duration_cast<Millis>(now - lease.since));
  }
  auto longest = running_.Longest();
  reporter_.OnRunning(
      running_.count(), longest ? name_of(*longest) : std::string(),
      longest ? std::chrono::duration_cast<Millis>(now - longest->since) : Millis(0));
}

void RunCore::Tick() {
  tick_due_ = false;
  if (phase_ == RunPhase::kDone) return;
  if (phase_ == RunPhase::kCollectingProfiles) {
    bool waiting = std::any_of(profiles_.begin(), profiles_.end(), [&](const auto& entry) {
      return !entry.second.done && workers_.Contains(entry.first);
    });
    if (!waiting || clock_.Now() >= *profile_deadline_) EndCollectingProfiles();
    return;
  }
  SteadyTime now = clock_.Now();
  StopIfNoWorkerCanCome();
  for (JobId job : scheduler_.OnTimers()) {
    ReportJob(job, TestStatus::kExpired, "no result from the worker within the test's timeout");
  }
  // Once stopped, cancelled jobs get the kill grace plus some slack to report back.
  if (scheduler_.stopped() && !give_up_at_) {
    give_up_at_ = now + options_.scheduler.kill_grace + options_.stop_slack;
  }
  if (give_up_at_ && now >= *give_up_at_) {
    PerformActions();
    AbandonOutstanding("the worker did not confirm the cancellation in time");
  }
  if (!DispatchDone()) {
    ReportBlocked();
    if (DispatchOpen()) {
      FailUnplaceable();
      if (options_.batch) RefillBatches();
      StartIterationIfDue();
      if (options_.batch) RefillBatches();
      scheduler_.Dispatch();
    }
    WatchRunning();
    PerformActions();
    StopIfNoWorkerCanCome();
  }
  if (!DispatchDone()) {
    phase_ = scheduler_.stopped() ? RunPhase::kStopping : RunPhase::kDispatching;
    return;
  }
  PerformActions();
  if (options_.coverage && !summary_.interrupted && !workers_.empty()) {
    StartCollectingProfiles();
  } else {
    phase_ = RunPhase::kDone;
  }
}

RunSummary RunCore::Finish() {
  ReportBlocked();
  // Every selected test is reported exactly once, in every report: those the run never started
  // (it stopped, or no worker came) are listed as not run, with why.
  batcher_.Clear();
  std::string not_run_reason = scheduler_.stop_reason().empty()
                                   ? std::string("the run ended before it started")
                                   : "the run stopped: " + scheduler_.stop_reason();
  ledger_.RecordTheRestNotRun(not_run_reason);
  phase_ = RunPhase::kDone;
  summary_.stop_reason = scheduler_.stop_reason();
  if (summary_.stop_reason.empty()) summary_.stop_reason = until_fail_reason_;
  summary_.iterations = iterations_;
  return ledger_.Close();
}

}  // namespace testfarm::coordinator
