#include "worker/job_lifecycle.h"

#include <utility>

#include "shared/duration.h"

namespace testfarm::worker {

JobLifecycle::JobLifecycle(SteadyTime started, LifecycleLimits limits)
    : started_(started), limits_(limits), last_event_(started) {}

void JobLifecycle::OnExited(SteadyTime now, ExitState status) {
  if (finished_ || status_) return;
  status_ = std::move(status);
  exited_at_ = now;
  last_event_ = now;
}

void JobLifecycle::OnStreamsClosed(SteadyTime now) {
  if (finished_ || streams_closed_) return;
  streams_closed_ = true;
  last_event_ = now;
}

void JobLifecycle::OnCancel(SteadyTime now, std::string reason) {
  if (finished_ || termination_ != Termination::kNone) return;
  if (status_) {
    // It exited on its own: that is its result. Only stop waiting out the leak grace; the pool
    // kills whatever still holds its output when it finalizes.
    cut_short_ = true;
    last_event_ = now;
    return;
  }
  termination_ = Termination::kCancel;
  cancel_reason_ = std::move(reason);
  last_event_ = now;
}

bool JobLifecycle::TimeoutDue(SteadyTime now) const {
  return limits_.timeout.count() > 0 && now >= started_ + limits_.timeout;
}

JobLifecycle::Action JobLifecycle::Finish(SteadyTime now) {
  finished_ = true;
  finished_at_ = now;
  return Action::kFinish;
}

JobLifecycle::Action JobLifecycle::Next(SteadyTime now) {
  if (finished_) return Action::kNone;
  // An exit seen before the deadline wins: the process ended on its own.
  if (termination_ == Termination::kNone && !status_ && TimeoutDue(now)) {
    termination_ = Termination::kTimeout;
  }
  if (termination_ != Termination::kNone) {
    // The pool SIGKILLs the group when it finalizes, so descendants need no waiting for.
    if (status_) return Finish(now);
    if (!term_sent_) {
      term_sent_ = true;
      term_sent_at_ = now;
      return Action::kSendTerm;
    }
    if (!kill_sent_ && now >= term_sent_at_ + limits_.kill_grace) {
      kill_sent_ = true;
      return Action::kSendKill;
    }
    return Action::kNone;
  }
  if (!status_) return Action::kNone;
  if (streams_closed_ || cut_short_) return Finish(now);
  if (now >= exited_at_ + limits_.leak_grace) {
    leaked_ = true;
    return Finish(now);
  }
  return Action::kNone;
}

std::optional<SteadyTime> JobLifecycle::NextDeadline() const {
  if (finished_) return std::nullopt;
  if (termination_ != Termination::kNone) {
    if (status_ || !term_sent_) return last_event_;
    if (!kill_sent_) return term_sent_at_ + limits_.kill_grace;
    return std::nullopt;  // SIGKILL sent: only the exit event moves the job on
  }
  if (!status_) {
    if (limits_.timeout.count() > 0) return started_ + limits_.timeout;
    return std::nullopt;
  }
  if (streams_closed_ || cut_short_) return last_event_;
  return exited_at_ + limits_.leak_grace;
}

ExitState JobLifecycle::FinalState() const {
  switch (termination_) {
    case Termination::kTimeout:
      return ExitState::TimedOut(kill_sent_ ? "SIGKILL after " +
                                                  FormatDuration(limits_.kill_grace) + " grace"
                                            : "SIGTERM");
    case Termination::kCancel:
      return ExitState::Cancelled(cancel_reason_);
    case Termination::kNone:
      break;
  }
  if (!status_) return ExitState::Cancelled("finished without an exit status");  // unreachable
  // A crash outranks a leak: Leaked carries an exit code, and a signal is never folded into one.
  if (leaked_ && status_->kind() == ExitState::Kind::kExited) {
    return ExitState::Leaked(status_->exit_code(), "output still open " +
                                                       FormatDuration(limits_.leak_grace) +
                                                       " after exit; process group killed");
  }
  return *status_;
}

Millis JobLifecycle::Duration() const {
  SteadyTime end = status_ ? exited_at_ : finished_at_;
  if (!status_ && !finished_) return Millis(0);
  return std::chrono::duration_cast<Millis>(end - started_);
}

}  // namespace testfarm::worker
