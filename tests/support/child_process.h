#pragma once
// Runs a command for tests — to completion or in the background — in its own process group,
// stdin from /dev/null, stdout and stderr captured, bounded by a deadline (the group is killed if
// it passes). argv[0] is looked up in PATH unless it holds a '/'. Waits on the pipes and the
// exit, never by sleeping. The one process runner of every test layer.
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace testfarm::test {

struct ChildResult {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;

  // The last non-empty line of stdout.
  std::string LastLine() const;
};

struct ChildOptions {
  std::chrono::milliseconds deadline{60000};
  std::vector<std::string> extra_env;  // NAME=VALUE
  std::string cwd;                     // empty: the test's own
  // If non-empty: once stdout contains this text, send `signal_on_text` to the child.
  std::string signal_after_text;
  int signal_on_text = 0;
};

ChildResult RunChild(const std::vector<std::string>& argv, const ChildOptions& options = {});

// A child left running while the test does other things: its stdout and stderr are read as the
// test waits for them, never by sleeping.
class BackgroundChild {
 public:
  explicit BackgroundChild(const std::vector<std::string>& argv,
                           const std::vector<std::string>& extra_env = {},
                           const std::string& cwd = "");
  ~BackgroundChild();  // SIGKILLs the child's group if it still runs
  BackgroundChild(const BackgroundChild&) = delete;
  BackgroundChild& operator=(const BackgroundChild&) = delete;

  pid_t pid() const { return pid_; }
  // Reads until stdout contains `text`; false if the child ended or the deadline passed first.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds deadline);
  // The same for stderr.
  bool WaitForStderr(const std::string& text, std::chrono::milliseconds deadline);
  // Reads everything and waits for the exit (killing the group at the deadline).
  ChildResult Finish(std::chrono::milliseconds deadline);
  const std::string& out() const { return result_.out; }

 private:
  bool ReadSome(std::chrono::steady_clock::time_point until);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool finished_ = false;
  ChildResult result_;
};

}  // namespace testfarm::test
