// The headless-browser harness itself, against pages served from inside the test: it launches
// Chromium, opens a page, waits for what the page's script does later, evaluates, screenshots,
// collects the page's errors, and says so clearly when Chromium dies.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/browser.h"
#include "tests/support/loopback_port.h"
#include "tests/support/temp_dir.h"

namespace testfarm::test {
namespace {

using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// An HTTP/1.0 server on 127.0.0.1 at an ephemeral port, answering GETs from a fixed map of path
// to HTML on its own thread until destroyed. It serves all its connections at once from one poll
// loop, because Chromium opens spare connections it may never send a request on.
class PageServer {
 public:
  explicit PageServer(std::map<std::string, std::string> pages) : pages_(std::move(pages)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (listen_fd_ < 0 || ::pipe2(wake_, O_CLOEXEC) != 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~PageServer() {
    if (thread_.joinable()) {
      char stop = 0;
      (void)!::write(wake_[1], &stop, 1);
      thread_.join();
    }
    for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
      if (fd >= 0) ::close(fd);
    }
  }
  PageServer(const PageServer&) = delete;
  PageServer& operator=(const PageServer&) = delete;

  int port() const { return port_; }  // 0 if the server could not start
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  struct Connection {
    int fd;
    std::string request;
    std::string response;  // non-empty once the request is complete
    std::size_t sent = 0;
  };

  void Serve() {
    std::vector<Connection> connections;
    for (;;) {
      std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      for (const Connection& c : connections) {
        fds.push_back({c.fd, static_cast<short>(c.response.empty() ? POLLIN : POLLOUT), 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
      if (fds[0].revents != 0) break;
      if (fds[1].revents != 0) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) connections.push_back({fd, {}, {}});
      }
      for (std::size_t i = 0; i + 2 < fds.size(); ++i) {
        if (fds[i + 2].revents != 0 && !Advance(connections[i])) {
          ::close(connections[i].fd);
          connections[i].fd = -1;
        }
      }
      std::erase_if(connections, [](const Connection& c) { return c.fd < 0; });
    }
    for (const Connection& c : connections) ::close(c.fd);
  }

  // Reads the request or writes the response; false once the connection is done with.
  bool Advance(Connection& c) {
    if (c.response.empty()) {
      char buffer[4096];
      ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n <= 0) return n < 0 && errno == EAGAIN;
      c.request.append(buffer, static_cast<std::size_t>(n));
      if (c.request.find("\r\n\r\n") == std::string::npos) return true;
      // "GET /path HTTP/1.1": the path is between the first two spaces.
      std::size_t start = c.request.find(' ') + 1;
      std::string path = c.request.substr(start, c.request.find(' ', start) - start);
      auto page = pages_.find(path);
      std::string body = page != pages_.end() ? page->second : "not found";
      c.response =
          std::string(page != pages_.end() ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.0 404 Not Found\r\n") +
          "Content-Type: text/html; charset=utf-8\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      return true;
    }
    ssize_t n = ::send(c.fd, c.response.data() + c.sent, c.response.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN;
    c.sent += static_cast<std::size_t>(n);
    return c.sent < c.response.size();
  }

  std::map<std::string, std::string> pages_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
};

// Appends <p id="late"> 300 ms after the page has loaded: it is not there when Open returns.
constexpr const char* kLatePage = R"(<!doctype html>
<html><head><title>harness</title></head>
<body style="background: #2a6">
<h1>testfarm</h1>
<script>
  addEventListener('load', () => setTimeout(() => {
    const p = document.createElement('p');
    p.id = 'late';
    p.textContent = 'appeared after 300 ms';
    document.body.appendChild(p);
  }, 300));
</script>
</body></html>)";

constexpr const char* kThrowingPage = R"(<!doctype html>
<html><body>
<script>
  console.log('an ordinary message is no error');
  console.error('something went wrong');
  throw new Error('boom from the page');
</script>
</body></html>)";

constexpr const char* kSecondPage = R"(<!doctype html>
<html><body><p id="second">the second page</p></body></html>)";

class HeadlessBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string reason = BrowserUnavailableReason(); !reason.empty()) {
      GTEST_SKIP() << reason;
    }
    ASSERT_NE(server_.port(), 0);
    std::string error;
    browser_ = HeadlessBrowser::Launch(&error);
    ASSERT_NE(browser_, nullptr) << error;
  }

  PageServer server_{{{"/", kLatePage}, {"/throws", kThrowingPage}, {"/second", kSecondPage}}};
  std::unique_ptr<HeadlessBrowser> browser_;
};

TEST_F(HeadlessBrowserTest, WaitsForWhatThePageScriptAddsLater) {
  std::string error;
  ASSERT_TRUE(browser_->Open(server_.Url("/"), &error)) << error;
  EXPECT_EQ(browser_->Evaluate("document.title", &error), "harness") << error;

  ASSERT_TRUE(
      browser_->WaitFor("document.getElementById('late') !== null", milliseconds(10000), &error))
      << error;
  EXPECT_EQ(browser_->Evaluate("document.getElementById('late').textContent", &error),
            "appeared after 300 ms")
      << error;
  EXPECT_THAT(browser_->ConsoleErrors(), IsEmpty());
}

TEST_F(HeadlessBrowserTest, EvaluateAwaitsPromisesAndReportsExceptions) {
  std::string error;
  ASSERT_TRUE(browser_->Open(server_.Url("/"), &error)) << error;
  EXPECT_EQ(browser_->Evaluate("new Promise((resolve) => setTimeout(() => resolve(42), 10))"), 42);
  EXPECT_EQ(browser_->Evaluate("({a: [1, 'two'], b: null})"),
            nlohmann::json::parse(R"({"a": [1, "two"], "b": null})"));
  EXPECT_EQ(browser_->Evaluate("undefined"), nullptr);

  EXPECT_EQ(browser_->Evaluate("throw new Error('nope')", &error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("Error: nope"));
  EXPECT_EQ(browser_->Evaluate("Promise.reject(new TypeError('rejected'))", &error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("TypeError: rejected"));
  // The test's own failed evaluations are not the page's errors.
  EXPECT_THAT(browser_->ConsoleErrors(), IsEmpty());
}

TEST_F(HeadlessBrowserTest, WaitForGivesUpAtItsTimeout) {
  std::string error;
  ASSERT_TRUE(browser_->Open(server_.Url("/"), &error)) << error;
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(browser_->WaitFor("document.querySelector('#never').textContent === 'x'",
                                 milliseconds(300), &error));
  auto spent = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(error, HasSubstr("still false after 300 ms"));
  EXPECT_THAT(error, HasSubstr("TypeError"));  // the predicate's last exception
  EXPECT_GE(spent, milliseconds(300));
  EXPECT_LT(spent, milliseconds(5000));
}

TEST_F(HeadlessBrowserTest, WaitForFollowsThePageToItsNextDocument) {
  std::string error;
  ASSERT_TRUE(browser_->Open(server_.Url("/"), &error)) << error;
  // The navigation destroys the context the first check runs in; WaitFor starts again in the new
  // document.
  ASSERT_TRUE(browser_->Evaluate("setTimeout(() => location.assign('/second'), 50), true", &error))
      << error;
  ASSERT_TRUE(
      browser_->WaitFor("document.getElementById('second') !== null", milliseconds(10000), &error))
      << error;
  EXPECT_EQ(browser_->Evaluate("location.pathname", &error), "/second") << error;
}

TEST_F(HeadlessBrowserTest, ScreenshotIsAPngOfTheViewport) {
  std::string error;
  ASSERT_TRUE(browser_->Open(server_.Url("/"), &error)) << error;
  TempDir dir;
  std::string path = (dir.path() / "page.png").string();
  ASSERT_TRUE(browser_->Screenshot(path, &error)) << error;

  std::ifstream file(path, std::ios::binary);
  std::string png((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSERT_GT(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  // IHDR: the width and height, big-endian, at bytes 16 and 20.
  auto be32 = [&](std::size_t at) {
    return (static_cast<unsigned char>(png[at]) << 24) |
           (static_cast<unsigned char>(png[at + 1]) << 16) |
           (static_cast<unsigned char>(png[at + 2]) << 8) | static_cast<unsigned char>(png[at + 3]);
  };
  EXPECT_EQ(be32(16), 1280u);
  EXPECT_EQ(be32(20), 800u);
}

TEST_F(HeadlessBrowserTest, CollectsTheErrorsAPageLogsAndThrows) {
  std::string error;
  ASSERT_TRUE(browser_->Open(server_.Url("/"), &error)) << error;
  EXPECT_THAT(browser_->ConsoleErrors(), IsEmpty());

  ASSERT_TRUE(browser_->Open(server_.Url("/throws"), &error)) << error;
  // The page threw while loading, before its load event: Open has read those messages already.
  std::vector<std::string> errors = browser_->ConsoleErrors();
  EXPECT_THAT(errors, Contains(HasSubstr("console.error: something went wrong")));
  EXPECT_THAT(errors, Contains(HasSubstr("Error: boom from the page")));
  EXPECT_THAT(errors, Not(Contains(HasSubstr("an ordinary message"))));
}

TEST_F(HeadlessBrowserTest, APageThatCannotBeReachedIsAnError) {
  LoopbackSocket refusing(false);
  ASSERT_NE(refusing.port(), 0);
  std::string error;
  EXPECT_FALSE(browser_->Open("http://127.0.0.1:" + std::to_string(refusing.port()) + "/", &error));
  EXPECT_THAT(error, HasSubstr("ERR_CONNECTION_REFUSED"));
}

TEST_F(HeadlessBrowserTest, ChromiumDyingIsAClearErrorNotAHang) {
  std::string error;
  ASSERT_TRUE(browser_->Open(server_.Url("/"), &error)) << error;
  ASSERT_EQ(::kill(browser_->pid(), SIGKILL), 0);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(browser_->Evaluate("1 + 1", &error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("Chromium closed the DevTools pipe"));
  EXPECT_THAT(error, HasSubstr("killed by signal 9"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
  EXPECT_FALSE(browser_->WaitFor("true", milliseconds(1000), &error));
  EXPECT_THAT(error, HasSubstr("Chromium closed the DevTools pipe"));
}

}  // namespace
}  // namespace testfarm::test
