#include "tests/support/browser.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>

extern char** environ;

namespace testfarm::test {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Generous bounds: a cold Chromium start on a loaded CI machine can take several seconds.
constexpr auto kLaunchBound = std::chrono::seconds(30);
constexpr auto kCloseBound = std::chrono::seconds(5);
constexpr auto kScreenshotBound = std::chrono::seconds(30);
// How long a dead pipe waits for the process to exit, to name its exit status in the error.
constexpr auto kExitStatusBound = std::chrono::seconds(2);
// Events nothing waits for are dropped past this many, so a chatty page cannot grow the queue
// without bound.
constexpr std::size_t kMaxQueuedEvents = 10000;
constexpr const char* kLogName = "chromium.log";

void SetError(std::string* error, const std::string& text) {
  if (error != nullptr) *error = text;
}

std::string ChromiumPath() {
  const char* path = std::getenv("TESTFARM_CHROMIUM");
  return path != nullptr && *path != '\0' ? path : "/usr/bin/chromium";
}

// Rounded up, so that a poll never returns early and spins on a sub-millisecond remainder.
int MillisLeft(Clock::time_point until) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
  return static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
}

long long MillisOf(std::chrono::milliseconds duration) {
  return static_cast<long long>(duration.count());
}

// Accessors that never throw on JSON of an unexpected shape (Chromium's or a page's).
const json* Find(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string StringAt(const json& object, const char* key) {
  const json* value = Find(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

// Invalid UTF-8 in a string (a page's console text) is replaced rather than thrown on.
std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A RemoteObject (a console argument, a thrown value) as text.
std::string RemoteText(const json& remote) {
  if (const json* value = Find(remote, "value")) {
    return value->is_string() ? value->get<std::string>() : Dump(*value);
  }
  if (std::string text = StringAt(remote, "description"); !text.empty()) return text;
  if (std::string text = StringAt(remote, "unserializableValue"); !text.empty()) return text;
  return StringAt(remote, "type");
}

// " (url:line:column)" of the first frame of a CDP StackTrace, 1-based like DevTools shows it.
std::string Where(const json* stack) {
  const json* frames = stack != nullptr ? Find(*stack, "callFrames") : nullptr;
  if (frames == nullptr || !frames->is_array() || frames->empty()) return {};
  const json& frame = frames->front();
  const json* line = Find(frame, "lineNumber");
  const json* column = Find(frame, "columnNumber");
  if (line == nullptr || column == nullptr || !line->is_number_integer() ||
      !column->is_number_integer()) {
    return {};
  }
  std::string url = StringAt(frame, "url");
  return " (" + (url.empty() ? "<anonymous>" : url) + ":" +
         std::to_string(line->get<long long>() + 1) + ":" +
         std::to_string(column->get<long long>() + 1) + ")";
}

// Runtime.ExceptionDetails as one line: the thrown value's description (which names the error
// and its message) rather than the generic "Uncaught" text when there is one.
std::string ExceptionText(const json& details) {
  std::string text = StringAt(details, "text");
  if (const json* exception = Find(details, "exception")) {
    // Only the first line: an Error's description goes on with its stack.
    std::string thrown = RemoteText(*exception);
    thrown = thrown.substr(0, thrown.find('\n'));
    if (!thrown.empty()) text = text.empty() ? thrown : text + " " + thrown;
  }
  return text + Where(Find(details, "stackTrace"));
}

std::optional<std::string> DecodeBase64(const std::string& text) {
  static const std::array<int, 256> kValues = [] {
    std::array<int, 256> values;
    values.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) values[static_cast<unsigned char>(alphabet[i])] = i;
    return values;
  }();
  std::string out;
  out.reserve(text.size() / 4 * 3);
  unsigned bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    int value = kValues[static_cast<unsigned char>(c)];
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

// Blocks SIGPIPE in this thread while writing to Chromium's pipe: if Chromium has died, the write
// fails with EPIPE instead of the signal killing the whole test binary. A SIGPIPE the write raised
// is consumed before unblocking; one that was already pending is left alone.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlocked() {
    if (!was_pending_) {
      timespec zero{};
      while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

// The JS WaitFor evaluates: a promise that checks the predicate now, on every DOM mutation and
// every 25 ms (for state outside the DOM), and resolves {ok, error} at success or at the
// deadline. The newlines around the predicate keep a trailing // comment in it from eating the
// rest.
std::string WaitForScript(const std::string& predicate, std::chrono::milliseconds timeout) {
  return "(() => {\n"
         "  const deadline = performance.now() + " +
         std::to_string(MillisOf(timeout)) +
         ";\n"
         "  const predicate = () => (\n" +
         predicate +
         "\n  );\n"
         "  return new Promise((resolve) => {\n"
         "    let done = false, lastError = '', observer = null, timer = 0;\n"
         "    const check = () => {\n"
         "      if (done) return;\n"
         "      let ok = false;\n"
         "      try { ok = !!predicate(); lastError = ''; } catch (e) { lastError = String(e); }\n"
         "      if (!ok && performance.now() < deadline) return;\n"
         "      done = true;\n"
         "      if (observer) observer.disconnect();\n"
         "      clearInterval(timer);\n"
         "      resolve({ok, error: lastError});\n"
         "    };\n"
         "    check();\n"
         "    if (done) return;\n"
         "    observer = new MutationObserver(check);\n"
         "    observer.observe(document, {subtree: true, childList: true, attributes: true,\n"
         "                                characterData: true});\n"
         "    timer = setInterval(check, 25);\n"
         "  });\n"
         "})()";
}

// Errors Runtime.evaluate gives when the page navigated under it: the check is retried in the
// new document.
bool ContextWentAway(const std::string& error) {
  return error.find("Execution context was destroyed") != std::string::npos ||
         error.find("Cannot find default execution context") != std::string::npos ||
         error.find("Inspected target navigated or closed") != std::string::npos;
}

}  // namespace

std::string BrowserUnavailableReason() {
  std::string path = ChromiumPath();
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) {
    return "no Chromium at " + path + " (install chromium, or set TESTFARM_CHROMIUM to its path)";
  }
  if (!S_ISREG(status.st_mode) || ::access(path.c_str(), X_OK) != 0) {
    return path + " is not an executable file";
  }
  return "";
}

HeadlessBrowser::Fd& HeadlessBrowser::Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = other.Release();
  }
  return *this;
}

int HeadlessBrowser::Fd::Release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void HeadlessBrowser::Fd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void HeadlessBrowser::ChildGroup::Adopt(pid_t pid) {
  pid_ = pid;
}

HeadlessBrowser::ChildGroup::~ChildGroup() {
  if (pid_ <= 0) return;
  // The whole group: the renderers and helpers Chromium forked go with it. Killed before the
  // leader is reaped, so the group id cannot have been reused by then.
  ::kill(-pid_, SIGKILL);
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

std::unique_ptr<HeadlessBrowser> HeadlessBrowser::Launch(std::string* error, int width,
                                                         int height) {
  std::unique_ptr<HeadlessBrowser> browser(new HeadlessBrowser());
  if (!browser->Start(width, height, error)) return nullptr;
  return browser;
}

bool HeadlessBrowser::Start(int width, int height, std::string* error) {
  width_ = width;
  height_ = height;
  if (std::string reason = BrowserUnavailableReason(); !reason.empty()) {
    SetError(error, reason);
    return false;
  }
  if (dir_.path().empty()) {
    SetError(error, std::string("cannot make a temporary directory: ") + std::strerror(errno));
    return false;
  }
  // Both pipes are moved above fd 4 first: dup2 onto 3 and 4 in the child must not find one of
  // them already sitting on the other's target (nor leave close-on-exec set on an fd dup2'ed onto
  // itself).
  auto make_pipe = [](Fd& read_end, Fd& write_end) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    Fd raw_read(fds[0]);
    Fd raw_write(fds[1]);
    read_end = Fd(::fcntl(raw_read.get(), F_DUPFD_CLOEXEC, 10));
    write_end = Fd(::fcntl(raw_write.get(), F_DUPFD_CLOEXEC, 10));
    return read_end.get() >= 0 && write_end.get() >= 0;
  };
  Fd browser_reads;   // becomes Chromium's fd 3
  Fd browser_writes;  // becomes Chromium's fd 4
  if (!make_pipe(browser_reads, to_browser_) || !make_pipe(from_browser_, browser_writes)) {
    SetError(error, std::string("cannot make the DevTools pipes: ") + std::strerror(errno));
    return false;
  }
  // Our ends never block: every wait is a poll with a deadline.
  ::fcntl(to_browser_.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(from_browser_.get(), F_SETFL, O_NONBLOCK);

  std::string log_path = (dir_.path() / kLogName).string();
  std::vector<std::string> args = {
      ChromiumPath(),
      // Chromium 132+ has only the new headless mode; --headless=new names it explicitly.
      "--headless=new",
      // The sandbox cannot start as root, nor in most containers.
      "--no-sandbox",
      "--disable-gpu",
      "--remote-debugging-pipe",
      "--user-data-dir=" + (dir_.path() / "profile").string(),
      "--window-size=" + std::to_string(width) + "," + std::to_string(height),
      // Docker's 64 MB /dev/shm is too small for Chromium's shared memory; /tmp is not.
      "--disable-dev-shm-usage",
      // Nothing in the background that could talk to the network or slow a test down.
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-extensions",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--mute-audio",
      "--hide-scrollbars",
      // A page the test opened must keep its timers running at full speed even if Chromium
      // considers it hidden.
      "--disable-background-timer-throttling",
      "--disable-backgrounding-occluded-windows",
      "--disable-renderer-backgrounding",
      "about:blank",
  };
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // Chromium's own temporary files (its profile-singleton socket directory, shared memory under
  // --disable-dev-shm-usage) go under TMPDIR: inside the directory removed at the end, else a
  // killed Chromium leaves them in /tmp.
  std::filesystem::path tmp = dir_.path() / "tmp";
  std::error_code ignored;
  std::filesystem::create_directory(tmp, ignored);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TMPDIR=", 7) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back("TMPDIR=" + tmp.string());
  std::vector<char*> envp;
  for (std::string& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_adddup2(&actions, browser_reads.get(), 3);
  posix_spawn_file_actions_adddup2(&actions, browser_writes.get(), 4);
  // Nothing else of the test process leaks into Chromium (a socket it held open would keep a
  // test's server connection alive).
  posix_spawn_file_actions_addclosefrom_np(&actions, 5);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    SetError(error, "cannot start " + args[0] + ": " + std::strerror(rc));
    return false;
  }
  child_.Adopt(pid);
  // Chromium must be the only writer: else its exit would not show as EOF on the pipe.
  browser_reads.Reset();
  browser_writes.Reset();
  // Through syscall(): glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage for C++.
  pidfd_ = Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  std::string why;
  auto version = Call("Browser.getVersion", json::object(), "", Clock::now() + kLaunchBound, &why);
  if (!version) {
    SetError(error, "Chromium did not answer on the DevTools pipe within " +
                        std::to_string(MillisOf(kLaunchBound)) + " ms: " + why +
                        (dead_.empty() ? "\n--- chromium log (tail) ---\n" + LogTail() : ""));
    // Not asked to close on the way out: it has not been listening.
    if (dead_.empty()) dead_ = "Chromium never answered";
    return false;
  }
  return true;
}

HeadlessBrowser::~HeadlessBrowser() {
  auto until = Clock::now() + kCloseBound;
  if (child_.pid() > 0 && dead_.empty()) {
    // Asked politely first: Chromium then ends its renderers itself. The answer is not awaited
    // alone, the pipe is read until Chromium closes it.
    json close = {{"id", next_id_++}, {"method", "Browser.close"}};
    if (Send(close, until, nullptr)) {
      while (Pump(until)) {
        responses_.clear();
        events_.clear();
      }
      // The pipe closes a little before the process is gone.
      if (pidfd_.get() >= 0) {
        pollfd exited{pidfd_.get(), POLLIN, 0};
        while (::poll(&exited, 1, MillisLeft(until)) < 0 && errno == EINTR) {
        }
      }
    }
  }
  // Then the members: child_ SIGKILLs what is left of the group and reaps it, the pipes close, the
  // profile directory goes.
}

bool HeadlessBrowser::Send(const json& message, Clock::time_point until, std::string* error) {
  if (!dead_.empty()) {
    SetError(error, dead_);
    return false;
  }
  std::string bytes = Dump(message);
  bytes.push_back('\0');
  SigpipeBlocked sigpipe_blocked;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::write(to_browser_.get(), bytes.data() + sent, bytes.size() - sent);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (Clock::now() >= until) {
        // Part of a message is in the pipe: nothing sent after it could be parsed.
        NoteDeath("timed out writing to the DevTools pipe (Chromium stopped reading)");
        SetError(error, dead_);
        return false;
      }
      // Chromium's output is read meanwhile, in case it waits for us to drain it.
      pollfd fds[2] = {{to_browser_.get(), POLLOUT, 0}, {from_browser_.get(), POLLIN, 0}};
      if (::poll(fds, 2, MillisLeft(until)) > 0 && fds[1].revents != 0 && !ReadAvailable()) {
        SetError(error, dead_);
        return false;
      }
      continue;
    }
    NoteDeath(n < 0 && errno == EPIPE ? std::string("Chromium closed the DevTools pipe")
                                      : std::string("cannot write to the DevTools pipe: ") +
                                            (n < 0 ? std::strerror(errno) : "nothing written"));
    SetError(error, dead_);
    return false;
  }
  return true;
}

bool HeadlessBrowser::Pump(Clock::time_point until) {
  if (!dead_.empty()) return false;
  pollfd readable{from_browser_.get(), POLLIN, 0};
  int ready = ::poll(&readable, 1, MillisLeft(until));
  if (ready < 0) return errno == EINTR && Clock::now() < until;
  if (ready == 0) return false;
  return ReadAvailable();
}

bool HeadlessBrowser::ReadAvailable() {
  char buffer[65536];
  ssize_t n = ::read(from_browser_.get(), buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    NoteDeath(n == 0 ? "Chromium closed the DevTools pipe"
                     : std::string("cannot read the DevTools pipe: ") + std::strerror(errno));
    return false;
  }
  // Only the new bytes are searched for the terminator: a screenshot is megabytes long and
  // arrives 64 KiB at a time.
  std::size_t searched = inbox_.size();
  inbox_.append(buffer, static_cast<std::size_t>(n));
  std::size_t start = 0;
  for (std::size_t end; (end = inbox_.find('\0', searched)) != std::string::npos;) {
    Dispatch(inbox_.substr(start, end - start));
    start = searched = end + 1;
  }
  inbox_.erase(0, start);
  return true;
}

void HeadlessBrowser::Dispatch(const std::string& text) {
  json message = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!message.is_object()) return;  // not CDP: nothing could be waiting for it
  if (const json* id = Find(message, "id"); id != nullptr && id->is_number_integer()) {
    auto number = id->get<std::int64_t>();
    if (abandoned_.erase(number) == 0) responses_[number] = std::move(message);
    return;
  }
  std::string method = StringAt(message, "method");
  std::string session = StringAt(message, "sessionId");
  const json* params = Find(message, "params");
  static const json kNoParams = json::object();
  const json& p = params != nullptr ? *params : kNoParams;
  if (sessions_.count(session) != 0) {
    if (method == "Runtime.consoleAPICalled") {
      std::string type = StringAt(p, "type");
      if (type == "error" || type == "assert") {
        std::string line = "console." + type + ":";
        if (const json* args = Find(p, "args"); args != nullptr && args->is_array()) {
          for (const json& arg : *args) line += " " + RemoteText(arg);
        }
        console_errors_.push_back(line + Where(Find(p, "stackTrace")));
      }
      return;
    }
    if (method == "Runtime.exceptionThrown") {
      const json* details = Find(p, "exceptionDetails");
      console_errors_.push_back("uncaught exception: " +
                                (details != nullptr ? ExceptionText(*details) : Dump(p)));
      return;
    }
    if (method == "Inspector.targetCrashed") gone_[session] = "the page crashed";
  }
  if (method == "Target.detachedFromTarget") {
    std::string detached = StringAt(p, "sessionId");
    if (sessions_.count(detached) != 0 && gone_.count(detached) == 0) {
      gone_[detached] = "the page was closed";
    }
  }
  events_.push_back(std::move(message));
  if (events_.size() > kMaxQueuedEvents) events_.pop_front();
}

void HeadlessBrowser::NoteDeath(const std::string& why) {
  dead_ = why;
  // Name how Chromium ended, if it did so soon: waitid with WNOWAIT leaves the child unreaped,
  // so the group can still be killed by its id.
  if (child_.pid() > 0) {
    if (pidfd_.get() >= 0) {
      pollfd exited{pidfd_.get(), POLLIN, 0};
      ::poll(&exited, 1, static_cast<int>(MillisOf(kExitStatusBound)));
    }
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(child_.pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == child_.pid()) {
      if (info.si_code == CLD_EXITED) {
        dead_ += " (Chromium exited with status " + std::to_string(info.si_status) + ")";
      } else {
        dead_ += " (Chromium was killed by signal " + std::to_string(info.si_status) + ", " +
                 strsignal(info.si_status) + ")";
      }
    }
  }
  dead_ += "\n--- chromium log (tail) ---\n" + LogTail();
}

std::optional<json> HeadlessBrowser::Call(const std::string& method, json params,
                                          const std::string& session, Clock::time_point until,
                                          std::string* error) {
  std::int64_t id = next_id_++;
  json message = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session.empty()) message["sessionId"] = session;
  std::string why;
  if (!Send(message, until, &why)) {
    SetError(error, method + ": " + why);
    return std::nullopt;
  }
  for (;;) {
    if (auto it = responses_.find(id); it != responses_.end()) {
      json response = std::move(it->second);
      responses_.erase(it);
      if (const json* failure = Find(response, "error")) {
        std::string text = StringAt(*failure, "message");
        if (std::string data = StringAt(*failure, "data"); !data.empty()) text += ": " + data;
        SetError(error, method + ": " + (text.empty() ? Dump(*failure) : text));
        return std::nullopt;
      }
      const json* result = Find(response, "result");
      return result != nullptr ? *result : json::object();
    }
    if (auto gone = gone_.find(session); !session.empty() && gone != gone_.end()) {
      abandoned_.insert(id);
      SetError(error, method + ": " + gone->second);
      return std::nullopt;
    }
    if (!Pump(until)) {
      abandoned_.insert(id);
      SetError(error, method + ": " + (dead_.empty() ? "no answer in time" : dead_));
      return std::nullopt;
    }
  }
}

std::optional<json> HeadlessBrowser::TakeEvent(const std::string& session,
                                               const std::string& method,
                                               const std::function<bool(const json&)>& accept,
                                               Clock::time_point until, std::string* error) {
  for (;;) {
    for (auto it = events_.begin(); it != events_.end(); ++it) {
      if (StringAt(*it, "method") != method || StringAt(*it, "sessionId") != session) continue;
      const json* params = Find(*it, "params");
      json taken = params != nullptr ? *params : json::object();
      if (accept && !accept(taken)) continue;
      events_.erase(it);
      return taken;
    }
    if (auto gone = gone_.find(session); gone != gone_.end()) {
      SetError(error, "waiting for " + method + ": " + gone->second);
      return std::nullopt;
    }
    if (!Pump(until)) {
      SetError(error, "waiting for " + method + ": " + (dead_.empty() ? "timed out" : dead_));
      return std::nullopt;
    }
  }
}

bool HeadlessBrowser::Open(const std::string& url, std::string* error,
                           std::chrono::milliseconds timeout) {
  auto until = Clock::now() + timeout;
  if (!target_id_.empty()) {
    // One page at a time: the last one's events would only fill the queue.
    Call("Target.closeTarget", {{"targetId", target_id_}}, "", until, nullptr);
    std::erase_if(events_,
                  [&](const json& event) { return StringAt(event, "sessionId") == session_; });
    target_id_.clear();
    session_.clear();
  }
  // The page starts blank and navigates only once its domains are enabled, so that nothing its
  // scripts log or throw while loading is missed.
  auto created = Call("Target.createTarget", {{"url", "about:blank"}}, "", until, error);
  if (!created) return false;
  target_id_ = StringAt(*created, "targetId");
  auto attached = Call("Target.attachToTarget", {{"targetId", target_id_}, {"flatten", true}}, "",
                       until, error);
  if (!attached) return false;
  session_ = StringAt(*attached, "sessionId");
  sessions_.insert(session_);
  // The viewport is set explicitly: --window-size sizes the window, not necessarily the page.
  json metrics = {
      {"width", width_}, {"height", height_}, {"deviceScaleFactor", 1}, {"mobile", false}};
  if (!Call("Page.enable", json::object(), session_, until, error) ||
      !Call("Runtime.enable", json::object(), session_, until, error) ||
      !Call("Page.setLifecycleEventsEnabled", {{"enabled", true}}, session_, until, error) ||
      !Call("Emulation.setDeviceMetricsOverride", metrics, session_, until, error)) {
    return false;
  }
  auto navigated = Call("Page.navigate", {{"url", url}}, session_, until, error);
  if (!navigated) return false;
  if (std::string failure = StringAt(*navigated, "errorText"); !failure.empty()) {
    SetError(error, "cannot open " + url + ": " + failure);
    return false;
  }
  // The load event of this navigation's document, told apart from about:blank's by its loader.
  std::string frame = StringAt(*navigated, "frameId");
  std::string loader = StringAt(*navigated, "loaderId");
  std::string why;
  auto loaded = TakeEvent(
      session_, "Page.lifecycleEvent",
      [&](const json& event) {
        return StringAt(event, "name") == "load" && StringAt(event, "frameId") == frame &&
               (loader.empty() || StringAt(event, "loaderId") == loader);
      },
      until, &why);
  if (!loaded) {
    SetError(error, url + " did not finish loading within " + std::to_string(MillisOf(timeout)) +
                        " ms: " + why);
    return false;
  }
  return true;
}

std::optional<json> HeadlessBrowser::Evaluate(const std::string& expression, std::string* error,
                                              std::chrono::milliseconds timeout) {
  if (session_.empty()) {
    SetError(error, "no page is open (Open one first)");
    return std::nullopt;
  }
  auto result = Call("Runtime.evaluate",
                     {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}},
                     session_, Clock::now() + timeout, error);
  if (!result) return std::nullopt;
  if (const json* details = Find(*result, "exceptionDetails")) {
    SetError(error, ExceptionText(*details));
    return std::nullopt;
  }
  const json* remote = Find(*result, "result");
  if (remote == nullptr) return json(nullptr);
  if (const json* value = Find(*remote, "value")) return *value;
  // NaN, Infinity, -0 and BigInts have no JSON form: their JS text.
  if (std::string text = StringAt(*remote, "unserializableValue"); !text.empty()) return text;
  return json(nullptr);  // undefined
}

bool HeadlessBrowser::WaitFor(const std::string& predicate, std::chrono::milliseconds timeout,
                              std::string* error) {
  auto until = Clock::now() + timeout;
  // The page's own deadline ends the promise; the protocol's is later, so that a false result
  // comes back as such rather than as a lost answer.
  constexpr auto kMargin = std::chrono::seconds(5);
  for (;;) {
    auto left = std::max(std::chrono::milliseconds(0),
                         std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()));
    std::string why;
    auto outcome = Evaluate(WaitForScript(predicate, left), &why, left + kMargin);
    if (outcome) {
      if (const json* ok = Find(*outcome, "ok");
          ok != nullptr && ok->is_boolean() && ok->get<bool>()) {
        return true;
      }
      std::string last = StringAt(*outcome, "error");
      SetError(error, "still false after " + std::to_string(MillisOf(timeout)) +
                          " ms: " + predicate + (last.empty() ? "" : " (it threw " + last + ")"));
      return false;
    }
    if (!ContextWentAway(why) || Clock::now() >= until) {
      SetError(error, why);
      return false;
    }
    // The page navigated under the check: it starts again once the new document has a context.
    // A context created before this point is consumed too, and costs one more try at most.
    if (!TakeEvent(session_, "Runtime.executionContextCreated", nullptr, until, &why)) {
      SetError(error, "still false after " + std::to_string(MillisOf(timeout)) +
                          " ms: " + predicate + " (the page navigated: " + why + ")");
      return false;
    }
  }
}

bool HeadlessBrowser::Screenshot(const std::string& path, std::string* error) {
  if (session_.empty()) {
    SetError(error, "no page is open (Open one first)");
    return false;
  }
  auto shot = Call("Page.captureScreenshot", {{"format", "png"}}, session_,
                   Clock::now() + kScreenshotBound, error);
  if (!shot) return false;
  std::optional<std::string> png = DecodeBase64(StringAt(*shot, "data"));
  if (!png || png->empty()) {
    SetError(error, "Page.captureScreenshot: no PNG data in the answer");
    return false;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(png->data(), static_cast<std::streamsize>(png->size()));
  out.close();
  if (!out) {
    SetError(error, "cannot write " + path + ": " + std::strerror(errno));
    return false;
  }
  return true;
}

std::string HeadlessBrowser::LogTail(std::size_t bytes) const {
  if (dir_.path().empty()) return {};
  std::ifstream log(dir_.path() / kLogName, std::ios::binary);
  if (!log) return {};
  // Read further back than asked: the D-Bus lines left out below are most of a typical log.
  log.seekg(0, std::ios::end);
  std::streamoff size = log.tellg();
  std::streamoff from = std::max<std::streamoff>(0, size - static_cast<std::streamoff>(bytes * 8));
  log.seekg(from);
  std::string line;
  std::string kept;
  if (from > 0) std::getline(log, line);  // a partial line
  // Chromium complains about the missing system and session buses at length on every start in a
  // container; they never explain a failure.
  while (std::getline(log, line)) {
    if (line.find(":ERROR:dbus/") == std::string::npos) kept += line + "\n";
  }
  return kept.size() > bytes ? kept.substr(kept.size() - bytes) : kept;
}

}  // namespace testfarm::test
