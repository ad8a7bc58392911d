#pragma once
// What the run-core and farm-core tests share: a reporter that records, and plain test specs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/report.h"
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
  spec.command = {"/bin/" + name};
  spec.timeout = timeout;
  return spec;
}

inline std::vector<TestSpec> Specs(int n) {
  std::vector<TestSpec> specs;
  for (int i = 0; i < n; ++i) specs.push_back(Spec("t" + std::to_string(i)));
  return specs;
}

}  // namespace testfarm::coordinator::fixtures
