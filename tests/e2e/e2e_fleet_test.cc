// End to end for the fleet on loopback: a coordinator with --listen and separate worker
// processes. Every test must be reported exactly once whatever happens to the workers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"
#include "tests/support/loopback_port.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

struct UsageCase {
  std::vector<std::string> args;
  std::string expected;
};

// Each command line is refused with exit code 2 and a line containing `expected` on stderr.
void ExpectUsageErrors(const std::vector<UsageCase>& cases) {
  for (const UsageCase& c : cases) {
    std::vector<std::string> argv = c.args;
    argv.insert(argv.begin(), TESTFARM_BINARY);
    ChildResult r = RunChild(argv);
    EXPECT_EQ(r.exit_code, 2) << c.expected << "\n" << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos)
        << "wanted '" << c.expected << "' in " << r.err;
  }
}

TEST(E2EFleet, ThreeWorkersRunEveryTestExactlyOnce) {
  std::vector<std::string> args = {"--local-slots", "0", "--min-workers", "3"};
  for (int i = 0; i < 280; ++i) args.push_back(Fixture(i % 3 ? "tf_pass" : "tf_env"));
  args.push_back(Fixture("tf_gtest_pass"));
  std::string endpoint;
  auto coordinator = StartCoordinator(args, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  auto a = StartWorker(endpoint, "a", {"--slots", "2"});
  auto b = StartWorker(endpoint, "b", {"--slots", "2"});
  auto c = StartWorker(endpoint, "c", {"--slots", "1"});
  ChildResult r = coordinator->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "300 passed, 0 failed") << r.out;
  EXPECT_EQ(Count(r.out, "\nPASS "), 300) << r.out;
  for (auto* w : {a.get(), b.get(), c.get()}) {
    ChildResult wr = w->Finish(milliseconds(20000));
    EXPECT_EQ(wr.exit_code, 0) << wr.err;
  }
}

TEST(E2EFleet, AWorkerKilledMidRunHasItsTestsRunElsewhere) {
  TempDir dir;
  fs::path manifest = SleepManifest(dir, 12, 300);
  std::string endpoint;
  auto coordinator = StartCoordinator(
      {"--manifest", manifest.string(), "--local-slots", "0", "--min-workers", "2"}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  auto doomed = StartWorker(endpoint, "doomed", {"--slots", "2"});
  auto survivor = StartWorker(endpoint, "survivor", {"--slots", "2"});
  ASSERT_TRUE(coordinator->WaitForOutput("PASS", milliseconds(30000))) << coordinator->out();
  kill(doomed->pid(), SIGKILL);
  ChildResult r = coordinator->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "12 passed, 0 failed") << r.out;
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(Count(r.out, "  sleep" + std::to_string(i) + "\n"), 1) << "sleep" << i << "\n"
                                                                     << r.out;
  }
  EXPECT_EQ(survivor->Finish(milliseconds(20000)).exit_code, 0);
}

TEST(E2EFleet, ATestThatKillsItsWorkersIsQuarantinedAfterTwo) {
  // Four workers for two losses: a test that kills its worker the instant it starts can, rarely,
  // take the worker's last messages with it (its `started`, and the result of the test before
  // it, still queued in ZeroMQ): the coordinator then cannot tell it was running there, does
  // not blame it for that loss, and it takes a third worker. The run must still end.
  std::string endpoint;
  auto coordinator =
      StartCoordinator({"--local-slots", "0", "--min-workers", "4", Fixture("tf_kill_parent"),
                        Fixture("tf_pass"), Fixture("tf_pass"), Fixture("tf_pass")},
                       &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  std::vector<std::unique_ptr<BackgroundChild>> workers;
  for (const char* name : {"w1", "w2", "w3", "w4"})
    workers.push_back(StartWorker(endpoint, name, {"--slots", "1"}));
  ChildResult r = coordinator->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "3 passed, 1 failed") << r.out;
  EXPECT_NE(r.out.find("worker lost"), std::string::npos) << r.out;
  EXPECT_EQ(Count(r.out, "tf_kill_parent  ("), 2) << "its line and the summary's:\n" << r.out;
  if (HasFailure()) {
    for (auto& w : workers) {
      ChildResult wr = w->Finish(milliseconds(5000));
      ADD_FAILURE() << "worker exit " << wr.exit_code << "\n" << wr.out << wr.err;
    }
  }
}

// A FIFO a test writes a line to when it starts ("started"), read without blocking the test
// forever.
class StartedFifo {
 public:
  explicit StartedFifo(const fs::path& path) : path_(path.string()) {
    if (::mkfifo(path_.c_str(), 0600) == 0) fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK);
  }
  ~StartedFifo() {
    if (fd_ >= 0) ::close(fd_);
  }
  StartedFifo(const StartedFifo&) = delete;
  StartedFifo& operator=(const StartedFifo&) = delete;
  const std::string& path() const { return path_; }
  // True once a test has written its line; false after `deadline`.
  bool WaitForStart(milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (true) {
      auto left =
          std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
      if (fd_ < 0 || left.count() <= 0) return false;
      pollfd item{fd_, POLLIN, 0};
      if (::poll(&item, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[64];
      if (::read(fd_, buffer, sizeof buffer) > 0) return true;
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// A manifest: `first` says it started on `fifo` and then sleeps `first_ms`; then `rest` suites
// that sleep 50 ms.
fs::path DrainManifest(const TempDir& dir, const StartedFifo& fifo, int first_ms, int rest) {
  fs::path manifest = dir.path() / "drain.toml";
  std::ofstream out(manifest);
  out << "[[suite]]\nname = \"first\"\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"echo started > "
      << fifo.path() << "; exec " << Fixture("tf_sleep") << " " << first_ms << "\"]\n\n";
  for (int i = 0; i < rest; ++i) {
    out << "[[suite]]\nname = \"rest" << i << "\"\ncommand = \"" << Fixture("tf_sleep")
        << "\"\nargs = [\"50\"]\n\n";
  }
  return manifest;
}

// The worker that ran each test's last attempt, from a JSON report; a test named twice (two
// attempts) is named "twice".
std::map<std::string, std::string> WorkerOfEachTest(const fs::path& report) {
  std::ifstream in(report);
  nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
  std::map<std::string, std::string> workers;
  if (!json.is_object() || !json["attempts"].is_array()) return workers;
  for (const nlohmann::json& attempt : json["attempts"]) {
    const nlohmann::json& worker = attempt["worker"];
    std::string name = attempt["name"].get<std::string>();
    workers[name] = workers.count(name) != 0 ? "twice"
                    : worker.is_string()     ? worker.get<std::string>()
                                             : "";
  }
  return workers;
}

// What a drain did: a worker named "draining" (one slot) alone runs `first` (sleeping
// `first_ms`) with `rest` more tests held, a worker "other" joins, "draining" gets SIGTERM.
struct Drained {
  ChildResult draining;  // the drained worker's exit
  ChildResult run;       // the coordinator's
  ChildResult other;
  std::map<std::string, std::string> workers;  // by test, from the JSON report
};

Drained DrainMidRun(int first_ms, int rest, const std::string& drain_timeout) {
  Drained drained;
  TempDir dir;
  StartedFifo fifo(dir.path() / "started");
  fs::path manifest = DrainManifest(dir, fifo, first_ms, rest);
  fs::path report = dir.path() / "report.json";
  std::string endpoint;
  auto coordinator = StartCoordinator(
      {"--manifest", manifest.string(), "--local-slots", "0", "--json", report.string()},
      &endpoint);
  if (endpoint.empty()) {
    ADD_FAILURE() << coordinator->out();
    return drained;
  }
  // One slot and a prefetch window: it holds tests it has not started when it is told to stop.
  auto draining =
      StartWorker(endpoint, "draining", {"--slots", "1", "--drain-timeout", drain_timeout});
  if (!fifo.WaitForStart(milliseconds(30000))) {
    ADD_FAILURE() << "no test started\n" << coordinator->out();
    return drained;
  }
  auto other = StartWorker(endpoint, "other", {"--slots", "1"});
  EXPECT_EQ(::kill(draining->pid(), SIGTERM), 0);
  drained.draining = draining->Finish(milliseconds(30000));
  drained.run = coordinator->Finish(milliseconds(60000));
  drained.other = other->Finish(milliseconds(20000));
  drained.workers = WorkerOfEachTest(report);
  return drained;
}

TEST(E2EFleet, ADrainedWorkerFinishesItsRunningTestAndHandsBackTheRestAtOnce) {
  Drained d = DrainMidRun(1500, 4, "60s");
  EXPECT_EQ(d.draining.exit_code, 0) << d.draining.out << d.draining.err;
  EXPECT_NE(d.draining.err.find("draining"), std::string::npos) << d.draining.err;
  EXPECT_NE(d.draining.err.find("drained: every running test finished"), std::string::npos)
      << d.draining.err;
  const ChildResult& r = d.run;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "5 passed, 0 failed") << r.out;
  EXPECT_EQ(r.err.find("lost"), std::string::npos) << "handed back, not found dead:\n" << r.err;
  ASSERT_EQ(d.workers.size(), 5u) << r.out;
  EXPECT_EQ(d.workers["first"], "draining") << "it finished where it ran";
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(d.workers["rest" + std::to_string(i)], "other") << "handed back, run elsewhere";
  }
  EXPECT_EQ(d.other.exit_code, 0);
}

TEST(E2EFleet, ATestStillRunningWhenTheDrainTimesOutRunsAgainElsewhere) {
  Drained d = DrainMidRun(2000, 1, "100ms");
  EXPECT_EQ(d.draining.exit_code, 0) << d.draining.out << d.draining.err;
  EXPECT_NE(d.draining.err.find("the drain timed out after 100ms"), std::string::npos)
      << d.draining.err;
  const ChildResult& r = d.run;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "2 passed, 0 failed") << r.out;
  EXPECT_EQ(Count(r.out, "  first\n"), 1) << r.out;
  EXPECT_EQ(d.workers["first"], "other") << "handed back when the drain timed out, run again";
  EXPECT_EQ(d.other.exit_code, 0);
}

TEST(E2EFleet, AWorkerWithAHealthFileSaysWhenItIsConnectedAndRemovesItAtExit) {
  TempDir dir;
  StartedFifo fifo(dir.path() / "started");
  fs::path manifest = DrainManifest(dir, fifo, 100, 0);
  std::string endpoint;
  auto coordinator = StartCoordinator(
      {"--manifest", manifest.string(), "--local-slots", "0", "--wait-workers", "60s"}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  fs::path health = dir.path() / "health";
  auto worker = StartWorker(endpoint, "w", {"--health-file", health.string()});
  ASSERT_TRUE(fifo.WaitForStart(milliseconds(30000))) << coordinator->out();
  // A test runs: the worker was welcomed before it got the job, and said so in the file.
  std::ifstream in(health);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "connected " + endpoint);
  ChildResult r = coordinator->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(worker->Finish(milliseconds(20000)).exit_code, 0);
  EXPECT_FALSE(fs::exists(health)) << "removed at exit";
}

TEST(E2EFleet, RequiredLabelsPickTheWorkerOrFailAfterTheWait) {
  TempDir dir;
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream(manifest) << "[[suite]]\nname = \"needs_gpu\"\ncommand = \"" << Fixture("tf_pass")
                          << "\"\nrequires = { gpu = \"1\" }\n\n[[suite]]\nname = \"anywhere\"\n"
                          << "command = \"" << Fixture("tf_pass") << "\"\n";
  // No worker offers gpu=1: after --wait-workers the test fails with the reason.
  std::string endpoint;
  auto alone =
      StartCoordinator({"--manifest", manifest.string(), "--wait-workers", "500ms"}, &endpoint);
  ChildResult r = alone->Finish(milliseconds(30000));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("no connected worker has the labels it requires: gpu=1"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.LastLine(), "1 passed, 1 failed") << r.out;

  // A worker with the label joins: the test goes to it.
  auto with_gpu = StartCoordinator(
      {"--manifest", manifest.string(), "--min-workers", "2", "--wait-workers", "30s"}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << with_gpu->out();
  auto gpu = StartWorker(endpoint, "gpu-box", {"--labels", "gpu=1,arch=x86_64"});
  ChildResult ok = with_gpu->Finish(milliseconds(30000));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(ok.LastLine(), "2 passed, 0 failed") << ok.out;
  EXPECT_EQ(gpu->Finish(milliseconds(20000)).exit_code, 0);
}

TEST(E2EFleet, BadFleetInputIsExit2WithAClearLine) {
  std::vector<UsageCase> cases = {
      {{"run", "--listen", "tcp://0.0.0.0:*", Fixture("tf_pass")}, "without authentication"},
      {{"worker", "--connect", "tcp://192.0.2.1:7700"}, "without authentication"},
      {{"run", "--listen", "localhost:7700", Fixture("tf_pass")}, "expected tcp://HOST:PORT"},
      {{"run", "--local-slots", "0", Fixture("tf_pass")}, "--local-slots 0 needs --listen"},
      {{"worker", "--connect", "nowhere"}, "expected tcp://HOST:PORT"},
      {{"worker", "--connect", "tcp://127.0.0.1:x"}, "'x' is not a port number"},
      {{"worker", "--connect", "tcp://127.0.0.1:1", "--labels", "gpu"},
       "--labels: expected KEY=VALUE"},
      {{"worker"}, "--connect"},
  };
  ExpectUsageErrors(cases);
}

// `testfarm keygen DIR/NAME` for each name; returns false (with the output) if one failed.
::testing::AssertionResult Keygen(const TempDir& dir, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    ChildResult r = RunChild({TESTFARM_BINARY, "keygen", (dir.path() / name).string()});
    if (r.exit_code != 0) return ::testing::AssertionFailure() << r.out << r.err;
  }
  return ::testing::AssertionSuccess();
}

TEST(E2EFleet, OnlyWorkersWithAnAllowedKeyJoinAndTheRunIsUnharmed) {
  TempDir dir;
  ASSERT_TRUE(Keygen(dir, {"coord", "good", "stranger"}));
  auto key = [&](const char* file) { return (dir.path() / file).string(); };
  std::vector<std::string> args = {"--local-slots", "0", "--key", key("coord.key"), "--worker-keys",
                                   key("good.pub")};
  for (int i = 0; i < 20; ++i) args.push_back(Fixture("tf_pass"));
  std::string endpoint;
  auto coordinator = StartCoordinator(args, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();

  // A worker whose key is not on the list, and one with no key at all, are refused and say so.
  BackgroundChild stranger({TESTFARM_BINARY, "worker", "--connect", endpoint, "--name", "stranger",
                            "--key", key("stranger.key"), "--coordinator-key", key("coord.pub")});
  BackgroundChild keyless({TESTFARM_BINARY, "worker", "--connect", endpoint, "--name", "keyless"});
  EXPECT_TRUE(stranger.WaitForStderr(
      "cannot join the coordinator at " + endpoint + ": the coordinator refused our key",
      milliseconds(20000)));
  EXPECT_TRUE(
      keyless.WaitForStderr("cannot join the coordinator at " + endpoint, milliseconds(20000)));
  // A worker given the wrong coordinator key will not talk to it either.
  BackgroundChild fooled({TESTFARM_BINARY, "worker", "--connect", endpoint, "--name", "fooled",
                          "--key", key("good.key"), "--coordinator-key", key("stranger.pub")});
  EXPECT_TRUE(
      fooled.WaitForStderr("cannot join the coordinator at " + endpoint, milliseconds(20000)));

  auto good = StartWorker(endpoint, "good",
                          {"--key", key("good.key"), "--coordinator-key", key("coord.pub")});
  ChildResult r = coordinator->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "20 passed, 0 failed") << r.out;
  EXPECT_EQ(Count(r.out, "\nPASS "), 20) << r.out;
  EXPECT_EQ(Count(r.out, " joined with "), 1) << "only the allowed worker joins:\n" << r.out;
  EXPECT_NE(r.out.find("worker good joined"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("coordinator: refused a worker at 127.0.0.1: key not allowed"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(good->Finish(milliseconds(20000)).exit_code, 0);
  for (BackgroundChild* refused : {&stranger, &keyless, &fooled}) {
    kill(refused->pid(), SIGTERM);
    ChildResult wr = refused->Finish(milliseconds(20000));
    EXPECT_EQ(wr.exit_code, 0) << wr.err;
    EXPECT_EQ(wr.err.find("joined the run"), std::string::npos) << wr.err;
  }
}

TEST(E2EFleet, BadKeyInputIsExit2WithAClearLine) {
  TempDir dir;
  ASSERT_TRUE(Keygen(dir, {"coord", "w"}));
  auto key = [&](const char* file) { return (dir.path() / file).string(); };
  std::ofstream(dir.path() / "bad.key") << "# not a key\nhello\n";
  const std::string listen = "tcp://127.0.0.1:*";
  std::vector<UsageCase> cases = {
      {{"keygen", key("coord")}, "already exists; not overwriting a key"},
      {{"keygen", (dir.path() / "no" / "such" / "dir").string()}, "cannot write"},
      {{"run", "--listen", listen, "--key", key("missing.key"), "--worker-keys", key("w.pub"),
        Fixture("tf_pass")},
       "--key: cannot read key file " + key("missing.key") + ": No such file or directory"},
      {{"run", "--listen", listen, "--key", key("bad.key"), "--worker-keys", key("w.pub"),
        Fixture("tf_pass")},
       "--key: " + key("bad.key") + ": expected a secret key file"},
      {{"run", "--listen", listen, "--key", key("coord.pub"), "--worker-keys", key("w.pub"),
        Fixture("tf_pass")},
       "expected a secret key file"},
      {{"run", "--listen", listen, "--key", key("coord.key"), "--worker-keys", key("bad.key"),
        Fixture("tf_pass")},
       "--worker-keys: " + key("bad.key") + ":2: expected a worker's public key"},
      {{"run", "--listen", listen, "--key", key("coord.key"), Fixture("tf_pass")},
       "--key and --worker-keys go together"},
      {{"run", "--key", key("coord.key"), "--worker-keys", key("w.pub"), Fixture("tf_pass")},
       "they need --listen"},
      {{"worker", "--connect", "tcp://192.0.2.1:7700"}, "refusing to take commands"},
      {{"worker", "--connect", "tcp://127.0.0.1:7700", "--key", key("w.key"), "--coordinator-key",
        key("nope.pub")},
       "--coordinator-key: cannot read public key file"},
      {{"worker", "--connect", "tcp://127.0.0.1:7700", "--key", key("w.key")},
       "--key and --coordinator-key go together"},
  };
  ExpectUsageErrors(cases);
}

// A manifest whose suites need shipping: an executable loading libraries from the build tree, a
// data file read from the suite's working directory, and a GoogleTest binary.
fs::path ShippingManifest(const TempDir& dir) {
  fs::create_directories(dir.path() / "data");
  std::ofstream(dir.path() / "data" / "input.txt") << "hello\n";
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream(manifest)
      << "[[suite]]\nname = \"deps\"\ncommand = \"" << Fixture("tf_uses_deps") << "\"\n\n"
      << "[[suite]]\nname = \"data\"\ncommand = \"/bin/sh\"\ncwd = \".\"\n"
      << "data = [\"data/input.txt\"]\n"
      // Passes only with the data file in its working directory; prints where that is.
      << "args = [\"-c\", \"pwd; test \\\"$(cat data/input.txt)\\\" = hello\"]\n\n"
      << "[[suite]]\nname = \"gtest\"\ncommand = \"" << Fixture("tf_gtest_pass") << "\"\n";
  return manifest;
}

TEST(E2EFleet, AWorkerRunsShippedFilesFromItsOwnCopyUnlessTheyMatchOnASharedFilesystem) {
  TempDir dir;
  fs::path manifest = ShippingManifest(dir);
  for (bool shared_fs : {false, true}) {
    std::string endpoint;
    auto coordinator = StartCoordinator({"--local-slots", "0", "--manifest", manifest.string(),
                                         "--json", (dir.path() / "report.json").string()},
                                        &endpoint);
    ASSERT_FALSE(endpoint.empty()) << coordinator->out();
    std::vector<std::string> extra;
    if (shared_fs) extra.push_back("--shared-fs");
    auto worker = StartWorker(endpoint, "w", extra);
    ChildResult r = coordinator->Finish(milliseconds(60000));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.LastLine(), "22 passed, 0 failed") << r.out;
    ChildResult wr = worker->Finish(milliseconds(20000));
    EXPECT_EQ(wr.exit_code, 0) << wr.err;
    std::ifstream report(dir.path() / "report.json");
    nlohmann::json json = nlohmann::json::parse(report);
    std::string data_cwd;
    for (const auto& attempt : json["attempts"]) {
      if (attempt["name"] == "data") data_cwd = attempt["process"]["stdout"];
    }
    if (shared_fs) {
      EXPECT_EQ(data_cwd, dir.path().string() + "\n") << "run in place";
    } else {
      EXPECT_NE(data_cwd.find("/testfarm-suites-"), std::string::npos) << data_cwd;
    }
  }
}

// Many workers fetching the same blobs into one shared cache at once: each commits its own
// verified copy, and none may run a file another still has open for writing (ETXTBSY).
TEST(E2EFleet, WorkersSharingACacheAllRunTheBlobsTheyFetchTogether) {
  TempDir cache;
  std::vector<std::string> args = {"--local-slots", "0", "--min-workers", "8"};
  for (int i = 0; i < 64; ++i) args.push_back(Fixture("tf_uses_deps"));
  std::string endpoint;
  auto coordinator = StartCoordinator(args, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  std::vector<std::unique_ptr<BackgroundChild>> workers;
  for (int i = 0; i < 8; ++i) {
    workers.push_back(std::make_unique<BackgroundChild>(std::vector<std::string>{
        TESTFARM_BINARY, "worker", "--connect", endpoint, "--once", "--name",
        "w" + std::to_string(i), "--slots", "2", "--cache-dir", cache.path().string()}));
  }
  ChildResult r = coordinator->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "64 passed, 0 failed") << r.out;
  for (auto& w : workers) EXPECT_EQ(w->Finish(milliseconds(20000)).exit_code, 0);
}

// A 2 GiB executable is fetched, verified (SHA-256 of every byte), synced and committed while
// both sides expect a heartbeat every 200 ms and give up after 1 s of silence: the worker's loop
// never stops for the blob, so it is never declared dead and the test runs once.
TEST(E2EFleet, AWorkerVerifyingATwoGibBlobKeepsItsHeartbeats) {
  TempDir dir;
  TempDir cache;
  const fs::path big = dir.path() / "big-test";
  {
    std::ofstream script(big);
    script << "#!/bin/sh\nexit 0\n";
  }
  fs::resize_file(big, uint64_t{2} << 30);  // sparse here; every byte is shipped and hashed
  fs::permissions(big, fs::perms::owner_all);
  const std::vector<std::string> liveness = {"--heartbeat", "200ms", "--liveness", "5"};
  std::vector<std::string> args = {"--local-slots", "0", big.string()};
  args.insert(args.end(), liveness.begin(), liveness.end());
  std::string endpoint;
  auto coordinator = StartCoordinator(args, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  std::vector<std::string> worker_args = {
      TESTFARM_BINARY,      "worker", "--connect", endpoint, "--once", "--name", "w", "--cache-dir",
      cache.path().string()};
  worker_args.insert(worker_args.end(), liveness.begin(), liveness.end());
  BackgroundChild worker(worker_args);
  ChildResult r = coordinator->Finish(milliseconds(110000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "1 passed, 0 failed") << r.out;
  EXPECT_EQ(r.err.find("silent for"), std::string::npos) << r.err;
  EXPECT_EQ(Count(r.out, "joined"), 1) << r.out;
  ChildResult wr = worker.Finish(milliseconds(20000));
  EXPECT_EQ(wr.exit_code, 0) << wr.err;
  EXPECT_EQ(wr.err.find("no word from it"), std::string::npos) << wr.err;
}

TEST(E2EFleet, AWorkerThatCannotSeeTheCoordinatorsFilesGetsThemShipped) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a mount namespace hides the files)";
  if (RunChild({"/usr/bin/unshare", "--mount", "true"}).exit_code != 0) {
    GTEST_SKIP() << "cannot create a mount namespace (unshare --mount failed)";
  }
  TempDir dir;
  TempDir cache;
  fs::path manifest = ShippingManifest(dir);
  std::string endpoint;
  auto coordinator =
      StartCoordinator({"--local-slots", "0", "--manifest", manifest.string()}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  // The worker's machine has neither the fixtures (executables and libraries) nor the data.
  std::string hide = "mount -t tmpfs none " + std::string(TESTFARM_FIXTURE_DIR) +
                     " && mount -t tmpfs none " + dir.path().string() + " && exec " +
                     TESTFARM_BINARY + " worker --once --name isolated --connect " + endpoint +
                     " --cache-dir " + cache.path().string();
  BackgroundChild worker(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", hide});
  ChildResult r = coordinator->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "22 passed, 0 failed") << r.out;
  EXPECT_EQ(Count(r.out, "\nPASS "), 22) << r.out;
  ChildResult wr = worker.Finish(milliseconds(20000));
  EXPECT_EQ(wr.exit_code, 0) << wr.err;
}

TEST(E2EFleet, AWorkerWithNoCoordinatorKeepsRetryingUntilStoppedAndSaysWhy) {
  LoopbackSocket refusing(false);  // nothing listens there
  std::string endpoint = "tcp://127.0.0.1:" + std::to_string(refusing.port());
  BackgroundChild worker({TESTFARM_BINARY, "worker", "--connect", endpoint, "--heartbeat", "300ms",
                          "--name", "lonely"});
  std::string why = "cannot join the coordinator at " + endpoint +
                    ": connection refused: nothing listens at " + endpoint.substr(6);
  ASSERT_TRUE(worker.WaitForStderr(why + "; retrying in 1.00s", milliseconds(20000)));
  ASSERT_TRUE(worker.WaitForStderr(why + "; retrying in 2.00s", milliseconds(20000)))
      << "the delay doubles";
  kill(worker.pid(), SIGTERM);
  ChildResult r = worker.Finish(milliseconds(20000));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("heartbeats"), std::string::npos) << "says why, not how long:\n" << r.err;
}

TEST(E2EFleet, ConnectTimeoutEndsAWorkerThatCannotJoinWithTheReason) {
  LoopbackSocket refusing(false);
  std::string endpoint = "tcp://127.0.0.1:" + std::to_string(refusing.port());
  for (bool once : {true, false}) {
    std::vector<std::string> argv = {TESTFARM_BINARY, "worker",  "--connect",         endpoint,
                                     "--name",        "bounded", "--connect-timeout", "1500ms"};
    if (once) argv.push_back("--once");
    ChildResult r = RunChild(argv);
    EXPECT_EQ(r.exit_code, 1) << "once " << once << ": " << r.err;
    EXPECT_NE(r.err.find("worker bounded: cannot join the coordinator at " + endpoint +
                         ": connection refused: nothing listens at " + endpoint.substr(6) +
                         "; gave up after 1.50s (--connect-timeout)"),
              std::string::npos)
        << r.err;
  }
}

TEST(E2EFleet, AWorkerWhoseKeyIsRefusedGivesUpSayingSo) {
  TempDir dir;
  ASSERT_TRUE(Keygen(dir, {"coord", "good", "stranger"}));
  auto key = [&](const char* file) { return (dir.path() / file).string(); };
  std::string endpoint;
  auto coordinator = StartCoordinator({"--local-slots", "0", "--key", key("coord.key"),
                                       "--worker-keys", key("good.pub"), Fixture("tf_pass")},
                                      &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  ChildResult r = RunChild({TESTFARM_BINARY, "worker", "--connect", endpoint, "--once", "--name",
                            "stranger", "--connect-timeout", "2s", "--key", key("stranger.key"),
                            "--coordinator-key", key("coord.pub")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("worker stranger: cannot join the coordinator at " + endpoint +
                       ": the coordinator refused our key; gave up after 2.00s"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace testfarm::test
