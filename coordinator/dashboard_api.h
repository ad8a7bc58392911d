#pragma once
// The dashboard's HTTP answers, with no socket: which endpoint a request is for, whether it
// carries the token, what its query parameters mean (400 with a message when they mean
// nothing), and the JSON each endpoint answers from the model or the run history. The server
// (dashboard_server) only moves bytes and holds the locks.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/dashboard_model.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct HttpRequest {
  std::string method = "GET";
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;  // the query, decoded
  std::string authorization;                                // the header, as sent
  std::string host;                                         // the Host header
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

enum class Endpoint { kPage, kModel, kHistory, kEvents, kNotFound };
Endpoint EndpointOf(const std::string& path);

// The JSON error reply: {"error": text}.
HttpReply ErrorReply(int status, const std::string& text);

// nullopt when `request` may be answered: it is not for the API, no token is set, or it
// carries `Authorization: Bearer <token>`. Else the 401 reply.
std::optional<HttpReply> Unauthorized(const std::string& token, const HttpRequest& request);

// The page's static files (built into the binary): "/", "/app.js", "/style.css".
HttpReply PageFile(const std::string& path);

// /api/v1/farm, workers, runs, runs/{id}/tests, .../output, .../timeline.
HttpReply AnswerFromModel(const DashboardModel& model, const FarmInfo& info, int64_t now_ms,
                          const HttpRequest& request);

// Where /api/v1/history/* comes from (a HistoryStore in the shell); null: none is kept.
class DashboardHistory {
 public:
  virtual ~DashboardHistory() = default;
  virtual Result<std::string> Flaky(int64_t since_ms, std::size_t limit) = 0;
  virtual Result<std::string> Trend(const std::string& test, int64_t since_ms) = 0;
};
HttpReply AnswerFromHistory(DashboardHistory* history, int64_t now_ms, const HttpRequest& request);

// The JSON text of a reply body (invalid UTF-8 in captured output becomes U+FFFD).
std::string JsonText(const nlohmann::json& json);

}  // namespace testfarm::coordinator
