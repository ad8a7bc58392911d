#include "worker/subprocess_pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "worker/job_lifecycle.h"
#include "worker/output_buffer.h"
#include "worker/scratch_dir.h"
#include "worker/spawn.h"

namespace testfarm::worker {

unsigned DefaultSlots(unsigned hw_threads) {
  return std::clamp(hw_threads / 2, 1u, 16u);
}

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
// A stream is drained until EAGAIN or EOF on every readiness, but at most this much per call: a
// child writing as fast as we read must not starve the node's loop. poll is level-triggered, so
// the rest is read on the next wake-up and the child never blocks for long.
constexpr std::size_t kMaxDrainPerWake = 8u << 20;

struct Stream {
  explicit Stream(UniqueFd read_end, std::size_t cap) : fd(std::move(read_end)), buffer(cap) {}

  // Reads until EAGAIN, EOF or the budget; closes the fd at EOF or on a read error.
  void Drain() {
    char chunk[kReadChunk];
    std::size_t budget = kMaxDrainPerWake;
    while (fd && budget > 0) {
      ssize_t n = ::read(fd.get(), chunk, std::min(sizeof chunk, budget));
      if (n > 0) {
        buffer.Append(std::string_view(chunk, static_cast<std::size_t>(n)));
        budget -= static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        fd.Reset();  // EOF, or an error that no retry will cure
      }
    }
  }

  UniqueFd fd;
  OutputBuffer buffer;
};

struct Job {
  Job(uint64_t job_token, unsigned job_slot, SpawnedChild spawned, std::size_t cap,
      SteadyTime started, LifecycleLimits limits)
      : token(job_token),
        slot(job_slot),
        child(std::move(spawned.process)),
        out(std::move(spawned.stdout_read), cap),
        err(std::move(spawned.stderr_read), cap),
        life(started, limits) {}

  bool streams_closed() const { return !out.fd && !err.fd; }

  uint64_t token;
  unsigned slot;
  std::string report_path;  // read back at the end when LaunchSpec::report_env asked for it
  ChildProcess child;
  Stream out;
  Stream err;
  JobLifecycle life;
};

// Reads the report a job wrote. Returns an empty string on success, else why there is none.
std::string ReadReport(const std::string& path, std::string* out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return "the test did not write its report file";
    return "cannot open the report file: " + ErrnoText(errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return "cannot inspect the report file: " + ErrnoText(errno);
  if (!S_ISREG(st.st_mode)) return "the report file is not a regular file";
  if (static_cast<std::size_t>(st.st_size) > kMaxReportBytes) {
    return "the report file is " + std::to_string(st.st_size) + " bytes, over the " +
           std::to_string(kMaxReportBytes >> 20) + " MiB limit";
  }
  out->resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < out->size()) {
    ssize_t n = ::read(fd.get(), out->data() + got, out->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "cannot read the report file: " + ErrnoText(errno);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out->resize(got);
  return {};
}

FinishedJob SpawnFailedJob(uint64_t token, unsigned slot, int error_number, std::string detail) {
  FinishedJob job;
  job.token = token;
  job.slot = slot;
  job.state = ExitState::SpawnFailed(error_number, std::move(detail));
  return job;
}

}  // namespace

class SubprocessPool::Impl {
 public:
  Impl(const Clock& clock, PoolOptions options)
      : clock_(clock),
        options_(std::move(options)),
        slot_busy_(options_.slots, false),
        slot_scratch_(options_.slots) {
    if (options_.scratch_root.empty()) options_.scratch_root = SystemTempDir();
  }

  ~Impl() {
    // Kill every group first so the reaps below do not wait on one another.
    for (auto& job : jobs_) job->child.SignalGroup(SIGKILL);
    jobs_.clear();  // each job reaps its child, closes its pipes, removes its TMPDIR
  }

  unsigned slots() const { return options_.slots; }
  unsigned running() const { return static_cast<unsigned>(jobs_.size()); }
  bool HasFreeSlot() const { return FreeSlot().has_value(); }

  void Start(uint64_t token, LaunchSpec spec);
  void Cancel(uint64_t token, const std::string& reason);
  void CancelAll(const std::string& reason);
  void CollectFds(std::vector<int>* fds) const;
  void OnFdReady(int fd);
  std::optional<SteadyTime> NextDeadline() const;
  void OnTimers();
  std::vector<FinishedJob> TakeFinished() { return std::exchange(finished_, {}); }
  std::optional<int> PidOf(uint64_t token) const;

 private:
  std::optional<unsigned> FreeSlot() const;
  std::size_t IndexOf(uint64_t token) const;  // jobs_.size() if absent
  // Applies the policy's actions; returns true when the job is ready to be finalized.
  bool Advance(Job& job, SteadyTime now);
  // Advances jobs_[index]; if it finished, finalizes and removes it. Returns true if removed.
  bool AdvanceAt(std::size_t index, SteadyTime now);
  void Finalize(std::size_t index);

  const Clock& clock_;
  PoolOptions options_;
  std::vector<bool> slot_busy_;
  std::vector<std::unique_ptr<Job>> jobs_;  // in start order
  std::vector<FinishedJob> finished_;
  // The slot's TMPDIR, created on first use. Emptied after every job rather than removed and
  // made again: mkdir+rmdir cost ~80 us per job on ext4 with discard, most of the pool's own
  // overhead per trivial test (bench/spawn_overhead.sh). Removed when the pool goes away.
  Result<std::string> SlotScratch(unsigned slot);
  std::vector<ScratchDir> slot_scratch_;
};

std::optional<unsigned> SubprocessPool::Impl::FreeSlot() const {
  for (unsigned slot = 0; slot < slot_busy_.size(); ++slot) {
    if (!slot_busy_[slot]) return slot;
  }
  return std::nullopt;
}

Result<std::string> SubprocessPool::Impl::SlotScratch(unsigned slot) {
  ScratchDir& dir = slot_scratch_[slot];
  if (!dir.valid()) {
    std::string prefix = "testfarm-" + options_.worker_name + "-slot" + std::to_string(slot) + "-";
    Result<ScratchDir> created = ScratchDir::Create(options_.scratch_root, prefix);
    if (!created) return created.error();
    dir = std::move(created).value();
  }
  return dir.path().string();
}

std::size_t SubprocessPool::Impl::IndexOf(uint64_t token) const {
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    if (jobs_[i]->token == token) return i;
  }
  return jobs_.size();
}

void SubprocessPool::Impl::Start(uint64_t token, LaunchSpec spec) {
  std::optional<unsigned> slot = FreeSlot();
  if (!slot) {
    finished_.push_back(SpawnFailedJob(token, 0, EBUSY, "no free slot"));
    return;
  }
  if (IndexOf(token) != jobs_.size()) {
    finished_.push_back(
        SpawnFailedJob(token, *slot, EEXIST, "job " + std::to_string(token) + " is running"));
    return;
  }
  Result<std::string> scratch = SlotScratch(*slot);
  if (!scratch) {
    finished_.push_back(SpawnFailedJob(token, *slot, EIO, "TMPDIR: " + scratch.error().message));
    return;
  }
  SpawnRequest request{std::move(spec.argv), std::move(spec.env), std::move(spec.cwd),
                       spec.inherit_output};
  request.env["TESTFARM_WORKER"] = options_.worker_name;
  request.env["TESTFARM_SLOT"] = std::to_string(*slot);
  request.env["TESTFARM_JOB"] = std::to_string(token);
  request.env["TMPDIR"] = *scratch;
  std::string report_path;
  if (std::size_t eq = spec.report_env.find('='); eq != std::string::npos && eq > 0) {
    report_path = *scratch + "/testfarm-report";
    request.env[spec.report_env.substr(0, eq)] = spec.report_env.substr(eq + 1) + report_path;
  }

  SteadyTime started = clock_.Now();
  SpawnResult spawned = Spawn(request);
  if (auto* error = std::get_if<SpawnError>(&spawned)) {
    finished_.push_back(SpawnFailedJob(token, *slot, error->error_number, error->detail));
    return;
  }
  LifecycleLimits limits{spec.timeout, spec.kill_grace, options_.leak_grace};
  slot_busy_[*slot] = true;
  jobs_.push_back(std::make_unique<Job>(token, *slot, std::move(std::get<SpawnedChild>(spawned)),
                                        options_.output_cap, started, limits));
  jobs_.back()->report_path = std::move(report_path);
  // Output not captured: no pipes to wait for.
  if (jobs_.back()->streams_closed()) jobs_.back()->life.OnStreamsClosed(started);
}

bool SubprocessPool::Impl::Advance(Job& job, SteadyTime now) {
  for (;;) {
    switch (job.life.Next(now)) {
      case JobLifecycle::Action::kNone:
        return false;
      case JobLifecycle::Action::kSendTerm:
        job.child.SignalGroup(SIGTERM);  // ESRCH: the group is already gone; the exit follows
        break;
      case JobLifecycle::Action::kSendKill:
        job.child.SignalGroup(SIGKILL);
        break;
      case JobLifecycle::Action::kFinish:
        return true;
    }
  }
}

bool SubprocessPool::Impl::AdvanceAt(std::size_t index, SteadyTime now) {
  if (!Advance(*jobs_[index], now)) return false;
  Finalize(index);
  return true;
}

void SubprocessPool::Impl::Finalize(std::size_t index) {
  Job& job = *jobs_[index];
  // No descendant outlives its test; the main process is reaped only now, so its group id
  // could not have been reused by anyone while we were still signalling it.
  job.child.KillGroupAndReap();
  job.out.Drain();
  job.err.Drain();
  FinishedJob done;
  done.token = job.token;
  done.state = job.life.FinalState();
  done.duration = job.life.Duration();
  done.slot = job.slot;
  done.usage = job.child.usage();
  done.out = job.out.buffer.Take();
  done.err = job.err.buffer.Take();
  if (!job.report_path.empty()) done.report_error = ReadReport(job.report_path, &done.report);
  slot_busy_[job.slot] = false;
  // The group is dead: nothing can write into the TMPDIR any more. The next job in this slot
  // gets it empty; if it cannot be emptied, it is dropped and the next job gets a fresh one.
  if (!slot_scratch_[job.slot].Empty()) slot_scratch_[job.slot] = ScratchDir();
  jobs_.erase(jobs_.begin() + static_cast<std::ptrdiff_t>(index));  // closes pipes
  finished_.push_back(std::move(done));
}

void SubprocessPool::Impl::Cancel(uint64_t token, const std::string& reason) {
  std::size_t index = IndexOf(token);
  if (index == jobs_.size()) return;
  SteadyTime now = clock_.Now();
  jobs_[index]->life.OnCancel(now, reason);
  AdvanceAt(index, now);
}

void SubprocessPool::Impl::CancelAll(const std::string& reason) {
  SteadyTime now = clock_.Now();
  for (std::size_t i = 0; i < jobs_.size();) {
    jobs_[i]->life.OnCancel(now, reason);
    if (!AdvanceAt(i, now)) ++i;
  }
}

void SubprocessPool::Impl::CollectFds(std::vector<int>* fds) const {
  for (const auto& job : jobs_) {
    // An exited child's pidfd stays readable (its zombie is kept): stop watching it.
    if (!job->life.exited()) fds->push_back(job->child.pidfd());
    if (job->out.fd) fds->push_back(job->out.fd.get());
    if (job->err.fd) fds->push_back(job->err.fd.get());
  }
}

void SubprocessPool::Impl::OnFdReady(int fd) {
  if (fd < 0) return;
  SteadyTime now = clock_.Now();
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    Job& job = *jobs_[i];
    if (fd == job.child.pidfd() && !job.life.exited()) {
      if (std::optional<ExitState> status = job.child.PeekExit()) {
        job.life.OnExited(now, std::move(*status));
      }
    } else if (fd == job.out.fd.get() || fd == job.err.fd.get()) {
      (fd == job.out.fd.get() ? job.out : job.err).Drain();
      if (job.streams_closed()) job.life.OnStreamsClosed(now);
    } else {
      continue;
    }
    AdvanceAt(i, now);
    return;
  }
}

std::optional<SteadyTime> SubprocessPool::Impl::NextDeadline() const {
  std::optional<SteadyTime> earliest;
  for (const auto& job : jobs_) {
    std::optional<SteadyTime> deadline = job->life.NextDeadline();
    if (deadline && (!earliest || *deadline < *earliest)) earliest = deadline;
  }
  return earliest;
}

void SubprocessPool::Impl::OnTimers() {
  SteadyTime now = clock_.Now();
  for (std::size_t i = 0; i < jobs_.size();) {
    if (!AdvanceAt(i, now)) ++i;
  }
}

std::optional<int> SubprocessPool::Impl::PidOf(uint64_t token) const {
  std::size_t index = IndexOf(token);
  if (index == jobs_.size()) return std::nullopt;
  return jobs_[index]->child.pid();
}

SubprocessPool::SubprocessPool(const Clock& clock, PoolOptions options)
    : impl_(std::make_unique<Impl>(clock, std::move(options))) {}
SubprocessPool::~SubprocessPool() = default;

unsigned SubprocessPool::slots() const {
  return impl_->slots();
}
unsigned SubprocessPool::running() const {
  return impl_->running();
}
bool SubprocessPool::HasFreeSlot() const {
  return impl_->HasFreeSlot();
}
void SubprocessPool::Start(uint64_t token, LaunchSpec spec) {
  impl_->Start(token, std::move(spec));
}
void SubprocessPool::Cancel(uint64_t token, const std::string& reason) {
  impl_->Cancel(token, reason);
}
void SubprocessPool::CancelAll(const std::string& reason) {
  impl_->CancelAll(reason);
}
void SubprocessPool::CollectFds(std::vector<int>* fds) const {
  impl_->CollectFds(fds);
}
void SubprocessPool::OnFdReady(int fd) {
  impl_->OnFdReady(fd);
}
std::optional<SteadyTime> SubprocessPool::NextDeadline() const {
  return impl_->NextDeadline();
}
void SubprocessPool::OnTimers() {
  impl_->OnTimers();
}
std::vector<FinishedJob> SubprocessPool::TakeFinished() {
  return impl_->TakeFinished();
}
std::optional<int> SubprocessPool::PidOf(uint64_t token) const {
  return impl_->PidOf(token);
}

}  // namespace testfarm::worker
