#include "coordinator/dashboard_model.h"

#include <algorithm>
#include <cstdlib>
#include <set>

namespace testfarm::coordinator {
namespace {

using Json = nlohmann::json;

std::string Tail(const std::string& text, std::size_t limit) {
  if (text.size() <= limit) return text;
  // Cut at a UTF-8 character boundary so the JSON stays valid text.
  std::size_t from = text.size() - limit;
  while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) ++from;
  return text.substr(from);
}

// Failures first, then flaky, running, and the rest.
int Rank(const std::string& status) {
  if (status == "failed" || status == "lost") return 0;
  if (status == "flaky") return 1;
  if (status == "running") return 2;
  return 3;
}

// The entries of a change log after `seq`, at most `cap` of them (the rest counted in *more).
template <typename Log, typename ToJson>
Json Since(const Log& log, uint64_t seq, std::size_t cap, std::size_t* more, ToJson to_json) {
  Json out = Json::array();
  for (const auto& entry : log) {
    if (entry.seq <= seq) continue;
    if (out.size() >= cap) {
      ++*more;
    } else {
      out.push_back(to_json(entry));
    }
  }
  return out;
}

template <typename T>
Json OrNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

}  // namespace

const std::vector<std::string>& TestStatusWords() {
  static const std::vector<std::string> words = {
      "passed", "failed", "lost", "flaky", "skipped", "cancelled", "not_run", "running", "queued"};
  return words;
}

FinishedTest Compact(const TestReport& report, std::size_t output_tail) {
  FinishedTest test;
  test.index = report.test;
  test.name = report.name;
  test.state = report.state;
  test.result = report.retried ? "RETRY" : StatusWord(report);
  test.reason = StatusReason(report);
  if (test.reason.empty()) test.reason = report.reason;
  test.message = Tail(report.message, output_tail);
  test.duration_ms = report.duration.count();
  test.worker = report.worker;
  test.attempt = report.attempt;
  test.iteration = report.iteration;
  test.retried = report.retried;
  test.ran = report.result.has_value() && !report.worker.empty();
  if (report.result && report.result->peak_rss_kb > 0)
    test.peak_rss_kb = report.result->peak_rss_kb;
  test.started_ms = report.started_at.count();
  test.finished_ms = report.finished_at.count();
  if (report.result) {
    test.out = Tail(report.result->stdout_text, output_tail);
    test.err = Tail(report.result->stderr_text, output_tail);
  }
  return test;
}

RunCounts CountsOf(const RunSummary& summary) {
  // The last word of each test: its last report that is not a retried attempt.
  std::map<std::pair<std::size_t, unsigned>, TestStatus> last;
  for (const TestReport& report : summary.reports) {
    if (!report.retried) last[{report.test, report.iteration}] = report.state;
  }
  RunCounts counts;
  for (const auto& [key, state] : last) ++counts.by_status[StatusKey(state)];
  counts.finished = last.size();
  return counts;
}

void DashboardModel::Apply(DashboardEvent event) {
  std::visit(
      [this](auto&& e) {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, FleetView>) ApplyFleet(std::move(e));
        if constexpr (std::is_same_v<E, RunStartView>) ApplyStart(std::move(e));
        if constexpr (std::is_same_v<E, TestDoneEvent>) ApplyDone(std::move(e));
        if constexpr (std::is_same_v<E, RunEndEvent>) ApplyEnd(std::move(e));
        if constexpr (std::is_same_v<E, RunBeganEvent>) {
          if (auto run = runs_.find(e.run); run != runs_.end()) {
            ++version_;
            run->second.started_ms = e.started_ms;
            Touch(run->second);
          }
        }
      },
      event);
}

DashboardModel::Run& DashboardModel::RunNamed(const std::string& id) {
  auto [it, added] = runs_.try_emplace(id);
  if (added) {
    it->second.id = id;
    it->second.order = ++runs_seen_;
  }
  return it->second;
}

const DashboardModel::Run* DashboardModel::Find(const std::string& id) const {
  auto it = runs_.find(id);
  return it == runs_.end() ? nullptr : &it->second;
}

void DashboardModel::ApplyFleet(FleetView view) {
  ++version_;
  fleet_at_ms_ = view.at_ms;
  // Workers: a row changes when what it runs, its slots, labels or cache change, or when it was
  // heard from again after a second or more (so heartbeat ages stay about right).
  std::set<std::string> seen;
  for (WorkerView& worker : view.workers) {
    seen.insert(worker.name);
    auto it = workers_.find(worker.name);
    if (it == workers_.end()) {
      std::string name = worker.name;
      workers_.emplace(std::move(name), KnownWorker{std::move(worker), version_});
      continue;
    }
    WorkerView& old = it->second.view;
    // A lease's start comes as the steady clock's time seen from the wall clock's: a ms or two
    // of jitter from one view to the next is not a change.
    for (std::size_t i = 0; i < worker.running.size() && i < old.running.size(); ++i) {
      SlotView& slot = worker.running[i];
      const SlotView& was = old.running[i];
      if (slot.run == was.run && slot.test == was.test &&
          std::abs(slot.since_ms - was.since_ms) <= 5) {
        slot.since_ms = was.since_ms;
      }
    }
    bool heard_again = worker.heard_at_ms - old.heard_at_ms >= 1000;
    int64_t keep_heard = old.heard_at_ms;
    old.heard_at_ms = worker.heard_at_ms;
    if (heard_again || !(old == worker)) {
      it->second = {std::move(worker), version_};
    } else {
      old.heard_at_ms = keep_heard;
    }
  }
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (seen.count(it->first) != 0) {
      ++it;
      continue;
    }
    removed_.emplace_back(version_, it->first);
    if (removed_.size() > limits_.change_log) removed_.pop_front();
    lanes_.erase(it->first);
    it = workers_.erase(it);
  }
  // Runs: their state and share; what runs now, from the slots.
  std::map<std::string, std::vector<std::size_t>> running;  // run -> indices
  std::map<std::string, std::size_t> running_count;
  for (const auto& [name, known] : workers_) {
    for (const SlotView& slot : known.view.running) {
      ++running_count[slot.run];
      auto run = runs_.find(slot.run);
      if (run == runs_.end()) continue;
      auto index = run->second.by_name.find(slot.test);
      if (index != run->second.by_name.end()) running[slot.run].push_back(index->second);
    }
  }
  std::set<std::string> in_view;
  for (RunView& view_run : view.runs) {
    in_view.insert(view_run.id);
    Run& run = RunNamed(view_run.id);
    bool changed = run.version == 0;
    auto set = [&changed](auto& field, auto value) {
      if (field != value) {
        field = std::move(value);
        changed = true;
      }
    };
    if (!run.ended_ms) set(run.state, view_run.state);
    set(run.label, view_run.label);
    set(run.client, view_run.client);
    set(run.tests, run.started ? std::max(run.tests, view_run.tests) : view_run.tests);
    set(run.slots, view_run.slots);
    set(run.running, running_count[view_run.id]);
    if (changed) Touch(run);
  }
  for (auto it = runs_.begin(); it != runs_.end();) {
    Run& run = it->second;
    // A run that left the farm before it started (its client went away) is gone.
    if (!run.started && in_view.count(run.id) == 0) {
      auto gone = it++;
      ForgetRun(gone);
      continue;
    }
    std::vector<std::size_t>& now = running[run.id];
    std::sort(now.begin(), now.end());
    if (now != run.marked_running) {
      for (std::size_t index : run.marked_running) {
        if (run.rows[index].phase == Phase::kRunning) run.rows[index].phase = Phase::kQueued;
      }
      for (std::size_t index : now) {
        if (run.rows[index].phase == Phase::kQueued) run.rows[index].phase = Phase::kRunning;
      }
      run.marked_running = std::move(now);
      Touch(run);
    }
    if (in_view.count(run.id) == 0 && run.running != 0) {
      run.running = 0;
      Touch(run);
    }
    ++it;
  }
}

void DashboardModel::ApplyStart(RunStartView start) {
  ++version_;
  Run& run = RunNamed(start.id);
  run.label = std::move(start.label);
  run.client = std::move(start.client);
  run.started_ms = start.started_ms;
  run.started = true;
  if (run.state == "waiting") run.state = "running";
  run.tests = start.names.size();
  run.rows.assign(start.names.size(), Row{});
  run.attempts.assign(start.names.size(), {});
  run.names.assign(std::make_move_iterator(start.names.begin()),
                   std::make_move_iterator(start.names.end()));
  run.base = run.names.size();
  run.by_name.clear();
  for (std::size_t i = 0; i < run.names.size(); ++i) {
    if (!run.names[i].empty()) run.by_name.try_emplace(run.names[i], i);
  }
  if (start.expected.size() == run.names.size()) {
    run.expected_ms.clear();
    run.remaining_ms = 0;
    for (Millis expected : start.expected) {
      run.expected_ms.push_back(expected.count());
      run.remaining_ms += expected.count();
    }
  }
  Touch(run);
}

void DashboardModel::ApplyDone(TestDoneEvent done) {
  auto found = runs_.find(done.run);
  if (found == runs_.end()) return;
  ++version_;
  Run& run = found->second;
  FinishedTest& test = done.test;
  // Repeats (--repeat) add tests as the run goes: copies of the selection, by index.
  if (test.index >= run.rows.size()) {
    std::size_t from = run.rows.size();
    run.rows.resize(test.index + 1);
    run.attempts.resize(test.index + 1);
    run.names.resize(test.index + 1);
    // A repeat's copies carry their test's name (index modulo the selection).
    for (std::size_t i = from; run.base > 0 && i < run.names.size(); ++i) {
      run.names[i] = run.names[i % run.base];
    }
    run.tests = std::max(run.tests, run.rows.size());
  }
  if (run.names[test.index].empty()) run.names[test.index] = test.name;
  Row& row = run.rows[test.index];
  if (!test.retried) {
    if (row.phase == Phase::kFinal) {
      --run.counts.by_status[StatusKey(row.state)];
    } else {
      ++run.counts.finished;
      std::size_t base = run.expected_ms.empty() ? 0 : test.index % run.expected_ms.size();
      if (!run.expected_ms.empty()) run.remaining_ms -= run.expected_ms[base];
    }
    ++run.counts.by_status[StatusKey(test.state)];
    row.phase = Phase::kFinal;
    row.state = test.state;
  }
  row.result = test.result;
  row.reason = test.reason;
  row.duration_ms = test.duration_ms;
  row.worker = test.worker;
  row.attempt = test.attempt;
  row.iteration = test.iteration;
  row.peak_rss_kb = test.peak_rss_kb;

  const std::string status = test.retried ? std::string("failed") : StatusKey(test.state);
  if (IsFailure(test.state) && !test.retried) {
    failures_.push_back(
        {next_seq_++, run.id, test.index, run.names[test.index], test.result, test.reason});
    if (failures_.size() > limits_.change_log) failures_.pop_front();
  }
  if (test.ran) {
    Span span;
    span.worker = test.worker;
    span.index = test.index;
    span.start_ms = run.started_ms + test.started_ms;
    span.end_ms = run.started_ms + std::max(test.finished_ms, test.started_ms);
    span.status = status;
    // The first lane of its worker free by the time it started.
    std::vector<int64_t>& lanes = lanes_[test.worker];
    auto lane =
        std::find_if(lanes.begin(), lanes.end(), [&](int64_t end) { return end <= span.start_ms; });
    if (lane == lanes.end()) lane = lanes.insert(lanes.end(), 0);
    *lane = span.end_ms;
    span.lane = static_cast<std::size_t>(lane - lanes.begin());
    run.spans.push_back(span);
    if (run.spans.size() > limits_.spans_per_run) run.spans.pop_front();
    spans_.push_back({next_seq_++, run.id, std::move(span)});
    if (spans_.size() > limits_.change_log) spans_.pop_front();
  }
  std::vector<Attempt>& attempts = run.attempts[test.index];
  const bool failure = IsFailure(test.state) || test.retried;
  attempts.push_back({test.attempt, test.iteration, test.retried, true, test.duration_ms,
                      std::move(test.result), std::move(test.reason), std::move(test.worker),
                      std::move(test.out), std::move(test.err), std::move(test.message)});
  KeepOutput(run, test.index, attempts.size() - 1, failure);
  Touch(run);
}

void DashboardModel::KeepOutput(Run& run, std::size_t index, std::size_t position, bool failure) {
  output_bytes_ += run.attempts[index][position].bytes();
  (failure ? failing_output_ : passing_output_).push_back({run.id, index, position});
  // Over the budget: passing tests' output goes first, oldest first.
  while (output_bytes_ > limits_.output_budget &&
         !(passing_output_.empty() && failing_output_.empty())) {
    std::deque<OutputRef>& from = passing_output_.empty() ? failing_output_ : passing_output_;
    OutputRef ref = std::move(from.front());
    from.pop_front();
    DropOutput(ref);
  }
}

void DashboardModel::DropOutput(const OutputRef& ref) {
  auto run = runs_.find(ref.run);
  if (run == runs_.end()) return;
  std::vector<std::vector<Attempt>>& attempts = run->second.attempts;
  if (ref.index >= attempts.size() || ref.position >= attempts[ref.index].size()) return;
  Attempt& attempt = attempts[ref.index][ref.position];
  if (!attempt.kept) return;
  output_bytes_ -= attempt.bytes();
  attempt.out = {};
  attempt.err = {};
  attempt.message = {};
  attempt.kept = false;
}

void DashboardModel::ApplyEnd(RunEndEvent end) {
  auto found = runs_.find(end.run);
  if (found == runs_.end()) return;
  ++version_;
  Run& run = found->second;
  run.state = "done";
  run.ended_ms = end.ended_ms;
  run.summary = std::move(end.summary);
  run.stop_reason = std::move(end.stop_reason);
  run.counts = std::move(end.counts);
  run.running = 0;
  run.slots = 0;
  run.ended_order = ++runs_ended_;
  for (std::size_t index : run.marked_running) {
    if (run.rows[index].phase == Phase::kRunning) run.rows[index].phase = Phase::kQueued;
  }
  run.marked_running.clear();
  Touch(run);
  ForgetEndedRuns();
}

void DashboardModel::ForgetEndedRuns() {
  std::vector<const Run*> ended;
  for (const auto& [id, run] : runs_) {
    if (run.ended_ms) ended.push_back(&run);
  }
  // The oldest to end go first, while too many are kept or their tests are too many; the newest
  // ended run stays whatever its size.
  std::sort(ended.begin(), ended.end(),
            [](const Run* a, const Run* b) { return a->ended_order < b->ended_order; });
  std::size_t tests = 0;
  for (const Run* run : ended) tests += run->rows.size();
  std::vector<std::string> drop;
  for (std::size_t i = 0; i + 1 < ended.size(); ++i) {
    if (ended.size() - i <= limits_.ended_runs && tests <= limits_.ended_tests) break;
    tests -= ended[i]->rows.size();
    drop.push_back(ended[i]->id);
  }
  for (const std::string& id : drop) ForgetRun(runs_.find(id));
  if (drop.empty()) return;
  auto gone = [this](const OutputRef& ref) { return runs_.count(ref.run) == 0; };
  std::erase_if(passing_output_, gone);
  std::erase_if(failing_output_, gone);
}

void DashboardModel::ForgetRun(std::map<std::string, Run>::iterator it) {
  for (const std::vector<Attempt>& attempts : it->second.attempts) {
    for (const Attempt& attempt : attempts) {
      if (attempt.kept) output_bytes_ -= attempt.bytes();
    }
  }
  removed_runs_.emplace_back(version_, it->first);
  if (removed_runs_.size() > limits_.change_log) removed_runs_.pop_front();
  runs_.erase(it);
}

std::vector<const DashboardModel::Run*> DashboardModel::RunsInOrder() const {
  // Runs still held first (in the order they came), then ended ones, newest first.
  std::vector<const Run*> runs;
  for (const auto& [id, run] : runs_) runs.push_back(&run);
  std::sort(runs.begin(), runs.end(), [](const Run* a, const Run* b) {
    if (a->ended_ms.has_value() != b->ended_ms.has_value()) return !a->ended_ms.has_value();
    return a->ended_ms ? a->order > b->order : a->order < b->order;
  });
  return runs;
}

Json DashboardModel::WorkerJson(const WorkerView& worker, int64_t now_ms) const {
  Json running = Json::array();
  for (const SlotView& slot : worker.running) {
    running.push_back({{"run", slot.run}, {"test", slot.test}, {"since_ms", slot.since_ms}});
  }
  return {{"name", worker.name},
          {"labels", worker.labels},
          {"slots", worker.slots},
          {"busy", worker.running.size()},
          {"heard_ms_ago", std::max<int64_t>(0, now_ms - worker.heard_at_ms)},
          {"cache_bytes", OrNull(worker.cache_bytes)},
          {"draining", worker.draining},
          {"running", std::move(running)}};
}

Json DashboardModel::RunJson(const Run& run, int64_t now_ms) const {
  Json counts = Json::object();
  for (const char* key : {"passed", "failed", "lost", "flaky", "skipped", "cancelled", "not_run"}) {
    auto it = run.counts.by_status.find(key);
    counts[key] = it == run.counts.by_status.end() ? 0 : it->second;
  }
  const std::size_t finished = run.counts.finished;
  const std::size_t queued =
      run.tests > finished + run.running ? run.tests - finished - run.running : 0;
  Json eta = nullptr;
  if (!run.ended_ms && run.started && !run.expected_ms.empty() && run.slots > 0) {
    eta = std::max<int64_t>(0, run.remaining_ms) / static_cast<int64_t>(run.slots);
  }
  (void)now_ms;
  return {{"id", run.id},
          {"label", run.label},
          {"client", run.client},
          {"state", run.state},
          {"tests", run.tests},
          {"finished", finished},
          {"running", run.running},
          {"queued", queued},
          {"slots", run.slots},
          {"counts", std::move(counts)},
          {"started_ms", run.started ? Json(run.started_ms) : Json(nullptr)},
          {"ended_ms", OrNull(run.ended_ms)},
          {"eta_ms", std::move(eta)},
          {"summary", run.summary},
          {"stop_reason", run.stop_reason}};
}

Json DashboardModel::SpanJson(const std::string& run_id, const Span& span) const {
  const Run* run = Find(run_id);
  std::string test = run != nullptr && span.index < run->names.size() ? run->names[span.index] : "";
  return {{"run", run_id},         {"worker", span.worker},   {"lane", span.lane},
          {"index", span.index},   {"test", std::move(test)}, {"start_ms", span.start_ms},
          {"end_ms", span.end_ms}, {"status", span.status}};
}

Json DashboardModel::Farm(const FarmInfo& info, int64_t now_ms) const {
  std::size_t slots = 0;
  std::size_t busy = 0;
  for (const auto& [name, known] : workers_) {
    slots += known.view.slots;
    busy += known.view.running.size();
  }
  std::size_t runs = 0;
  for (const auto& [id, run] : runs_) runs += run.ended_ms ? 0 : 1;
  return {{"mode", info.mode},
          {"version", info.version},
          {"started_ms", info.started_ms},
          {"now_ms", now_ms},
          {"history", info.history},
          {"workers", workers_.size()},
          {"slots", slots},
          {"busy", busy},
          {"runs", runs},
          {"streams", info.streams},
          {"streams_dropped", info.streams_dropped}};
}

Json DashboardModel::Workers(std::size_t offset, std::size_t limit, int64_t now_ms) const {
  Json rows = Json::array();
  std::size_t i = 0;
  for (const auto& [name, known] : workers_) {
    if (i++ < offset) continue;
    if (rows.size() >= limit) break;
    rows.push_back(WorkerJson(known.view, now_ms));
  }
  return {{"total", workers_.size()}, {"offset", offset}, {"limit", limit}, {"workers", rows}};
}

Json DashboardModel::Runs(int64_t now_ms) const {
  Json rows = Json::array();
  for (const Run* run : RunsInOrder()) rows.push_back(RunJson(*run, now_ms));
  return {{"runs", std::move(rows)}};
}

std::optional<Json> DashboardModel::Tests(const std::string& run_id,
                                          const TestsQuery& query) const {
  const Run* run = Find(run_id);
  if (run == nullptr) return std::nullopt;
  std::set<std::string> wanted(query.statuses.begin(), query.statuses.end());
  std::vector<std::size_t> groups[4];
  for (std::size_t i = 0; i < run->rows.size(); ++i) {
    std::string status = StatusOf(run->rows[i]);
    if (!wanted.empty() && wanted.count(status) == 0) continue;
    if (!query.contains.empty() && run->names[i].find(query.contains) == std::string::npos) {
      continue;
    }
    groups[Rank(status)].push_back(i);
  }
  std::size_t total = 0;
  for (const auto& group : groups) total += group.size();
  Json tests = Json::array();
  std::size_t skip = query.offset;
  for (const auto& group : groups) {
    if (skip >= group.size()) {
      skip -= group.size();
      continue;
    }
    for (std::size_t k = skip; k < group.size() && tests.size() < query.limit; ++k) {
      std::size_t i = group[k];
      const Row& row = run->rows[i];
      std::string status = StatusOf(row);
      std::string result = row.phase == Phase::kFinal     ? row.result
                           : row.phase == Phase::kRunning ? "RUN"
                                                          : "";
      tests.push_back({{"index", i},
                       {"name", run->names[i]},
                       {"status", status},
                       {"result", result},
                       {"reason", row.phase == Phase::kFinal ? row.reason : ""},
                       {"duration_ms", OrNull(row.duration_ms)},
                       {"worker", row.worker.empty() ? Json(nullptr) : Json(row.worker)},
                       {"attempt", row.attempt},
                       {"iteration", row.iteration},
                       {"peak_rss_kb", OrNull(row.peak_rss_kb)}});
    }
    skip = 0;
    if (tests.size() >= query.limit) break;
  }
  return Json{{"run", run->id},
              {"total", total},
              {"offset", query.offset},
              {"limit", query.limit},
              {"tests", std::move(tests)}};
}

std::optional<Json> DashboardModel::Output(const std::string& run_id, std::size_t index) const {
  const Run* run = Find(run_id);
  if (run == nullptr || index >= run->rows.size()) return std::nullopt;
  const Row& row = run->rows[index];
  Json attempts = Json::array();
  std::string message;
  if (index < run->attempts.size()) {
    for (const Attempt& t : run->attempts[index]) {
      if (!t.message.empty()) message = t.message;
      attempts.push_back({{"attempt", t.attempt},
                          {"retried", t.retried},
                          {"iteration", t.iteration},
                          {"result", t.result},
                          {"reason", t.reason},
                          {"worker", t.worker},
                          {"duration_ms", t.duration_ms},
                          {"stdout", t.out},
                          {"stderr", t.err},
                          {"message", t.message},
                          {"kept", t.kept}});
    }
  }
  const std::string status = StatusOf(row);
  return Json{{"run", run->id},
              {"index", index},
              {"name", run->names[index]},
              {"status", status},
              {"result", row.result},
              {"reason", row.reason},
              {"message", message},
              {"attempts", std::move(attempts)}};
}

std::optional<Json> DashboardModel::Timeline(const std::string& run_id, int64_t since_ms,
                                             int64_t now_ms) const {
  const Run* run = Find(run_id);
  if (run == nullptr) return std::nullopt;
  Json spans = Json::array();
  for (const Span& span : run->spans) {
    if (span.end_ms > since_ms) spans.push_back(SpanJson(run->id, span));
  }
  return Json{{"run", run->id}, {"now_ms", now_ms}, {"spans", std::move(spans)}};
}

std::string DashboardModel::StatusOf(const Row& row) {
  if (row.phase == Phase::kQueued) return "queued";
  if (row.phase == Phase::kRunning) return "running";
  return StatusKey(row.state);
}

StreamCursor DashboardModel::Now() const {
  return {version_, next_seq_ - 1, next_seq_ - 1};
}

Json DashboardModel::Snapshot(const FarmInfo& info, int64_t now_ms, StreamCursor* cursor) const {
  Json workers = Json::array();
  for (const auto& [name, known] : workers_) workers.push_back(WorkerJson(known.view, now_ms));
  *cursor = Now();
  return {{"version", version_},
          {"farm", Farm(info, now_ms)},
          {"workers", std::move(workers)},
          {"runs", Runs(now_ms)["runs"]}};
}

Json DashboardModel::Update(const FarmInfo& info, int64_t now_ms, StreamCursor* cursor) const {
  if (cursor->version == version_) return nullptr;
  constexpr std::size_t kMaxFailures = 50;
  constexpr std::size_t kMaxSpans = 1000;
  Json workers = Json::array();
  for (const auto& [name, known] : workers_) {
    if (known.version > cursor->version) workers.push_back(WorkerJson(known.view, now_ms));
  }
  Json removed = Json::array();
  for (const auto& [version, name] : removed_) {
    if (version > cursor->version && workers_.count(name) == 0) removed.push_back(name);
  }
  Json runs = Json::array();
  for (const Run* run : RunsInOrder()) {
    if (run->version > cursor->version) runs.push_back(RunJson(*run, now_ms));
  }
  Json removed_runs = Json::array();
  for (const auto& [version, id] : removed_runs_) {
    if (version > cursor->version && runs_.count(id) == 0) removed_runs.push_back(id);
  }
  std::size_t failures_more = 0;
  Json failures = Since(failures_, cursor->failure_seq, kMaxFailures, &failures_more,
                        [](const Failure& f) -> Json {
                          return {{"run", f.run},
                                  {"index", f.index},
                                  {"name", f.name},
                                  {"result", f.result},
                                  {"reason", f.reason}};
                        });
  std::size_t spans_more = 0;
  Json spans = Since(spans_, cursor->span_seq, kMaxSpans, &spans_more,
                     [this](const LoggedSpan& s) { return SpanJson(s.run, s.span); });
  *cursor = Now();
  return {{"version", version_},
          {"farm", Farm(info, now_ms)},
          {"workers", std::move(workers)},
          {"removed_workers", std::move(removed)},
          {"runs", std::move(runs)},
          {"removed_runs", std::move(removed_runs)},
          {"failures", std::move(failures)},
          {"failures_more", failures_more},
          {"spans", std::move(spans)},
          {"spans_more", spans_more}};
}

}  // namespace testfarm::coordinator
