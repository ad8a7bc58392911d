#include "coordinator/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include "shared/duration.h"
#include "shared/file_io.h"
#include "shared/unique_fd.h"

namespace testfarm::coordinator {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxManifestBytes = 16 << 20;
constexpr double kMaxTimeoutMs = 1e15;  // the bound ParseDuration uses

const char* TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// A table's entries in document order (toml++ iterates them sorted by key), so the first error
// reported and the order of warnings follow the file.
std::vector<std::pair<const toml::key*, const toml::node*>> InDocumentOrder(
    const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (const auto& [key, node] : table) entries.emplace_back(&key, &node);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const toml::source_position& pa = a.first->source().begin;
    const toml::source_position& pb = b.first->source().begin;
    return std::pair(pa.line, pa.column) < std::pair(pb.line, pb.column);
  });
  return entries;
}

std::string Basename(const std::string& command) {
  std::string name = fs::path(command).filename().string();
  return name.empty() ? command : name;
}

// The values one table ([defaults] or a [[suite]]) sets; unset keys stay empty.
struct Fields {
  std::optional<std::string> name;
  std::optional<std::string> command;
  std::vector<std::string> args;
  std::optional<SuiteKind> kind;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> required_labels;  // `requires`
  std::optional<std::string> cwd;
  std::optional<Millis> timeout;
  std::optional<unsigned> retries;
  std::vector<std::string> labels;
  std::vector<std::string> data;
};

class ManifestParser {
 public:
  ManifestParser(std::string display_path, const fs::path& base_dir)
      : file_(std::move(display_path)), base_dir_(Absolute(base_dir)) {}

  Result<std::vector<SuiteSpec>> Parse(const toml::table& root);

  // Unknown-key warnings in document order.
  void TakeWarnings(std::vector<std::string>* out) {
    std::stable_sort(warnings_.begin(), warnings_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    if (out == nullptr) return;
    for (auto& [position, text] : warnings_) out->push_back(std::move(text));
  }

 private:
  // Which keys a table may hold and how messages name it.
  struct Scope {
    std::string who;  // "suite 'core'", "suite #2", "[defaults]"
    bool is_suite;
  };

  static fs::path Absolute(const fs::path& dir) {
    std::error_code ec;
    fs::path absolute = fs::absolute(dir.empty() ? fs::path(".") : dir, ec);
    return (ec ? dir : absolute).lexically_normal();
  }

  std::string At(const toml::source_region& where) const {
    return file_ + ":" + std::to_string(where.begin.line) + ":" +
           std::to_string(where.begin.column);
  }
  Error KeyError(const toml::node& node, const Scope& scope, std::string_view key,
                 const std::string& problem) const {
    return Error{At(node.source()) + ": " + scope.who + ": key '" + std::string(key) +
                 "': " + problem};
  }
  void Warn(const toml::key& key, const std::string& where) {
    const toml::source_position& p = key.source().begin;
    std::string text = At(key.source()) + ": unknown key '" + std::string(key.str()) + "'";
    if (!where.empty()) text += " in " + where;
    warnings_.emplace_back(std::pair(p.line, p.column), text + " (ignored)");
  }

  // Relative paths (and bare names: we never search PATH) resolve against the manifest's folder.
  std::string Resolve(const std::string& path) const {
    fs::path p(path);
    return (p.is_absolute() ? p : base_dir_ / p).lexically_normal().string();
  }

  std::optional<Error> ReadTable(const toml::table& table, const Scope& scope, Fields* out);
  std::optional<Error> ReadKey(std::string_view key, const toml::node& value, const Scope& scope,
                               Fields* out);
  Result<std::string> ReadString(const toml::node& node, const Scope& scope,
                                 std::string_view key) const;
  Result<std::vector<std::string>> ReadStrings(const toml::node& node, const Scope& scope,
                                               std::string_view key, bool allow_empty) const;
  Result<Millis> ReadDuration(const toml::node& node, const Scope& scope,
                              std::string_view key) const;
  // A table of strings (`env`, `requires`); `key_name` names it in errors.
  Result<std::map<std::string, std::string>> ReadEnv(const toml::node& node, const Scope& scope,
                                                     std::string_view key_name) const;
  Result<SuiteSpec> ReadSuite(const toml::node& node, std::size_t index);
  SuiteSpec Merge(Fields suite, int line) const;

  std::string file_;
  fs::path base_dir_;
  Fields defaults_;
  std::vector<std::pair<std::pair<uint32_t, uint32_t>, std::string>> warnings_;
};

Result<std::string> ManifestParser::ReadString(const toml::node& node, const Scope& scope,
                                               std::string_view key) const {
  const auto* s = node.as_string();
  if (s == nullptr || s->get().empty()) {
    return KeyError(node, scope, key,
                    std::string("expected a non-empty string, got ") +
                        (s == nullptr ? TypeName(node) : "\"\""));
  }
  return s->get();
}

Result<std::vector<std::string>> ManifestParser::ReadStrings(const toml::node& node,
                                                             const Scope& scope,
                                                             std::string_view key,
                                                             bool allow_empty) const {
  const char* expected =
      allow_empty ? "expected an array of strings" : "expected an array of non-empty strings";
  const auto* array = node.as_array();
  if (array == nullptr) {
    return KeyError(node, scope, key, std::string(expected) + ", got " + TypeName(node));
  }
  std::vector<std::string> values;
  for (const toml::node& element : *array) {
    const auto* s = element.as_string();
    if (s == nullptr) {
      return KeyError(element, scope, key,
                      std::string(expected) + ", got " + TypeName(element) + " in it");
    }
    if (!allow_empty && s->get().empty()) {
      return KeyError(element, scope, key, std::string(expected) + ", got \"\" in it");
    }
    values.push_back(s->get());
  }
  return values;
}

Result<Millis> ManifestParser::ReadDuration(const toml::node& node, const Scope& scope,
                                            std::string_view key) const {
  std::optional<Millis> duration;
  if (const auto* s = node.as_string()) {
    duration = ParseDuration(s->get());
  } else if (const auto* i = node.as_integer()) {
    if (i->get() >= 0 && static_cast<double>(i->get()) * 1000 <= kMaxTimeoutMs) {
      duration = Millis(i->get() * 1000);
    }
  } else if (const auto* f = node.as_floating_point()) {
    double ms = f->get() * 1000;
    if (std::isfinite(ms) && ms >= 0 && ms <= kMaxTimeoutMs) {
      duration = Millis(std::llround(ms));
    }
  }
  if (!duration) {
    return KeyError(node, scope, key, "expected a duration like \"30s\" or a number of seconds");
  }
  return *duration;
}

Result<std::map<std::string, std::string>> ManifestParser::ReadEnv(
    const toml::node& node, const Scope& scope, std::string_view key_name) const {
  const auto* table = node.as_table();
  if (table == nullptr) {
    return KeyError(node, scope, key_name,
                    std::string("expected a table of strings, got ") + TypeName(node));
  }
  std::map<std::string, std::string> env;
  for (const auto& [key, value] : InDocumentOrder(*table)) {
    std::string name(key->str());
    if (name.empty() || name.find('=') != std::string::npos) {
      return KeyError(*value, scope, key_name, "invalid name '" + name + "'");
    }
    const auto* s = value->as_string();
    if (s == nullptr) {
      return KeyError(*value, scope, key_name,
                      "value of '" + name + "' must be a string, got " + TypeName(*value));
    }
    env[name] = s->get();
  }
  return env;
}

std::optional<Error> ManifestParser::ReadKey(std::string_view key, const toml::node& value,
                                             const Scope& scope, Fields* out) {
  if (key == "name" || key == "command" || key == "cwd") {
    Result<std::string> s = ReadString(value, scope, key);
    if (!s) return s.error();
    if (key == "name") out->name = *s;
    if (key == "command") out->command = Resolve(*s);
    if (key == "cwd") out->cwd = Resolve(*s);
  } else if (key == "args" || key == "labels" || key == "data") {
    Result<std::vector<std::string>> list = ReadStrings(value, scope, key, key == "args");
    if (!list) return list.error();
    if (key == "args") out->args = std::move(*list);
    if (key == "labels") out->labels = std::move(*list);
    if (key == "data") {
      for (const std::string& path : *list) out->data.push_back(Resolve(path));
    }
  } else if (key == "kind") {
    const auto* s = value.as_string();
    std::string_view kind = s == nullptr ? std::string_view() : std::string_view(s->get());
    if (kind == "gtest") {
      out->kind = SuiteKind::kGtest;
    } else if (kind == "plain") {
      out->kind = SuiteKind::kPlain;
    } else if (kind == "auto") {
      out->kind = SuiteKind::kAuto;
    } else {
      return KeyError(value, scope, key, "expected \"gtest\", \"plain\" or \"auto\"");
    }
  } else if (key == "env" || key == "requires") {
    Result<std::map<std::string, std::string>> table = ReadEnv(value, scope, key);
    if (!table) return table.error();
    (key == "env" ? out->env : out->required_labels) = std::move(*table);
  } else if (key == "timeout") {
    Result<Millis> timeout = ReadDuration(value, scope, key);
    if (!timeout) return timeout.error();
    out->timeout = *timeout;
  } else if (key == "retries") {
    const auto* n = value.as_integer();
    if (n == nullptr || n->get() < 0 || n->get() > kMaxRetries) {
      return KeyError(value, scope, key,
                      "expected a whole number from 0 to " + std::to_string(kMaxRetries));
    }
    out->retries = static_cast<unsigned>(n->get());
  }
  return std::nullopt;
}

std::optional<Error> ManifestParser::ReadTable(const toml::table& table, const Scope& scope,
                                               Fields* out) {
  static const std::set<std::string_view> kSuiteKeys = {"name",   "command", "args",    "kind",
                                                        "env",    "cwd",     "timeout", "retries",
                                                        "labels", "data",    "requires"};
  static const std::set<std::string_view> kDefaultsKeys = {"kind",    "env",    "cwd",  "timeout",
                                                           "retries", "labels", "data", "requires"};
  const auto& known = scope.is_suite ? kSuiteKeys : kDefaultsKeys;
  for (const auto& [key, value] : InDocumentOrder(table)) {
    if (!known.contains(key->str())) {
      Warn(*key, scope.who);
      continue;
    }
    if (std::optional<Error> error = ReadKey(key->str(), *value, scope, out)) return error;
  }
  return std::nullopt;
}

// Suite values override the defaults; env maps merge; labels and data append.
SuiteSpec ManifestParser::Merge(Fields suite, int line) const {
  SuiteSpec spec;
  spec.name = suite.name ? *suite.name : Basename(*suite.command);
  spec.command.push_back(*suite.command);
  spec.command.insert(spec.command.end(), suite.args.begin(), suite.args.end());
  spec.kind = suite.kind.value_or(defaults_.kind.value_or(SuiteKind::kAuto));
  spec.env = defaults_.env;
  for (auto& [name, value] : suite.env) spec.env[name] = std::move(value);
  spec.required_labels = defaults_.required_labels;
  for (auto& [name, value] : suite.required_labels) spec.required_labels[name] = std::move(value);
  spec.cwd = suite.cwd.value_or(defaults_.cwd.value_or(""));
  spec.timeout = suite.timeout ? suite.timeout : defaults_.timeout;
  spec.retries = suite.retries ? suite.retries : defaults_.retries;
  std::vector<std::string> labels = defaults_.labels;
  labels.insert(labels.end(), suite.labels.begin(), suite.labels.end());
  for (std::string& label : labels) {
    if (std::find(spec.labels.begin(), spec.labels.end(), label) == spec.labels.end()) {
      spec.labels.push_back(std::move(label));
    }
  }
  spec.data_files = defaults_.data;
  spec.data_files.insert(spec.data_files.end(), suite.data.begin(), suite.data.end());
  spec.origin = file_ + ":" + std::to_string(line);
  return spec;
}

Result<SuiteSpec> ManifestParser::ReadSuite(const toml::node& node, std::size_t index) {
  Scope scope{"suite #" + std::to_string(index + 1), true};
  const auto* table = node.as_table();
  if (table == nullptr) {
    return Error{At(node.source()) + ": " + scope.who + ": expected a table, got " +
                 TypeName(node)};
  }
  if (const auto* name = table->get_as<std::string>("name"); name && !name->get().empty()) {
    scope.who = "suite '" + name->get() + "'";
  }
  Fields fields;
  if (std::optional<Error> error = ReadTable(*table, scope, &fields)) return *error;
  if (!fields.command) {
    return Error{At(table->source()) + ": " + scope.who + ": key 'command' is required"};
  }
  return Merge(std::move(fields), static_cast<int>(table->source().begin.line));
}

Result<std::vector<SuiteSpec>> ManifestParser::Parse(const toml::table& root) {
  const toml::array* suites = nullptr;
  for (const auto& [key, value] : InDocumentOrder(root)) {
    if (key->str() == "defaults") {
      const auto* table = value->as_table();
      if (table == nullptr) {
        return Error{At(value->source()) + ": key 'defaults': expected a table, got " +
                     TypeName(*value)};
      }
      if (std::optional<Error> error = ReadTable(*table, Scope{"[defaults]", false}, &defaults_)) {
        return *error;
      }
    } else if (key->str() == "suite") {
      suites = value->as_array();
      if (suites == nullptr) {
        return Error{At(value->source()) + ": key 'suite': expected [[suite]] tables, got " +
                     TypeName(*value)};
      }
    } else {
      Warn(*key, "");
    }
  }
  if (suites == nullptr || suites->empty()) return Error{file_ + ": no [[suite]] entries"};

  std::vector<SuiteSpec> specs;
  std::map<std::string, std::string> declared_at;  // name -> "file:line"
  for (std::size_t i = 0; i < suites->size(); ++i) {
    Result<SuiteSpec> spec = ReadSuite(*suites->get(i), i);
    if (!spec) return spec.error();
    auto [it, inserted] = declared_at.emplace(spec->name, spec->origin);
    if (!inserted) {
      const toml::table& table = *suites->get(i)->as_table();
      const toml::node* name = table.get("name");
      return Error{At(name != nullptr ? name->source() : table.source()) + ": suite '" +
                   spec->name + "': key 'name': duplicate suite name, also declared at " +
                   it->second + (name != nullptr ? "" : " (set a distinct `name`)")};
    }
    specs.push_back(std::move(*spec));
  }
  return specs;
}

}  // namespace

Result<std::vector<SuiteSpec>> ParseManifestFile(const std::filesystem::path& file,
                                                 std::vector<std::string>* warnings) {
  Result<std::string> text = ReadWholeFile(file, kMaxManifestBytes);
  if (!text) return text.error();
  return ParseManifestText(*text, file.string(), file.parent_path(), warnings);
}

Result<std::vector<SuiteSpec>> ParseManifestText(const std::string& text,
                                                 const std::string& display_path,
                                                 const std::filesystem::path& base_dir,
                                                 std::vector<std::string>* warnings) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(display_path));
  } catch (const toml::parse_error& e) {
    return Error{display_path + ":" + std::to_string(e.source().begin.line) + ":" +
                 std::to_string(e.source().begin.column) + ": " + std::string(e.description())};
  }
  ManifestParser parser(display_path, base_dir);
  Result<std::vector<SuiteSpec>> suites = parser.Parse(root);
  parser.TakeWarnings(warnings);
  return suites;
}

}  // namespace testfarm::coordinator
