// End to end for a fleet spread over several "hosts": each worker runs in its own Linux network
// namespace, joined to the coordinator's (the root namespace) by a veth pair, so coordinator and
// workers talk over real, separate network interfaces that a test can take down and bring back.
// Needs root (CI runs as root); skipped with the reason otherwise. Every test must be reported
// exactly once whatever happens to the links and the workers.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Generous: a loaded 2-core CI machine (or an ASan build) can be slow to start anything.
constexpr milliseconds kIpDeadline{20000};
constexpr milliseconds kWaitDeadline{30000};
constexpr milliseconds kRunDeadline{60000};
constexpr milliseconds kWorkerExitDeadline{20000};

// The `ip` executable (absolute: RunChild does not search PATH), or empty if there is none.
std::string FindIp() {
  std::string dirs = "/usr/sbin:/sbin:/usr/bin:/bin";
  if (const char* path = std::getenv("PATH")) dirs = std::string(path) + ":" + dirs;
  std::istringstream in(dirs);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/ip";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

ChildOptions IpOptions() {
  ChildOptions options;
  options.deadline = kIpDeadline;
  return options;
}

std::string Joined(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) text += (text.empty() ? "" : " ") + arg;
  return text;
}

// Runs `ip ARGS...`; a failure says which command, how it ended and its stderr.
::testing::AssertionResult RunIp(const std::string& ip, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ip};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildResult r = RunChild(argv, IpOptions());
  if (r.exit_code == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "`" << Joined(argv) << "` failed (exit " << r.exit_code << ", signal " << r.signal
         << (r.timed_out ? ", timed out" : "") << "): " << r.err;
}

// Worker "hosts": per worker a network namespace and a veth pair, the host side in the root
// namespace (where the coordinator runs) and the peer in the worker's namespace, each pair on a
// private /30. Everything made is removed by the destructor, also when the test failed part way.
class Hosts {
 public:
  static constexpr int kMaxHosts = 4;

  Hosts(std::string ip, int count) : ip_(std::move(ip)) {
    if (count > kMaxHosts) error_ = "at most " + std::to_string(kMaxHosts) + " hosts";
    for (int i = 0; i < count && error_.empty(); ++i) Create(i);
  }

  ~Hosts() {
    // The host-side veth first: deleting either end deletes the pair, even while some process
    // (an orphaned test of a killed worker) still keeps the namespace itself alive.
    for (const std::string& veth : veths_) {
      if (!RunIp(ip_, {"link", "del", veth}) && RunIp(ip_, {"link", "show", veth})) {
        ADD_FAILURE() << "left behind: veth " << veth;
      }
    }
    for (const std::string& ns : namespaces_) {
      if (auto deleted = RunIp(ip_, {"netns", "del", ns}); !deleted) {
        ADD_FAILURE() << "left behind: network namespace " << ns << ": " << deleted.message();
      }
    }
  }

  Hosts(const Hosts&) = delete;
  Hosts& operator=(const Hosts&) = delete;

  // Empty if every host was made.
  const std::string& error() const { return error_; }

  std::string Namespace(int i) const { return Name("w", i); }
  std::string HostVeth(int i) const { return Name("h", i); }
  std::string PeerVeth(int i) const { return Name("p", i); }
  // The coordinator's address on worker i's link, and the worker's own.
  std::string HostIp(int i) const { return Address(i, 1); }
  std::string WorkerIp(int i) const { return Address(i, 2); }

  ::testing::AssertionResult LinkDown(int i) const {
    return RunIp(ip_, {"link", "set", HostVeth(i), "down"});
  }
  ::testing::AssertionResult LinkUp(int i) const {
    return RunIp(ip_, {"link", "set", HostVeth(i), "up"});
  }

  // `argv` run inside worker i's namespace. `ip netns exec` execs the command (no fork), so the
  // pid of the child started with this argv is the command's own.
  std::vector<std::string> WorkerCommand(int i, const std::vector<std::string>& argv) const {
    std::vector<std::string> command = {ip_, "netns", "exec", Namespace(i)};
    command.insert(command.end(), argv.begin(), argv.end());
    return command;
  }

 private:
  // Short (at most 15 characters, the limit for interface names) and unique per process, so
  // parallel ctest runs never clash: tf<pid>w<i>, tf<pid>h<i>, tf<pid>p<i>.
  static std::string Name(const char* kind, int i) {
    return "tf" + std::to_string(::getpid()) + kind + std::to_string(i);
  }

  // A /30 per worker in 10.200.0.0 - 10.255.255.255, a corner of 10/8 that real networks
  // rarely use: each process gets 16 addresses (kMaxHosts /30s) of its own, so processes whose
  // pids differ by less than 56 x 256 x 16 never share a subnet.
  static std::string Address(int i, int host) {
    const unsigned slot = static_cast<unsigned>(::getpid()) % (56u * 256u * 16u);
    const unsigned base = (slot % 16u) * 16u + 4u * static_cast<unsigned>(i);
    return "10." + std::to_string(200u + slot / (256u * 16u)) + "." +
           std::to_string(slot / 16u % 256u) + "." +
           std::to_string(base + static_cast<unsigned>(host));
  }

  void Step(const std::vector<std::string>& args) {
    if (!error_.empty()) return;
    if (auto done = RunIp(ip_, args); !done) error_ = done.message();
  }

  void Create(int i) {
    const std::string ns = Namespace(i);
    const std::string host = HostVeth(i);
    const std::string peer = PeerVeth(i);
    Step({"netns", "add", ns});
    if (!error_.empty()) return;
    namespaces_.push_back(ns);
    Step({"link", "add", host, "type", "veth", "peer", "name", peer});
    if (!error_.empty()) return;
    veths_.push_back(host);
    Step({"link", "set", peer, "netns", ns});
    Step({"addr", "add", HostIp(i) + "/30", "dev", host});
    Step({"link", "set", host, "up"});
    Step({"-n", ns, "addr", "add", WorkerIp(i) + "/30", "dev", peer});
    Step({"-n", ns, "link", "set", peer, "up"});
    Step({"-n", ns, "link", "set", "lo", "up"});
  }

  std::string ip_;
  std::string error_;
  std::vector<std::string> namespaces_;
  std::vector<std::string> veths_;
};

// CurveZMQ keys (`testfarm keygen`) for the coordinator and the workers, made once per test
// program: traffic between the hosts is authenticated and encrypted, as in a real fleet.
std::string KeyFile(const std::string& name) {
  static TempDir dir;
  static bool made = [] {
    for (const char* who : {"coordinator", "worker", "client"}) {
      ChildResult r = RunChild({TESTFARM_BINARY, "keygen", (dir.path() / who).string()});
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    return true;
  }();
  (void)made;
  return (dir.path() / name).string();
}

// The coordinator's command line, in one place: it listens on every address of the root
// namespace, so each worker reaches it through its own link, on an ephemeral port.
std::vector<std::string> CoordinatorArgv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {TESTFARM_BINARY, "run",
                                   "--listen",      "tcp://0.0.0.0:*",
                                   "--key",         KeyFile("coordinator.key"),
                                   "--worker-keys", KeyFile("worker.pub"),
                                   "--kill-grace",  "200ms"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Starts the coordinator and returns it once it says where it listens ("listening on
// tcp://0.0.0.0:PORT"); *port stays empty if it did not.
std::unique_ptr<BackgroundChild> StartCoordinator(const std::vector<std::string>& args,
                                                  std::string* port) {
  // Default heartbeats (1 s x 3): a loaded CI machine can starve a process for a good part of
  // a second.
  auto child = std::make_unique<BackgroundChild>(CoordinatorArgv(args));
  if (!child->WaitForOutput("\n", kWaitDeadline)) return child;
  std::smatch m;
  std::string out = child->out();
  if (std::regex_search(out, m, std::regex("listening on tcp://0\\.0\\.0\\.0:([0-9]+)\n"))) {
    *port = m[1];
  }
  return child;
}

std::string Endpoint(const std::string& address, const std::string& port) {
  return "tcp://" + address + ":" + port;
}

// A worker's command line, in one place too (a non-loopback coordinator needs keys or
// --insecure). --once: it exits after the run's bye, but one that lost its coordinator keeps
// reconnecting (it is killed with its BackgroundChild then).
std::vector<std::string> WorkerArgv(const std::string& endpoint, const std::string& name,
                                    unsigned slots) {
  return {TESTFARM_BINARY,
          "worker",
          "--connect",
          endpoint,
          "--key",
          KeyFile("worker.key"),
          "--coordinator-key",
          KeyFile("coordinator.pub"),
          "--once",
          "--name",
          name,
          "--slots",
          std::to_string(slots),
          "--cache-dir",
          WorkerCacheDir()};
}

// A worker in host i's namespace.
std::unique_ptr<BackgroundChild> StartWorker(const Hosts& hosts, int i, const std::string& endpoint,
                                             const std::string& name, unsigned slots = 2) {
  return std::make_unique<BackgroundChild>(
      hosts.WorkerCommand(i, WorkerArgv(endpoint, name, slots)));
}

// A manifest of `count` suites named <prefix>0, <prefix>1, ... running `command ARGS`.
fs::path Manifest(const TempDir& dir, const std::string& prefix, int count,
                  const std::string& command, const std::vector<std::string>& args = {}) {
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream out(manifest);
  for (int i = 0; i < count; ++i) {
    out << "[[suite]]\nname = \"" << prefix << i << "\"\ncommand = \"" << command << "\"\n";
    if (!args.empty()) {
      out << "args = [";
      for (std::size_t a = 0; a < args.size(); ++a) out << (a ? ", " : "") << '"' << args[a] << '"';
      out << "]\n";
    }
    out << "\n";
  }
  return manifest;
}

// Every one of <prefix>0 .. <prefix>(count-1) has exactly one line in the output, a PASS.
void ExpectEachPassedOnce(const ChildResult& r, const std::string& prefix, int count) {
  EXPECT_EQ(Count(r.out, "\nPASS "), count) << r.out;
  std::string wrong;
  for (int i = 0; i < count; ++i) {
    std::string name = prefix + std::to_string(i);
    int lines = Count(r.out, "  " + name + "\n");
    if (lines != 1) wrong += " " + name + " (" + std::to_string(lines) + " lines)";
    if (LineFor(r, name).rfind("PASS ", 0) != 0) wrong += " " + name + " (not PASS)";
  }
  EXPECT_TRUE(wrong.empty()) << "not reported exactly once as passed:" << wrong << "\n" << r.out;
}

std::string JoinLine(const std::string& name, unsigned slots = 2) {
  return "testfarm: worker " + name + " joined with " + std::to_string(slots) + " slot" +
         (slots == 1 ? "" : "s") + "\n";
}

class E2ENetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    ip_ = FindIp();
    if (ip_.empty()) GTEST_SKIP() << "`ip` not found (iproute2)";
    std::string probe = "tf" + std::to_string(::getpid()) + "probe";
    ChildResult r = RunChild({ip_, "netns", "add", probe}, IpOptions());
    if (r.exit_code != 0) GTEST_SKIP() << "cannot create a network namespace: " << r.err;
    ASSERT_TRUE(RunIp(ip_, {"netns", "del", probe}));
  }

  std::string ip_;
};

TEST_F(E2ENetns, ThreeHostsRunEveryTestExactlyOnce) {
  Hosts hosts(ip_, 3);
  ASSERT_EQ(hosts.error(), "");
  TempDir dir;
  fs::path manifest = Manifest(dir, "pass", 200, Fixture("tf_pass"));
  std::string port;
  auto coordinator = StartCoordinator(
      {"--manifest", manifest.string(), "--local-slots", "0", "--min-workers", "3"}, &port);
  ASSERT_FALSE(port.empty()) << coordinator->out();
  std::vector<std::unique_ptr<BackgroundChild>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(
        StartWorker(hosts, i, Endpoint(hosts.HostIp(i), port), "host" + std::to_string(i)));
  }
  ChildResult r = coordinator->Finish(kRunDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "200 passed, 0 failed") << r.out;
  ExpectEachPassedOnce(r, "pass", 200);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Count(r.out, JoinLine("host" + std::to_string(i))), 1) << r.out;
  }
  for (auto& worker : workers) {
    ChildResult wr = worker->Finish(kWorkerExitDeadline);
    EXPECT_EQ(wr.exit_code, 0) << wr.err;
    EXPECT_NE(wr.err.find("run finished"), std::string::npos) << wr.err;
  }
}

TEST_F(E2ENetns, ALinkDownMidRunAndBackUp) {
  Hosts hosts(ip_, 2);
  ASSERT_EQ(hosts.error(), "");
  TempDir dir;
  // 40 x 500 ms on 2 x 2 slots: ~5 s with both workers, ~10 s with one; the link is down for
  // the 3 s it takes to declare the worker dead.
  fs::path manifest = Manifest(dir, "sleep", 40, Fixture("tf_sleep"), {"500"});
  std::string port;
  auto coordinator = StartCoordinator(
      {"--manifest", manifest.string(), "--local-slots", "0", "--min-workers", "2"}, &port);
  ASSERT_FALSE(port.empty()) << coordinator->out();
  auto steady = StartWorker(hosts, 0, Endpoint(hosts.HostIp(0), port), "host0");
  auto cut = StartWorker(hosts, 1, Endpoint(hosts.HostIp(1), port), "host1");
  ASSERT_TRUE(coordinator->WaitForOutput("\nPASS ", kWaitDeadline)) << coordinator->out();
  ASSERT_TRUE(hosts.LinkDown(1));
  // No FIN or RST crosses a link that is down: the coordinator notices the silence after
  // 3 x 1 s ("worker host1 silent for 3 heartbeats"; "unreachable" if the connection dropped).
  ASSERT_TRUE(coordinator->WaitForStderr("coordinator: worker host1 ", kWaitDeadline))
      << coordinator->out();
  ASSERT_TRUE(hosts.LinkUp(1));
  ChildResult r = coordinator->Finish(kRunDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "40 passed, 0 failed") << r.out;
  ExpectEachPassedOnce(r, "sleep", 40);
  EXPECT_EQ(Count(r.out, JoinLine("host0")), 1) << r.out;
  EXPECT_NE(r.err.find("coordinator: worker host1 silent for 3 heartbeats"), std::string::npos)
      << r.err;
  EXPECT_EQ(steady->Finish(kWorkerExitDeadline).exit_code, 0);
  // Whether host1 came back before the end depends on timing (its reconnect backoff, TCP's
  // retransmissions); if it did, it got the run's bye and exits like the other.
  int host1_joins = Count(r.out, JoinLine("host1"));
  EXPECT_GE(host1_joins, 1) << r.out;
  EXPECT_LE(host1_joins, 2) << r.out;
  if (host1_joins == 2) {
    ChildResult cr = cut->Finish(kWorkerExitDeadline);
    EXPECT_EQ(cr.exit_code, 0) << cr.err;
  }
  std::cout << "[ note     ] host1 " << (host1_joins == 2 ? "rejoined" : "did not rejoin")
            << " before the run ended\n";
}

TEST_F(E2ENetns, AWorkerRestartedMidRun) {
  Hosts hosts(ip_, 2);
  ASSERT_EQ(hosts.error(), "");
  TempDir dir;
  // 48 x 500 ms on 2 x 2 slots: ~6 s, and ~12 s if the restarted worker were slow to come back,
  // so it has seconds to join before the run could end.
  fs::path manifest = Manifest(dir, "sleep", 48, Fixture("tf_sleep"), {"500"});
  std::string port;
  auto coordinator = StartCoordinator(
      {"--manifest", manifest.string(), "--local-slots", "0", "--min-workers", "2"}, &port);
  ASSERT_FALSE(port.empty()) << coordinator->out();
  const std::string endpoint1 = Endpoint(hosts.HostIp(1), port);
  auto steady = StartWorker(hosts, 0, Endpoint(hosts.HostIp(0), port), "host0");
  auto doomed = StartWorker(hosts, 1, endpoint1, "host1");
  ASSERT_TRUE(doomed->WaitForStderr("joined the run at " + endpoint1, kWaitDeadline))
      << doomed->out();
  ASSERT_TRUE(coordinator->WaitForOutput("\nPASS ", kWaitDeadline)) << coordinator->out();
  // `ip netns exec` execs the worker: the child's pid is the worker's own.
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/" + std::to_string(doomed->pid()) + "/exe", ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(exe, fs::canonical(TESTFARM_BINARY));
  ASSERT_EQ(::kill(doomed->pid(), SIGKILL), 0);
  ChildResult killed = doomed->Finish(kWorkerExitDeadline);
  EXPECT_EQ(killed.signal, SIGKILL);
  auto restarted = StartWorker(hosts, 1, endpoint1, "host1");
  ASSERT_TRUE(restarted->WaitForStderr("joined the run at " + endpoint1, kWaitDeadline))
      << restarted->out();
  ChildResult r = coordinator->Finish(kRunDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "48 passed, 0 failed") << r.out;
  ExpectEachPassedOnce(r, "sleep", 48);
  EXPECT_EQ(Count(r.out, JoinLine("host0")), 1) << r.out;
  EXPECT_EQ(Count(r.out, JoinLine("host1")), 2) << r.out;
  // Its dropped connection, or its silence, made the coordinator requeue its tests.
  EXPECT_NE(r.err.find("coordinator: worker host1 "), std::string::npos) << r.err;
  EXPECT_EQ(steady->Finish(kWorkerExitDeadline).exit_code, 0);
  ChildResult rr = restarted->Finish(kWorkerExitDeadline);
  EXPECT_EQ(rr.exit_code, 0) << rr.err;
}

TEST_F(E2ENetns, AnUnreachableWorkerDoesNotHarmTheRun) {
  Hosts hosts(ip_, 3);
  ASSERT_EQ(hosts.error(), "");
  TempDir dir;
  fs::path manifest = Manifest(dir, "sleep", 20, Fixture("tf_sleep"), {"100"});
  std::string port;
  auto coordinator = StartCoordinator(
      {"--manifest", manifest.string(), "--local-slots", "0", "--min-workers", "1"}, &port);
  ASSERT_FALSE(port.empty()) << coordinator->out();
  // host1's link is down from the start: its connection attempts go nowhere.
  ASSERT_TRUE(hosts.LinkDown(1));
  auto cut_off = StartWorker(hosts, 1, Endpoint(hosts.HostIp(1), port), "host1");
  // host2 connects to an address its namespace has no route to (host0's link).
  auto misdirected = StartWorker(hosts, 2, Endpoint(hosts.HostIp(0), port), "host2");
  auto reachable = StartWorker(hosts, 0, Endpoint(hosts.HostIp(0), port), "host0");
  ChildResult r = coordinator->Finish(kRunDeadline);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "20 passed, 0 failed") << r.out;
  ExpectEachPassedOnce(r, "sleep", 20);
  EXPECT_EQ(Count(r.out, JoinLine("host0")), 1) << r.out;
  EXPECT_EQ(Count(r.out, "worker host1 joined"), 0) << r.out;
  EXPECT_EQ(Count(r.out, "worker host2 joined"), 0) << r.out;
  EXPECT_EQ(reachable->Finish(kWorkerExitDeadline).exit_code, 0);
  // The others are alive, never joined, keep trying (killed with their BackgroundChild) and
  // say why: their packets go nowhere.
  EXPECT_TRUE(cut_off->WaitForStderr(
      "cannot join the coordinator at " + Endpoint(hosts.HostIp(1), port) + ": ", kWaitDeadline));
  EXPECT_TRUE(misdirected->WaitForStderr(
      "cannot join the coordinator at " + Endpoint(hosts.HostIp(0), port) + ": ", kWaitDeadline));
  for (auto* worker : {cut_off.get(), misdirected.get()}) {
    EXPECT_TRUE(worker->WaitForStderr("; retrying in ", kWaitDeadline));
    ChildResult wr = worker->Finish(std::chrono::milliseconds(1));
    EXPECT_TRUE(wr.err.find("no answer from") != std::string::npos ||
                wr.err.find("is unreachable") != std::string::npos)
        << wr.err;
  }
}

TEST_F(E2ENetns, AFarmServesWorkersAndAClientOnOtherHostsThroughALostLink) {
  Hosts hosts(ip_, 3);
  ASSERT_EQ(hosts.error(), "");
  TempDir dir;
  // The farm in the root namespace; workers on hosts 0 and 1, a client on host 2 and another
  // on this host, at once. 40 x 300 ms on 2 x 2 slots shared by two runs.
  auto farm = std::make_unique<BackgroundChild>(std::vector<std::string>{
      TESTFARM_BINARY, "serve", "--listen", "tcp://0.0.0.0:*", "--key", KeyFile("coordinator.key"),
      "--worker-keys", KeyFile("worker.pub"), "--client-keys", KeyFile("client.pub"), "--store",
      (dir.path() / "store").string()});
  ASSERT_TRUE(farm->WaitForOutput("\n", kWaitDeadline));
  std::smatch m;
  std::string out = farm->out();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("listening on tcp://0\\.0\\.0\\.0:([0-9]+)\n")))
      << out;
  std::string port = m[1];
  auto farm_worker = [&](int i) {
    std::vector<std::string> argv =
        WorkerArgv(Endpoint(hosts.HostIp(i), port), "host" + std::to_string(i), 2);
    std::erase(argv, std::string("--once"));  // a farm's workers stay
    return std::make_unique<BackgroundChild>(hosts.WorkerCommand(i, argv));
  };
  auto steady = farm_worker(0);
  auto cut = farm_worker(1);
  auto client_argv = [&](const std::string& endpoint, const fs::path& manifest) {
    return std::vector<std::string>{TESTFARM_BINARY, "run",
                                    "--farm",        endpoint,
                                    "--key",         KeyFile("client.key"),
                                    "--farm-key",    KeyFile("coordinator.pub"),
                                    "--manifest",    manifest.string()};
  };
  TempDir far_dir;
  fs::path far_manifest = Manifest(far_dir, "far", 40, Fixture("tf_sleep"), {"300"});
  fs::path near_manifest = Manifest(dir, "near", 20, Fixture("tf_sleep"), {"300"});
  auto far = std::make_unique<BackgroundChild>(
      hosts.WorkerCommand(2, client_argv(Endpoint(hosts.HostIp(2), port), far_manifest)));
  auto near =
      std::make_unique<BackgroundChild>(client_argv(Endpoint("127.0.0.1", port), near_manifest));
  ASSERT_TRUE(far->WaitForOutput("\nPASS ", kWaitDeadline)) << far->out();
  ASSERT_TRUE(hosts.LinkDown(1));
  ASSERT_TRUE(farm->WaitForStderr("coordinator: worker host1 ", kWaitDeadline)) << farm->out();
  ASSERT_TRUE(hosts.LinkUp(1));
  ChildResult rf = far->Finish(kRunDeadline);
  ChildResult rn = near->Finish(kRunDeadline);
  EXPECT_EQ(rf.exit_code, 0) << rf.out << rf.err;
  EXPECT_EQ(rf.LastLine(), "40 passed, 0 failed") << rf.out;
  ExpectEachPassedOnce(rf, "far", 40);
  EXPECT_EQ(rn.exit_code, 0) << rn.out << rn.err;
  EXPECT_EQ(rn.LastLine(), "20 passed, 0 failed") << rn.out;
  ExpectEachPassedOnce(rn, "near", 20);
  EXPECT_EQ(Count(rf.out, "  near"), 0) << rf.out;
  EXPECT_EQ(Count(rn.out, "  far"), 0) << rn.out;
}

}  // namespace
}  // namespace testfarm::test
