#pragma once
// `testfarm run`: wires a coordinator and an in-process worker over inproc://.
#include <string>
#include <vector>

#include "shared/clock.h"

namespace testfarm::cli {

struct RunArgs {
  std::vector<std::string> executables;
  unsigned jobs = 0;  // 0: the default slot count
  std::string timeout = "10m";
  std::string kill_grace = "2s";
  bool fail_fast = false;
  unsigned max_fail = 0;
};

// Exit codes: 0 all passed, 1 any failed, 2 bad input, 130 interrupted.
int Run(const RunArgs& args);

}  // namespace testfarm::cli
