#include "coordinator/dashboard_api.h"

#include <charconv>
#include <set>

#include "coordinator/dashboard_assets.h"

namespace testfarm::coordinator {
namespace {

using Json = nlohmann::json;

constexpr const char* kApi = "/api/v1/";

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

std::vector<std::string> Split(const std::string& path, char sep) {
  std::vector<std::string> parts;
  std::size_t from = 0;
  while (from <= path.size()) {
    std::size_t to = path.find(sep, from);
    if (to == std::string::npos) to = path.size();
    parts.push_back(path.substr(from, to - from));
    from = to + 1;
  }
  return parts;
}

// The query parameters of one endpoint: each known once, each value checked.
class Params {
 public:
  Params(const HttpRequest& request, std::vector<std::string> known)
      : request_(request), known_(std::move(known)) {}

  // An unknown or repeated parameter.
  std::optional<std::string> Problem() const {
    std::set<std::string> seen;
    for (const auto& [name, value] : request_.params) {
      if (std::find(known_.begin(), known_.end(), name) == known_.end()) {
        std::string list;
        for (const std::string& k : known_) list += (list.empty() ? "" : ", ") + k;
        return "unknown parameter '" + name + "'" +
               (known_.empty() ? " (this endpoint takes none)"
                               : " (this endpoint takes: " + list + ")");
      }
      if (!seen.insert(name).second) return "parameter '" + name + "' given twice";
    }
    return std::nullopt;
  }

  std::optional<std::string> Get(const std::string& name) const {
    for (const auto& [n, value] : request_.params) {
      if (n == name) return value;
    }
    return std::nullopt;
  }

  // A whole number in [min, max]; `fallback` when absent.
  Result<int64_t> Number(const std::string& name, int64_t fallback, int64_t min,
                         int64_t max) const {
    auto text = Get(name);
    if (!text) return fallback;
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
      return Error("bad value for " + name + ": '" + *text + "' (a whole number from " +
                   std::to_string(min) + " to " + std::to_string(max) + ")");
    }
    return value;
  }

 private:
  const HttpRequest& request_;
  std::vector<std::string> known_;
};

HttpReply JsonReply(const Json& json) {
  return {200, "application/json", JsonText(json)};
}

// The number of a run's test in a path ("17"); nullopt when it is not one.
std::optional<std::size_t> IndexOf(const std::string& text) {
  std::size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

HttpReply NoRun(const std::string& id) {
  return ErrorReply(404, "no run '" + id + "'");
}

HttpReply AnswerTests(const DashboardModel& model, const std::string& run,
                      const HttpRequest& request) {
  Params params(request, {"status", "q", "offset", "limit"});
  if (auto problem = params.Problem()) return ErrorReply(400, *problem);
  TestsQuery query;
  auto offset = params.Number("offset", 0, 0, int64_t{1} << 40);
  if (!offset) return ErrorReply(400, offset.error().message);
  auto limit = params.Number("limit", 100, 1, 1000);
  if (!limit) return ErrorReply(400, limit.error().message);
  query.offset = static_cast<std::size_t>(*offset);
  query.limit = static_cast<std::size_t>(*limit);
  query.contains = params.Get("q").value_or("");
  for (const std::string& word : Split(params.Get("status").value_or(""), ',')) {
    if (word.empty()) continue;
    const auto& words = TestStatusWords();
    if (std::find(words.begin(), words.end(), word) == words.end()) {
      std::string list;
      for (const std::string& w : words) list += (list.empty() ? "" : ", ") + w;
      return ErrorReply(400, "bad status '" + word + "' (one or more of: " + list + ")");
    }
    query.statuses.push_back(word);
  }
  auto tests = model.Tests(run, query);
  if (!tests) return NoRun(run);
  return JsonReply(*tests);
}

}  // namespace

std::string JsonText(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

HttpReply ErrorReply(int status, const std::string& text) {
  return {status, "application/json", JsonText(Json{{"error", text}}) + "\n"};
}

Endpoint EndpointOf(const std::string& path) {
  if (PageAsset(path) != nullptr) return Endpoint::kPage;
  if (path == "/api/v1/events") return Endpoint::kEvents;
  if (StartsWith(path, "/api/v1/history/")) return Endpoint::kHistory;
  if (StartsWith(path, kApi)) return Endpoint::kModel;
  return Endpoint::kNotFound;
}

std::optional<HttpReply> Unauthorized(const std::string& token, const HttpRequest& request) {
  if (token.empty() || !StartsWith(request.path, "/api/")) return std::nullopt;
  const std::string expected = "Bearer " + token;
  const std::string& given = request.authorization;
  // Compared in time that does not depend on where they differ.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < given.size() && i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  }
  if (diff == 0) return std::nullopt;
  return ErrorReply(401, given.empty()
                             ? "this dashboard needs its token: send Authorization: Bearer TOKEN"
                             : "wrong token");
}

HttpReply PageFile(const std::string& path) {
  const PageAssetFile* file = PageAsset(path);
  if (file == nullptr) return ErrorReply(404, "no such page: " + path);
  return {200, file->content_type, std::string(file->body)};
}

HttpReply AnswerFromModel(const DashboardModel& model, const FarmInfo& info, int64_t now_ms,
                          const HttpRequest& request) {
  const std::string& path = request.path;
  std::vector<std::string> parts = Split(path.substr(std::string(kApi).size()), '/');
  if (parts.size() == 1 && parts[0] == "farm") {
    Params params(request, {});
    if (auto problem = params.Problem()) return ErrorReply(400, *problem);
    return JsonReply(model.Farm(info, now_ms));
  }
  if (parts.size() == 1 && parts[0] == "workers") {
    Params params(request, {"offset", "limit"});
    if (auto problem = params.Problem()) return ErrorReply(400, *problem);
    auto offset = params.Number("offset", 0, 0, 1 << 30);
    if (!offset) return ErrorReply(400, offset.error().message);
    auto limit = params.Number("limit", 500, 1, 2000);
    if (!limit) return ErrorReply(400, limit.error().message);
    return JsonReply(
        model.Workers(static_cast<std::size_t>(*offset), static_cast<std::size_t>(*limit), now_ms));
  }
  if (parts.size() == 1 && parts[0] == "runs") {
    Params params(request, {});
    if (auto problem = params.Problem()) return ErrorReply(400, *problem);
    return JsonReply(model.Runs(now_ms));
  }
  if (parts.size() >= 3 && parts[0] == "runs" && !parts[1].empty()) {
    const std::string& run = parts[1];
    if (parts.size() == 3 && parts[2] == "tests") return AnswerTests(model, run, request);
    if (parts.size() == 3 && parts[2] == "timeline") {
      Params params(request, {"since_ms"});
      if (auto problem = params.Problem()) return ErrorReply(400, *problem);
      auto since = params.Number("since_ms", 0, 0, int64_t{1} << 52);
      if (!since) return ErrorReply(400, since.error().message);
      auto timeline = model.Timeline(run, *since, now_ms);
      if (!timeline) return NoRun(run);
      return JsonReply(*timeline);
    }
    if (parts.size() == 5 && parts[2] == "tests" && parts[4] == "output") {
      Params params(request, {});
      if (auto problem = params.Problem()) return ErrorReply(400, *problem);
      auto index = IndexOf(parts[3]);
      if (!index) return ErrorReply(400, "bad test index '" + parts[3] + "' (a whole number)");
      auto output = model.Output(run, *index);
      if (!output) {
        if (!model.HasRun(run)) return NoRun(run);
        return ErrorReply(404, "run '" + run + "' has no test " + parts[3]);
      }
      return JsonReply(*output);
    }
  }
  return ErrorReply(404, "no such endpoint: " + path + " (see docs/dashboard.md)");
}

HttpReply AnswerFromHistory(DashboardHistory* history, int64_t now_ms, const HttpRequest& request) {
  const std::string what = request.path.substr(std::string("/api/v1/history/").size());
  if (what != "flaky" && what != "trend") {
    return ErrorReply(404, "no such endpoint: " + request.path + " (see docs/dashboard.md)");
  }
  if (history == nullptr) return ErrorReply(404, "this process keeps no run history");
  constexpr int64_t kDayMs = 24 * 3600 * 1000;
  if (what == "flaky") {
    Params params(request, {"days", "limit"});
    if (auto problem = params.Problem()) return ErrorReply(400, *problem);
    auto days = params.Number("days", 30, 1, 3650);
    if (!days) return ErrorReply(400, days.error().message);
    auto limit = params.Number("limit", 50, 1, 1000);
    if (!limit) return ErrorReply(400, limit.error().message);
    auto json = history->Flaky(now_ms - *days * kDayMs, static_cast<std::size_t>(*limit));
    if (!json) return ErrorReply(500, "the run history cannot be read: " + json.error().message);
    return {200, "application/json", *json};
  }
  Params params(request, {"test", "days"});
  if (auto problem = params.Problem()) return ErrorReply(400, *problem);
  auto test = params.Get("test");
  if (!test || test->empty()) return ErrorReply(400, "trend needs test=NAME");
  auto days = params.Number("days", 30, 1, 3650);
  if (!days) return ErrorReply(400, days.error().message);
  auto json = history->Trend(*test, now_ms - *days * kDayMs);
  if (!json) return ErrorReply(500, "the run history cannot be read: " + json.error().message);
  return {200, "application/json", *json};
}

}  // namespace testfarm::coordinator
