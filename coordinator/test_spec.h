#pragma once
// What the coordinator knows about one test before it runs.
#include <map>
#include <string>
#include <vector>

#include "shared/clock.h"

namespace testfarm::coordinator {

struct TestSpec {
  std::string name;                        // as shown to the user
  std::vector<std::string> argv;           // argv[0]: the executable's path
  std::map<std::string, std::string> env;  // added to the worker's environment
  std::string cwd;                         // empty: the worker's cwd
  Millis timeout{0};                       // 0: none
};

}  // namespace testfarm::coordinator
