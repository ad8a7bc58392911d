#include "coordinator/ctest_import.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace testfarm::coordinator {
namespace {

using Json = nlohmann::json;

constexpr double kMaxTimeoutMs = 1e15;  // the bound ParseDuration uses

// nlohmann's messages start with "[json.exception.parse_error.101] "; the id helps nobody.
std::string WithoutExceptionId(const std::string& what) {
  if (what.starts_with("[json.exception.")) {
    std::size_t end = what.find("] ");
    if (end != std::string::npos) return what.substr(end + 2);
  }
  return what;
}

// CTest writes list properties (ENVIRONMENT, LABELS) as arrays; accept a lone string too.
std::optional<std::vector<std::string>> StringList(const Json& value) {
  if (value.is_string()) return std::vector<std::string>{value.get<std::string>()};
  if (!value.is_array()) return std::nullopt;
  std::vector<std::string> list;
  for (const Json& item : value) {
    if (!item.is_string()) return std::nullopt;
    list.push_back(item.get<std::string>());
  }
  return list;
}

constexpr unsigned long long kMaxProcessors = 1u << 20;

// The list-of-names properties that order tests, or nullptr.
std::vector<std::string>* NameList(const std::string& name, Ordering* ordering) {
  if (name == "DEPENDS") return &ordering->depends;
  if (name == "FIXTURES_SETUP") return &ordering->fixtures_setup;
  if (name == "FIXTURES_REQUIRED") return &ordering->fixtures_required;
  if (name == "FIXTURES_CLEANUP") return &ordering->fixtures_cleanup;
  if (name == "RESOURCE_LOCK") return &ordering->resource_locks;
  return nullptr;
}

// The regular-expression properties, or nullptr.
std::vector<std::string>* PatternList(const std::string& name, OutputRules* rules) {
  if (name == "PASS_REGULAR_EXPRESSION") return &rules->pass;
  if (name == "FAIL_REGULAR_EXPRESSION") return &rules->fail;
  if (name == "SKIP_REGULAR_EXPRESSION") return &rules->skip;
  return nullptr;
}

// Properties that change nothing about how a test runs or what its result is: reports
// (ATTACHED_FILES*, MEASUREMENT) and a scheduling hint (COST). Ignoring them loses nothing.
bool Inert(const std::string& name) {
  return name == "COST" || name == "ATTACHED_FILES" || name == "ATTACHED_FILES_ON_FAIL" ||
         name == "MEASUREMENT";
}

bool Honoured(const std::string& name) {
  static const char* const kHonoured[] = {"WORKING_DIRECTORY",
                                          "ENVIRONMENT",
                                          "TIMEOUT",
                                          "LABELS",
                                          "SKIP_RETURN_CODE",
                                          "WILL_FAIL",
                                          "DISABLED",
                                          "RUN_SERIAL",
                                          "DEPENDS",
                                          "FIXTURES_SETUP",
                                          "FIXTURES_REQUIRED",
                                          "FIXTURES_CLEANUP",
                                          "RESOURCE_LOCK",
                                          "PROCESSORS",
                                          "PASS_REGULAR_EXPRESSION",
                                          "FAIL_REGULAR_EXPRESSION",
                                          "SKIP_REGULAR_EXPRESSION"};
  return std::find(std::begin(kHonoured), std::end(kHonoured), name) != std::end(kHonoured);
}

// "CMakeLists.txt:12": where add_test registered the test, from json-v1's backtrace graph;
// empty when the document does not say.
std::string AddedAt(const Json& doc, const Json& test) {
  auto backtrace = test.find("backtrace");
  auto graph = doc.find("backtraceGraph");
  if (backtrace == test.end() || !backtrace->is_number_unsigned() || graph == doc.end() ||
      !graph->is_object()) {
    return {};
  }
  auto nodes = graph->find("nodes");
  auto files = graph->find("files");
  if (nodes == graph->end() || !nodes->is_array() || files == graph->end() || !files->is_array())
    return {};
  std::size_t at = backtrace->get<std::size_t>();
  if (at >= nodes->size() || !(*nodes)[at].is_object()) return {};
  const Json& node = (*nodes)[at];
  auto file = node.find("file");
  auto line = node.find("line");
  if (file == node.end() || !file->is_number_unsigned() ||
      file->get<std::size_t>() >= files->size())
    return {};
  const Json& path = (*files)[file->get<std::size_t>()];
  if (!path.is_string()) return {};
  std::string where = path.get<std::string>();
  if (line != node.end() && line->is_number_unsigned()) {
    where += ":" + std::to_string(line->get<unsigned long long>());
  }
  return where;
}

// Applies one entry of a test's "properties"; the error says what was wrong with its value.
std::optional<std::string> ApplyProperty(const std::string& name, const Json& value,
                                         SuiteSpec* spec) {
  if (name == "WORKING_DIRECTORY") {
    if (!value.is_string()) return "expected a string";
    spec->cwd = value.get<std::string>();
  } else if (name == "ENVIRONMENT") {
    std::optional<std::vector<std::string>> entries = StringList(value);
    if (!entries) return "expected an array of \"NAME=VALUE\" strings";
    for (const std::string& entry : *entries) {
      // An entry without '=' asks CTest to unset the variable; a suite can only add, so it is
      // dropped.
      std::size_t eq = entry.find('=');
      if (eq == std::string::npos || eq == 0) continue;
      spec->env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
  } else if (name == "TIMEOUT") {
    if (!value.is_number()) return "expected a number of seconds";
    double ms = value.get<double>() * 1000;
    if (!std::isfinite(ms) || ms > kMaxTimeoutMs) return "expected a number of seconds";
    // 0 (or less) is CTest's "no timeout of its own": the run's --timeout applies.
    // A positive timeout never rounds to 0, which would mean none at all.
    if (ms > 0) spec->timeout = Millis(std::max(1LL, std::llround(ms)));
  } else if (name == "LABELS") {
    std::optional<std::vector<std::string>> labels = StringList(value);
    if (!labels) return "expected an array of strings";
    spec->labels = std::move(*labels);
  } else if (name == "SKIP_RETURN_CODE") {
    // Negative values would wrap in get<unsigned>, so check the sign first.
    if (!value.is_number_integer() || value.get<long long>() < 0 ||
        value.get<unsigned long long>() > 255) {
      return "expected an exit code (an integer 0-255)";
    }
    spec->skip_return_code = value.get<int>();
  } else if (name == "WILL_FAIL" || name == "DISABLED" || name == "RUN_SERIAL") {
    if (!value.is_boolean()) return "expected true or false";
    bool* flag = name == "WILL_FAIL"  ? &spec->will_fail
                 : name == "DISABLED" ? &spec->disabled
                                      : &spec->run_serial;
    *flag = value.get<bool>();
  } else if (std::vector<std::string>* names = NameList(name, &spec->ordering)) {
    std::optional<std::vector<std::string>> list = StringList(value);
    if (!list) return "expected an array of strings";
    *names = std::move(*list);
  } else if (std::vector<std::string>* patterns = PatternList(name, &spec->output_rules)) {
    std::optional<std::vector<std::string>> list = StringList(value);
    if (!list) return "expected an array of regular expressions";
    for (const std::string& pattern : *list) {
      if (Status checked = CheckPattern(pattern); !checked) return checked.error().message;
    }
    *patterns = std::move(*list);
  } else if (name == "PROCESSORS") {
    // CTest takes anything below 1 as 1.
    if (!value.is_number_integer()) return "expected a number of processors (an integer)";
    if (value.is_number_unsigned() && value.get<unsigned long long>() > kMaxProcessors) {
      return "expected a number of processors (an integer up to " + std::to_string(kMaxProcessors) +
             ")";
    }
    long long processors = value.get<long long>();
    spec->ordering.processors = processors < 1 ? 1u : static_cast<unsigned>(processors);
  }
  return std::nullopt;
}

// Property name -> the tests that set it, for properties testfarm does not honour.
using Unhonoured = std::map<std::string, std::vector<std::string>>;

Result<SuiteSpec> ReadTest(const Json& doc, const Json& test, std::size_t index,
                           const std::string& origin, Unhonoured* unhonoured) {
  std::string who = origin + ": test #" + std::to_string(index + 1);
  if (!test.is_object()) return Error{who + ": expected an object"};
  auto name = test.find("name");
  if (name == test.end() || !name->is_string() || name->get<std::string>().empty()) {
    return Error{who + ": expected a non-empty string \"name\""};
  }
  SuiteSpec spec;
  spec.name = name->get<std::string>();
  spec.kind = SuiteKind::kPlain;
  spec.origin = origin + ": " + spec.name;
  who = origin + ": test '" + spec.name + "'";

  if (auto command = test.find("command"); command != test.end()) {
    if (!command->is_array()) return Error{who + ": \"command\": expected an array of strings"};
    for (const Json& arg : *command) {
      if (!arg.is_string()) return Error{who + ": \"command\": expected an array of strings"};
      spec.command.push_back(arg.get<std::string>());
    }
  }

  if (auto properties = test.find("properties"); properties != test.end()) {
    if (!properties->is_array()) return Error{who + ": \"properties\": expected an array"};
    for (const Json& property : *properties) {
      auto key = property.is_object() ? property.find("name") : property.end();
      if (!property.is_object() || key == property.end() || !key->is_string() ||
          !property.contains("value")) {
        return Error{who + ": \"properties\": expected {\"name\": ..., \"value\": ...} objects"};
      }
      const std::string property_name = key->get<std::string>();
      if (!Honoured(property_name) && !Inert(property_name)) {
        (*unhonoured)[property_name].push_back(spec.name);
        continue;
      }
      if (std::optional<std::string> problem =
              ApplyProperty(property_name, property.at("value"), &spec)) {
        return Error{who + ": property " + property_name + ": " + *problem};
      }
    }
  }
  // A test whose executable CTest could not find (e.g. not built) has no "command": it cannot
  // run, and says so as a test that could not start (ctest: "Not Run", a failure). Only the
  // DISABLED property makes a test skipped.
  if (!spec.disabled && (spec.command.empty() || spec.command[0].empty())) {
    spec.cannot_run = "ctest could not find the command for this test (is it built?)";
    if (std::string where = AddedAt(doc, test); !where.empty()) {
      spec.cannot_run += "; add_test at " + where;
    }
  }
  return spec;
}

// "ctest build/: 3 tests use RESOURCE_GROUPS, which testfarm does not honour (they run without
// it): a, b, c".
std::string UnhonouredWarning(const std::string& origin, const std::string& property,
                              const std::vector<std::string>& tests) {
  constexpr std::size_t kNamed = 5;
  std::string names;
  for (std::size_t i = 0; i < tests.size() && i < kNamed; ++i) {
    names += (i == 0 ? "'" : ", '") + tests[i] + "'";
  }
  if (tests.size() > kNamed) names += " and " + std::to_string(tests.size() - kNamed) + " more";
  if (tests.size() == 1) {
    return origin + ": test " + names + " uses " + property +
           ", which testfarm does not honour (it runs without it)";
  }
  return origin + ": " + std::to_string(tests.size()) + " tests use " + property +
         ", which testfarm does not honour (they run without it): " + names;
}

Result<std::vector<SuiteSpec>> ReadDocument(const Json& doc, const std::string& origin,
                                            std::vector<std::string>* warnings) {
  if (!doc.is_object()) return Error{origin + ": expected a JSON object (ctest json-v1)"};
  if (auto kind = doc.find("kind"); kind != doc.end() && *kind != "ctestInfo") {
    return Error{origin + ": not ctest json-v1 output (\"kind\" is " + kind->dump() + ")"};
  }
  if (auto version = doc.find("version"); version != doc.end()) {
    auto major = version->is_object() ? version->find("major") : version->end();
    if (major == version->end() || *major != 1) {
      return Error{origin + ": unsupported ctest json version " + version->dump() +
                   " (expected major 1)"};
    }
  }
  auto tests = doc.find("tests");
  if (tests == doc.end() || !tests->is_array()) {
    return Error{origin + ": expected a \"tests\" array (ctest json-v1)"};
  }
  if (tests->empty()) return Error{"no tests registered in " + origin};
  std::vector<SuiteSpec> suites;
  Unhonoured unhonoured;
  for (std::size_t i = 0; i < tests->size(); ++i) {
    Result<SuiteSpec> suite = ReadTest(doc, (*tests)[i], i, origin, &unhonoured);
    if (!suite) return suite.error();
    suites.push_back(std::move(*suite));
  }
  if (warnings != nullptr) {
    for (const auto& [property, names] : unhonoured) {
      warnings->push_back(UnhonouredWarning(origin, property, names));
    }
  }
  return suites;
}

}  // namespace

Result<std::vector<SuiteSpec>> ParseCtestJson(std::string_view json, const std::string& origin,
                                              std::vector<std::string>* warnings) {
  try {
    Json doc = Json::parse(json);
    return ReadDocument(doc, origin, warnings);
  } catch (const Json::parse_error& e) {
    return Error{origin + ": malformed JSON: " + WithoutExceptionId(e.what())};
  } catch (const Json::exception& e) {  // a shape the checks above missed; never escapes
    return Error{origin + ": unexpected JSON: " + WithoutExceptionId(e.what())};
  }
}

std::vector<std::string> CtestListCommand(const std::string& build_dir) {
  return {"ctest", "--test-dir", build_dir, "--show-only=json-v1"};
}

}  // namespace testfarm::coordinator
