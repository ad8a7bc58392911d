// JunitXml's output, hostile characters included, validated by a real XML parser (xmllint)
// against tests/junit/junit.xsd; and documents that break the schema are rejected by it, so a
// pass means something.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/report_writers.h"
#include "tests/support/child_process.h"

namespace testfarm::coordinator {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFffd = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

fs::path XsdPath() {
  return fs::path(__FILE__).parent_path().parent_path() / "junit" / "junit.xsd";
}

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  test::ChildResult ran = test::RunChild({"/bin/sh", "-c", command + " 2>&1"});
  return {ran.exit_code, ran.out};
}

bool HaveXmllint() {
  return RunCommand("command -v xmllint").exit_code == 0;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tf-junit-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const {
    fs::path file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }

 private:
  fs::path path_;
};

class JunitXmllint : public testing::Test {
 protected:
  void SetUp() override {
    if (!HaveXmllint()) GTEST_SKIP() << "xmllint not installed (Debian: libxml2-utils)";
    ASSERT_TRUE(fs::exists(XsdPath())) << XsdPath();
    ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed";
  }

  CommandResult Validate(const std::string& file) const {
    return RunCommand("xmllint --noout --schema " + ShellQuote(XsdPath().string()) + " " +
                      ShellQuote(file));
  }

  // The string value of `xpath` in `file`, as a conforming parser reads it.
  std::string XPathString(const std::string& file, const std::string& xpath) const {
    CommandResult r = RunCommand("xmllint --xpath " + ShellQuote("string(" + xpath + ")") + " " +
                                 ShellQuote(file));
    EXPECT_EQ(r.exit_code, 0) << xpath << ": " << r.output;
    if (!r.output.empty() && r.output.back() == '\n') r.output.pop_back();  // xmllint adds one
    return r.output;
  }

  TempDir dir_;
};

TestReport Report(const std::string& suite, const std::string& case_name, TestStatus state,
                  std::optional<ExitState> exit = std::nullopt) {
  TestReport report;
  report.suite = suite;
  report.case_name = case_name;
  report.name = case_name.empty() ? suite : suite + "::" + case_name;
  report.state = state;
  report.duration = Millis(17);
  if (exit) {
    protocol::JobResult result;
    result.state = *exit;
    result.duration_ms = 17;
    result.peak_rss_kb = 4096;  // <properties> in every testcase that ran
    result.cpu_ms = 3;
    report.result = result;
    report.worker = "local";
  }
  return report;
}

// Every status, gtest and plain names, typed and parameterized names, and text no XML document
// can hold as it is.
std::vector<TestReport> VariedReports() {
  std::vector<TestReport> reports;
  reports.push_back(Report("plain_pass", "", TestStatus::kPassed, ExitState::Exited(0)));
  reports.push_back(Report("plain_fail", "", TestStatus::kFailed, ExitState::Exited(1)));
  reports.push_back(Report("crash", "", TestStatus::kFailed, ExitState::Signaled(11, true)));
  reports.push_back(Report("hang", "", TestStatus::kFailed, ExitState::TimedOut("SIGKILL")));
  reports.push_back(
      Report("missing", "", TestStatus::kFailed, ExitState::SpawnFailed(2, "No such file")));
  reports.push_back(Report("orphan", "", TestStatus::kFailed, ExitState::Leaked(0, "1 process")));
  TestReport lost = Report("lost", "", TestStatus::kExpired);
  lost.reason = "no result from worker";
  reports.push_back(lost);
  reports.push_back(
      Report("cancelled", "", TestStatus::kCancelled, ExitState::Cancelled("fail-fast")));
  reports.push_back(Report("not_run", "", TestStatus::kNotRun));

  TestReport typed =
      Report("gtests", "TypedTest/0.Works", TestStatus::kPassed, ExitState::Exited(0));
  typed.batch = true;
  reports.push_back(typed);
  TestReport param = Report("gtests", "Inst/P.Even/0", TestStatus::kFailed, ExitState::Exited(1));
  param.batch = true;
  param.message = "p_test.cc:9: Failure\nExpected: (n % 2) == 0\n  Actual: 3 vs 0";
  reports.push_back(param);
  TestReport skip = Report("gtests", "Skip.Me", TestStatus::kSkipped, ExitState::Exited(0));
  skip.message = "needs <GPU> & \"drivers\"";
  reports.push_back(skip);

  TestReport nasty =
      Report("n&s<t>y\"'suite", "Esc.A&B<C>", TestStatus::kFailed, ExitState::Signaled(6, false));
  nasty.reason = "ab\x01 \x1b[31mred\x1b[0m \xff end";
  nasty.message = "]]> <![CDATA[ x ]]> & \"q\" 'a' \r\n\t\x0b\x0c nul:" + std::string(1, '\0') +
                  " bad:\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80 nonchar:\xEF\xBF\xBE ok:\xE2\x82\xAC"
                  "\xF0\x9F\x98\x80";
  nasty.result->stdout_text = std::string(100000, 'x') + "\x1b[0m<end>&";
  nasty.result->stderr_text = "\x7f\xC2\x85\xC2\x9b";  // DEL and C1 controls: legal XML 1.0
  reports.push_back(nasty);
  return reports;
}

TEST_F(JunitXmllint, WriterOutputValidatesAgainstTheSchema) {
  RunInfo info;
  info.hostname = "ci-host";
  info.started_utc = "2026-11-26T13:05:00Z";
  info.wall = Millis(4321);
  std::string file = dir_.Write("report.xml", JunitXml(VariedReports(), info));
  CommandResult r = Validate(file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("validates"), std::string::npos) << r.output;
}

TEST_F(JunitXmllint, EmptyRunAndRunWithoutHostValidate) {
  std::string empty = dir_.Write("empty.xml", JunitXml({}, RunInfo{}));
  EXPECT_EQ(Validate(empty).exit_code, 0) << Validate(empty).output;
  std::string bare = dir_.Write("bare.xml", JunitXml(VariedReports(), RunInfo{}));
  EXPECT_EQ(Validate(bare).exit_code, 0) << Validate(bare).output;
}

TEST_F(JunitXmllint, AParserReadsBackWhatWasMeant) {
  std::string file = dir_.Write("report.xml", JunitXml(VariedReports(), RunInfo{}));
  std::string f = kFffd;
  // The suite's name has both quote kinds, which an XPath 1.0 literal cannot hold: find the
  // suite by position instead.
  EXPECT_EQ(XPathString(file, "//testsuite[last()]/@name"), "n&s<t>y\"'suite");
  EXPECT_EQ(XPathString(file, "//testcase[@classname='Esc']/@name"), "A&B<C>");
  EXPECT_EQ(XPathString(file, "//testcase[@classname='Esc']/error/@message"),
            "ab" + f + " " + f + "[31mred" + f + "[0m " + f + " end");
  EXPECT_EQ(XPathString(file, "//testcase[@classname='Esc']/error/@type"), "CRASH");
  EXPECT_EQ(XPathString(file, "//testcase[@classname='Esc']/error"),
            "]]> <![CDATA[ x ]]> & \"q\" 'a' \r\n\t" + f + f + " nul:" + f + " bad:" + f + f + f +
                f + f + f + f + f + f + " nonchar:" + f + " ok:\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(XPathString(file, "//testcase[@classname='Esc']/system-err"), "\x7f\xC2\x85\xC2\x9b");
  EXPECT_EQ(XPathString(file, "substring(//testcase[@classname='Esc']/system-out, 100001)"),
            f + "[0m<end>&");
  EXPECT_EQ(XPathString(file, "//testcase[@classname='Inst/P']/@name"), "Even/0");
  EXPECT_EQ(XPathString(file, "//testcase[@classname='Skip']/skipped"),
            "needs <GPU> & \"drivers\"");
  EXPECT_EQ(XPathString(file, "count(//testcase)"), "13");
  EXPECT_EQ(XPathString(file, "/testsuites/@errors"), "8");  // cancelled and not run: errors
  EXPECT_EQ(XPathString(file, "/testsuites/@failures"), "2");
  EXPECT_EQ(XPathString(file, "/testsuites/@skipped"), "1");
}

// Documents that must not validate, each against one rule of the schema; plus a hand-written
// valid one, so a rejection is the schema's doing and not a broken setup.
TEST_F(JunitXmllint, SchemaRejectsBrokenDocuments) {
  const std::string valid =
      "<?xml version=\"1.0\"?>\n"
      "<testsuite name=\"s\" tests=\"2\" failures=\"1\" time=\"0.5\" "
      "timestamp=\"2026-11-26T13:05:00\">\n"
      "  <properties><property name=\"k\" value=\"v\"/></properties>\n"
      "  <testcase name=\"a\" classname=\"s\" time=\"0.25\"/>\n"
      "  <testcase name=\"b\" classname=\"s\"><failure type=\"FAIL\">x</failure>"
      "<failure message=\"m\" type=\"FAIL\"/><system-out>o</system-out></testcase>\n"
      "  <system-err>e</system-err>\n"
      "</testsuite>\n";
  CommandResult ok = Validate(dir_.Write("valid.xml", valid));
  ASSERT_EQ(ok.exit_code, 0) << ok.output;

  struct Broken {
    const char* why;
    std::string document;
    const char* diagnostic;  // what xmllint must say about it
  };
  const std::string head =
      "<?xml version=\"1.0\"?>\n<testsuites>\n<testsuite name=\"s\" tests=\"1\">\n";
  const std::string tail = "</testsuite>\n</testsuites>\n";
  const std::string testcase = "<testcase name=\"a\" classname=\"s\"";
  std::vector<Broken> broken = {
      {"testcase without classname", head + "<testcase name=\"a\"/>\n" + tail,
       "The attribute 'classname' is required"},
      {"failure without type", head + testcase + "><failure message=\"m\"/></testcase>\n" + tail,
       "The attribute 'type' is required"},
      {"unknown element", head + testcase + "><bogus/></testcase>\n" + tail,
       "Element 'bogus': This element is not expected"},
      {"system-out before failure",
       head + testcase + "><system-out>o</system-out><failure type=\"FAIL\"/></testcase>\n" + tail,
       "Element 'failure': This element is not expected"},
      {"negative count", "<testsuites><testsuite name=\"s\" tests=\"-1\"/></testsuites>",
       "'-1' is not a valid value"},
      {"time not a number", head + testcase + " time=\"1s\"/>\n" + tail,
       "'1s' is not a valid value"},
      {"bad timestamp", "<testsuite name=\"s\" tests=\"0\" timestamp=\"yesterday\"/>",
       "'yesterday' is not a valid value"},
      {"testsuite without tests", "<testsuites><testsuite name=\"s\"/></testsuites>",
       "The attribute 'tests' is required"},
      {"testcase as the root", testcase + "/>", "No matching global declaration"},
      {"unknown attribute", "<testsuites colour=\"red\"/>",
       "The attribute 'colour' is not allowed"},
      {"control character", head + "<testcase name=\"a\x01\" classname=\"s\"/>\n" + tail,
       "parser error"},
      {"unescaped '<'",
       head + testcase + "><failure type=\"F\">a < b</failure></testcase>\n" + tail,
       "parser error"},
  };
  for (std::size_t i = 0; i < broken.size(); ++i) {
    std::string file = dir_.Write("broken" + std::to_string(i) + ".xml", broken[i].document);
    CommandResult r = Validate(file);
    EXPECT_NE(r.exit_code, 0) << broken[i].why << " was accepted:\n" << broken[i].document;
    EXPECT_NE(r.output.find(broken[i].diagnostic), std::string::npos)
        << broken[i].why << ": expected \"" << broken[i].diagnostic << "\", got:\n"
        << r.output;
  }
}

}  // namespace
}  // namespace testfarm::coordinator
