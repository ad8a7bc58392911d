// The live dashboard as a user meets it: `testfarm serve --http` and `testfarm run --http`,
// read over HTTP and in a real (headless) browser.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/e2e/e2e_support.h"
#include "tests/support/browser.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using std::chrono::milliseconds;

struct Url {
  std::string host;
  int port = 0;
  std::string text;
};

// The "testfarm: dashboard on URL" line of `child`, once it came.
Url DashboardOf(BackgroundChild& child) {
  Url url;
  if (!child.WaitForOutput("dashboard on", milliseconds(30000))) return url;
  child.WaitForOutput("/\n", milliseconds(5000));
  std::smatch m;
  std::string out = child.out();
  if (std::regex_search(out, m, std::regex("dashboard on (http://([0-9.]+):([0-9]+)/)"))) {
    url.text = m[1];
    url.host = m[2];
    url.port = std::stoi(m[3]);
  }
  return url;
}

// The status of an answer; -1 when there was none (the server is gone), never a crash.
int StatusOf(const httplib::Result& answer) {
  return answer ? answer->status : -1;
}

// The body of an answer as JSON; null when there was none.
Json BodyOf(const httplib::Result& answer) {
  return answer ? Json::parse(answer->body, nullptr, false) : Json();
}

// A manifest: `passes` passing suites, one that crashes, and `sleeps` that sleep `ms`.
fs::path MixedManifest(const TempDir& dir, int passes, int sleeps, int ms) {
  fs::path manifest = dir.path() / "mixed.toml";
  std::ofstream out(manifest);
  for (int i = 0; i < passes; ++i) {
    out << "[[suite]]\nname = \"pass" << i << "\"\ncommand = \"" << Fixture("tf_pass") << "\"\n\n";
  }
  out << "[[suite]]\nname = \"crash\"\ncommand = \"" << Fixture("tf_segv") << "\"\n\n";
  for (int i = 0; i < sleeps; ++i) {
    out << "[[suite]]\nname = \"sleep" << i << "\"\ncommand = \"" << Fixture("tf_sleep")
        << "\"\nargs = [\"" << ms << "\"]\n\n";
  }
  return manifest;
}

// Asks `path` until `done(json)` holds or the bound passes.
template <typename Predicate>
bool WaitForJson(httplib::Client& client, const std::string& path, milliseconds bound,
                 Predicate done) {
  auto until = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < until) {
    auto answer = client.Get(path);
    if (!answer || answer->status != 200) continue;
    Json json = Json::parse(answer->body, nullptr, false);
    if (!json.is_discarded() && done(json)) return true;
  }
  return false;
}

TEST(E2EDashboard, ARunServesItsDashboardWhileItRunsAndBadRequestsDoNotDisturbIt) {
  TempDir dir;
  // Long enough (6 x 1.5 s on 2 slots) for every question below to be asked while it runs.
  fs::path manifest = MixedManifest(dir, 2, 6, 1500);
  BackgroundChild run({TESTFARM_BINARY, "run", "--manifest", manifest.string(), "--http",
                       "127.0.0.1:0", "-j", "2", "--history",
                       (dir.path() / "history.sqlite").string()});
  Url url = DashboardOf(run);
  ASSERT_FALSE(url.host.empty()) << run.out();
  httplib::Client client(url.host, url.port);
  // The local worker and its slots, a test running in one of them.
  EXPECT_TRUE(WaitForJson(client, "/api/v1/workers", milliseconds(20000), [](const Json& j) {
    return j["total"] == 1 && j["workers"][0]["name"] == "local" && j["workers"][0]["slots"] == 2 &&
           j["workers"][0]["busy"].get<int>() >= 1;
  }));
  // Every kind of bad request, while the run goes on.
  EXPECT_EQ(StatusOf(client.Get("/api/v1/runs/run-1/tests?status=bogus")), 400);
  EXPECT_EQ(StatusOf(client.Get("/api/v1/runs/run-1/tests?limit=0")), 400);
  EXPECT_EQ(StatusOf(client.Get("/api/v1/runs/run-2/tests")), 404);
  EXPECT_EQ(StatusOf(client.Get("/nothing/here")), 404);
  EXPECT_EQ(StatusOf(client.Delete("/api/v1/runs")), 405);
  EXPECT_EQ(StatusOf(client.Get("/api/v1/runs?" + std::string(20000, 'q'))), 414);
  // The crash is there with its output while the sleeps still run.
  EXPECT_TRUE(WaitForJson(client, "/api/v1/runs/run-1/tests?status=failed", milliseconds(20000),
                          [](const Json& j) { return j["total"] == 1; }));
  Json failed = BodyOf(client.Get("/api/v1/runs/run-1/tests?status=failed"));
  ASSERT_TRUE(failed.is_object());
  std::size_t index = failed["tests"][0]["index"];
  EXPECT_EQ(failed["tests"][0]["result"], "CRASH");
  Json output = BodyOf(client.Get("/api/v1/runs/run-1/tests/" + std::to_string(index) + "/output"));
  ASSERT_TRUE(output.is_object());
  EXPECT_NE(output["attempts"][0]["stdout"].get<std::string>().find("about to crash"),
            std::string::npos);
  // The history answers as the run records it: the crash's day, the (empty) flaky ranking.
  EXPECT_TRUE(WaitForJson(
      client, "/api/v1/history/trend?test=crash&days=2", milliseconds(20000),
      [](const Json& j) { return j["days"].size() == 1 && j["days"][0]["failed"] == 1; }));
  Json flaky = BodyOf(client.Get("/api/v1/history/flaky?days=1&limit=10"));
  ASSERT_TRUE(flaky.is_object());
  EXPECT_EQ(flaky["tests"].size(), 0u);
  EXPECT_EQ(StatusOf(client.Get("/api/v1/history/trend")), 400);
  ChildResult r = run.Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "8 passed, 1 failed");
}

TEST(E2EDashboard, AnExposedAddressNeedsATokenAndTheFarmRefusesADashboardOnAClient) {
  TempDir dir;
  fs::path manifest = MixedManifest(dir, 1, 0, 0);
  ChildResult open = Testfarm({"run", "--manifest", manifest.string(), "--http", "0.0.0.0:0"});
  EXPECT_EQ(open.exit_code, 2);
  EXPECT_NE(open.err.find("--http-token"), std::string::npos) << open.err;
  ChildResult bad = Testfarm({"run", "--manifest", manifest.string(), "--http", "localhost:x"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("is not a port"), std::string::npos) << bad.err;
  ChildResult farm = Testfarm(
      {"run", "--manifest", manifest.string(), "--http", "0", "--farm", "tcp://127.0.0.1:1"});
  EXPECT_EQ(farm.exit_code, 2);
  EXPECT_NE(farm.err.find("testfarm serve --http"), std::string::npos) << farm.err;

  // With a token: the API wants it, the page does not.
  fs::path slow = MixedManifest(dir, 0, 1, 3000);
  BackgroundChild run(
      {TESTFARM_BINARY, "run", "--manifest", slow.string(), "--http", "127.0.0.1:0"},
      {"TESTFARM_HTTP_TOKEN=let-me-in"});
  Url url = DashboardOf(run);
  ASSERT_FALSE(url.host.empty()) << run.out();
  httplib::Client client(url.host, url.port);
  EXPECT_EQ(StatusOf(client.Get("/api/v1/runs")), 401);
  EXPECT_EQ(StatusOf(client.Get("/api/v1/runs", {{"Authorization", "Bearer nope"}})), 401);
  EXPECT_EQ(StatusOf(client.Get("/api/v1/runs", {{"Authorization", "Bearer let-me-in"}})), 200);
  EXPECT_EQ(StatusOf(client.Get("/")), 200);
  ChildResult r = run.Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "1 passed, 1 failed");
}

// The farm, two workers and a client; the page in Chromium shows them as they run.
TEST(E2EDashboard, TheFarmsPageInABrowserShowsWorkersRunsCountsAndAFailuresOutputLive) {
  std::string unavailable = BrowserUnavailableReason();
  if (!unavailable.empty()) GTEST_SKIP() << unavailable;
  TempDir dir;
  BackgroundChild farm({TESTFARM_BINARY, "serve", "--listen", "tcp://127.0.0.1:*", "--store",
                        (dir.path() / "store").string(), "--no-history", "--http", "127.0.0.1:0"});
  Url url = DashboardOf(farm);
  ASSERT_FALSE(url.host.empty()) << farm.out();
  ASSERT_TRUE(farm.WaitForOutput("listening on", milliseconds(30000))) << farm.out();
  std::smatch m;
  std::string farm_out = farm.out();
  ASSERT_TRUE(std::regex_search(farm_out, m, std::regex("listening on (tcp://[0-9.:]+)")));
  std::string endpoint = m[1];
  std::vector<std::unique_ptr<BackgroundChild>> workers;
  for (const char* name : {"alpha", "beta"}) {
    workers.push_back(std::make_unique<BackgroundChild>(
        std::vector<std::string>{TESTFARM_BINARY, "worker", "--connect", endpoint, "--name", name,
                                 "--slots", "2", "--cache-dir", WorkerCacheDir()}));
  }
  std::string error;
  auto browser = HeadlessBrowser::Launch(&error);
  ASSERT_TRUE(browser) << error;
  ASSERT_TRUE(browser->Open(url.text, &error)) << error;
  ASSERT_TRUE(browser->WaitFor("document.body.dataset.ready === '1'", milliseconds(20000), &error))
      << error << browser->LogTail();
  // Both workers, one cell per slot.
  EXPECT_TRUE(browser->WaitFor(
      "document.querySelectorAll('#fleet [data-worker]').length === 2 && "
      "document.querySelectorAll('#fleet [data-worker=\"alpha\"] .slot').length === 2 && "
      "document.querySelectorAll('#fleet .slot').length === 4",
      milliseconds(20000), &error))
      << error;

  fs::path manifest = MixedManifest(dir, 3, 8, 1000);
  BackgroundChild client({TESTFARM_BINARY, "run", "--farm", endpoint, "--manifest",
                          manifest.string(), "--run-label", "browser"});
  // Live: a slot shows a running test, and the page's version moves on as tests finish.
  EXPECT_TRUE(browser->WaitFor("document.querySelectorAll('#fleet .slot.busy').length > 0",
                               milliseconds(30000), &error))
      << error;
  auto version = browser->Evaluate("Number(document.body.dataset.version)", &error);
  ASSERT_TRUE(version) << error;
  EXPECT_TRUE(browser->WaitFor(
      "Number(document.body.dataset.version) > " + std::to_string(version->get<double>()),
      milliseconds(20000), &error))
      << error;
  // The failure appears as it happens; its output is one click away.
  ASSERT_TRUE(
      browser->WaitFor("[...document.querySelectorAll('#failures [data-index]')].some(e => "
                       "e.textContent.includes('crash'))",
                       milliseconds(30000), &error))
      << error;
  ASSERT_TRUE(
      browser->Evaluate("[...document.querySelectorAll('#failures [data-index]')].find(e => "
                        "e.textContent.includes('crash')).querySelector('button').click(), true",
                        &error))
      << error;
  EXPECT_TRUE(
      browser->WaitFor("[...document.querySelectorAll('#output pre')].some(p => "
                       "p.textContent.includes('about to crash'))",
                       milliseconds(20000), &error))
      << error;

  ChildResult r = client.Finish(milliseconds(90000));
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  std::map<std::string, int> counts = SummaryCounts(r.LastLine());
  ASSERT_EQ(counts["passed"], 11) << r.LastLine();
  ASSERT_EQ(counts["failed"], 1) << r.LastLine();
  // The run's block ends with the client's counts.
  std::string block = "document.querySelector('#runs [data-run]')";
  EXPECT_TRUE(browser->WaitFor(
      block + " && " + block +
          ".querySelector('[data-count=\"passed\"]').textContent.trim() === "
          "'11' && " +
          block + ".querySelector('[data-count=\"failed\"]').textContent.trim() === '1'",
      milliseconds(20000), &error))
      << error << " "
      << browser->Evaluate("document.querySelector('#runs').innerText").value_or(Json()).dump();
  // And once the farm is idle again, so is the page: no busy slot, no test still "running".
  EXPECT_TRUE(
      browser->WaitFor("document.querySelectorAll('#fleet .slot').length === 4 && "
                       "document.querySelectorAll('#fleet .slot.busy').length === 0 && "
                       "!document.querySelector('#tests-body tr[data-status=\"running\"]')",
                       milliseconds(20000), &error))
      << error;
  // Picture for the docs (kept in the build tree; docs/dashboard.png is a copy of one).
  const char* shots = std::getenv("TESTFARM_SCREENSHOT_DIR");
  fs::path shot = (shots != nullptr ? fs::path(shots) : dir.path()) / "dashboard.png";
  EXPECT_TRUE(browser->Screenshot(shot.string(), &error)) << error;
  EXPECT_TRUE(fs::file_size(shot) > 1000);
  EXPECT_EQ(browser->ConsoleErrors(), std::vector<std::string>{});
}

}  // namespace
}  // namespace testfarm::test
