// `testfarm serve --metrics`: Prometheus scrapes the farm while a run goes on and after it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "tests/e2e/e2e_support.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A scrape's samples by series ("name" or "name{labels}"); empty when the text is not valid
// exposition text, with why in *error. Checks what a Prometheus parser would: each line a HELP,
// a TYPE (before the family's samples, once) or a sample `name{labels} value` of a family that
// has one; a histogram's buckets cumulative, ending in +Inf equal to its _count.
std::map<std::string, double> Parse(const std::string& text, std::string* error) {
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter|histogram))");
  static const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")"
      R"((?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? ([-+]?[0-9.eE+-]+|[-+]Inf|NaN))");
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::map<std::string, double> last_bucket;
  auto fail = [&](const std::string& why) {
    *error = why;
    return std::map<std::string, double>();
  };
  if (text.empty() || text.back() != '\n') return fail("the text does not end with a newline");
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, help)) continue;
    if (std::regex_match(line, m, type)) {
      if (!types.emplace(m[1], m[2]).second) return fail("a second TYPE: " + line);
      continue;
    }
    if (!std::regex_match(line, m, sample)) return fail("not a sample: " + line);
    std::string name = m[1];
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          types.count(name.substr(0, name.size() - s.size())) != 0) {
        family = name.substr(0, name.size() - s.size());
      }
    }
    if (types.count(family) == 0) return fail("a sample before its TYPE: " + line);
    double value = std::stod(m[3]);
    if (!samples.emplace(name + std::string(m[2]), value).second) {
      return fail("a series twice: " + line);
    }
    if (types[family] == "histogram" && name == family + "_bucket") {
      if (value < last_bucket[family]) return fail("buckets not cumulative: " + line);
      last_bucket[family] = value;
    }
  }
  for (const auto& [family, type_name] : types) {
    if (type_name != "histogram") continue;
    auto inf = samples.find(family + "_bucket{le=\"+Inf\"}");
    auto count = samples.find(family + "_count");
    if (inf == samples.end() || count == samples.end() || inf->second != count->second) {
      return fail(family + ": no +Inf bucket equal to its _count");
    }
  }
  return samples;
}

struct Scrape {
  int status = -1;
  std::string content_type;
  std::map<std::string, double> samples;
  std::string text;
  std::string error;
};

Scrape ScrapeOf(httplib::Client& client) {
  Scrape scrape;
  auto answer = client.Get("/metrics");
  if (!answer) return scrape;
  scrape.status = answer->status;
  scrape.content_type = answer->get_header_value("Content-Type");
  scrape.text = answer->body;
  scrape.samples = Parse(answer->body, &scrape.error);
  return scrape;
}

// Scrapes until `done(samples)` holds or the bound passes; the last scrape.
template <typename Predicate>
Scrape ScrapeUntil(httplib::Client& client, milliseconds bound, Predicate done) {
  auto until = std::chrono::steady_clock::now() + bound;
  Scrape scrape;
  do {
    scrape = ScrapeOf(client);
    if (scrape.status == 200 && !scrape.samples.empty() && done(scrape.samples)) break;
  } while (std::chrono::steady_clock::now() < until);
  return scrape;
}

double At(const std::map<std::string, double>& samples, const std::string& series) {
  auto it = samples.find(series);
  return it == samples.end() ? -1 : it->second;
}

TEST(E2EMetrics, AScrapeSeesARunInProgressAndItsCountsAfterward) {
  TempDir dir;
  // The gate: a FIFO the blocking test reads a line from. Held open here for reading and
  // writing, so the test's open never waits, and its read returns only once a line is written.
  fs::path gate = dir.path() / "gate";
  ASSERT_EQ(::mkfifo(gate.c_str(), 0600), 0);
  int gate_fd = ::open(gate.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(gate_fd, 0);
  fs::path blocker = dir.path() / "block.sh";
  std::ofstream(blocker) << "#!/bin/sh\nread line < '" << gate.string() << "'\n";
  fs::permissions(blocker, fs::perms::owner_all);
  fs::path manifest = dir.path() / "testfarm.toml";
  {
    std::ofstream out(manifest);
    out << "[[suite]]\nname = \"block\"\ncommand = \"" << blocker.string() << "\"\n\n";
    for (int i = 0; i < 3; ++i) {
      out << "[[suite]]\nname = \"pass" << i << "\"\ncommand = \"" << Fixture("tf_pass")
          << "\"\n\n";
    }
  }

  BackgroundChild farm({TESTFARM_BINARY, "serve", "--listen", "tcp://127.0.0.1:*", "--store",
                        (dir.path() / "store").string(), "--no-history", "--metrics",
                        "127.0.0.1:0"});
  ASSERT_TRUE(farm.WaitForOutput("listening on", milliseconds(30000))) << farm.out();
  farm.WaitForOutput("\n", milliseconds(5000));
  std::string out = farm.out();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("metrics on http://([0-9.]+):([0-9]+)/metrics")))
      << out;
  httplib::Client client(m[1].str(), std::stoi(m[2]));
  ASSERT_TRUE(std::regex_search(out, m, std::regex("listening on (tcp://[0-9.:]+)"))) << out;
  const std::string endpoint = m[1];

  // Before any worker or run: every series is there, at 0.
  Scrape fresh = ScrapeOf(client);
  ASSERT_EQ(fresh.status, 200);
  EXPECT_EQ(fresh.content_type.rfind("text/plain; version=0.0.4", 0), 0u) << fresh.content_type;
  ASSERT_FALSE(fresh.samples.empty()) << fresh.error << "\n" << fresh.text;
  for (const char* status :
       {"passed", "failed", "flaky", "skipped", "cancelled", "lost", "not_run"}) {
    EXPECT_EQ(
        At(fresh.samples, "testfarm_tests_finished_total{status=\"" + std::string(status) + "\"}"),
        0)
        << status;
  }
  EXPECT_EQ(At(fresh.samples, "testfarm_dispatch_latency_seconds_count"), 0);
  EXPECT_EQ(At(fresh.samples, "testfarm_bytes_shipped_total"), 0);
  EXPECT_EQ(fresh.samples.count("testfarm_info{version=\"" + std::string(TESTFARM_VERSION) + "\"}"),
            1u)
      << fresh.text;
  // Anything but GET /metrics.
  auto elsewhere = client.Get("/");
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->status, 404);
  auto post = client.Post("/metrics", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  auto del = client.Delete("/metrics");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);

  // One worker of one slot, with a cache of its own: it fetches every file it runs.
  BackgroundChild worker({TESTFARM_BINARY, "worker", "--connect", endpoint, "--name", "w",
                          "--slots", "1", "--cache-dir", (dir.path() / "cache").string()});
  Scrape joined = ScrapeUntil(client, milliseconds(30000), [](const auto& s) {
    return At(s, "testfarm_workers") == 1 && At(s, "testfarm_slots") == 1;
  });
  EXPECT_EQ(At(joined.samples, "testfarm_workers"), 1) << joined.error << joined.text;

  // While the blocking test holds the only slot, the three others wait for it.
  BackgroundChild client_run({TESTFARM_BINARY, "run", "--farm", endpoint, "--manifest",
                              manifest.string(), "--kill-grace", "200ms"});
  Scrape during = ScrapeUntil(client, milliseconds(30000), [](const auto& s) {
    return At(s, "testfarm_slots_busy") == 1 && At(s, "testfarm_tests_queued") == 3;
  });
  EXPECT_TRUE(during.error.empty()) << during.error << "\n" << during.text;
  EXPECT_EQ(At(during.samples, "testfarm_workers"), 1) << during.text;
  EXPECT_EQ(At(during.samples, "testfarm_slots_busy"), 1) << during.text;
  EXPECT_EQ(At(during.samples, "testfarm_tests_queued"), 3) << during.text;
  EXPECT_EQ(At(during.samples, "testfarm_runs{state=\"running\"}"), 1) << during.text;
  EXPECT_EQ(At(during.samples, "testfarm_runs{state=\"queued\"}"), 0) << during.text;
  EXPECT_EQ(At(during.samples, "testfarm_tests_finished_total{status=\"passed\"}"), 0)
      << during.text;

  // Released, the run ends with its four passes.
  ASSERT_EQ(::write(gate_fd, "go\n", 3), 3);
  ChildResult r = client_run.Finish(milliseconds(60000));
  ::close(gate_fd);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "4 passed, 0 failed") << r.out;
  // Counted as each test finished, before its client heard of it; the gauges and the latency
  // come with the next fleet view (within a quarter of a second).
  Scrape after = ScrapeUntil(client, milliseconds(30000), [](const auto& s) {
    return At(s, "testfarm_runs{state=\"running\"}") == 0 &&
           At(s, "testfarm_dispatch_latency_seconds_count") >= 4;
  });
  EXPECT_TRUE(after.error.empty()) << after.error << "\n" << after.text;
  EXPECT_EQ(At(after.samples, "testfarm_tests_finished_total{status=\"passed\"}"), 4) << after.text;
  EXPECT_EQ(At(after.samples, "testfarm_tests_finished_total{status=\"failed\"}"), 0);
  EXPECT_EQ(At(after.samples, "testfarm_runs{state=\"running\"}"), 0) << after.text;
  EXPECT_EQ(At(after.samples, "testfarm_slots_busy"), 0) << after.text;
  EXPECT_EQ(At(after.samples, "testfarm_tests_queued"), 0) << after.text;
  EXPECT_EQ(At(after.samples, "testfarm_workers"), 1) << after.text;
  // Every test started once (the worker said so); its wait is in the histogram.
  EXPECT_GE(At(after.samples, "testfarm_dispatch_latency_seconds_count"), 4) << after.text;
  EXPECT_GT(At(after.samples, "testfarm_dispatch_latency_seconds_sum"), 0) << after.text;
  // The worker fetched the script and tf_pass from the farm's store: at least their bytes.
  const auto shipped =
      static_cast<double>(fs::file_size(blocker) + fs::file_size(Fixture("tf_pass")));
  EXPECT_GE(At(after.samples, "testfarm_bytes_shipped_total"), shipped) << after.text;
}

TEST(E2EMetrics, ABadAddressIsAUsageError) {
  TempDir dir;
  ChildResult bad = Testfarm({"serve", "--listen", "tcp://127.0.0.1:*", "--store",
                              (dir.path() / "store").string(), "--metrics", "localhost:x"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--metrics localhost:x"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace testfarm::test
