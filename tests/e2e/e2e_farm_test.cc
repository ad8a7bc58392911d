// End to end for the standing farm on loopback: `testfarm serve`, workers that stay, and
// clients (`testfarm run --farm`) submitting at once. Each run's tests are reported exactly
// once, to its own client only, whatever happens to the clients, the workers or the farm.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A worker of the farm that stays across runs (and reconnects when the farm is gone).
std::unique_ptr<BackgroundChild> StartFarmWorker(const std::string& endpoint,
                                                 const std::string& name, int slots,
                                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {
      TESTFARM_BINARY,       "worker",      "--connect",     endpoint, "--name", name, "--slots",
      std::to_string(slots), "--cache-dir", WorkerCacheDir()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<BackgroundChild>(argv);
}

// `testfarm run --farm ENDPOINT ARGS...` left running.
std::unique_ptr<BackgroundChild> StartClient(const std::string& endpoint,
                                             std::vector<std::string> args) {
  std::vector<std::string> argv = {TESTFARM_BINARY, "run",          "--farm",
                                   endpoint,        "--kill-grace", "200ms"};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<BackgroundChild>(argv);
}

nlohmann::json FarmStatus(const std::string& endpoint, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"status", "--farm", endpoint, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  ChildResult r = Testfarm(args);
  if (r.exit_code != 0) return nlohmann::json();
  return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

// Asks the farm until `done(status)` holds or `bound` passes; true if it held.
template <typename Predicate>
bool WaitForStatus(const std::string& endpoint, milliseconds bound, Predicate done) {
  auto until = Clock::now() + bound;
  while (Clock::now() < until) {
    nlohmann::json status = FarmStatus(endpoint);
    if (status.is_object() && done(status)) return true;
  }
  return false;
}

// Whether any worker runs a test whose name starts with `prefix`.
bool Runs(const nlohmann::json& status, const std::string& prefix) {
  for (const auto& worker : status["workers"]) {
    for (const auto& test : worker["tests"]) {
      if (test.get<std::string>().rfind(prefix, 0) == 0) return true;
    }
  }
  return false;
}

std::size_t Workers(const nlohmann::json& status) {
  return status.is_object() ? status["workers"].size() : 0;
}

TEST(E2EFarm, TwoClientsAtOnceEachHearOnlyTheirOwnTestsExactlyOnce) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto w1 = StartFarmWorker(endpoint, "w1", 2);
  auto w2 = StartFarmWorker(endpoint, "w2", 2);
  auto w3 = StartFarmWorker(endpoint, "w3", 1);
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Workers(s) == 3; }));
  fs::path a_manifest = SleepManifest(dir, 12, 100, "a");
  fs::path b_manifest = SleepManifest(dir, 12, 100, "b");
  fs::path a_json = dir.path() / "a.json";
  fs::path b_junit = dir.path() / "b.xml";
  auto a = StartClient(endpoint, {"--manifest", a_manifest.string(), "--json", a_json.string(),
                                  "--run-label", "commit-a"});
  auto b = StartClient(endpoint, {"--manifest", b_manifest.string(), "--junit", b_junit.string(),
                                  Fixture("tf_gtest_pass")});
  ChildResult ra = a->Finish(milliseconds(60000));
  ChildResult rb = b->Finish(milliseconds(60000));
  EXPECT_EQ(ra.exit_code, 0) << ra.out << ra.err;
  EXPECT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_EQ(ra.LastLine(), "12 passed, 0 failed") << ra.out;
  for (int i = 0; i < 12; ++i) {
    std::string n = std::to_string(i);
    EXPECT_EQ(Count(ra.out, "  a" + n + "\n"), 1) << ra.out;
    EXPECT_EQ(Count(rb.out, "  b" + n + "\n"), 1) << rb.out;
  }
  EXPECT_EQ(Count(ra.out, "  b"), 0) << "a heard of b's tests:\n" << ra.out;
  EXPECT_EQ(Count(rb.out, "  a"), 0) << "b heard of a's tests:\n" << rb.out;
  // The reports are written by the client, as for a local run.
  std::ifstream json_file(a_json);
  nlohmann::json report = nlohmann::json::parse(json_file, nullptr, false);
  ASSERT_TRUE(report.is_object()) << a_json;
  EXPECT_EQ(report["attempts"].size(), 12u) << report.dump();
  EXPECT_EQ(report["run"]["tests"], 12) << report.dump();
  EXPECT_TRUE(fs::exists(b_junit));
  // The workers stay for the next run; the farm is idle again.
  nlohmann::json status = FarmStatus(endpoint);
  EXPECT_EQ(Workers(status), 3u) << status.dump();
  EXPECT_TRUE(status["runs"].empty()) << status.dump();
  // The same files again: the farm's store already holds them, nothing is uploaded.
  ChildResult again = Testfarm(
      {"run", "--farm", endpoint, "--manifest", a_manifest.string(), "--log-level", "info"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(Count(again.err, "uploading"), 0) << again.err;
}

TEST(E2EFarm, AClientKilledMidRunHasItsTestsGoneFromTheWorkersWithinThreeSeconds) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {"--heartbeat", "500ms"}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto w1 = StartFarmWorker(endpoint, "w1", 2);
  auto w2 = StartFarmWorker(endpoint, "w2", 2);
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Workers(s) == 2; }));
  auto doomed =
      StartClient(endpoint, {"-v", "--manifest", SleepManifest(dir, 4, 60000, "doomed").string()});
  auto other = StartClient(endpoint, {"--manifest", SleepManifest(dir, 8, 300, "other").string()});
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000), [](const nlohmann::json& s) {
    return Runs(s, "doomed");
  })) << doomed->out();
  kill(doomed->pid(), SIGKILL);
  auto killed_at = Clock::now();
  EXPECT_TRUE(WaitForStatus(endpoint, milliseconds(10000),
                            [](const nlohmann::json& s) { return !Runs(s, "doomed"); }));
  auto gone_after = std::chrono::duration_cast<milliseconds>(Clock::now() - killed_at);
  EXPECT_LE(gone_after.count(), 3000) << "its tests still ran on the workers";
  std::cout << "[ note     ] the killed client's tests left the workers within "
            << gone_after.count() << " ms\n";
  ChildResult r = other->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "8 passed, 0 failed") << r.out;
}

TEST(E2EFarm, AWorkerKilledMidRunHasItsTestsRunElsewhere) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto doomed = StartFarmWorker(endpoint, "doomed", 2);
  auto survivor = StartFarmWorker(endpoint, "survivor", 2);
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Workers(s) == 2; }));
  auto client = StartClient(endpoint, {"--manifest", SleepManifest(dir, 12, 300).string()});
  ASSERT_TRUE(client->WaitForOutput("PASS", milliseconds(30000))) << client->out();
  kill(doomed->pid(), SIGKILL);
  ChildResult r = client->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "12 passed, 0 failed") << r.out;
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(Count(r.out, "  sleep" + std::to_string(i) + "\n"), 1) << r.out;
  }
}

TEST(E2EFarm, AWorkerDrainedMidRunLosesNoTestAndLeavesTheFarmAtOnce) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto draining = StartFarmWorker(endpoint, "draining", 2, {"--drain-timeout", "60s"});
  auto steady = StartFarmWorker(endpoint, "steady", 2);
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Workers(s) == 2; }));
  auto client = StartClient(endpoint, {"--manifest", SleepManifest(dir, 12, 300).string()});
  ASSERT_TRUE(client->WaitForOutput("PASS", milliseconds(30000))) << client->out();
  ASSERT_EQ(::kill(draining->pid(), SIGTERM), 0);
  ChildResult d = draining->Finish(milliseconds(30000));
  EXPECT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_NE(d.err.find("drained: every running test finished"), std::string::npos) << d.err;
  // It said goodbye: the farm lets it go at once, not after a liveness timeout.
  EXPECT_TRUE(WaitForStatus(endpoint, milliseconds(2000),
                            [](const nlohmann::json& s) { return Workers(s) == 1; }));
  ChildResult r = client->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "12 passed, 0 failed") << r.out;
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(Count(r.out, "  sleep" + std::to_string(i) + "\n"), 1) << r.out;
  }
  EXPECT_EQ(r.out.find("lost"), std::string::npos) << r.out;
}

TEST(E2EFarm, AFarmRestartedUnderItsClientAndWorkersLosesTheRunAndGetsTheWorkersBack) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto worker = StartFarmWorker(endpoint, "w", 2);
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Workers(s) == 1; }));
  fs::path json = dir.path() / "lost.json";
  auto client = StartClient(
      endpoint, {"--manifest", SleepManifest(dir, 3, 60000).string(), "--json", json.string()});
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Runs(s, "sleep"); }));
  kill(farm->pid(), SIGKILL);
  farm->Finish(milliseconds(10000));
  std::string again;
  auto restarted = StartFarm(dir, {}, &again, endpoint);
  ASSERT_EQ(again, endpoint) << restarted->out();
  ChildResult r = client->Finish(milliseconds(30000));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("testfarm: error: the farm ended the run"), std::string::npos) << r.err;
  // Every test is still reported, once, as not run.
  EXPECT_EQ(r.LastLine(), "0 passed, 0 failed, 3 not run") << r.out;
  std::ifstream json_file(json);
  nlohmann::json report = nlohmann::json::parse(json_file, nullptr, false);
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["attempts"].size(), 3u) << report.dump();
  EXPECT_EQ(report["run"]["not_run"], 3) << report.dump();
  // The worker found the new farm by itself.
  EXPECT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Workers(s) == 1; }));
}

TEST(E2EFarm, AStoppedFarmStopsItsRunsAndItsClientsHearEveryTest) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto worker = StartFarmWorker(endpoint, "w", 1);
  auto client = StartClient(endpoint, {"--manifest", SleepManifest(dir, 3, 60000).string()});
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Runs(s, "sleep"); }));
  kill(farm->pid(), SIGTERM);
  ChildResult r = client->Finish(milliseconds(30000));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // The one running and the two its worker held (never started) are cancelled.
  EXPECT_EQ(r.LastLine(), "0 passed, 0 failed, 3 cancelled") << r.out;
  EXPECT_NE(r.out.find("Stopped early: the farm is shutting down"), std::string::npos) << r.out;
  ChildResult f = farm->Finish(milliseconds(30000));
  EXPECT_EQ(f.exit_code, 0) << f.err;
}

TEST(E2EFarm, OnlyClientsWithAnAllowedKeyMaySubmit) {
  TempDir dir;
  fs::path base = dir.path();
  for (const char* name : {"farm", "worker", "client", "stranger"}) {
    ASSERT_EQ(Testfarm({"keygen", (base / name).string()}).exit_code, 0);
  }
  std::string endpoint;
  auto farm =
      StartFarm(dir,
                {"--key", (base / "farm.key").string(), "--worker-keys",
                 (base / "worker.pub").string(), "--client-keys", (base / "client.pub").string()},
                &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto worker = StartFarmWorker(
      endpoint, "w", 1,
      {"--key", (base / "worker.key").string(), "--coordinator-key", (base / "farm.pub").string()});
  ChildResult ok = Testfarm({"run", "--farm", endpoint, "--key", (base / "client.key").string(),
                             "--farm-key", (base / "farm.pub").string(), Fixture("tf_pass")});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(ok.LastLine(), "1 passed, 0 failed") << ok.out;
  ChildResult refused =
      Testfarm({"run", "--farm", endpoint, "--key", (base / "stranger.key").string(), "--farm-key",
                (base / "farm.pub").string(), Fixture("tf_pass")});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("cannot join the farm"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.LastLine(), "0 passed, 0 failed, 1 not run") << refused.out;
  // The farm is unharmed: the allowed client still gets its runs.
  ChildResult after = Testfarm({"run", "--farm", endpoint, "--key", (base / "client.key").string(),
                                "--farm-key", (base / "farm.pub").string(), Fixture("tf_pass")});
  EXPECT_EQ(after.exit_code, 0) << after.out << after.err;
}

TEST(E2EFarm, BadFarmInputIsExit2WithAClearLine) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  std::vector<Case> cases = {
      {{"run", "--farm", "tcp://127.0.0.1:7700", "--listen", "tcp://127.0.0.1:*", "x"},
       "--listen does not work with --farm"},
      {{"run", "--farm", "tcp://127.0.0.1:7700", "--no-capture", "x"},
       "--no-capture does not work with --farm"},
      {{"run", "--farm", "tcp://10.1.2.3:7700", "x"}, "Give --key and --farm-key"},
      {{"run", "--max-slots", "2", "x"}, "--max-slots needs --farm"},
      {{"serve", "--listen", "tcp://0.0.0.0:7700"}, "loopback"},
      {{"serve", "--listen", "tcp://127.0.0.1:*", "--store-size", "lots"}, "--store-size"},
      {{"status", "--farm", "nonsense"}, "--farm"},
  };
  for (const Case& c : cases) {
    ChildResult r = Testfarm(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.expected << "\n" << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos)
        << "wanted '" << c.expected << "' in " << r.err;
  }
}

TEST(E2EFarm, ARunBeyondTheQueueIsRefusedSayingWhy) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {"--max-runs", "1", "--max-queued", "0"}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto worker = StartFarmWorker(endpoint, "w", 1);
  auto first = StartClient(endpoint, {"--manifest", SleepManifest(dir, 2, 60000).string()});
  ASSERT_TRUE(WaitForStatus(endpoint, milliseconds(30000),
                            [](const nlohmann::json& s) { return Runs(s, "sleep"); }));
  ChildResult refused = Testfarm({"run", "--farm", endpoint, Fixture("tf_pass")});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("the farm refused the run: the farm is full"), std::string::npos)
      << refused.err;
  kill(first->pid(), SIGINT);
  ChildResult r = first->Finish(milliseconds(30000));
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "0 passed, 0 failed, 2 cancelled") << r.out;
  EXPECT_NE(r.out.find("Stopped early: interrupted"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace testfarm::test
