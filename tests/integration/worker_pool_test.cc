// The subprocess pool against real misbehaving programs (tests/fixtures). The pool is driven the
// way the worker node drives it: poll() on CollectFds with the timeout from NextDeadline. Nothing
// sleeps; every wait is for an event, bounded by an overall deadline after which the test fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "worker/output_buffer.h"
#include "worker/scratch_dir.h"
#include "worker/spawn.h"
#include "worker/subprocess_pool.h"

namespace testfarm::worker {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr Millis kBound = 10s;  // generous: 2-core CI, ASan build

std::string Fixture(const std::string& name) {
  return std::string(TESTFARM_FIXTURE_DIR) + "/" + name;
}

LaunchSpec Spec(const std::string& fixture, std::vector<std::string> args = {}) {
  LaunchSpec spec;
  spec.argv.push_back(Fixture(fixture));
  for (std::string& arg : args) spec.argv.push_back(std::move(arg));
  return spec;
}

// One iteration of the node's loop: poll the pool's fds until its next deadline (or the bound),
// report ready fds, run timers, collect what finished.
void PollOnce(SubprocessPool& pool, const Clock& clock, SteadyTime bound) {
  std::vector<int> fds;
  pool.CollectFds(&fds);
  std::vector<pollfd> items;
  for (int fd : fds) items.push_back(pollfd{fd, POLLIN, 0});
  SteadyTime wake = bound;
  if (std::optional<SteadyTime> deadline = pool.NextDeadline()) wake = std::min(wake, *deadline);
  long timeout = MillisUntil(wake, clock.Now());
  int n = ::poll(items.data(), items.size(), static_cast<int>(timeout));
  if (n < 0 && errno != EINTR) ADD_FAILURE() << "poll: " << std::strerror(errno);
  for (const pollfd& item : items) {
    if (n > 0 && (item.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0) {
      pool.OnFdReady(item.fd);
    }
  }
  pool.OnTimers();
}

// Drives the pool until `count` jobs have finished or kBound has passed (wall clock).
std::vector<FinishedJob> RunUntil(SubprocessPool& pool, const Clock& clock, std::size_t count) {
  SteadyClock wall;
  SteadyTime give_up = wall.Now() + kBound;
  std::vector<FinishedJob> done = pool.TakeFinished();
  while (done.size() < count && wall.Now() < give_up) {
    // With an injected clock the bound is still wall time, seen through the pool's clock.
    PollOnce(pool, clock, clock.Now() + (give_up - wall.Now()));
    for (FinishedJob& job : pool.TakeFinished()) done.push_back(std::move(job));
  }
  EXPECT_EQ(done.size(), count) << "jobs did not finish within " << kBound.count() << "ms";
  return done;
}

long ElapsedMs(SteadyTime since) {
  return static_cast<long>(
      std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - since).count());
}

bool ProcessGone(pid_t pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}
bool GroupGone(pid_t pgid) {
  return ::kill(-pgid, 0) != 0 && errno == ESRCH;
}

// Waits (bounded) for a process that is not our child to die, through a pidfd.
bool DiesWithin(pid_t pid, Millis bound) {
  UniqueFd fd = OpenPidfd(pid);
  if (!fd) return errno == ESRCH;  // already gone and reaped
  pollfd item{fd.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&item, 1, static_cast<int>(bound.count()));
  } while (n < 0 && errno == EINTR);
  return n == 1;
}

std::string EnvValue(const std::string& text, const std::string& name) {
  std::string key = name + "=";
  std::size_t pos = text.find(key);
  if (pos == std::string::npos) return "";
  std::size_t end = text.find('\n', pos);
  return text.substr(pos + key.size(), end - pos - key.size());
}

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<ScratchDir> root = ScratchDir::Create(SystemTempDir(), "testfarm-pool-test-");
    ASSERT_TRUE(root.ok()) << root.error().message;
    root_ = std::move(root).value();
    pool_ = MakePool(2);
  }

  // Every test leaves the pool healthy: nothing running, every TMPDIR gone, and a passing job
  // still passes.
  void TearDown() override {
    if (!pool_) return;
    EXPECT_EQ(pool_->running(), 0u);
    // What remains are the slots' TMPDIRs, each emptied after its last job.
    std::size_t entries = 0;
    for (const auto& entry : fs::directory_iterator(root_.path())) {
      ++entries;
      EXPECT_TRUE(fs::is_empty(entry.path())) << "a used TMPDIR was left behind: " << entry.path();
    }
    EXPECT_LE(entries, pool_->slots());
    FinishedJob job = RunOne(Spec("tf_pass"));
    EXPECT_EQ(job.state, ExitState::Exited(0)) << job.state.Describe();
    EXPECT_EQ(job.out.text, "tf_pass: all good\n");
    EXPECT_EQ(pool_->running(), 0u);
    EXPECT_TRUE(pool_->HasFreeSlot());
  }

  std::unique_ptr<SubprocessPool> MakePool(unsigned slots, const Clock* clock = nullptr) {
    PoolOptions options;
    options.slots = slots;
    options.worker_name = "pool-test";
    options.scratch_root = root_.path();
    options.leak_grace = 300ms;
    return std::make_unique<SubprocessPool>(clock ? *clock : clock_, options);
  }

  FinishedJob RunOne(LaunchSpec spec, uint64_t token = 1) {
    pool_->Start(token, std::move(spec));
    std::vector<FinishedJob> done = RunUntil(*pool_, clock_, 1);
    if (done.empty())
      return FinishedJob{token, ExitState::Cancelled("test gave up"), {}, 0, {}, {}, {}, {}, {}};
    EXPECT_EQ(done[0].token, token);
    return std::move(done[0]);
  }

  SteadyClock clock_;
  FakeClock fake_clock_;
  ScratchDir root_;
  std::unique_ptr<SubprocessPool> pool_;
};

TEST_F(PoolTest, PassExitsZeroWithStdoutCaptured) {
  FinishedJob job = RunOne(Spec("tf_pass"), 7);
  EXPECT_EQ(job.state, ExitState::Exited(0));
  EXPECT_EQ(job.out.text, "tf_pass: all good\n");
  EXPECT_EQ(job.out.total, job.out.text.size());
  EXPECT_EQ(job.err.text, "");
  EXPECT_GE(job.duration.count(), 0);
  EXPECT_LT(job.duration, kBound);
}

TEST_F(PoolTest, PeakRssAndCpuComeFromTheReapedProcess) {
  // Linux counts into a spawned process's peak RSS the spawner's own at the exec (posix_spawn's
  // child shares its memory until then), so the fixture allocates more than this process holds
  // (an ASan build holds a lot): then the figure is the fixture's, within 10%.
  rusage self{};
  ASSERT_EQ(getrusage(RUSAGE_SELF, &self), 0);
  const long mib = 64 + self.ru_maxrss / 1024;
  FinishedJob job = RunOne(Spec("tf_alloc", {std::to_string(mib), "150"}));
  ASSERT_EQ(job.state, ExitState::Exited(0)) << job.state.Describe();
  const double expected_kb = static_cast<double>(mib) * 1024;
  EXPECT_GE(static_cast<double>(job.usage.peak_rss_kb), expected_kb);
  EXPECT_LE(static_cast<double>(job.usage.peak_rss_kb), expected_kb * 1.10);
  // It spun 150 ms of CPU (and spent some on touching the pages).
  EXPECT_GE(job.usage.cpu_ms, 140u);
  EXPECT_LT(job.usage.cpu_ms, 10000u);
}

TEST_F(PoolTest, FailCapturesBothStreamsSeparately) {
  FinishedJob job = RunOne(Spec("tf_fail"));
  EXPECT_EQ(job.state, ExitState::Exited(1));
  EXPECT_EQ(job.out.text, "tf_fail: expected 2, got 3\n");
  EXPECT_EQ(job.err.text, "tf_fail: assertion failed\n");
}

TEST_F(PoolTest, ExitCodeIsKept) {
  EXPECT_EQ(RunOne(Spec("tf_fail", {"42"})).state, ExitState::Exited(42));
}

TEST_F(PoolTest, SegfaultIsSignaled) {
  FinishedJob job = RunOne(Spec("tf_segv"));
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kSignaled) << job.state.Describe();
  EXPECT_EQ(job.state.signal(), SIGSEGV);
  EXPECT_EQ(job.out.text, "tf_segv: about to crash\n");
}

TEST_F(PoolTest, AbortIsSignaled) {
  FinishedJob job = RunOne(Spec("tf_abort"));
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kSignaled) << job.state.Describe();
  EXPECT_EQ(job.state.signal(), SIGABRT);  // core_dumped depends on the core limit
  EXPECT_EQ(job.err.text, "tf_abort: giving up\n");
}

TEST_F(PoolTest, HangTimesOutAndItsGroupIsGone) {
  LaunchSpec spec = Spec("tf_hang");
  spec.timeout = 300ms;
  SteadyTime start = clock_.Now();
  pool_->Start(1, std::move(spec));
  std::optional<int> pgid = pool_->PidOf(1);
  ASSERT_TRUE(pgid.has_value());
  std::vector<FinishedJob> done = RunUntil(*pool_, clock_, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].state, ExitState::TimedOut("SIGTERM")) << done[0].state.Describe();
  EXPECT_GE(ElapsedMs(start), 300);
  EXPECT_GE(done[0].duration, 300ms);
  EXPECT_EQ(done[0].out.text, "tf_hang: waiting forever\n");
  EXPECT_EQ(pool_->PidOf(1), std::nullopt);
  EXPECT_TRUE(GroupGone(*pgid));
  EXPECT_TRUE(ProcessGone(*pgid));
}

TEST_F(PoolTest, IgnoredTermEscalatesToKill) {
  LaunchSpec spec = Spec("tf_ignore_term");
  spec.timeout = 200ms;
  spec.kill_grace = 300ms;
  SteadyTime start = clock_.Now();
  pool_->Start(1, std::move(spec));
  int pgid = pool_->PidOf(1).value_or(0);
  std::vector<FinishedJob> done = RunUntil(*pool_, clock_, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].state.kind(), ExitState::Kind::kTimedOut) << done[0].state.Describe();
  EXPECT_NE(done[0].state.detail().find("SIGKILL"), std::string::npos) << done[0].state.detail();
  EXPECT_GE(ElapsedMs(start), 500);
  EXPECT_EQ(done[0].out.text, "tf_ignore_term: SIGTERM ignored\n");
  EXPECT_TRUE(GroupGone(pgid));
}

TEST_F(PoolTest, FloodIsCappedKeepingHeadAndTail) {
  const std::string end = "tf_flood: END\n";
  const uint64_t flood = 10u << 20;
  const std::size_t cap = PoolOptions{}.output_cap;
  FinishedJob job = RunOne(Spec("tf_flood"));
  EXPECT_EQ(job.state, ExitState::Exited(0)) << job.state.Describe();
  EXPECT_EQ(job.out.total, flood + end.size());
  uint64_t kept = cap;
  EXPECT_EQ(job.out.dropped, flood + end.size() - kept);
  std::string marker = OutputBuffer::DroppedMarker(job.out.dropped);
  EXPECT_LE(job.out.text.size(), cap + marker.size());
  EXPECT_EQ(job.out.text.size(), kept + marker.size());
  EXPECT_EQ(job.out.text.substr(cap / 2, marker.size()), marker);
  EXPECT_TRUE(job.out.text.ends_with(end));
  EXPECT_TRUE(job.out.text.starts_with(std::string(63, 'x') + "\n"));
}

TEST_F(PoolTest, OrphanHoldingStdoutIsLeakedAfterGrace) {
  SteadyTime start = clock_.Now();
  FinishedJob job = RunOne(Spec("tf_orphan"));
  long elapsed = ElapsedMs(start);
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kLeaked) << job.state.Describe();
  EXPECT_EQ(job.state.exit_code(), 0);
  EXPECT_EQ(job.out.text, "tf_orphan: leaving a grandchild behind\n");
  EXPECT_GE(elapsed, 300);          // the leak grace
  EXPECT_LT(elapsed, 300 + 3000);   // ... plus a margin, not EOF that never comes
  EXPECT_LT(job.duration, 3000ms);  // duration is spawn to exit, not to the leak verdict
}

TEST_F(PoolTest, OrphanedGrandchildIsKilled) {
  FinishedJob job = RunOne(Spec("tf_orphan_pid"));
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kLeaked) << job.state.Describe();
  const std::string prefix = "tf_orphan_pid: grandchild ";
  ASSERT_TRUE(job.out.text.starts_with(prefix)) << job.out.text;
  pid_t grandchild = std::stoi(job.out.text.substr(prefix.size()));
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(DiesWithin(grandchild, 5s));  // it pauses forever unless its group was killed
}

TEST_F(PoolTest, MissingExecutableFailsToStart) {
  std::string missing = Fixture("tf_does_not_exist");
  pool_->Start(3, LaunchSpec{{missing}, {}, "", 0ms, 2000ms, ""});
  std::vector<FinishedJob> done = pool_->TakeFinished();  // surfaces as a finished job
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].token, 3u);
  EXPECT_EQ(done[0].state.kind(), ExitState::Kind::kSpawnFailed);
  EXPECT_EQ(done[0].state.spawn_errno(), ENOENT);
  EXPECT_NE(done[0].state.detail().find("No such file or directory"), std::string::npos);
  EXPECT_NE(done[0].state.detail().find(missing), std::string::npos) << done[0].state.detail();
  EXPECT_EQ(pool_->running(), 0u);
}

TEST_F(PoolTest, FileWithoutExecuteBitFailsToStart) {
  fs::path file = root_.path() / "not_executable";
  std::ofstream(file) << "#!/bin/sh\nexit 0\n";
  ::chmod(file.c_str(), 0644);
  FinishedJob job = RunOne(LaunchSpec{{file.string()}, {}, "", 0ms, 2000ms, ""});
  fs::remove(file);
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kSpawnFailed);
  EXPECT_EQ(job.state.spawn_errno(), EACCES);
  EXPECT_NE(job.state.detail().find("Permission denied"), std::string::npos) << job.state.detail();
}

TEST_F(PoolTest, GarbageFileFailsToStart) {
  fs::path file = root_.path() / "garbage";
  std::ofstream(file) << "this is not a program\n";
  ::chmod(file.c_str(), 0755);
  FinishedJob job = RunOne(LaunchSpec{{file.string()}, {}, "", 0ms, 2000ms, ""});
  fs::remove(file);
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kSpawnFailed);
  EXPECT_EQ(job.state.spawn_errno(), ENOEXEC) << job.state.detail();
}

TEST_F(PoolTest, DirectoryFailsToStart) {
  FinishedJob job = RunOne(LaunchSpec{{TESTFARM_FIXTURE_DIR}, {}, "", 0ms, 2000ms, ""});
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kSpawnFailed);
  EXPECT_EQ(job.state.spawn_errno(), EISDIR);
  EXPECT_NE(job.state.detail().find("Is a directory"), std::string::npos) << job.state.detail();
}

TEST_F(PoolTest, EmptyCommandLineFailsToStart) {
  FinishedJob job = RunOne(LaunchSpec{});
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kSpawnFailed);
}

TEST_F(PoolTest, JobSeesItsEnvironmentAndAPrivateTmpdir) {
  FinishedJob job = RunOne(Spec("tf_env"), 12345);
  EXPECT_EQ(job.state, ExitState::Exited(0)) << job.out.text;  // 0: TMPDIR existed, writable
  EXPECT_EQ(EnvValue(job.out.text, "TESTFARM_WORKER"), "pool-test");
  EXPECT_EQ(EnvValue(job.out.text, "TESTFARM_SLOT"), "0");
  EXPECT_EQ(EnvValue(job.out.text, "TESTFARM_JOB"), "12345");
  fs::path tmpdir = EnvValue(job.out.text, "TMPDIR");
  EXPECT_EQ(tmpdir.parent_path(), root_.path());
  ASSERT_TRUE(fs::is_directory(tmpdir));
  EXPECT_TRUE(fs::is_empty(tmpdir)) << "the job's files outlived it";
  EXPECT_EQ(fs::status(tmpdir).permissions() & fs::perms::all, fs::perms::owner_all);
  pool_.reset();
  EXPECT_FALSE(fs::exists(tmpdir)) << "TMPDIR outlived its pool";
  pool_ = MakePool(2);  // for TearDown's health check
}

TEST_F(PoolTest, EnvironmentIsInheritedWithAdditionsOnTop) {
  if (!fs::exists("/usr/bin/env")) GTEST_SKIP() << "no /usr/bin/env";
  ::setenv("TESTFARM_POOL_TEST_INHERITED", "from-parent", 1);
  ::setenv("TESTFARM_POOL_TEST_OVERRIDDEN", "from-parent", 1);
  LaunchSpec spec{
      {"/usr/bin/env"}, {{"TESTFARM_POOL_TEST_OVERRIDDEN", "from-spec"}}, "", 0ms, 2000ms, ""};
  spec.env["TESTFARM_POOL_TEST_ADDED"] = "a=b";
  FinishedJob job = RunOne(std::move(spec));
  ::unsetenv("TESTFARM_POOL_TEST_INHERITED");
  ::unsetenv("TESTFARM_POOL_TEST_OVERRIDDEN");
  EXPECT_EQ(job.state, ExitState::Exited(0));
  const std::string& env = job.out.text;
  EXPECT_NE(env.find("\nTESTFARM_POOL_TEST_INHERITED=from-parent\n"), std::string::npos);
  EXPECT_NE(env.find("\nTESTFARM_POOL_TEST_OVERRIDDEN=from-spec\n"), std::string::npos);
  EXPECT_EQ(env.find("TESTFARM_POOL_TEST_OVERRIDDEN=from-parent"), std::string::npos);
  EXPECT_NE(env.find("\nTESTFARM_POOL_TEST_ADDED=a=b\n"), std::string::npos);
}

TEST_F(PoolTest, StdinIsDevNull) {
  FinishedJob job = RunOne(Spec("tf_stdin"));
  EXPECT_EQ(job.state, ExitState::Exited(0));
  EXPECT_EQ(job.out.text, "tf_stdin: stdin is empty\n");
}

TEST_F(PoolTest, NoFdsLeakIntoTheJob) {
  FinishedJob job = RunOne(Spec("tf_fds"));
  EXPECT_EQ(job.state, ExitState::Exited(0)) << job.out.text;
}

TEST_F(PoolTest, EvenFdsWithoutCloexecDoNotLeak) {
  int stray = ::open("/dev/null", O_RDONLY);  // deliberately inheritable
  ASSERT_GE(stray, 0);
  FinishedJob job = RunOne(Spec("tf_fds"));
  ::close(stray);
  EXPECT_EQ(job.state, ExitState::Exited(0)) << job.out.text;
}

TEST_F(PoolTest, WorkingDirectoryIsSetBeforeExec) {
  // A relative argv[0] resolves against the job's cwd.
  FinishedJob job = RunOne(LaunchSpec{{"./tf_pass"}, {}, TESTFARM_FIXTURE_DIR, 0ms, 2000ms, ""});
  EXPECT_EQ(job.state, ExitState::Exited(0)) << job.state.Describe();
}

TEST_F(PoolTest, MissingWorkingDirectoryFailsToStart) {
  std::string cwd = (root_.path() / "no_such_dir").string();
  FinishedJob job = RunOne(LaunchSpec{{Fixture("tf_pass")}, {}, cwd, 0ms, 2000ms, ""});
  EXPECT_EQ(job.state.kind(), ExitState::Kind::kSpawnFailed);
  EXPECT_NE(job.state.detail().find(cwd), std::string::npos) << job.state.detail();
}

TEST_F(PoolTest, ChildGetsDefaultSignalDispositionsAndEmptyMask) {
  // The worker may ignore or block SIGTERM; its tests must still die of it.
  struct sigaction ignore {};
  struct sigaction old_action {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGTERM, &ignore, &old_action);
  sigset_t block;
  sigset_t old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  LaunchSpec spec = Spec("tf_hang");
  spec.timeout = 100ms;
  spec.kill_grace = 60s;  // a SIGKILL would not come in time: only SIGTERM can end it
  pool_->Start(1, std::move(spec));
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGTERM, &old_action, nullptr);
  std::vector<FinishedJob> done = RunUntil(*pool_, clock_, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].state, ExitState::TimedOut("SIGTERM")) << done[0].state.Describe();
}

TEST_F(PoolTest, CancelRunningJob) {
  pool_->Start(5, Spec("tf_hang"));
  int pgid = pool_->PidOf(5).value_or(0);
  pool_->Cancel(5, "run aborted");
  std::vector<FinishedJob> done = RunUntil(*pool_, clock_, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].token, 5u);
  EXPECT_EQ(done[0].state, ExitState::Cancelled("run aborted")) << done[0].state.Describe();
  EXPECT_TRUE(GroupGone(pgid));
}

TEST_F(PoolTest, CancelEscalatesToKill) {
  LaunchSpec spec = Spec("tf_ignore_term");
  spec.kill_grace = 200ms;
  pool_->Start(5, std::move(spec));
  pool_->Cancel(5, "lease revoked");
  std::vector<FinishedJob> done = RunUntil(*pool_, clock_, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].state, ExitState::Cancelled("lease revoked")) << done[0].state.Describe();
}

TEST_F(PoolTest, CancelUnknownTokenIsIgnored) {
  pool_->Cancel(999, "nobody");
  pool_->CancelAll("nobody");
  EXPECT_TRUE(pool_->TakeFinished().empty());
}

TEST_F(PoolTest, CancelAllCancelsEveryJob) {
  pool_->Start(1, Spec("tf_hang"));
  pool_->Start(2, Spec("tf_hang"));
  pool_->CancelAll("shutdown");
  std::vector<FinishedJob> done = RunUntil(*pool_, clock_, 2);
  ASSERT_EQ(done.size(), 2u);
  for (const FinishedJob& job : done) EXPECT_EQ(job.state, ExitState::Cancelled("shutdown"));
}

TEST_F(PoolTest, SlotsAreHonoured) {
  EXPECT_EQ(pool_->slots(), 2u);
  pool_->Start(1, Spec("tf_env"));
  EXPECT_TRUE(pool_->HasFreeSlot());
  pool_->Start(2, Spec("tf_env"));
  EXPECT_FALSE(pool_->HasFreeSlot());
  EXPECT_EQ(pool_->running(), 2u);
  std::vector<FinishedJob> done = RunUntil(*pool_, clock_, 2);
  ASSERT_EQ(done.size(), 2u);
  std::set<std::string> seen;
  for (const FinishedJob& job : done) {
    EXPECT_EQ(job.state, ExitState::Exited(0));
    std::string slot = EnvValue(job.out.text, "TESTFARM_SLOT");
    EXPECT_TRUE(slot == "0" || slot == "1") << slot;
    EXPECT_EQ(slot, std::to_string(job.slot));
    seen.insert(slot);
  }
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(PoolTest, StartWithoutAFreeSlotFailsAsAValue) {
  pool_->Start(1, Spec("tf_hang"));
  pool_->Start(2, Spec("tf_hang"));
  pool_->Start(3, Spec("tf_pass"));
  std::vector<FinishedJob> refused = pool_->TakeFinished();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].token, 3u);
  EXPECT_EQ(refused[0].state.kind(), ExitState::Kind::kSpawnFailed);
  pool_->CancelAll("done");
  EXPECT_EQ(RunUntil(*pool_, clock_, 2).size(), 2u);
}

TEST_F(PoolTest, ManyJobsReuseSlots) {
  pool_ = MakePool(3);
  const uint64_t jobs = 24;
  uint64_t next = 0;
  std::vector<FinishedJob> done;
  SteadyTime give_up = clock_.Now() + kBound;
  while (done.size() < jobs && clock_.Now() < give_up) {
    while (next < jobs && pool_->HasFreeSlot()) {
      pool_->Start(next, Spec(next % 2 ? "tf_fail" : "tf_pass"));
      ++next;
    }
    PollOnce(*pool_, clock_, give_up);
    for (FinishedJob& job : pool_->TakeFinished()) done.push_back(std::move(job));
  }
  ASSERT_EQ(done.size(), jobs);
  for (const FinishedJob& job : done) {
    EXPECT_EQ(job.state, ExitState::Exited(job.token % 2 ? 1 : 0)) << job.token;
    EXPECT_LT(job.slot, 3u);
  }
}

TEST_F(PoolTest, TimeoutFollowsTheInjectedClock) {
  FakeClock& fake = fake_clock_;
  pool_ = MakePool(1, &fake);
  LaunchSpec spec = Spec("tf_hang");
  spec.timeout = 1000ms;
  pool_->Start(1, std::move(spec));
  EXPECT_EQ(pool_->NextDeadline(), fake.Now() + 1000ms);
  pool_->OnTimers();
  EXPECT_TRUE(pool_->TakeFinished().empty());
  fake.Advance(1000ms);  // an hour of real time would not matter; this does
  std::vector<FinishedJob> done = RunUntil(*pool_, fake, 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].state, ExitState::TimedOut("SIGTERM"));
  EXPECT_EQ(done[0].duration, 1000ms);  // measured on the injected clock
  pool_ = MakePool(2);                  // TearDown runs on the real clock
}

TEST_F(PoolTest, DestructorKillsRunningJobs) {
  auto pool = MakePool(3);
  pool->Start(1, Spec("tf_hang"));
  pool->Start(2, Spec("tf_ignore_term"));
  pool->Start(3, Spec("tf_orphan"));
  std::vector<int> pids;
  for (uint64_t token : {1, 2, 3}) pids.push_back(pool->PidOf(token).value_or(0));
  pool.reset();
  for (int pid : pids) {
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(ProcessGone(pid)) << pid;
  }
  EXPECT_TRUE(GroupGone(pids[0]));
  EXPECT_TRUE(GroupGone(pids[1]));
  EXPECT_TRUE(fs::is_empty(root_.path()));
}

}  // namespace
}  // namespace testfarm::worker

namespace testfarm::worker {
namespace {

LaunchSpec Shell(const std::string& script) {
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.timeout = std::chrono::seconds(10);
  return spec;
}

TEST_F(PoolTest, ReportFileIsReadBackFromTheJobsTmpdir) {
  LaunchSpec spec = Shell("printf '{\"ok\": 1}' > \"${REPORT_TO#json:}\"");
  spec.report_env = "REPORT_TO=json:";
  FinishedJob job = RunOne(spec);
  EXPECT_EQ(job.state, ExitState::Exited(0)) << job.err.text;
  EXPECT_EQ(job.report_error, "");
  EXPECT_EQ(job.report, "{\"ok\": 1}");
}

TEST_F(PoolTest, AMissingReportFileIsAnErrorValue) {
  LaunchSpec spec = Shell("exit 0");
  spec.report_env = "REPORT_TO=json:";
  FinishedJob job = RunOne(spec);
  EXPECT_EQ(job.state, ExitState::Exited(0));
  EXPECT_EQ(job.report, "");
  EXPECT_EQ(job.report_error, "the test did not write its report file");
}

TEST_F(PoolTest, AReportThatIsNotARegularFileIsRefused) {
  LaunchSpec spec = Shell("mkdir \"${REPORT_TO#json:}\"");
  spec.report_env = "REPORT_TO=json:";
  FinishedJob job = RunOne(spec);
  EXPECT_EQ(job.report_error, "the report file is not a regular file");
}

TEST_F(PoolTest, NoReportAskedNoReportGiven) {
  FinishedJob job = RunOne(Shell("echo $REPORT_TO"));
  EXPECT_EQ(job.out.text, "\n");
  EXPECT_EQ(job.report, "");
  EXPECT_EQ(job.report_error, "");
}

}  // namespace
}  // namespace testfarm::worker
