#include "worker/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <system_error>

#include "shared/errno_text.h"
#include "worker/group_watchdog.h"

namespace testfarm::worker {

namespace {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// Both ends close-on-exec; only the parent's read end is non-blocking (O_NONBLOCK belongs to the
// open file description, so a non-blocking write end would make the child's writes fail).
int MakeOutputPipe(Pipe* pipe) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno;
  pipe->read.Reset(fds[0]);
  pipe->write.Reset(fds[1]);
  if (::fcntl(pipe->read.get(), F_SETFL, O_NONBLOCK) != 0) return errno;
  return 0;
}

class FileActions {
 public:
  FileActions() { ::posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { ::posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

class Attributes {
 public:
  Attributes() { ::posix_spawnattr_init(&attr_); }
  ~Attributes() { ::posix_spawnattr_destroy(&attr_); }
  Attributes(const Attributes&) = delete;
  Attributes& operator=(const Attributes&) = delete;
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

// Own process group, empty mask, every catchable signal at its default: a child must not inherit
// the worker's blocked or ignored signals (an ignored SIGPIPE or SIGTERM would change tests).
int SetUpAttributes(Attributes* attr) {
  sigset_t empty;
  sigset_t all;
  sigemptyset(&empty);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  auto flags =
      static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (int rc = ::posix_spawnattr_setflags(attr->get(), flags)) return rc;
  if (int rc = ::posix_spawnattr_setpgroup(attr->get(), 0)) return rc;
  if (int rc = ::posix_spawnattr_setsigmask(attr->get(), &empty)) return rc;
  return ::posix_spawnattr_setsigdefault(attr->get(), &all);
}

// `out` and `err` < 0: the child keeps the parent's stdout and stderr.
int SetUpFileActions(FileActions* actions, int devnull, int out, int err, const std::string& cwd) {
  if (int rc = ::posix_spawn_file_actions_adddup2(actions->get(), devnull, 0)) return rc;
  if (out >= 0) {
    if (int rc = ::posix_spawn_file_actions_adddup2(actions->get(), out, 1)) return rc;
  }
  if (err >= 0) {
    if (int rc = ::posix_spawn_file_actions_adddup2(actions->get(), err, 2)) return rc;
  }
  if (!cwd.empty()) {
    if (int rc = ::posix_spawn_file_actions_addchdir_np(actions->get(), cwd.c_str())) return rc;
  }
  // Belt and braces: fds a library opened without O_CLOEXEC must not reach tests either.
  return ::posix_spawn_file_actions_addclosefrom_np(actions->get(), 3);
}

std::vector<std::string> BuildEnvironment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    std::string name(text.substr(0, text.find('=')));
    if (extra.find(name) == extra.end()) env.emplace_back(text);
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

// posix_spawn wants char* const[]: pointers into strings that outlive the call.
std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// posix_spawn reports one errno for chdir and exec alike; say which one failed.
SpawnError DescribeFailure(const SpawnRequest& request, int error_number) {
  const std::string& program = request.argv[0];
  if (!request.cwd.empty() && !IsDirectory(request.cwd)) {
    return {error_number,
            "cannot enter working directory " + request.cwd + ": " + ErrnoText(error_number)};
  }
  std::string resolved = program;
  if (!request.cwd.empty() && !program.starts_with('/')) resolved = request.cwd + "/" + program;
  if (error_number == EACCES && IsDirectory(resolved)) error_number = EISDIR;
  return {error_number, program + ": " + ErrnoText(error_number)};
}

SpawnError SetupFailure(const char* what, int error_number) {
  return {error_number, std::string(what) + ": " + ErrnoText(error_number)};
}

}  // namespace

UniqueFd OpenPidfd(pid_t pid) {
  // glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37), so call the kernel directly.
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)));
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      watch_ticket_(std::exchange(other.watch_ticket_, -1)),
      reaped_(std::exchange(other.reaped_, true)),
      usage_(other.usage_) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    KillGroupAndReap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    watch_ticket_ = std::exchange(other.watch_ticket_, -1);
    reaped_ = std::exchange(other.reaped_, true);
    usage_ = other.usage_;
  }
  return *this;
}

std::optional<ExitState> ChildProcess::PeekExit() {
  if (reaped_ || !pidfd_) return std::nullopt;
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOWAIT | WNOHANG);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    reaped_ = true;  // the pid may be reused now: never signal this group again
    Forget();
    return ExitState::Cancelled("exit status lost: " + ErrnoText(err));
  }
  if (info.si_pid == 0) return std::nullopt;  // still running
  switch (info.si_code) {
    case CLD_EXITED:
      return ExitState::Exited(info.si_status);
    case CLD_KILLED:
      return ExitState::Signaled(info.si_status, false);
    case CLD_DUMPED:
      return ExitState::Signaled(info.si_status, true);
    default:
      return std::nullopt;  // stopped or continued: not an exit
  }
}

bool ChildProcess::SignalGroup(int signal) const {
  if (reaped_ || pid_ <= 0) {
    errno = ESRCH;
    return false;
  }
  return ::kill(-pid_, signal) == 0;
}

void ChildProcess::KillGroupAndReap() {
  if (reaped_ || pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  Forget();  // before the reap frees the group id for reuse
  // wait4, not waitid, for the rusage. The main process is still our unreaped child, so its
  // pid names it and no other.
  int status = 0;
  struct rusage usage {};
  pid_t rc;
  do {
    rc = ::wait4(pid_, &status, 0, &usage);
  } while (rc < 0 && errno == EINTR);
  if (rc == pid_) {
    usage_.peak_rss_kb = static_cast<uint64_t>(usage.ru_maxrss);  // kilobytes on Linux
    auto ms = [](const timeval& t) {
      return static_cast<uint64_t>(t.tv_sec) * 1000 + static_cast<uint64_t>(t.tv_usec) / 1000;
    };
    usage_.cpu_ms = ms(usage.ru_utime) + ms(usage.ru_stime);
  }
  reaped_ = true;
  pidfd_.Reset();
}

void ChildProcess::Forget() {
  if (watch_ticket_ < 0) return;
  GroupWatchdog::Instance().Forget(std::exchange(watch_ticket_, -1));
}

SpawnResult Spawn(const SpawnRequest& request) {
  if (request.argv.empty() || request.argv[0].empty()) {
    return SpawnError{EINVAL, "empty command line"};
  }
  // Started before the first child exists, so it holds none of their fds.
  GroupWatchdog& watchdog = GroupWatchdog::Instance();
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return SetupFailure("/dev/null", errno);
  Pipe out;
  Pipe err;
  if (!request.inherit_output) {
    if (int rc = MakeOutputPipe(&out)) return SetupFailure("pipe", rc);
    if (int rc = MakeOutputPipe(&err)) return SetupFailure("pipe", rc);
  }

  FileActions actions;
  if (int rc = SetUpFileActions(&actions, devnull.get(), out.write.get(), err.write.get(),
                                request.cwd)) {
    return SetupFailure("posix_spawn_file_actions", rc);
  }
  Attributes attr;
  if (int rc = SetUpAttributes(&attr)) return SetupFailure("posix_spawnattr", rc);

  std::vector<std::string> argv = request.argv;
  std::vector<std::string> env = BuildEnvironment(request.env);
  std::vector<char*> argv_ptrs = NullTerminated(argv);
  std::vector<char*> env_ptrs = NullTerminated(env);
  pid_t pid = -1;
  // posix_spawn, not posix_spawnp: argv[0] is a path, never looked up in PATH.
  int rc = ::posix_spawn(&pid, argv[0].c_str(), actions.get(), attr.get(), argv_ptrs.data(),
                         env_ptrs.data());
  if (rc != 0) return DescribeFailure(request, rc);  // glibc has reaped the failed child
  int watch_ticket = watchdog.Watch(pid);

  UniqueFd pidfd = OpenPidfd(pid);
  if (!pidfd) {
    int open_error = errno;
    ::kill(-pid, SIGKILL);
    watchdog.Forget(watch_ticket);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return SetupFailure("pidfd_open", open_error);
  }
  return SpawnedChild{ChildProcess(pid, std::move(pidfd), watch_ticket), std::move(out.read),
                      std::move(err.read)};
}

}  // namespace testfarm::worker
