#pragma once
// Runs a command to completion for end-to-end tests, capturing stdout and stderr, bounded by a
// deadline (the child's group is killed if it passes). Waits on the pipes and the exit, never
// by sleeping.
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
  // If non-empty: once stdout contains this text, send `signal_on_text` to the child.
  std::string signal_after_text;
  int signal_on_text = 0;
};

ChildResult RunChild(const std::vector<std::string>& argv, const ChildOptions& options = {});

}  // namespace testfarm::test
