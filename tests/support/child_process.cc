#include "tests/support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

extern char** environ;

namespace testfarm::test {

std::string ChildResult::LastLine() const {
  std::size_t end = out.find_last_not_of('\n');
  if (end == std::string::npos) return {};
  std::size_t start = out.rfind('\n', end);
  return out.substr(start == std::string::npos ? 0 : start + 1,
                    end - (start == std::string::npos ? 0 : start + 1) + 1);
}

ChildResult RunChild(const std::vector<std::string>& argv, const ChildOptions& options) {
  auto start = std::chrono::steady_clock::now();
  BackgroundChild child(argv, options.extra_env, options.cwd);
  if (!options.signal_after_text.empty() &&
      child.WaitForOutput(options.signal_after_text, options.deadline)) {
    kill(child.pid(), options.signal_on_text);
  }
  auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return child.Finish(std::max(std::chrono::milliseconds(0), options.deadline - spent));
}

BackgroundChild::BackgroundChild(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& extra_env,
                                 const std::string& cwd) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<std::string> env_strings;
  // An extra NAME=VALUE replaces the inherited NAME (getenv would see the first one).
  auto overridden = [&](const std::string& entry) {
    std::string name = entry.substr(0, entry.find('=') + 1);
    for (const std::string& extra : extra_env) {
      if (extra.rfind(name, 0) == 0) return true;
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) env_strings.emplace_back(*e);
  }
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (std::string& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);
  if (int rc = posix_spawnp(&pid_, argp[0], &actions, &attr, argp.data(), envp.data()); rc != 0) {
    pid_ = -1;
    result_.err = std::string("spawn failed: ") + std::strerror(rc);
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
}

BackgroundChild::~BackgroundChild() {
  if (pid_ > 0 && !finished_) {
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

// One poll-and-read round; false when both pipes have reached EOF or `until` passed.
bool BackgroundChild::ReadSome(std::chrono::steady_clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  if (left.count() <= 0 || (out_fd_ < 0 && err_fd_ < 0)) return false;
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (poll(fds, 2, static_cast<int>(left.count())) <= 0) return errno == EINTR;
  for (int i = 0; i < 2; ++i) {
    int& fd = i == 0 ? out_fd_ : err_fd_;
    if (fd < 0 || fds[i].revents == 0) continue;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      (i == 0 ? result_.out : result_.err).append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      close(fd);
      fd = -1;
    }
  }
  return true;
}

bool BackgroundChild::WaitForOutput(const std::string& text, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (result_.out.find(text) == std::string::npos) {
    if (!ReadSome(until)) return result_.out.find(text) != std::string::npos;
  }
  return true;
}

bool BackgroundChild::WaitForStderr(const std::string& text, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (result_.err.find(text) == std::string::npos) {
    if (!ReadSome(until)) return result_.err.find(text) != std::string::npos;
  }
  return true;
}

ChildResult BackgroundChild::Finish(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (out_fd_ >= 0 || err_fd_ >= 0) {
    if (!ReadSome(until)) break;
  }
  if (out_fd_ >= 0 || err_fd_ >= 0) {
    result_.timed_out = true;
    kill(-pid_, SIGKILL);
  }
  finished_ = true;
  if (pid_ <= 0) return result_;  // never started: exit_code stays -1
  int status = 0;
  waitpid(pid_, &status, 0);
  if (WIFEXITED(status)) result_.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result_.signal = WTERMSIG(status);
  return result_;
}

}  // namespace testfarm::test
