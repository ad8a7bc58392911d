#pragma once
// Test processes die with the process that started them, however it dies — kill -9 included.
//
// The first spawn forks a small watchdog process (fork only, no exec: nothing is added to any
// test's start-up). It shares a table of process group ids with its parent (anonymous shared
// memory) and blocks reading a pipe whose only write end the parent holds. When the parent dies
// the kernel closes that end, the read returns EOF, and the watchdog SIGKILLs every group still in
// the table, then exits. Recording and forgetting a group is one atomic store: no system call per
// test.
//
// A group is recorded right after posix_spawn returns and forgotten right before its leader is
// reaped, so the watchdog never signals a group id that could have been reused. Known gap: a
// parent killed in the instant between posix_spawn and the record leaves that one group running.
#include <sys/types.h>

#include <atomic>

namespace testfarm::worker {

class GroupWatchdog {
 public:
  // The process's watchdog, started on first use. Never destroyed: it must outlive every pool.
  static GroupWatchdog& Instance();

  // Records a running group; returns a ticket for Forget, or -1 if the group is not watched (no
  // watchdog could be started, or the table is full; both are logged once).
  int Watch(pid_t pgid);
  // Forgets the group recorded under `ticket` (ignored when -1).
  void Forget(int ticket);

  // The watchdog's pid (0 if none could be started). For tests.
  pid_t pid() const { return pid_; }

  GroupWatchdog(const GroupWatchdog&) = delete;
  GroupWatchdog& operator=(const GroupWatchdog&) = delete;

 private:
  GroupWatchdog();

  pid_t pid_ = 0;
  int write_fd_ = -1;      // held for the life of the process; its closing is the signal
  void* table_ = nullptr;  // kCapacity std::atomic<pid_t>, shared with the watchdog
  std::atomic<bool> warned_full_{false};
};

}  // namespace testfarm::worker
