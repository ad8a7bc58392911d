#pragma once
// The pure per-job policy of the subprocess pool: when to SIGTERM, when to SIGKILL, when a job is
// finished and how it ended. No syscalls and no clock of its own: the pool reports events with
// the time it saw them and asks for the next action; tests drive it with plain time points.
//
// A job is finished when its process has exited and both output pipes reached EOF, or when the
// leak grace has passed after the exit (descendants hold the pipes: "leaked"). A timeout or a
// cancellation terminates the group: SIGTERM, then SIGKILL after the kill grace; the job then
// finishes as soon as the main process has exited (the pool kills the whole group when it
// finalizes a job, so nothing waits on descendants).
#include <optional>
#include <string>

#include "shared/clock.h"
#include "shared/defaults.h"
#include "shared/exit_state.h"

namespace testfarm::worker {

struct LifecycleLimits {
  Millis timeout{0};  // 0: none
  Millis kill_grace = kDefaultKillGrace;
  Millis leak_grace = kDefaultLeakGrace;
};

class JobLifecycle {
 public:
  enum class Action { kNone, kSendTerm, kSendKill, kFinish };

  JobLifecycle(SteadyTime started, LifecycleLimits limits);

  // Events. `status` is how the main process ended: ExitState::Exited or ExitState::Signaled.
  void OnExited(SteadyTime now, ExitState status);
  void OnStreamsClosed(SteadyTime now);
  // Ignored once the job is done (exited, pipes closed) or a termination is already under way.
  void OnCancel(SteadyTime now, std::string reason);

  // The next thing to do at `now`; the caller does it and asks again until kNone. Each action is
  // returned once (the policy assumes it was carried out).
  Action Next(SteadyTime now);

  // When Next() will have something new to say without another event; nullopt if only an event
  // can move the job on.
  std::optional<SteadyTime> NextDeadline() const;

  bool finished() const { return finished_; }
  bool exited() const { return status_.has_value(); }
  // Valid once finished().
  ExitState FinalState() const;
  // Spawn to exit (to finish when the exit was never seen).
  Millis Duration() const;

 private:
  enum class Termination { kNone, kTimeout, kCancel };

  bool TimeoutDue(SteadyTime now) const;
  Action Finish(SteadyTime now);

  SteadyTime started_;
  LifecycleLimits limits_;
  SteadyTime last_event_;  // when something became due "now" (a deadline in the past)
  std::optional<ExitState> status_;
  SteadyTime exited_at_{};
  bool streams_closed_ = false;
  Termination termination_ = Termination::kNone;
  std::string cancel_reason_;
  bool cut_short_ = false;  // cancelled after exit: finish now, keep the real exit status
  bool term_sent_ = false;
  SteadyTime term_sent_at_{};
  bool kill_sent_ = false;
  bool leaked_ = false;
  bool finished_ = false;
  SteadyTime finished_at_{};
};

}  // namespace testfarm::worker
