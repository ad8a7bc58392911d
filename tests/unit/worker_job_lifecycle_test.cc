// The pool's per-job policy, driven with a FakeClock: no processes, no sleeping.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>

#include "worker/job_lifecycle.h"

namespace testfarm::worker {
namespace {

using namespace std::chrono_literals;
using Action = JobLifecycle::Action;

class JobLifecycleTest : public ::testing::Test {
 protected:
  JobLifecycle Make(Millis timeout, Millis kill_grace = 300ms, Millis leak_grace = 500ms) {
    start_ = clock_.Now();
    return JobLifecycle(start_, LifecycleLimits{timeout, kill_grace, leak_grace});
  }

  FakeClock clock_;
  SteadyTime start_;
};

TEST_F(JobLifecycleTest, ExitThenEofFinishesAsExited) {
  JobLifecycle job = Make(0ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
  EXPECT_EQ(job.NextDeadline(), std::nullopt);  // no timeout: only events move it
  clock_.Advance(40ms);
  job.OnExited(clock_.Now(), ExitState::Exited(0));
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);  // pipes still open
  clock_.Advance(5ms);
  job.OnStreamsClosed(clock_.Now());
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_TRUE(job.finished());
  EXPECT_EQ(job.FinalState(), ExitState::Exited(0));
  EXPECT_EQ(job.Duration(), 40ms);  // spawn to exit, not to EOF
}

TEST_F(JobLifecycleTest, EofThenExitFinishesAsExited) {
  JobLifecycle job = Make(1000ms);
  job.OnStreamsClosed(clock_.Now());
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);  // EOF alone is not exit
  EXPECT_EQ(job.NextDeadline(), start_ + 1000ms);
  clock_.Advance(10ms);
  job.OnExited(clock_.Now(), ExitState::Exited(1));
  EXPECT_EQ(job.NextDeadline(), clock_.Now());  // due now
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::Exited(1));
}

TEST_F(JobLifecycleTest, SignaledExitKeepsSignalAndCore) {
  JobLifecycle job = Make(0ms);
  job.OnExited(clock_.Now(), ExitState::Signaled(SIGSEGV, true));
  job.OnStreamsClosed(clock_.Now());
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::Signaled(SIGSEGV, true));
}

TEST_F(JobLifecycleTest, TimeoutSendsTermAtDeadlineThenKillAfterGrace) {
  JobLifecycle job = Make(1000ms, 300ms);
  EXPECT_EQ(job.NextDeadline(), start_ + 1000ms);
  clock_.Advance(999ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
  clock_.Advance(1ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendTerm);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);  // each action once
  EXPECT_EQ(job.NextDeadline(), start_ + 1300ms);
  clock_.Advance(299ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
  clock_.Advance(1ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendKill);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
  EXPECT_EQ(job.NextDeadline(), std::nullopt);  // only the exit can end it now
  clock_.Advance(2ms);
  job.OnExited(clock_.Now(), ExitState::Signaled(SIGKILL, false));
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);  // pipes need not close: group gets killed
  ExitState state = job.FinalState();
  EXPECT_EQ(state.kind(), ExitState::Kind::kTimedOut);
  EXPECT_EQ(state.detail(), "SIGKILL after 300ms grace");
  EXPECT_EQ(job.Duration(), 1302ms);
}

TEST_F(JobLifecycleTest, ExitAfterTermIsStillTimedOut) {
  JobLifecycle job = Make(200ms);
  clock_.Advance(250ms);  // a late wake-up still times out
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendTerm);
  clock_.Advance(3ms);
  job.OnExited(clock_.Now(), ExitState::Exited(0));  // handled SIGTERM and exited cleanly
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::TimedOut("SIGTERM"));
}

TEST_F(JobLifecycleTest, ExitSeenBeforeTimerIsNotATimeout) {
  JobLifecycle job = Make(200ms);
  clock_.Advance(300ms);  // the pool saw the pidfd before it ran its timers
  job.OnExited(clock_.Now(), ExitState::Exited(0));
  job.OnStreamsClosed(clock_.Now());
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::Exited(0));
}

TEST_F(JobLifecycleTest, ZeroKillGraceEscalatesAtOnce) {
  JobLifecycle job = Make(100ms, 0ms);
  clock_.Advance(100ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendTerm);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendKill);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
}

TEST_F(JobLifecycleTest, ExitWithPipesOpenFinishesAfterLeakGraceAsLeaked) {
  JobLifecycle job = Make(0ms, 300ms, 500ms);
  clock_.Advance(20ms);
  job.OnExited(clock_.Now(), ExitState::Exited(0));
  EXPECT_EQ(job.NextDeadline(), start_ + 520ms);
  clock_.Advance(499ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
  clock_.Advance(1ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  ExitState state = job.FinalState();
  EXPECT_EQ(state.kind(), ExitState::Kind::kLeaked);
  EXPECT_EQ(state.exit_code(), 0);
  EXPECT_NE(state.detail().find("500ms"), std::string::npos) << state.detail();
  EXPECT_EQ(job.Duration(), 20ms);
}

TEST_F(JobLifecycleTest, LeakKeepsNonZeroExitCode) {
  JobLifecycle job = Make(0ms, 300ms, 100ms);
  job.OnExited(clock_.Now(), ExitState::Exited(3));
  clock_.Advance(100ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState().kind(), ExitState::Kind::kLeaked);
  EXPECT_EQ(job.FinalState().exit_code(), 3);
}

TEST_F(JobLifecycleTest, CrashOutranksLeak) {
  JobLifecycle job = Make(0ms, 300ms, 100ms);
  job.OnExited(clock_.Now(), ExitState::Signaled(SIGABRT, false));
  clock_.Advance(100ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::Signaled(SIGABRT, false));
}

TEST_F(JobLifecycleTest, TimeoutDoesNotApplyDuringLeakGrace) {
  JobLifecycle job = Make(100ms, 300ms, 500ms);
  clock_.Advance(90ms);
  job.OnExited(clock_.Now(), ExitState::Exited(0));
  EXPECT_EQ(job.NextDeadline(), start_ + 590ms);
  clock_.Advance(50ms);  // past the timeout
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
  job.OnStreamsClosed(clock_.Now());
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::Exited(0));
}

TEST_F(JobLifecycleTest, CancelWhileRunningTermsThenKillsAndIsCancelled) {
  JobLifecycle job = Make(0ms, 300ms);
  clock_.Advance(50ms);
  job.OnCancel(clock_.Now(), "run aborted");
  EXPECT_EQ(job.NextDeadline(), clock_.Now());  // due now
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendTerm);
  EXPECT_EQ(job.NextDeadline(), start_ + 350ms);
  clock_.Advance(300ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendKill);
  job.OnExited(clock_.Now(), ExitState::Signaled(SIGKILL, false));
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::Cancelled("run aborted"));
}

TEST_F(JobLifecycleTest, CancelExitingOnTermIsCancelled) {
  JobLifecycle job = Make(0ms);
  job.OnCancel(clock_.Now(), "lease revoked");
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendTerm);
  job.OnExited(clock_.Now(), ExitState::Signaled(SIGTERM, false));
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::Cancelled("lease revoked"));
}

TEST_F(JobLifecycleTest, CancelDuringLeakGraceFinishesAtOnceWithTheRealExit) {
  JobLifecycle job = Make(0ms);
  job.OnExited(clock_.Now(), ExitState::Exited(1));
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
  job.OnCancel(clock_.Now(), "stop");
  EXPECT_EQ(job.NextDeadline(), clock_.Now());
  EXPECT_EQ(job.Next(clock_.Now()),
            Action::kFinish);  // nothing to signal: the pool kills the group
  EXPECT_EQ(job.FinalState(), ExitState::Exited(1)) << "a real exit is never overwritten";
}

TEST_F(JobLifecycleTest, CancelAfterTimeoutStaysTimedOut) {
  JobLifecycle job = Make(100ms);
  clock_.Advance(100ms);
  EXPECT_EQ(job.Next(clock_.Now()), Action::kSendTerm);
  job.OnCancel(clock_.Now(), "too late");
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);  // no second SIGTERM
  job.OnExited(clock_.Now(), ExitState::Signaled(SIGTERM, false));
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState().kind(), ExitState::Kind::kTimedOut);
}

TEST_F(JobLifecycleTest, CancelOfACompletedJobKeepsTheRealOutcome) {
  JobLifecycle job = Make(0ms);
  job.OnExited(clock_.Now(), ExitState::Exited(2));
  job.OnStreamsClosed(clock_.Now());
  job.OnCancel(clock_.Now(), "ignored");
  EXPECT_EQ(job.Next(clock_.Now()), Action::kFinish);
  EXPECT_EQ(job.FinalState(), ExitState::Exited(2));
}

TEST_F(JobLifecycleTest, FinishedJobIsInert) {
  JobLifecycle job = Make(100ms);
  job.OnExited(clock_.Now(), ExitState::Exited(0));
  job.OnStreamsClosed(clock_.Now());
  ASSERT_EQ(job.Next(clock_.Now()), Action::kFinish);
  clock_.Advance(1h);
  job.OnCancel(clock_.Now(), "late");
  job.OnExited(clock_.Now(), ExitState::Exited(9));
  EXPECT_EQ(job.Next(clock_.Now()), Action::kNone);
  EXPECT_EQ(job.NextDeadline(), std::nullopt);
  EXPECT_EQ(job.FinalState(), ExitState::Exited(0));
}

}  // namespace
}  // namespace testfarm::worker
