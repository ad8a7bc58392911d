#pragma once
// A test's reported status: what the console, JUnit and JSON say of it. Not the scheduler's
// JobState, which is a job's life (pending, leased, ...) and may cover several tests at once.
namespace testfarm::coordinator {

enum class TestStatus {
  kPassed,
  kFailed,     // it ran and failed: exit code, signal, gtest failure, could not start...
  kExpired,    // no result from its worker within its timeout
  kCancelled,  // terminated because the run stopped
  kNotRun,     // never started: the run stopped, or what it needed did not pass
  kSkipped,    // the test said so (GTEST_SKIP, SKIP_RETURN_CODE) or is disabled
  kFlaky,      // it failed, was retried (--retries) and then passed
};

inline bool IsFailure(TestStatus status) {
  return status == TestStatus::kFailed || status == TestStatus::kExpired;
}

}  // namespace testfarm::coordinator
