#include "coordinator/farm_wire.h"

#include <algorithm>

namespace testfarm::coordinator {

namespace {
// Times from the wire are bounded (30 days), so a peer's huge value cannot overflow the clock.
Millis MillisOf(uint64_t ms) {
  constexpr uint64_t kMax = uint64_t{30} * 24 * 3600 * 1000;
  return Millis(static_cast<Millis::rep>(std::min(ms, kMax)));
}
uint64_t Ms(Millis millis) {
  return millis.count() < 0 ? 0 : static_cast<uint64_t>(millis.count());
}
Millis OrDefault(uint64_t ms, Millis fallback) {
  return ms == 0 ? fallback : MillisOf(ms);
}
}  // namespace

protocol::RunTest ToWire(const TestSpec& test, uint32_t file_set) {
  protocol::RunTest wire;
  wire.name = test.name;
  wire.suite = test.suite;
  wire.gtest_case = test.gtest_case;
  wire.command = test.settings().command;
  wire.env = test.settings().env;
  wire.cwd = test.settings().cwd;
  wire.timeout_ms = Ms(test.timeout);
  wire.labels = test.labels;
  wire.required_labels = test.settings().required_labels;
  wire.will_fail = test.will_fail;
  wire.has_skip_return_code = test.skip_return_code.has_value();
  wire.skip_return_code = static_cast<uint32_t>(test.skip_return_code.value_or(0));
  wire.run_serial = test.run_serial;
  wire.retries = test.retries.value_or(0);
  wire.depends = test.settings().ordering.depends;
  wire.fixtures_setup = test.settings().ordering.fixtures_setup;
  wire.fixtures_required = test.settings().ordering.fixtures_required;
  wire.fixtures_cleanup = test.settings().ordering.fixtures_cleanup;
  wire.resource_locks = test.settings().ordering.resource_locks;
  wire.processors = test.settings().ordering.processors;
  wire.pass_regex = test.settings().output_rules.pass;
  wire.fail_regex = test.settings().output_rules.fail;
  wire.skip_regex = test.settings().output_rules.skip;
  wire.skip_reason = test.skip_reason;
  wire.error = test.error;
  wire.error_output = test.error_output;
  wire.cannot_run = test.cannot_run;
  wire.file_set = file_set;
  return wire;
}

TestSpec FromWire(const protocol::RunTest& wire, const TestSpec* previous) {
  TestSpec test;
  test.name = wire.name;
  test.suite = wire.suite;
  test.gtest_case = wire.gtest_case;
  SuiteSettings settings;
  settings.command = wire.command;
  settings.env = wire.env;
  settings.cwd = wire.cwd;
  settings.required_labels = wire.required_labels;
  settings.ordering.depends = wire.depends;
  settings.ordering.fixtures_setup = wire.fixtures_setup;
  settings.ordering.fixtures_required = wire.fixtures_required;
  settings.ordering.fixtures_cleanup = wire.fixtures_cleanup;
  settings.ordering.resource_locks = wire.resource_locks;
  settings.ordering.processors = std::max(1u, wire.processors);
  settings.output_rules.pass = wire.pass_regex;
  settings.output_rules.fail = wire.fail_regex;
  settings.output_rules.skip = wire.skip_regex;
  // The cases of a suite come one after another with the same settings: they share one copy.
  if (previous != nullptr && previous->settings() == settings) {
    test.shared_settings = previous->shared_settings;
  } else {
    test.EditSettings() = std::move(settings);
  }
  test.timeout = MillisOf(wire.timeout_ms);
  test.labels = wire.labels;
  test.will_fail = wire.will_fail;
  if (wire.has_skip_return_code) test.skip_return_code = static_cast<int>(wire.skip_return_code);
  test.run_serial = wire.run_serial;
  if (wire.retries > 0) test.retries = std::min(wire.retries, kMaxRetries);
  test.skip_reason = wire.skip_reason;
  test.error = wire.error;
  test.error_output = wire.error_output;
  test.cannot_run = wire.cannot_run;
  return test;
}

protocol::FileSet ToWire(const ArtifactSet& set) {
  return protocol::FileSet{set.root, set.files, set.library_dirs};
}

ArtifactSet FromWire(const protocol::FileSet& set) {
  return ArtifactSet{set.root, set.files, set.library_dirs};
}

protocol::Submit ToWire(const RunOptions& options, std::size_t max_slots) {
  protocol::Submit submit;
  submit.max_failures = options.scheduler.max_failures;
  submit.max_lost_workers = options.scheduler.max_lost_workers;
  submit.has_prefetch = options.scheduler.prefetch.has_value();
  submit.prefetch = options.scheduler.prefetch.value_or(0);
  submit.kill_grace_ms = Ms(options.scheduler.kill_grace);
  submit.lease_slack_ms = Ms(options.scheduler.lease_slack);
  submit.stop_slack_ms = Ms(options.stop_slack);
  submit.batch = options.batch;
  submit.batch_target_ms = Ms(options.batcher.target);
  submit.first_batch = options.batcher.first_batch;
  submit.max_batch = options.batcher.max_batch;
  submit.slow_timeout_ms = Ms(options.slow_timeout);
  submit.min_workers = options.min_workers;
  submit.wait_workers_ms = Ms(options.wait_workers);
  submit.max_slots = static_cast<uint32_t>(max_slots);
  submit.coverage = options.coverage;
  return submit;
}

RunOptions FromWire(const protocol::Submit& submit, const RunOptions& defaults) {
  RunOptions options = defaults;
  options.scheduler.max_failures = submit.max_failures;
  options.scheduler.max_lost_workers = std::max(1u, submit.max_lost_workers);
  if (submit.has_prefetch) options.scheduler.prefetch = submit.prefetch;
  options.scheduler.kill_grace = OrDefault(submit.kill_grace_ms, defaults.scheduler.kill_grace);
  options.scheduler.lease_slack = OrDefault(submit.lease_slack_ms, defaults.scheduler.lease_slack);
  options.stop_slack = OrDefault(submit.stop_slack_ms, defaults.stop_slack);
  options.batch = submit.batch;
  options.batcher.target = OrDefault(submit.batch_target_ms, defaults.batcher.target);
  if (submit.first_batch > 0) options.batcher.first_batch = submit.first_batch;
  if (submit.max_batch > 0) options.batcher.max_batch = submit.max_batch;
  options.slow_timeout = MillisOf(submit.slow_timeout_ms);
  options.min_workers = std::max(1u, submit.min_workers);
  options.wait_workers = OrDefault(submit.wait_workers_ms, defaults.wait_workers);
  options.coverage = submit.coverage;
  return options;
}

const char* WireName(TestStatus status) {
  switch (status) {
    case TestStatus::kPassed:
      return "passed";
    case TestStatus::kFailed:
      return "failed";
    case TestStatus::kExpired:
      return "expired";
    case TestStatus::kCancelled:
      return "cancelled";
    case TestStatus::kNotRun:
      return "not_run";
    case TestStatus::kSkipped:
      return "skipped";
    case TestStatus::kFlaky:
      return "flaky";
  }
  return "failed";
}

std::optional<TestStatus> StatusFromWire(const std::string& name) {
  for (TestStatus status :
       {TestStatus::kPassed, TestStatus::kFailed, TestStatus::kExpired, TestStatus::kCancelled,
        TestStatus::kNotRun, TestStatus::kSkipped, TestStatus::kFlaky}) {
    if (name == WireName(status)) return status;
  }
  return std::nullopt;
}

protocol::TestDone ToWire(const TestReport& report, std::size_t running) {
  protocol::TestDone done;
  done.test = report.test;
  done.state = WireName(report.state);
  if (report.result) done.result.push_back(*report.result);
  done.reason = report.reason;
  done.message = report.message;
  done.duration_ms = Ms(report.duration);
  done.worker = report.worker;
  done.slot = report.slot;
  done.started_at_ms = Ms(report.started_at);
  done.finished_at_ms = Ms(report.finished_at);
  done.attempt = report.attempt;
  done.batch = report.batch;
  done.running = running;
  done.retried = report.retried;
  return done;
}

Result<TestReport> FromWire(const protocol::TestDone& done) {
  auto status = StatusFromWire(done.state);
  if (!status) return Error{"unknown test state '" + done.state + "'"};
  TestReport report;
  report.test = done.test;
  report.state = *status;
  report.reason = done.reason;
  report.message = done.message;
  report.duration = MillisOf(done.duration_ms);
  report.worker = done.worker;
  report.slot = done.slot;
  report.started_at = MillisOf(done.started_at_ms);
  report.finished_at = MillisOf(done.finished_at_ms);
  report.attempt = std::max(1u, done.attempt);
  report.batch = done.batch;
  report.retried = done.retried;
  return report;
}

}  // namespace testfarm::coordinator
