#pragma once
// A headless Chromium for tests that need a real browser, driven through the Chrome DevTools
// Protocol over a pipe: with --remote-debugging-pipe Chromium reads CDP messages from its fd 3 and
// writes them to its fd 4, each ended by a '\0'. No websocket, and no debugging port another
// process could reach. Every wait is bounded and waits on the pipe, never by sleeping; errors
// come back as values. One thread at a time.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace testfarm::test {

// Why browser tests cannot run here, "" when they can: no Chromium binary (TESTFARM_CHROMIUM if
// set, else /usr/bin/chromium). Tests skip with this reason rather than fail.
std::string BrowserUnavailableReason();

class HeadlessBrowser {
 public:
  // Starts Chromium headless in its own process group with a fresh profile in a temporary
  // directory and waits until it answers on the pipe. nullptr and *error (with the tail of
  // Chromium's log) on failure.
  static std::unique_ptr<HeadlessBrowser> Launch(std::string* error, int width = 1280,
                                                 int height = 800);
  // Asks Chromium to close (Browser.close), waits a bounded time for it to exit, then SIGKILLs
  // its whole process group and removes the profile directory.
  ~HeadlessBrowser();
  HeadlessBrowser(const HeadlessBrowser&) = delete;
  HeadlessBrowser& operator=(const HeadlessBrowser&) = delete;

  // Opens `url` in a new page (closing the page a previous Open made) and waits for its load
  // event. Evaluate, WaitFor and Screenshot act on this page.
  bool Open(const std::string& url, std::string* error,
            std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Evaluates `expression` in the page, awaiting it if it is a promise. The value as JSON
  // (null for undefined), or nullopt with the exception or protocol error in *error.
  std::optional<nlohmann::json> Evaluate(
      const std::string& expression, std::string* error = nullptr,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True once the (synchronous) JS expression `predicate` is truthy. The page re-checks it on every
  // DOM mutation and on a short timer; if the page navigates meanwhile, the check starts again in
  // the new document. False at the timeout (with the predicate's last exception, if it threw).
  bool WaitFor(const std::string& predicate, std::chrono::milliseconds timeout,
               std::string* error = nullptr);
  // Writes a PNG of the page's viewport to `path`.
  bool Screenshot(const std::string& path, std::string* error);
  // console.error / console.assert messages and uncaught exceptions of the pages opened so far,
  // as far as they have been read from the pipe (any Open, Evaluate or WaitFor reads up to it).
  std::vector<std::string> ConsoleErrors() const { return console_errors_; }
  // The last `bytes` of Chromium's stdout and stderr (its D-Bus complaints left out), for
  // failure messages.
  std::string LogTail(std::size_t bytes = 3000) const;
  // Chromium's browser process, the leader of its process group.
  pid_t pid() const { return child_.pid(); }

 private:
  // An owned file descriptor.
  class Fd {
   public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { Reset(); }
    Fd(Fd&& other) noexcept : fd_(other.Release()) {}
    Fd& operator=(Fd&& other) noexcept;
    int get() const { return fd_; }
    int Release();
    void Reset();

   private:
    int fd_ = -1;
  };
  // The Chromium process and its group: SIGKILLed and reaped when this goes.
  class ChildGroup {
   public:
    ChildGroup() = default;
    ~ChildGroup();
    ChildGroup(const ChildGroup&) = delete;
    ChildGroup& operator=(const ChildGroup&) = delete;
    void Adopt(pid_t pid);
    pid_t pid() const { return pid_; }

   private:
    pid_t pid_ = -1;
  };
  using Clock = std::chrono::steady_clock;

  HeadlessBrowser() = default;
  bool Start(int width, int height, std::string* error);
  // Sends a command (to the page's session if `session` is set) and waits for its answer: the
  // "result" object, or nullopt and *error.
  std::optional<nlohmann::json> Call(const std::string& method, nlohmann::json params,
                                     const std::string& session, Clock::time_point until,
                                     std::string* error);
  bool Send(const nlohmann::json& message, Clock::time_point until, std::string* error);
  // One poll-and-read round on Chromium's output; false when `until` passed or the pipe is gone
  // (then dead_ says why).
  bool Pump(Clock::time_point until);
  // Reads what fd 4 has and dispatches every message it completes; false if the pipe is gone.
  bool ReadAvailable();
  void Dispatch(const std::string& text);
  void NoteDeath(const std::string& why);
  // Removes and returns the first queued event of `session` named `method` that `accept` takes,
  // reading more until `until`.
  std::optional<nlohmann::json> TakeEvent(const std::string& session, const std::string& method,
                                          const std::function<bool(const nlohmann::json&)>& accept,
                                          Clock::time_point until, std::string* error);

  // Declared so that they go in this order: the process group, then the pipes, then the profile.
  TempDir dir_{"testfarm-chromium-"};
  Fd to_browser_;    // our end of Chromium's fd 3
  Fd from_browser_;  // our end of Chromium's fd 4
  Fd pidfd_;         // -1 if the kernel has no pidfd_open; then exit is seen as EOF on the pipe
  ChildGroup child_;

  std::string inbox_;  // bytes read from fd 4 not yet ended by '\0'
  std::string dead_;   // why the pipe is gone; "" while Chromium talks
  std::int64_t next_id_ = 1;
  std::map<std::int64_t, nlohmann::json> responses_;
  std::set<std::int64_t> abandoned_;  // commands that timed out: their answers are dropped
  std::deque<nlohmann::json> events_;
  std::string target_id_;
  std::string session_;
  std::set<std::string> sessions_;  // every page session opened, for the console's messages
  std::map<std::string, std::string> gone_;  // sessions whose page crashed or went: why
  std::vector<std::string> console_errors_;
  int width_ = 0;
  int height_ = 0;
};

}  // namespace testfarm::test
