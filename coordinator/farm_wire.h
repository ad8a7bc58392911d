#pragma once
// A run on the wire between a farm's client and the farm: its tests, files and policy going
// out (protocol::Submit, RunTest, FileSet), its reports coming back (TestDone, RunFinished).
// Each conversion is the other's inverse for every field the wire carries.
#include <optional>
#include <string>
#include <vector>

#include "coordinator/artifacts.h"
#include "coordinator/report.h"
#include "coordinator/run_core.h"
#include "coordinator/test_spec.h"
#include "protocol/messages.h"

namespace testfarm::coordinator {

// `file_set`: 0 for none, else 1 + the index of the test's file set in the submission.
protocol::RunTest ToWire(const TestSpec& test, uint32_t file_set);
// `previous`: the test decoded before it, if any; equal suite settings are shared with it.
TestSpec FromWire(const protocol::RunTest& test, const TestSpec* previous = nullptr);

protocol::FileSet ToWire(const ArtifactSet& set);
ArtifactSet FromWire(const protocol::FileSet& set);

// The run's policy; times of 0 on the wire take `defaults`' values.
protocol::Submit ToWire(const RunOptions& options, std::size_t max_slots);
RunOptions FromWire(const protocol::Submit& submit, const RunOptions& defaults);

const char* WireName(TestStatus status);
std::optional<TestStatus> StatusFromWire(const std::string& name);

protocol::TestDone ToWire(const TestReport& report, std::size_t running);
// The report (without its process: that is `done.result`, if any) or an error for a state the
// wire does not know.
Result<TestReport> FromWire(const protocol::TestDone& done);

}  // namespace testfarm::coordinator
