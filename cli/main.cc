// The testfarm binary: CLI11 subcommands that wire the pieces. No logic of its own.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/run_command.h"
#include "shared/logging.h"

int main(int argc, char** argv) {
  CLI::App app{"testfarm: run test executables in parallel across a farm of workers"};
  app.set_version_flag("--version", std::string("testfarm ") + TESTFARM_VERSION);
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "Log verbosity: trace, debug, info, warn, error, off")
      ->capture_default_str();

  testfarm::cli::RunArgs run_args;
  CLI::App* run = app.add_subcommand(
      "run",
      "Run test executables on this machine: a coordinator plus an in-process worker.\n"
      "Each EXECUTABLE is one test; it passes when it exits 0.");
  run->add_option("executables", run_args.executables, "Test executables to run")
      ->required()
      ->type_name("PATH");
  run->add_option("-j,--jobs", run_args.jobs,
                  "Tests run at once (default: half the hardware threads, 1 to 16)")
      ->check(CLI::Range(1u, 1024u));
  run->add_option("--timeout", run_args.timeout,
                  "Per-test timeout: seconds, or with a unit (500ms, 30s, 2m, 1h); 0 disables")
      ->type_name("DURATION")
      ->capture_default_str();
  run->add_option("--kill-grace", run_args.kill_grace,
                  "After a timeout or cancel: time between SIGTERM and SIGKILL to the test's "
                  "process group")
      ->type_name("DURATION")
      ->capture_default_str();
  CLI::Option* fail_fast =
      run->add_flag("--fail-fast", run_args.fail_fast,
                    "Stop at the first failure: cancel running tests, start no more");
  run->add_option("--max-fail", run_args.max_fail,
                  "Stop after N failures: cancel running tests, start no more")
      ->check(CLI::Range(1u, 1000000u))
      ->excludes(fail_fast);

  // CLI11 reports an unknown command as "a subcommand is required"; name the culprit instead.
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--log-level") {
      ++i;
      continue;
    }
    if (arg.rfind('-', 0) == 0) continue;
    if (arg != "run") {
      std::fprintf(stderr, "testfarm: error: unknown command '%s' (commands: run)\n", arg.c_str());
      return 2;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "testfarm: error: %s\n", e.what());
    std::fprintf(stderr, "Run 'testfarm --help' or 'testfarm run --help' for usage.\n");
    return 2;
  }
  if (!testfarm::InitLogging(log_level)) {
    std::fprintf(stderr, "testfarm: error: --log-level: unknown level '%s'\n", log_level.c_str());
    return 2;
  }
  if (run->parsed()) return testfarm::cli::Run(run_args);
  return 2;
}
