#pragma once
// Launching one child: posix_spawn (no PATH search) into its own process group, with default
// signal dispositions and an empty signal mask, stdin from /dev/null, stdout and stderr on pipes
// whose parent ends are non-blocking, no inherited fds above 2, and a pidfd for its exit.
// Every fd is close-on-exec in the parent, so other spawners never inherit them.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "shared/errno_text.h"
#include "shared/exit_state.h"
#include "shared/unique_fd.h"

namespace testfarm::worker {

struct SpawnRequest {
  std::vector<std::string> argv;           // argv[0]: the program's path (relative to cwd)
  std::map<std::string, std::string> env;  // set on top of the inherited environment
  std::string cwd;                         // empty: inherit
  // stdout and stderr are the spawner's own (no pipes): `testfarm run --no-capture`.
  bool inherit_output = false;
};

// A reaped process's resources: its peak resident set and its user + system CPU time.
struct ProcessUsage {
  uint64_t peak_rss_kb = 0;
  uint64_t cpu_ms = 0;
};

struct SpawnError {
  int error_number = 0;
  std::string detail;  // e.g. "/opt/t/foo: No such file or directory"
};

// Owns a started child's pid. The main process is reaped only by KillGroupAndReap() (or the
// destructor, which does the same): until then its zombie keeps the pid and the process group id
// reserved, so signalling the group can never hit a stranger. While it is owned, the group is in
// the GroupWatchdog's table (`watch_ticket`), so it dies with this process even on kill -9.
class ChildProcess {
 public:
  ChildProcess(pid_t pid, UniqueFd pidfd, int watch_ticket = -1)
      : pid_(pid), pidfd_(std::move(pidfd)), watch_ticket_(watch_ticket) {}
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { KillGroupAndReap(); }

  pid_t pid() const { return pid_; }  // also its process group id
  int pidfd() const { return pidfd_.get(); }
  bool reaped() const { return reaped_; }

  // How the main process ended, without reaping it; nullopt while it runs. If the status is lost
  // (someone else reaped it), returns Cancelled with the reason and never signals the group again.
  std::optional<ExitState> PeekExit();
  // kill(-pgid, signal). False (with errno set) if it failed, e.g. ESRCH: the group is empty.
  bool SignalGroup(int signal) const;
  // SIGKILLs the whole group, then reaps the main process (waiting for it if it still runs).
  void KillGroupAndReap();
  // What the main process (and the children it reaped) used, from its rusage; zero until it is
  // reaped here.
  const ProcessUsage& usage() const { return usage_; }

 private:
  void Forget();  // out of the watchdog's table

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  int watch_ticket_ = -1;
  bool reaped_ = false;
  ProcessUsage usage_;
};

struct SpawnedChild {
  ChildProcess process;
  UniqueFd stdout_read;  // non-blocking, close-on-exec; invalid with inherit_output
  UniqueFd stderr_read;
};

using SpawnResult = std::variant<SpawnedChild, SpawnError>;

SpawnResult Spawn(const SpawnRequest& request);

// A pidfd (always close-on-exec) for `pid`; invalid, with errno set, on failure. Works for any
// process, not only our children: poll it for POLLIN to see the process die.
UniqueFd OpenPidfd(pid_t pid);

}  // namespace testfarm::worker
