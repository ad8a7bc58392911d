#pragma once
// What every end-to-end test file needs: fixture paths, a temporary directory, and finding a
// test's line in testfarm's output.
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

namespace testfarm::test {

// The testfarm processes the tests start keep no run history unless a test asks for one with
// --history: a history shared by every test would reorder their runs.
inline const bool kNoHistoryByDefault = ::setenv("TESTFARM_HISTORY", "off", 0) == 0;

inline std::string Fixture(const std::string& name) {
  return std::string(TESTFARM_FIXTURE_DIR) + "/" + name;
}

// The blob cache of the workers the tests start (shared by all of them, as workers on one
// machine may share one), so that tests never write to the user's ~/.cache.
inline std::string WorkerCacheDir() {
  static TempDir dir;
  return (dir.path() / "cache").string();
}

// `testfarm ARGS...`, run to completion.
inline ChildResult Testfarm(std::vector<std::string> args, ChildOptions options = {}) {
  args.insert(args.begin(), TESTFARM_BINARY);
  return RunChild(args, options);
}

// The console's last line, "N passed, N failed[, N skipped][, N cancelled][, N not run]", as
// counts by word ("passed", "failed", "skipped", "cancelled", "not run"); absent words are 0.
inline std::map<std::string, int> SummaryCounts(const std::string& line) {
  std::map<std::string, int> counts = {
      {"passed", 0}, {"failed", 0}, {"skipped", 0}, {"cancelled", 0}, {"not run", 0}};
  static const std::regex part("(\\d+) (passed|failed|skipped|cancelled|not run)");
  for (std::sregex_iterator it(line.begin(), line.end(), part), end; it != end; ++it) {
    counts[(*it)[2]] = std::stoi((*it)[1]);
  }
  return counts;
}

// Waits for `child`'s first line, "testfarm: listening on ENDPOINT", and sets *endpoint (left
// empty if it never came).
inline std::unique_ptr<BackgroundChild> WhenListening(std::unique_ptr<BackgroundChild> child,
                                                      std::string* endpoint) {
  if (!child->WaitForOutput("\n", std::chrono::milliseconds(30000))) return child;
  std::smatch m;
  std::string out = child->out();
  if (std::regex_search(out, m, std::regex("listening on (tcp://[0-9.:]+)"))) *endpoint = m[1];
  return child;
}

// A coordinator on an ephemeral loopback port; returns it once it says where it listens.
inline std::unique_ptr<BackgroundChild> StartCoordinator(std::vector<std::string> args,
                                                         std::string* endpoint) {
  // Default heartbeats (1 s x 3): a loaded CI machine can starve a process for a good part of
  // a second, and a worker killed outright is noticed by its dropped connection anyway.
  std::vector<std::string> argv = {TESTFARM_BINARY,     "run",          "--listen",
                                   "tcp://127.0.0.1:*", "--kill-grace", "200ms"};
  argv.insert(argv.end(), args.begin(), args.end());
  return WhenListening(std::make_unique<BackgroundChild>(argv), endpoint);
}

// A manifest of `count` suites named PREFIX0.. that each sleep `ms` milliseconds.
inline std::filesystem::path SleepManifest(const TempDir& dir, int count, int ms,
                                           const std::string& prefix = "sleep") {
  std::filesystem::path manifest = dir.path() / (prefix + ".toml");
  std::ofstream out(manifest);
  for (int i = 0; i < count; ++i) {
    out << "[[suite]]\nname = \"" << prefix << i << "\"\ncommand = \"" << Fixture("tf_sleep")
        << "\"\nargs = [\"" << ms << "\"]\n\n";
  }
  return manifest;
}

// A standing farm (`testfarm serve`) on an ephemeral loopback port unless `listen` names one;
// returns it once it says where it listens.
inline std::unique_ptr<BackgroundChild> StartFarm(const TempDir& dir, std::vector<std::string> args,
                                                  std::string* endpoint,
                                                  const std::string& listen = "tcp://127.0.0.1:*") {
  std::vector<std::string> argv = {TESTFARM_BINARY, "serve",   "--listen",
                                   listen,          "--store", (dir.path() / "store").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return WhenListening(std::make_unique<BackgroundChild>(argv), endpoint);
}

inline std::unique_ptr<BackgroundChild> StartWorker(const std::string& endpoint,
                                                    const std::string& name,
                                                    std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {TESTFARM_BINARY, "worker", "--connect", endpoint,
                                   "--once",        "--name", name,        "--cache-dir",
                                   WorkerCacheDir()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<BackgroundChild>(argv);
}

// The per-test line for `name` ("STATUS  duration  name  (reason)"), or a note saying none.
inline std::string LineFor(const std::string& out, const std::string& name) {
  std::istringstream lines(out);
  std::string line;
  static const std::regex per_test("^[A-Z]+ +[0-9.]+m?s  (\\S+)");
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_search(line, m, per_test) && m[1] == name) return line;
  }
  return "(no line for " + name + ")";
}

inline std::string LineFor(const ChildResult& r, const std::string& name) {
  return LineFor(r.out, name);
}

// How often `needle` occurs in `text`.
inline int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace testfarm::test
