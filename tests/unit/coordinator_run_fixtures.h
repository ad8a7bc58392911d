#pragma once
// What the run-core and farm-core tests share: a reporter that records, and plain test specs.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/report.h"
#include "coordinator/run_core.h"
#include "coordinator/test_spec.h"

namespace testfarm::coordinator::fixtures {

class RecordingReporter : public Reporter {
 public:
  void OnRunStart(std::size_t) override {}
  void OnWorkerJoined(const std::string& name, unsigned) override { joined.push_back(name); }
  void OnTestStarted(const std::string& name, const std::string& worker) override {
    started.push_back(name + "@" + worker);
  }
  void OnTestFinished(const TestReport& report, std::size_t) override {
    finished.push_back(report);
  }
  void OnRunEnd(const RunSummary&) override { ++ended; }

  const TestReport* Find(const std::string& name) const {
    const TestReport* found = nullptr;
    for (const TestReport& r : finished) {
      if (r.name != name) continue;
      EXPECT_EQ(found, nullptr) << name << " reported twice";
      found = &r;
    }
    return found;
  }

  std::vector<std::string> joined;
  std::vector<std::string> started;
  std::vector<TestReport> finished;
  int ended = 0;
};

inline TestSpec Spec(const std::string& name, Millis timeout = Millis(0)) {
  TestSpec spec;
  spec.name = name;
  spec.suite = name;
  spec.EditSettings().command = {"/bin/" + name};
  spec.timeout = timeout;
  return spec;
}

inline std::vector<TestSpec> Specs(int n) {
  std::vector<TestSpec> specs;
  for (int i = 0; i < n; ++i) specs.push_back(Spec("t" + std::to_string(i)));
  return specs;
}

// What a fake farm's peers were sent, sorted by peer: jobs, cancels and everything else.
struct Mailboxes {
  void Sort(std::vector<Outgoing> outbox) {
    for (Outgoing& out : outbox) {
      if (auto* job = std::get_if<protocol::JobAssign>(&out.message)) {
        jobs[out.peer].push_back(*job);
      } else if (auto* cancel = std::get_if<protocol::Cancel>(&out.message)) {
        cancels[out.peer].push_back(cancel->lease);
      } else {
        others[out.peer].push_back(std::move(out.message));
      }
    }
  }
  std::vector<protocol::JobAssign> TakeJobs(const std::string& peer) {
    return std::exchange(jobs[peer], {});
  }
  // Whether `peer` was sent a message of this wire type ("welcome", "bye", ...).
  bool Saw(const std::string& peer, const std::string& type) const {
    auto it = others.find(peer);
    return it != others.end() &&
           std::any_of(it->second.begin(), it->second.end(),
                       [&](const protocol::Message& m) { return protocol::TypeName(m) == type; });
  }
  template <typename M>
  std::vector<M> Heard(const std::string& peer) const {
    std::vector<M> out;
    auto it = others.find(peer);
    if (it == others.end()) return out;
    for (const protocol::Message& message : it->second) {
      if (auto* m = std::get_if<M>(&message)) out.push_back(*m);
    }
    return out;
  }

  std::map<std::string, std::vector<protocol::JobAssign>> jobs;
  std::map<std::string, std::vector<uint64_t>> cancels;
  std::map<std::string, std::vector<protocol::Message>> others;
};

// The worker's result for `job`.
inline protocol::JobResult ResultOf(const protocol::JobAssign& job,
                                    ExitState state = ExitState::Exited(0)) {
  protocol::JobResult result;
  result.lease = job.lease;
  result.job_id = job.job_id;
  result.state = std::move(state);
  return result;
}

}  // namespace testfarm::coordinator::fixtures
