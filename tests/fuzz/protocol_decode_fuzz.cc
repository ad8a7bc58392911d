// libFuzzer target for protocol::Decode.
//
// Input layout: byte 0 is the header length n (clamped to what is left), the next n bytes are
// frame 0 and the rest is frame 1. Checks, beyond "no crash, no sanitizer report":
//   - every error has a message;
//   - anything Decode accepts re-encodes to a body that decodes to the same message, and that
//     body re-encodes to itself (encoding is deterministic).
//
// `protocol_decode_fuzz --write-seeds=DIR` writes one valid input per message type (and a few
// variants) into DIR and exits, so the seed corpus is generated, not committed.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/codec.h"
#include "tests/support/farm_messages.h"

namespace testfarm::protocol {
namespace {

std::string FuzzInput(std::string_view header, std::string_view body) {
  std::string input(1, static_cast<char>(header.size()));
  input.append(header);
  input.append(body);
  return input;
}

void CheckRoundTrip(const Message& message) {
  const std::string body = EncodeBody(message);
  auto again = Decode(kHeader, body);
  const auto* decoded = std::get_if<Message>(&again);
  if (decoded == nullptr) {
    std::fprintf(stderr, "re-encoded %s does not decode: %s\n", TypeName(message),
                 std::get<DecodeError>(again).message.c_str());
    __builtin_trap();
  }
  if (!(*decoded == message)) {
    std::fprintf(stderr, "re-encoded %s decodes to a different message\n", TypeName(message));
    __builtin_trap();
  }
  if (EncodeBody(*decoded) != body) {
    std::fprintf(stderr, "encoding of %s is not deterministic\n", TypeName(message));
    __builtin_trap();
  }
}

std::vector<Message> SeedMessages() {
  const std::string odd("a\0\xff\xc3\xa9", 5);
  std::vector<Message> seeds = testing::FarmMessageSamples();
  std::vector<Message> worker_messages = {
      Hello{.worker_name = "w1",
            .slots = 8,
            .os = "linux",
            .arch = "x86_64",
            .labels = {{"gpu", "1"}, {"zone", odd}}},
      Hello{.worker_name = "w", .slots = 1, .os = "", .arch = "", .labels = {}},
      Welcome{.run_id = "run-1"},
      JobAssign{.lease = 1,
                .job_id = 2,
                .name = "suite/case",
                .argv = {"/bin/sh", "-c", odd},
                .env = {{"A", "1"}, {"B", ""}},
                .cwd = "/tmp",
                .timeout_ms = 30000,
                .kill_grace_ms = 2000},
      JobAssign{.lease = std::numeric_limits<uint64_t>::max(),
                .job_id = 0,
                .name = "",
                .argv = {"x"},
                .env = {},
                .cwd = "",
                .timeout_ms = 0,
                .kill_grace_ms = 0},
      JobResult{.lease = 1,
                .job_id = 2,
                .state = ExitState::Signaled(11, true),
                .duration_ms = 1500,
                .slot = 3,
                .stdout_text = "out" + odd,
                .stderr_text = "err",
                .stdout_dropped = 10,
                .stderr_dropped = 0},
      JobResult{.lease = 1,
                .job_id = 2,
                .state = ExitState::SpawnFailed(2, "ENOENT"),
                .duration_ms = 0,
                .slot = 0,
                .stdout_text = "",
                .stderr_text = "",
                .stdout_dropped = 0,
                .stderr_dropped = 0},
      JobResult{.lease = 1,
                .job_id = 2,
                .state = ExitState::Exited(-1),
                .duration_ms = 0,
                .slot = 0,
                .stdout_text = "",
                .stderr_text = "",
                .stdout_dropped = 0,
                .stderr_dropped = 0},
      JobStarted{.lease = 7},
      Cancel{.lease = 7},
      Heartbeat{},
      Bye{.reason = "done"},
      ErrorReply{.text = "bad_field: slots"},
      JobAssign{
          .lease = 9,
          .job_id = 3,
          .name = "t",
          .argv = {"/b/bin/t"},
          .env = {},
          .cwd = "/b",
          .timeout_ms = 0,
          .kill_grace_ms = 0,
          .report_env = "",
          .artifact_root = "/b",
          .artifacts =
              {{.path = "bin/t", .sha256 = std::string(64, 'a'), .size = 10, .executable = true}},
          .library_dirs = {"lib"},
          .coverage = true},
      Fetch{.sha256 = std::string(64, 'b'), .offset = 0, .length = 4096},
      Chunk{.sha256 = std::string(64, 'c'), .offset = 0, .size = 3, .data = "abc", .error = ""},
      ProfileRequest{},
      SetRequest{.run = 1, .set = 2},
      SetManifest{.run = 1,
                  .set = 2,
                  .root = "/src",
                  .files = {{"bin/t", std::string(64, 'a'), 3, true}},
                  .library_dirs = {"lib"},
                  .error = ""},
      ProfileChunk{
          .offset = 0, .size = 2, .data = "xy", .last = true, .merged = 1, .bad = {}, .error = ""},
  };
  seeds.insert(seeds.end(), worker_messages.begin(), worker_messages.end());
  return seeds;
}

// Returns the directory of a --write-seeds=DIR argument, or an empty string.
std::string SeedDirArgument(int argc, char** argv) {
  constexpr std::string_view kFlag = "--write-seeds=";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with(kFlag)) return std::string(arg.substr(kFlag.size()));
  }
  return {};
}

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// The directory must exist; run-fuzz creates it.
int WriteSeeds(const std::string& dir) {
  int n = 0;
  for (const Message& message : SeedMessages()) {
    std::string name = dir + "/seed-" + std::to_string(n++) + "-" + TypeName(message);
    if (!WriteFile(name, FuzzInput(kHeader, EncodeBody(message)))) {
      std::fprintf(stderr, "cannot write %s\n", name.c_str());
      return 1;
    }
  }
  // Headers the decoder must reject, so those paths are in the corpus from the start.
  const std::string heartbeat = EncodeBody(Heartbeat{});
  bool ok = WriteFile(dir + "/seed-wrong-version", FuzzInput("testfarm/4", heartbeat)) &&
            WriteFile(dir + "/seed-bad-header", FuzzInput("other/1", heartbeat));
  std::printf("wrote %d seeds to %s\n", n + 2, dir.c_str());
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace testfarm::protocol

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  std::string dir = testfarm::protocol::SeedDirArgument(*argc, *argv);
  if (!dir.empty()) std::exit(testfarm::protocol::WriteSeeds(dir));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace testfarm::protocol;
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t header_size = std::min<std::size_t>(static_cast<unsigned char>(input[0]), size - 1);
  std::string_view header = input.substr(1, header_size);
  std::string_view body = input.substr(1 + header_size);

  auto result = Decode(header, body);
  if (const auto* error = std::get_if<DecodeError>(&result)) {
    if (error->message.empty()) __builtin_trap();
    return 0;
  }
  CheckRoundTrip(std::get<Message>(result));
  return 0;
}
