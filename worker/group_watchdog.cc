#include "worker/group_watchdog.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "shared/errno_text.h"

namespace testfarm::worker {

namespace {

using Entry = std::atomic<pid_t>;
static_assert(Entry::is_always_lock_free, "the table is shared between processes");

// Far more groups than a worker runs at once (16 slots, plus listings and merges).
constexpr int kCapacity = 4096;

Entry* Table(void* table) {
  return static_cast<Entry*>(table);
}

// The watchdog itself: runs in the forked child, so only async-signal-safe calls (no malloc, no
// locks another thread of the parent may have held at fork).
[[noreturn]] void RunWatchdog(int read_fd, Entry* table) {
  // Its own process group: a Ctrl-C at the terminal goes to the runner, which cleans up itself;
  // the watchdog waits for the runner's end, however it comes.
  ::setpgid(0, 0);
  ::prctl(PR_SET_NAME, "tf-groupwatch");  // not matched by `pkill testfarm`
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, nullptr);  // SIGKILL still ends it
  // Hold nothing of the parent's: no listening socket, no test's pipe, not its stdout.
  int devnull = ::open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    for (int fd = 0; fd <= 2; ++fd) ::dup2(devnull, fd);
  }
  if (::dup2(read_fd, 3) < 0) ::_exit(1);
  ::close_range(4, ~0U, 0);
  char buffer[64];
  while (true) {
    ssize_t n = ::read(3, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the parent is gone (nothing is ever written)
  }
  for (int i = 0; i < kCapacity; ++i) {
    pid_t pgid = table[i].load();
    if (pgid > 0) ::kill(-pgid, SIGKILL);
  }
  ::_exit(0);
}

}  // namespace

GroupWatchdog& GroupWatchdog::Instance() {
  static GroupWatchdog* instance = new GroupWatchdog();
  return *instance;
}

GroupWatchdog::GroupWatchdog() {
  void* table = ::mmap(nullptr, sizeof(Entry) * kCapacity, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED) {
    spdlog::warn("test processes will not die with testfarm if it is killed: mmap: {}",
                 ErrnoText(errno));
    return;
  }
  for (int i = 0; i < kCapacity; ++i) new (Table(table) + i) Entry(0);
  int fds[2];
  int ready[2];  // closed by the watchdog once it is set up (it closes all it inherited)
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    spdlog::warn("test processes will not die with testfarm if it is killed: pipe: {}",
                 ErrnoText(errno));
    ::munmap(table, sizeof(Entry) * kCapacity);
    return;
  }
  if (::pipe2(ready, O_CLOEXEC) != 0) ready[0] = ready[1] = -1;
  pid_t pid = ::fork();
  if (pid == 0) RunWatchdog(fds[0], Table(table));
  ::close(fds[0]);
  if (ready[1] >= 0) ::close(ready[1]);
  if (pid < 0) {
    spdlog::warn("test processes will not die with testfarm if it is killed: fork: {}",
                 ErrnoText(errno));
    ::close(fds[1]);
    if (ready[0] >= 0) ::close(ready[0]);
    ::munmap(table, sizeof(Entry) * kCapacity);
    return;
  }
  if (ready[0] >= 0) {
    // EOF once the watchdog holds nothing of ours and sits in its own group.
    char byte;
    while (::read(ready[0], &byte, 1) < 0 && errno == EINTR) {
    }
    ::close(ready[0]);
  }
  pid_ = pid;
  write_fd_ = fds[1];
  table_ = table;
}

int GroupWatchdog::Watch(pid_t pgid) {
  if (table_ == nullptr || pgid <= 0) return -1;
  Entry* table = Table(table_);
  for (int i = 0; i < kCapacity; ++i) {
    pid_t expected = 0;
    if (table[i].load(std::memory_order_relaxed) == 0 &&
        table[i].compare_exchange_strong(expected, pgid)) {
      return i;
    }
  }
  if (!warned_full_.exchange(true)) {
    spdlog::warn(
        "more than {} test process groups at once: the newest will not die with "
        "testfarm if it is killed",
        kCapacity);
  }
  return -1;
}

void GroupWatchdog::Forget(int ticket) {
  if (ticket < 0 || table_ == nullptr) return;
  Table(table_)[ticket].store(0);
}

}  // namespace testfarm::worker
