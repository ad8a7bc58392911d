#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/report_writers.h"

namespace testfarm::coordinator {
namespace {

using nlohmann::json;

constexpr const char* kFffd = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

TestReport Report(const std::string& suite, const std::string& case_name, TestStatus state,
                  std::optional<ExitState> exit = std::nullopt, int64_t ms = 5) {
  TestReport report;
  report.suite = suite;
  report.case_name = case_name;
  report.name = case_name.empty() ? suite : suite + "::" + case_name;
  report.state = state;
  report.duration = Millis(ms);
  if (exit) {
    protocol::JobResult result;
    result.state = *exit;
    result.duration_ms = static_cast<uint64_t>(ms);
    report.result = result;
    report.worker = "local";
  }
  return report;
}

TestReport Passed(const std::string& suite, const std::string& case_name = "", int64_t ms = 5) {
  return Report(suite, case_name, TestStatus::kPassed, ExitState::Exited(0), ms);
}

RunInfo Info() {
  RunInfo info;
  info.hostname = "build-7";
  info.started_utc = "2026-11-26T13:05:00Z";
  info.wall = Millis(1234);
  return info;
}

// The text between the first `open` and the next `close` after it, or "(missing)".
std::string Between(const std::string& text, const std::string& open, const std::string& close) {
  std::size_t start = text.find(open);
  if (start == std::string::npos) return "(missing)";
  start += open.size();
  std::size_t end = text.find(close, start);
  if (end == std::string::npos) return "(missing)";
  return text.substr(start, end - start);
}

// The <testcase ...> element (up to and including its end) for the testcase named `name`.
std::string Testcase(const std::string& xml, const std::string& name) {
  std::size_t start = xml.find("<testcase name=\"" + name + "\"");
  if (start == std::string::npos) return "(missing)";
  std::size_t self_closed = xml.find("/>\n", start);
  std::size_t open_end = xml.find(">\n", start);
  if (self_closed != std::string::npos && self_closed < open_end)
    return xml.substr(start, self_closed + 2 - start);
  std::size_t end = xml.find("</testcase>", start);
  return xml.substr(start, end + 11 - start);
}

// ---------------------------------------------------------------------------------------------
// JUnit XML

TEST(JunitXml, EmptyRun) {
  RunInfo info;
  EXPECT_EQ(JunitXml({}, info),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites name=\"testfarm\" tests=\"0\" failures=\"0\" errors=\"0\" skipped=\"0\" "
            "time=\"0.000\">\n"
            "</testsuites>\n");
}

TEST(JunitXml, ExactDocument) {
  TestReport plain = Passed("hash_test", "", 12);
  TestReport failed = Report("math", "Primes.Small", TestStatus::kFailed, ExitState::Exited(1), 40);
  failed.message = "primes_test.cc:12\nExpected: 2\n  Actual: 3";
  failed.result->stdout_text = "[ RUN      ] Primes.Small\n";
  EXPECT_EQ(JunitXml({plain, failed}, Info()),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites name=\"testfarm\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" "
            "time=\"1.234\">\n"
            "  <testsuite name=\"hash_test\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\" "
            "time=\"0.012\" timestamp=\"2026-11-26T13:05:00Z\" hostname=\"build-7\">\n"
            "    <testcase name=\"hash_test\" classname=\"hash_test\" time=\"0.012\"/>\n"
            "  </testsuite>\n"
            "  <testsuite name=\"math\" tests=\"1\" failures=\"1\" errors=\"0\" skipped=\"0\" "
            "time=\"0.040\" timestamp=\"2026-11-26T13:05:00Z\" hostname=\"build-7\">\n"
            "    <testcase name=\"Small\" classname=\"Primes\" time=\"0.040\">\n"
            "      <failure message=\"primes_test.cc:12: Expected: 2\" "
            "type=\"FAIL\">primes_test.cc:12\nExpected: 2\n"
            "  Actual: 3</failure>\n"
            "      <system-out>[ RUN      ] Primes.Small\n</system-out>\n"
            "    </testcase>\n"
            "  </testsuite>\n"
            "</testsuites>\n");
}

TEST(JunitXml, GroupsBySuiteInFirstSeenOrderWithCountsPerSuite) {
  std::vector<TestReport> reports = {
      Report("zeta", "A.x", TestStatus::kFailed, ExitState::Exited(1), 100),
      Passed("alpha", "", 20),
      Report("zeta", "A.y", TestStatus::kFailed, ExitState::Signaled(11, false), 300),
      Report("zeta", "A.z", TestStatus::kNotRun),
      Passed("zeta", "A.w", 1),
  };
  std::string xml = JunitXml(reports, Info());
  std::size_t zeta = xml.find("<testsuite name=\"zeta\"");
  std::size_t alpha = xml.find("<testsuite name=\"alpha\"");
  ASSERT_NE(zeta, std::string::npos);
  ASSERT_NE(alpha, std::string::npos);
  EXPECT_LT(zeta, alpha);
  // A test that never ran is an error in JUnit, never a skip.
  EXPECT_NE(xml.find("<testsuite name=\"zeta\" tests=\"4\" failures=\"1\" errors=\"2\" "
                     "skipped=\"0\" time=\"0.406\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testsuite name=\"alpha\" tests=\"1\" failures=\"0\" errors=\"0\" "
                     "skipped=\"0\" time=\"0.020\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testsuites name=\"testfarm\" tests=\"5\" failures=\"1\" errors=\"2\" "
                     "skipped=\"0\" time=\"1.234\">"),
            std::string::npos)
      << xml;
  // Cases stay in report order inside their suite.
  EXPECT_LT(xml.find("name=\"x\""), xml.find("name=\"y\""));
  EXPECT_LT(xml.find("name=\"y\""), xml.find("name=\"z\""));
  EXPECT_LT(xml.find("name=\"z\""), xml.find("name=\"w\""));
}

TEST(JunitXml, EveryStatusMapsToFailureErrorOrSkipped) {
  TestReport cancelled =
      Report("cancelled", "", TestStatus::kCancelled, ExitState::Cancelled("SIGTERM"));
  TestReport not_run = Report("not_run", "", TestStatus::kNotRun);
  not_run.reason = "run stopped: --fail-fast";
  TestReport lost = Report("lost", "", TestStatus::kExpired);
  lost.worker = "w1";
  lost.reason = "no result from worker";
  TestReport skipped = Report("skipped", "S.c", TestStatus::kSkipped, ExitState::Exited(0));
  skipped.message = "not on this platform";
  std::vector<TestReport> reports = {
      Passed("pass"),
      Report("fail", "", TestStatus::kFailed, ExitState::Exited(3)),
      Report("crash", "", TestStatus::kFailed, ExitState::Signaled(11, true)),
      Report("timeout", "", TestStatus::kFailed, ExitState::TimedOut("SIGKILL after 2s grace")),
      Report("spawn", "", TestStatus::kFailed,
             ExitState::SpawnFailed(2, "No such file or directory")),
      Report("leak", "", TestStatus::kFailed, ExitState::Leaked(0, "1 process")),
      lost,
      cancelled,
      not_run,
      skipped,
      Report("disabled", "", TestStatus::kSkipped),
  };
  std::string xml = JunitXml(reports, Info());
  EXPECT_EQ(Testcase(xml, "pass"), "<testcase name=\"pass\" classname=\"pass\" time=\"0.005\"/>");
  EXPECT_EQ(Testcase(xml, "fail"),
            "<testcase name=\"fail\" classname=\"fail\" time=\"0.005\">\n"
            "      <failure message=\"exit 3\" type=\"FAIL\">exit 3</failure>\n"
            "    </testcase>");
  EXPECT_EQ(Testcase(xml, "crash"),
            "<testcase name=\"crash\" classname=\"crash\" time=\"0.005\">\n"
            "      <error message=\"SIGSEGV (core dumped)\" type=\"CRASH\">SIGSEGV (core "
            "dumped)</error>\n"
            "    </testcase>");
  EXPECT_NE(Testcase(xml, "timeout")
                .find("<error message=\"timed out, SIGKILL after 2s grace\" type=\"TIMEOUT\">"),
            std::string::npos);
  EXPECT_NE(
      Testcase(xml, "spawn")
          .find("<error message=\"failed to start: No such file or directory\" type=\"ERROR\">"),
      std::string::npos);
  EXPECT_NE(
      Testcase(xml, "leak").find("<error message=\"exit 0, leaked: 1 process\" type=\"LEAK\">"),
      std::string::npos);
  EXPECT_NE(Testcase(xml, "lost").find("<error message=\"no result from worker\" type=\"LOST\">"),
            std::string::npos);
  // A test that could not run to its end is never a quiet skip: CI must see it.
  EXPECT_NE(
      Testcase(xml, "cancelled").find("<error message=\"cancelled, SIGTERM\" type=\"CANCEL\">"),
      std::string::npos)
      << xml;
  EXPECT_NE(
      Testcase(xml, "not_run").find("<error message=\"run stopped: --fail-fast\" type=\"NOTRUN\">"),
      std::string::npos)
      << xml;
  EXPECT_NE(Testcase(xml, "c").find(
                "<skipped message=\"not on this platform\">not on this platform</skipped>"),
            std::string::npos)
      << xml;
  EXPECT_NE(Testcase(xml, "disabled").find("<skipped message=\"skipped\"/>"), std::string::npos);
  EXPECT_NE(xml.find("tests=\"11\" failures=\"1\" errors=\"7\" skipped=\"2\""), std::string::npos);
}

TEST(JunitXml, ASkippedProcessesExitIsNotTheReason) {
  TestReport skip = Report("gskip", "", TestStatus::kSkipped, ExitState::Exited(0));
  std::string xml = JunitXml({skip}, Info());
  EXPECT_NE(Testcase(xml, "gskip").find("<skipped message=\"skipped\"/>"), std::string::npos)
      << xml;
  json doc = json::parse(JsonReport({skip}, Info()));
  EXPECT_EQ(doc["attempts"][0]["reason"], "");
}

TEST(JunitXml, CancelOfAFailedJobIsAnError) {
  std::string xml =
      JunitXml({Report("c", "", TestStatus::kFailed, ExitState::Cancelled("worker left"))}, Info());
  EXPECT_NE(xml.find("<error message=\"cancelled, worker left\" type=\"CANCEL\">"),
            std::string::npos)
      << xml;
}

TEST(JunitXml, GtestNamesSplitAtTheFirstDot) {
  std::vector<TestReport> reports = {
      Passed("bin", "Suite.Case"),    Passed("bin", "TypedTest/0.Works"),
      Passed("bin", "Inst/P.Even/0"), Passed("bin", "Prefix/Typed/1.Has/2"),
      Passed("plain_suite"),
  };
  std::string xml = JunitXml(reports, Info());
  EXPECT_NE(xml.find("<testcase name=\"Case\" classname=\"Suite\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<testcase name=\"Works\" classname=\"TypedTest/0\""), std::string::npos);
  EXPECT_NE(xml.find("<testcase name=\"Even/0\" classname=\"Inst/P\""), std::string::npos);
  EXPECT_NE(xml.find("<testcase name=\"Has/2\" classname=\"Prefix/Typed/1\""), std::string::npos);
  EXPECT_NE(xml.find("<testcase name=\"plain_suite\" classname=\"plain_suite\""),
            std::string::npos);
  EXPECT_NE(xml.find("<testsuite name=\"bin\" tests=\"4\""), std::string::npos);
}

TEST(JunitXml, EscapesMarkupInAttributesAndText) {
  TestReport report = Report("a&b<c>", "S.\"q\"'s", TestStatus::kFailed, ExitState::Exited(1));
  report.reason = "x < y && y > \"z\" 'w'";
  report.message = "if (a < b && c > d) \"quoted\" 'single' ]]> end";
  report.result->stderr_text = "<tag attr=\"v\">&amp;</tag>";
  std::string xml = JunitXml({report}, Info());
  EXPECT_NE(xml.find("<testsuite name=\"a&amp;b&lt;c&gt;\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<testcase name=\"&quot;q&quot;&apos;s\" classname=\"S\""), std::string::npos);
  EXPECT_NE(xml.find("message=\"x &lt; y &amp;&amp; y &gt; &quot;z&quot; &apos;w&apos;\""),
            std::string::npos);
  EXPECT_EQ(Between(xml, "type=\"FAIL\">", "</failure>"),
            "if (a &lt; b &amp;&amp; c &gt; d) &quot;quoted&quot; &apos;single&apos; ]]&gt; end");
  EXPECT_EQ(Between(xml, "<system-err>", "</system-err>"),
            "&lt;tag attr=&quot;v&quot;&gt;&amp;amp;&lt;/tag&gt;");
  EXPECT_EQ(xml.find("<![CDATA["), std::string::npos);
}

TEST(JunitXml, ReplacesCharactersXmlCannotHoldAndInvalidUtf8) {
  TestReport report = Report("s", "", TestStatus::kFailed, ExitState::Exited(1));
  report.reason = std::string("bell\x01 esc\x1b[31m nul") + '\0' + " tab\tnl\ncr\r.";
  report.result->stdout_text =
      "ctl\x01\x1b[0m bad\xff ok:\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 tab\tnl\ncr\r.";
  std::string xml = JunitXml({report}, Info());
  std::string f = kFffd;
  // Attributes keep tab, newline and carriage return as character references.
  EXPECT_NE(
      xml.find("message=\"bell" + f + " esc" + f + "[31m nul" + f + " tab&#9;nl&#10;cr&#13;.\""),
      std::string::npos)
      << xml;
  // Content keeps tab and newline as they are; a carriage return becomes a reference.
  EXPECT_EQ(
      Between(xml, "<system-out>", "</system-out>"),
      "ctl" + f + f + "[0m bad" + f + " ok:\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 tab\tnl\ncr&#13;.");
}

TEST(JunitXml, InvalidUtf8SequencesBecomeOneReplacementPerMaximalPart) {
  struct Case {
    std::string input;
    std::string expected;
  };
  std::string f = kFffd;
  std::vector<Case> cases = {
      {"\xff", f},
      {"a\x80z", "a" + f + "z"},  // lone continuation byte
      {"\xE2\x82"
       "A",
       f + "A"},                                   // truncated 3-byte sequence, then ASCII
      {"\xE2\x82", f},                             // truncated at the end
      {"\xC0\xAF", f + f},                         // overlong '/'
      {"\xE0\x80\xAF", f + f + f},                 // overlong, 3 bytes
      {"\xED\xA0\x80", f + f + f},                 // UTF-16 surrogate D800
      {"\xF4\x90\x80\x80", f + f + f + f},         // above U+10FFFF
      {"\xF0\x9F\x98", f},                         // truncated emoji
      {"\xEF\xBF\xBE|\xEF\xBF\xBF", f + "|" + f},  // U+FFFE, U+FFFF: not XML characters
      {"\xEF\xBF\xBD", f},                         // U+FFFD itself is fine
      {"\x7f\xC2\x85", "\x7f\xC2\x85"},            // DEL and NEL are XML 1.0 characters
      {"\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"},    // U+10FFFF
  };
  for (const Case& c : cases) {
    TestReport report = Report("s", "", TestStatus::kFailed, ExitState::Exited(1));
    report.result->stdout_text = c.input;
    std::string xml = JunitXml({report}, Info());
    EXPECT_EQ(Between(xml, "<system-out>", "</system-out>"), c.expected)
        << "input bytes: " << testing::PrintToString(c.input);
  }
}

TEST(JunitXml, FailureTextIsTheMessageElseTheReason) {
  TestReport with_message = Report("s", "A.m", TestStatus::kFailed, ExitState::Exited(1));
  with_message.message = "boom";
  TestReport with_reason = Report("s", "A.r", TestStatus::kFailed, ExitState::Exited(1));
  with_reason.reason = "case did not report";
  std::string xml = JunitXml({with_message, with_reason}, Info());
  EXPECT_NE(Testcase(xml, "m").find("<failure message=\"boom\" type=\"FAIL\">boom</failure>"),
            std::string::npos)
      << xml;
  EXPECT_NE(Testcase(xml, "r").find("<failure message=\"case did not report\" type=\"FAIL\">"
                                    "case did not report</failure>"),
            std::string::npos)
      << xml;
}

TEST(JunitXml, OutputGoesToEveryLoneTestButOnlyToFailedBatchCases) {
  TestReport lone = Passed("lone");
  lone.result->stdout_text = "lone out";
  lone.result->stderr_text = "lone err";
  TestReport batch_pass = Passed("b", "S.pass");
  batch_pass.batch = true;
  batch_pass.result->stdout_text = "batch out";
  TestReport batch_fail = Report("b", "S.fail", TestStatus::kFailed, ExitState::Exited(1));
  batch_fail.batch = true;
  batch_fail.result->stdout_text = "batch out";
  TestReport empty = Report("e", "", TestStatus::kFailed, ExitState::Exited(1));
  std::string xml = JunitXml({lone, batch_pass, batch_fail, empty}, Info());
  EXPECT_NE(Testcase(xml, "lone")
                .find("<system-out>lone out</system-out>\n"
                      "      <system-err>lone err</system-err>"),
            std::string::npos)
      << xml;
  EXPECT_EQ(Testcase(xml, "pass"), "<testcase name=\"pass\" classname=\"S\" time=\"0.005\"/>");
  EXPECT_NE(Testcase(xml, "fail").find("<system-out>batch out</system-out>"), std::string::npos);
  EXPECT_EQ(Testcase(xml, "e").find("<system-"), std::string::npos);
}

TEST(JunitXml, AProcessesPeakRssAndCpuAreTestcaseProperties) {
  TestReport ran = Passed("ran");
  ran.result->peak_rss_kb = 65536;
  ran.result->cpu_ms = 150;
  std::string xml = JunitXml({ran, Passed("no-rusage")}, Info());
  EXPECT_EQ(Testcase(xml, "ran"),
            "<testcase name=\"ran\" classname=\"ran\" time=\"0.005\">\n"
            "      <properties>\n"
            "        <property name=\"peak_rss_kb\" value=\"65536\"/>\n"
            "        <property name=\"cpu_ms\" value=\"150\"/>\n"
            "      </properties>\n"
            "    </testcase>");
  // No rusage (the process never ran, or an older worker): no properties.
  EXPECT_EQ(Testcase(xml, "no-rusage"),
            "<testcase name=\"no-rusage\" classname=\"no-rusage\" time=\"0.005\"/>");
}

TEST(JunitXml, EarlierAttemptsOfARerunTestAreFlakyOrRerunElementsInsideItsTestcase) {
  TestReport first = Report("flaky", "", TestStatus::kFailed, ExitState::Exited(1));
  first.retried = true;
  first.result->stdout_text = "attempt 1 out";
  TestReport crashed = Report("flaky", "", TestStatus::kFailed, ExitState::Signaled(11, false));
  crashed.retried = true;
  crashed.attempt = 2;
  TestReport passed = Passed("flaky");
  passed.state = TestStatus::kFlaky;
  passed.attempt = 3;
  TestReport again = Report("broken", "", TestStatus::kFailed, ExitState::Exited(1));
  again.retried = true;
  TestReport last = Report("broken", "", TestStatus::kFailed, ExitState::Exited(2));
  last.attempt = 2;
  std::string xml = JunitXml({first, again, crashed, passed, last}, Info());
  EXPECT_EQ(Between(xml, "<testsuites", ">"),
            " name=\"testfarm\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" "
            "time=\"1.234\"");
  EXPECT_EQ(Testcase(xml, "flaky"),
            "<testcase name=\"flaky\" classname=\"flaky\" time=\"0.005\">\n"
            "      <flakyFailure message=\"exit 1\" type=\"FAIL\">\n"
            "        <stackTrace>exit 1</stackTrace>\n"
            "        <system-out>attempt 1 out</system-out>\n"
            "      </flakyFailure>\n"
            "      <flakyError message=\"SIGSEGV\" type=\"CRASH\">\n"
            "        <stackTrace>SIGSEGV</stackTrace>\n"
            "      </flakyError>\n"
            "    </testcase>");
  EXPECT_EQ(Testcase(xml, "broken"),
            "<testcase name=\"broken\" classname=\"broken\" time=\"0.005\">\n"
            "      <failure message=\"exit 2\" type=\"FAIL\">exit 2</failure>\n"
            "      <rerunFailure message=\"exit 1\" type=\"FAIL\">\n"
            "        <stackTrace>exit 1</stackTrace>\n"
            "      </rerunFailure>\n"
            "    </testcase>");
}

TEST(JunitXml, SecondsHaveThreeDecimals) {
  RunInfo info;
  info.wall = Millis(61005);
  std::string xml =
      JunitXml({Passed("a", "", 0), Passed("b", "", 7), Passed("c", "", 98765)}, info);
  EXPECT_NE(xml.find("name=\"a\" classname=\"a\" time=\"0.000\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("name=\"b\" classname=\"b\" time=\"0.007\""), std::string::npos);
  EXPECT_NE(xml.find("name=\"c\" classname=\"c\" time=\"98.765\""), std::string::npos);
  EXPECT_NE(xml.find("time=\"61.005\">"), std::string::npos);
  // No timestamp or hostname attributes when they are unknown.
  EXPECT_EQ(xml.find("timestamp="), std::string::npos);
  EXPECT_EQ(xml.find("hostname="), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// JSON report

// The `names` a documentation table lists in its first column, for the section headed `heading`.
std::set<std::string> DocumentedFields(const std::string& heading) {
  std::filesystem::path doc =
      std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "docs" /
      "json-report.md";
  std::ifstream in(doc);
  EXPECT_TRUE(in) << "cannot read " << doc;
  std::set<std::string> fields;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("#", 0) == 0) inside = line.find(heading) != std::string::npos;
    if (inside && line.rfind("| `", 0) == 0) fields.insert(Between(line, "| `", "`"));
  }
  return fields;
}

std::set<std::string> Keys(const json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

TEST(JsonReport, EveryFieldIsDocumented) {
  TestReport report = Report("s", "A.b", TestStatus::kFailed, ExitState::Signaled(6, true));
  json doc = json::parse(JsonReport({report}, Info()));
  EXPECT_EQ(Keys(doc), DocumentedFields("Top level"));
  EXPECT_EQ(Keys(doc["run"]), DocumentedFields("`run`"));
  EXPECT_EQ(Keys(doc["attempts"][0]), DocumentedFields("`attempts[]`"));
  EXPECT_EQ(Keys(doc["attempts"][0]["process"]), DocumentedFields("`process`"));
}

TEST(JsonReport, RunAndAttemptFields) {
  TestReport report = Report("math", "Primes.Small", TestStatus::kFailed, ExitState::Exited(1), 40);
  report.message = "Expected: 2";
  report.worker = "w1";
  report.slot = 3;
  report.started_at = Millis(100);
  report.finished_at = Millis(160);
  report.attempt = 2;
  report.batch = true;
  report.result->stdout_text = "out";
  report.result->stderr_text = "err";
  report.result->stdout_dropped = 7;
  report.result->duration_ms = 55;
  report.result->peak_rss_kb = 2048;
  report.result->cpu_ms = 31;
  std::string text = JsonReport({report, Passed("hash")}, Info());
  json doc = json::parse(text);
  EXPECT_EQ(doc["testfarm_report"], 2);
  EXPECT_EQ(doc["run"], json({{"hostname", "build-7"},
                              {"started_utc", "2026-11-26T13:05:00Z"},
                              {"wall_ms", 1234},
                              {"tests", 2},
                              {"passed", 1},
                              {"failed", 1},
                              {"flaky", 0},
                              {"skipped", 0},
                              {"cancelled", 0},
                              {"not_run", 0}}));
  ASSERT_EQ(doc["attempts"].size(), 2u);
  const json& a = doc["attempts"][0];
  EXPECT_EQ(a["name"], "math::Primes.Small");
  EXPECT_EQ(a["suite"], "math");
  EXPECT_EQ(a["case"], "Primes.Small");
  EXPECT_EQ(a["status"], "failed");
  EXPECT_EQ(a["status_word"], "FAIL");
  EXPECT_EQ(a["reason"], "Expected: 2");  // StatusReason: the message's headline
  EXPECT_EQ(a["message"], "Expected: 2");
  EXPECT_EQ(a["duration_ms"], 40);
  EXPECT_EQ(a["worker"], "w1");
  EXPECT_EQ(a["slot"], 3);
  EXPECT_EQ(a["started_ms"], 100);
  EXPECT_EQ(a["finished_ms"], 160);
  EXPECT_EQ(a["attempt"], 2);
  EXPECT_EQ(a["batch"], true);
  EXPECT_EQ(a["retried"], false);
  EXPECT_EQ(a["process"], json({{"outcome", "exited"},
                                {"exit_code", 1},
                                {"signal", nullptr},
                                {"core_dumped", false},
                                {"detail", ""},
                                {"duration_ms", 55},
                                {"stdout", "out"},
                                {"stderr", "err"},
                                {"stdout_dropped", 7},
                                {"stderr_dropped", 0},
                                {"peak_rss_kb", 2048},
                                {"cpu_ms", 31}}));
  const json& plain = doc["attempts"][1];
  EXPECT_TRUE(plain["case"].is_null());
  EXPECT_EQ(plain["reason"], "");
  // Keys come out in the documented order, and the file ends with a newline.
  EXPECT_LT(text.find("\"testfarm_report\""), text.find("\"run\""));
  EXPECT_LT(text.find("\"run\""), text.find("\"attempts\""));
  EXPECT_EQ(text.back(), '\n');
}

TEST(JsonReport, EveryStatus) {
  struct Case {
    TestReport report;
    const char* status;
    const char* word;
  };
  TestReport lost = Report("lost", "", TestStatus::kExpired);
  lost.reason = "no result from worker";
  std::vector<Case> cases = {
      {Passed("p"), "passed", "PASS"},
      {Report("f", "", TestStatus::kFailed, ExitState::Exited(2)), "failed", "FAIL"},
      {Report("c", "", TestStatus::kFailed, ExitState::Signaled(11, false)), "failed", "CRASH"},
      {Report("t", "", TestStatus::kFailed, ExitState::TimedOut("")), "failed", "TIMEOUT"},
      {Report("e", "", TestStatus::kFailed, ExitState::SpawnFailed(13, "Permission denied")),
       "failed", "ERROR"},
      {Report("l", "", TestStatus::kFailed, ExitState::Leaked(0, "x")), "failed", "LEAK"},
      {lost, "lost", "LOST"},
      {Report("x", "", TestStatus::kCancelled, ExitState::Cancelled("")), "cancelled", "CANCEL"},
      {Report("n", "", TestStatus::kNotRun), "not_run", "NOTRUN"},
      {Report("s", "", TestStatus::kSkipped), "skipped", "SKIP"},
  };
  std::vector<TestReport> reports;
  for (const Case& c : cases) reports.push_back(c.report);
  json doc = json::parse(JsonReport(reports, Info()));
  ASSERT_EQ(doc["attempts"].size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(doc["attempts"][i]["status"], cases[i].status) << cases[i].report.name;
    EXPECT_EQ(doc["attempts"][i]["status_word"], cases[i].word) << cases[i].report.name;
  }
  EXPECT_EQ(doc["run"]["tests"], 10);
  EXPECT_EQ(doc["run"]["passed"], 1);
  EXPECT_EQ(doc["run"]["failed"], 6);
  EXPECT_EQ(doc["run"]["skipped"], 1);
  EXPECT_EQ(doc["run"]["cancelled"], 1);
  EXPECT_EQ(doc["run"]["not_run"], 1);
}

TEST(JsonReport, ProcessOutcomes) {
  TestReport none = Report("none", "", TestStatus::kNotRun);
  std::vector<TestReport> reports = {
      Report("sig", "", TestStatus::kFailed, ExitState::Signaled(11, true)),
      Report("time", "", TestStatus::kFailed, ExitState::TimedOut("SIGKILL after 2s grace")),
      Report("spawn", "", TestStatus::kFailed, ExitState::SpawnFailed(2, "No such file")),
      Report("leak", "", TestStatus::kFailed, ExitState::Leaked(4, "2 processes")),
      none,
  };
  json doc = json::parse(JsonReport(reports, Info()));
  const json& attempts = doc["attempts"];
  EXPECT_EQ(attempts[0]["process"]["outcome"], "signaled");
  EXPECT_TRUE(attempts[0]["process"]["exit_code"].is_null());
  EXPECT_EQ(attempts[0]["process"]["signal"], "SIGSEGV");
  EXPECT_EQ(attempts[0]["process"]["core_dumped"], true);
  EXPECT_EQ(attempts[0]["reason"], "SIGSEGV (core dumped)");
  EXPECT_EQ(attempts[1]["process"]["outcome"], "timed_out");
  EXPECT_EQ(attempts[1]["process"]["detail"], "SIGKILL after 2s grace");
  EXPECT_TRUE(attempts[1]["process"]["exit_code"].is_null());
  EXPECT_TRUE(attempts[1]["process"]["signal"].is_null());
  EXPECT_EQ(attempts[2]["process"]["outcome"], "spawn_failed");
  EXPECT_EQ(attempts[2]["process"]["detail"], "No such file");
  EXPECT_EQ(attempts[3]["process"]["outcome"], "leaked");
  EXPECT_EQ(attempts[3]["process"]["exit_code"], 4);
  EXPECT_TRUE(attempts[4]["process"].is_null());
  EXPECT_TRUE(attempts[4]["worker"].is_null());
}

TEST(JsonReport, InvalidUtf8IsReplacedAndControlCharactersRoundTrip) {
  TestReport report = Report("s\xff", "", TestStatus::kFailed, ExitState::Exited(1));
  report.result->stdout_text = "a\x01\x1b[0m\tb\n";
  report.result->stderr_text = "bad\xff\xE2\x82 end";
  report.message = "\xC3\xA9 ok";
  std::string text;
  ASSERT_NO_THROW(text = JsonReport({report}, Info()));
  json doc = json::parse(text);
  const json& a = doc["attempts"][0];
  std::string f = kFffd;
  EXPECT_EQ(a["suite"], "s" + f);
  EXPECT_EQ(a["process"]["stdout"], "a\x01\x1b[0m\tb\n");
  EXPECT_EQ(a["process"]["stderr"], "bad" + f + f + " end");
  EXPECT_EQ(a["message"], "\xC3\xA9 ok");
  EXPECT_NE(text.find("\\u0001\\u001b"), std::string::npos);
}

TEST(JsonReport, RunCountsEachTestOnceByItsLastAttempt) {
  TestReport first = Report("g", "A.b", TestStatus::kFailed, ExitState::Signaled(11, false));
  first.batch = true;
  TestReport retry = Passed("g", "A.b");
  retry.attempt = 2;
  for (const auto& reports : {std::vector<TestReport>{first, retry, Passed("other")},
                              std::vector<TestReport>{retry, first, Passed("other")}}) {
    json doc = json::parse(JsonReport(reports, Info()));
    EXPECT_EQ(doc["attempts"].size(), 3u);
    EXPECT_EQ(doc["run"]["tests"], 2);
    EXPECT_EQ(doc["run"]["passed"], 2);
    EXPECT_EQ(doc["run"]["failed"], 0);
  }
}

TEST(JsonReport, EmptyRun) {
  RunInfo info;
  json doc = json::parse(JsonReport({}, info));
  EXPECT_EQ(doc["attempts"], json::array());
  EXPECT_EQ(doc["run"]["tests"], 0);
  EXPECT_EQ(doc["run"]["hostname"], "");
}

// ---------------------------------------------------------------------------------------------
// Chrome trace

TestReport Ran(const std::string& name, const std::string& worker, uint32_t slot, int64_t started,
               int64_t finished, int64_t duration, TestStatus state = TestStatus::kPassed) {
  TestReport report =
      Report(name, "", state,
             state == TestStatus::kPassed ? ExitState::Exited(0) : ExitState::Exited(1), duration);
  report.worker = worker;
  report.slot = slot;
  report.started_at = Millis(started);
  report.finished_at = Millis(finished);
  return report;
}

std::vector<json> EventsWithPhase(const json& trace, const std::string& phase) {
  std::vector<json> events;
  for (const json& event : trace["traceEvents"])
    if (event["ph"] == phase) events.push_back(event);
  return events;
}

const json* CompleteEvent(const json& trace, const std::string& name) {
  for (const json& event : trace["traceEvents"])
    if (event["ph"] == "X" && event["name"] == name) return &event;
  return nullptr;
}

TEST(ChromeTrace, TopLevelAndMetadata) {
  std::vector<TestReport> reports = {
      Ran("a", "zulu", 1, 0, 10, 10),
      Ran("b", "alpha", 0, 0, 10, 10),
      Ran("c", "zulu", 0, 10, 20, 10),
  };
  json trace = json::parse(ChromeTrace(reports, Info()));
  EXPECT_EQ(trace["displayTimeUnit"], "ms");
  ASSERT_TRUE(trace["traceEvents"].is_array());
  // pids number the workers by name, from 1; each slot is a named thread.
  std::set<std::tuple<std::string, int, int, std::string>> metadata;
  for (const json& event : EventsWithPhase(trace, "M")) {
    std::string value = event["args"].contains("name") ? event["args"]["name"].get<std::string>()
                                                       : event["args"]["sort_index"].dump();
    metadata.emplace(event["name"], event["pid"], event["tid"], value);
  }
  std::set<std::tuple<std::string, int, int, std::string>> expected = {
      {"process_name", 1, 0, "alpha"}, {"process_sort_index", 1, 0, "1"},
      {"process_name", 2, 0, "zulu"},  {"process_sort_index", 2, 0, "2"},
      {"thread_name", 1, 0, "slot 0"}, {"thread_sort_index", 1, 0, "0"},
      {"thread_name", 2, 0, "slot 0"}, {"thread_sort_index", 2, 0, "0"},
      {"thread_name", 2, 1, "slot 1"}, {"thread_sort_index", 2, 1, "1"},
  };
  EXPECT_EQ(metadata, expected);
  // Metadata first, then one complete event per attempt.
  EXPECT_EQ(trace["traceEvents"].size(), expected.size() + 3);
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(trace["traceEvents"][i]["ph"], "M");
}

TEST(ChromeTrace, CompleteEventPerAttempt) {
  TestReport crash = Ran("crash", "w", 2, 1500, 1750, 240, TestStatus::kFailed);
  crash.result->state = ExitState::Signaled(11, false);
  json trace = json::parse(ChromeTrace({Ran("ok", "w", 0, 5, 25, 19), crash}, Info()));
  const json* ok = CompleteEvent(trace, "ok");
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(*ok, json({{"name", "ok"},
                       {"cat", "passed"},
                       {"ph", "X"},
                       {"ts", 5000},
                       {"dur", 20000},
                       {"pid", 1},
                       {"tid", 0},
                       {"args", {{"status", "PASS"}, {"reason", ""}}}}));
  const json* c = CompleteEvent(trace, "crash");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ((*c)["cat"], "failed");
  EXPECT_EQ((*c)["ts"], 1500000);
  EXPECT_EQ((*c)["dur"], 250000);
  EXPECT_EQ((*c)["tid"], 2);
  EXPECT_EQ((*c)["args"], json({{"status", "CRASH"}, {"reason", "SIGSEGV"}}));
}

TEST(ChromeTrace, BatchCasesFollowOneAnotherInsideTheirProcess) {
  auto batch_case = [](const std::string& name, uint32_t slot, int64_t duration) {
    TestReport report = Ran(name, "w", slot, 1000, 1400, duration);
    report.batch = true;
    return report;
  };
  std::vector<TestReport> reports = {
      batch_case("one", 0, 100), batch_case("other-slot", 1, 50),
      batch_case("two", 0, 200), batch_case("three", 0, 300),  // capped at the process's end
      batch_case("four", 0, 10),                               // nothing left: zero length
  };
  TestReport later = Ran("later", "w", 0, 1400, 1500, 30);  // a later batch on the same slot
  later.batch = true;
  reports.push_back(later);
  json trace = json::parse(ChromeTrace(reports, Info()));
  auto span = [&](const std::string& name) {
    const json* event = CompleteEvent(trace, name);
    if (event == nullptr) return std::pair<int64_t, int64_t>{-1, -1};
    return std::pair<int64_t, int64_t>{(*event)["ts"], (*event)["dur"]};
  };
  EXPECT_EQ(span("one"), (std::pair<int64_t, int64_t>{1000000, 100000}));
  EXPECT_EQ(span("two"), (std::pair<int64_t, int64_t>{1100000, 200000}));
  EXPECT_EQ(span("three"), (std::pair<int64_t, int64_t>{1300000, 100000}));
  EXPECT_EQ(span("four"), (std::pair<int64_t, int64_t>{1400000, 0}));
  EXPECT_EQ(span("other-slot"), (std::pair<int64_t, int64_t>{1000000, 50000}));
  EXPECT_EQ(span("later"), (std::pair<int64_t, int64_t>{1400000, 30000}));
}

TEST(ChromeTrace, NeverRunTestsAreLeftOutAndInvalidUtf8IsReplaced) {
  TestReport odd = Ran("bad\xff", "w\xff", 0, 0, 1, 1);
  json trace = json::parse(ChromeTrace({Report("never", "", TestStatus::kNotRun), odd}, Info()));
  EXPECT_EQ(EventsWithPhase(trace, "X").size(), 1u);
  EXPECT_EQ(CompleteEvent(trace, "never"), nullptr);
  EXPECT_NE(CompleteEvent(trace, std::string("bad") + kFffd), nullptr);
  EXPECT_EQ(EventsWithPhase(trace, "M")[0]["args"]["name"], std::string("w") + kFffd);
}

TEST(ChromeTrace, PidsDoNotDependOnReportOrder) {
  TestReport a = Ran("a", "beta", 0, 0, 1, 1);
  TestReport b = Ran("b", "alpha", 0, 0, 1, 1);
  json first = json::parse(ChromeTrace({a, b}, Info()));
  json second = json::parse(ChromeTrace({b, a}, Info()));
  EXPECT_EQ((*CompleteEvent(first, "a"))["pid"], 2);
  EXPECT_EQ((*CompleteEvent(second, "a"))["pid"], 2);
  EXPECT_EQ((*CompleteEvent(first, "b"))["pid"], 1);
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(StatusReason, AGtestFailureSaysWhereAndWhatNotExpectedEqualityOfTheseValues) {
  TestReport report;
  report.state = TestStatus::kFailed;
  report.message =
      "/src/tests/math_test.cc:18\nExpected equality of these values:\n  four\n    Which is: 4\n"
      "  5\nmath: two plus two";
  EXPECT_EQ(StatusReason(report), "math_test.cc:18: four == 5 (4 vs 5)");
  report.message = "/src/a_test.cc:7: Failure\nValue of: ready\n  Actual: false\nExpected: true";
  EXPECT_EQ(StatusReason(report), "a_test.cc:7: Value of: ready");
  report.message = "/src/a_test.cc:9\nExpected: (x) < (3), actual: 3 vs 3";
  EXPECT_EQ(StatusReason(report), "a_test.cc:9: Expected: (x) < (3), actual: 3 vs 3");
  report.message = "just words";
  EXPECT_EQ(StatusReason(report), "just words");
  report.message = "/src/a_test.cc:9";
  EXPECT_EQ(StatusReason(report), "a_test.cc:9");
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(JsonReport, ATestStoppedAfterRetriesCountsByItsLastWordNotItsHighestAttempt) {
  TestReport first = Report("t", "", TestStatus::kFailed, ExitState::Exited(1));
  first.retried = true;
  TestReport second = first;
  second.attempt = 2;
  TestReport never = Report("t", "", TestStatus::kNotRun);  // the run stopped before attempt 3
  json run = json::parse(JsonReport({first, second, never}, Info()))["run"];
  EXPECT_EQ(run["tests"], 1);
  EXPECT_EQ(run["failed"], 0);
  EXPECT_EQ(run["not_run"], 1);
}

}  // namespace
}  // namespace testfarm::coordinator
