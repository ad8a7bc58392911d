// Round trips and the strict decoding rules of protocol/PROTOCOL.md, one rule per test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <msgpack.hpp>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "protocol/codec.h"
#include "tests/support/farm_messages.h"

namespace testfarm::protocol {
namespace {

using Code = DecodeError::Code;
using Decoded = std::variant<Message, DecodeError>;

// ---- Building bodies by hand ----

// Packed msgpack values, as byte strings, so a test can put any value under any key.
struct Pack {
  static std::string Str(std::string_view s) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer>(buffer)
        .pack_str(static_cast<uint32_t>(s.size()))
        .pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return std::string(buffer.data(), buffer.size());
  }
  static std::string Bin(std::string_view s) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer>(buffer)
        .pack_bin(static_cast<uint32_t>(s.size()))
        .pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
    return std::string(buffer.data(), buffer.size());
  }
  static std::string Uint(uint64_t v) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer>(buffer).pack_uint64(v);
    return std::string(buffer.data(), buffer.size());
  }
  static std::string Int(int64_t v) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer>(buffer).pack_int64(v);
    return std::string(buffer.data(), buffer.size());
  }
  static std::string Nil() { return std::string(1, '\xc0'); }
  static std::string True() { return std::string(1, '\xc3'); }
  static std::string Float() {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer>(buffer).pack_double(1.5);
    return std::string(buffer.data(), buffer.size());
  }
  // An array header for `n` items; the caller appends the items.
  static std::string ArrayHeader(uint32_t n) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer>(buffer).pack_array(n);
    return std::string(buffer.data(), buffer.size());
  }
  static std::string MapHeader(uint32_t n) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer>(buffer).pack_map(n);
    return std::string(buffer.data(), buffer.size());
  }
  static std::string StrArray(const std::vector<std::string>& items) {
    std::string out = ArrayHeader(static_cast<uint32_t>(items.size()));
    for (const auto& item : items) out += Str(item);
    return out;
  }
};

// A body map as (key, packed value) entries, in wire order; keys may repeat on purpose.
using Entries = std::vector<std::pair<std::string, std::string>>;

std::string MapOf(const Entries& entries) {
  std::string out = Pack::MapHeader(static_cast<uint32_t>(entries.size()));
  for (const auto& [key, value] : entries) out += Pack::Str(key) + value;
  return out;
}

Entries With(Entries entries, const std::string& key, std::string packed) {
  for (auto& entry : entries) {
    if (entry.first == key) {
      entry.second = std::move(packed);
      return entries;
    }
  }
  entries.emplace_back(key, std::move(packed));
  return entries;
}

Entries Without(Entries entries, const std::string& key) {
  std::erase_if(entries, [&](const auto& entry) { return entry.first == key; });
  return entries;
}

// The smallest valid message of each type that has required fields.
Entries MinimalHello() {
  return {{"type", Pack::Str("hello")}, {"worker_name", Pack::Str("w1")}, {"slots", Pack::Uint(2)}};
}
Entries MinimalJob() {
  return {{"type", Pack::Str("job")},
          {"lease", Pack::Uint(7)},
          {"job_id", Pack::Uint(3)},
          {"argv", Pack::StrArray({"/bin/true"})}};
}
Entries MinimalResult() {
  return {{"type", Pack::Str("result")},
          {"lease", Pack::Uint(7)},
          {"job_id", Pack::Uint(3)},
          {"outcome", Pack::Str("exited")}};
}

Decoded DecodeBody(std::string_view body) {
  return Decode(kHeader, body);
}
Decoded DecodeEntries(const Entries& entries) {
  return DecodeBody(MapOf(entries));
}

// Asserts `result` is an error with `code` whose message mentions `mention`.
::testing::AssertionResult IsError(const Decoded& result, Code code,
                                   std::string_view mention = "") {
  if (const auto* message = std::get_if<Message>(&result)) {
    return ::testing::AssertionFailure()
           << "decoded a " << TypeName(*message) << ", expected " << CodeName(code);
  }
  const auto& error = std::get<DecodeError>(result);
  if (error.code != code) {
    return ::testing::AssertionFailure() << "got " << CodeName(error.code) << " (" << error.message
                                         << "), expected " << CodeName(code);
  }
  if (error.message.find(mention) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "message '" << error.message << "' does not mention '" << mention << "'";
  }
  return ::testing::AssertionSuccess();
}

template <typename M>
M DecodedAs(const Decoded& result) {
  if (const auto* error = std::get_if<DecodeError>(&result)) {
    ADD_FAILURE() << CodeName(error->code) << ": " << error->message;
    return M{};
  }
  const auto* message = std::get_if<M>(&std::get<Message>(result));
  if (message == nullptr) {
    ADD_FAILURE() << "decoded the wrong type: " << TypeName(std::get<Message>(result));
    return M{};
  }
  return *message;
}

// ---- Round trips ----

// Bytes that a text-based codec would mangle: NUL, invalid UTF-8, non-ASCII.
const std::string kOddBytes = std::string("a\0b\xff\xfe", 5) + "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93";

template <typename M>
void ExpectRoundTrip(const M& original) {
  Message message = original;
  std::string body = EncodeBody(message);
  M decoded = DecodedAs<M>(Decode(kHeader, body));
  EXPECT_EQ(decoded, original) << "type " << TypeName(message);
  EXPECT_EQ(EncodeBody(decoded), body) << "encoding is not deterministic";
}

TEST(Header, IsTheNameAndTheVersion) {
  EXPECT_EQ(std::string(kHeader), std::string(kName) + "/" + std::to_string(kVersion));
}

TEST(CodecRoundTrip, Hello) {
  ExpectRoundTrip(Hello{.worker_name = "worker-" + kOddBytes,
                        .slots = std::numeric_limits<uint32_t>::max(),
                        .os = "linux",
                        .arch = "x86_64",
                        .labels = {{"gpu", "a100"}, {kOddBytes, kOddBytes}, {"", ""}}});
}

TEST(CodecRoundTrip, Welcome) {
  ExpectRoundTrip(Welcome{.run_id = "run-" + kOddBytes});
  ExpectRoundTrip(Welcome{.run_id = ""});
}

TEST(CodecRoundTrip, JobAssignWithBigNumbers) {
  ExpectRoundTrip(JobAssign{.lease = std::numeric_limits<uint64_t>::max(),
                            .job_id = (uint64_t{1} << 63) + 5,
                            .name = "suite/" + kOddBytes,
                            .argv = {"/bin/sh", "-c", kOddBytes, ""},
                            .env = {{"PATH", "/usr/bin"}, {"ODD", kOddBytes}},
                            .cwd = "/tmp/" + kOddBytes,
                            .timeout_ms = uint64_t{1} << 40,
                            .kill_grace_ms = 2000,
                            .report_env = "GTEST_OUTPUT=json:",
                            .artifact_root = "/build/" + kOddBytes,
                            .artifacts = {{.path = "bin/t",
                                           .sha256 = std::string(64, 'a'),
                                           .size = uint64_t{1} << 40,
                                           .executable = true},
                                          {.path = "lib/libx.so.1",
                                           .sha256 = std::string(64, '0'),
                                           .size = 0,
                                           .executable = false}},
                            .library_dirs = {"lib", "."},
                            .coverage = true});
}

TEST(CodecRoundTrip, JobResultEveryExitKind) {
  const ExitState states[] = {
      ExitState::Exited(0),
      ExitState::Exited(255),
      ExitState::Signaled(11, true),
      ExitState::Signaled(9, false),
      ExitState::TimedOut("SIGKILL after 2s grace"),
      ExitState::SpawnFailed(2, "No such file or directory: " + kOddBytes),
      ExitState::Leaked(0, "pid 1234 held stdout"),
      ExitState::Cancelled("run aborted"),
      ExitState::FromParts(ExitState::Kind::kExited, std::numeric_limits<int>::min(), true, "x"),
      ExitState::FromParts(ExitState::Kind::kExited, std::numeric_limits<int>::max(), false, ""),
  };
  for (const ExitState& state : states) {
    SCOPED_TRACE(state.Describe());
    ExpectRoundTrip(JobResult{.lease = std::numeric_limits<uint64_t>::max(),
                              .job_id = 42,
                              .state = state,
                              .duration_ms = 1234567,
                              .slot = std::numeric_limits<uint32_t>::max(),
                              .stdout_text = kOddBytes + std::string(70000, 'o'),
                              .stderr_text = kOddBytes,
                              .stdout_dropped = std::numeric_limits<uint64_t>::max(),
                              .stderr_dropped = 1,
                              .report = "{\"testsuites\": []}" + kOddBytes,
                              .report_error = "the test did not write its report file",
                              .profiles = 3,
                              .profiles_empty = 1,
                              .peak_rss_kb = uint64_t{1} << 40,
                              .cpu_ms = 987654321});
  }
}

TEST(CodecRoundTrip, SmallMessages) {
  ExpectRoundTrip(Cancel{.lease = 99});
  ExpectRoundTrip(JobStarted{.lease = uint64_t{1} << 50});
  ExpectRoundTrip(Heartbeat{});
  ExpectRoundTrip(Bye{.reason = "run finished " + kOddBytes});
  ExpectRoundTrip(Bye{});
  ExpectRoundTrip(ErrorReply{.text = "bad_field: " + kOddBytes});
  ExpectRoundTrip(Fetch{.sha256 = std::string(64, 'f'), .offset = uint64_t{1} << 40, .length = 1});
  ExpectRoundTrip(ProfileRequest{});
  ExpectRoundTrip(ProfileRequest{7, uint64_t{3} << 20});
  ExpectRoundTrip(SetRequest{.run = 3, .set = uint64_t{1} << 40});
  ExpectRoundTrip(Drain{.reason = "SIGTERM " + kOddBytes});
  ExpectRoundTrip(Drain{});
  ExpectRoundTrip(HandBack{.lease = uint64_t{1} << 45, .reason = "draining"});
  ExpectRoundTrip(HandBack{.lease = 1, .reason = ""});
  ExpectRoundTrip(ProfileAck{.index = 7, .offset = uint64_t{5} << 32});
  ExpectRoundTrip(SetManifest{.run = 3,
                              .set = 9,
                              .root = "/src/build",
                              .files = {{"bin/t", std::string(64, 'a'), 12, true}},
                              .library_dirs = {"lib"},
                              .error = ""});
  SetManifest refused;
  refused.run = 3;
  refused.set = 9;
  refused.error = "the run has ended";
  ExpectRoundTrip(refused);
  ExpectRoundTrip(ProfileChunk{.offset = 3,
                               .size = 1 << 20,
                               .data = kOddBytes,
                               .last = true,
                               .merged = 1000,
                               .bad = {"1.profraw: truncated"},
                               .error = ""});
  ExpectRoundTrip(Chunk{.sha256 = std::string(64, 'e'),
                        .offset = 5,
                        .size = 1 << 20,
                        .data = kOddBytes + std::string(1, '\0'),
                        .error = ""});
  ExpectRoundTrip(Chunk{.sha256 = std::string(64, 'e'),
                        .offset = 0,
                        .size = 0,
                        .data = "",
                        .error = "cannot read /x: gone"});
}

TEST(CodecRoundTrip, FarmStatusWithADrainingWorker) {
  FarmStatus status;
  status.max_runs = 8;
  WorkerStatus leaving;
  leaving.name = "w1";
  leaving.labels = {{"gpu", "1"}};
  leaving.slots = 4;
  leaving.busy = 1;
  leaving.tests = {"suite::Case"};
  leaving.draining = true;
  WorkerStatus staying;
  staying.name = "w2";
  staying.slots = 2;
  status.workers = {leaving, staying};
  ExpectRoundTrip(status);
}

TEST(CodecRoundTrip, ClientAndFarmMessages) {
  for (const Message& message : testing::FarmMessageSamples()) {
    std::visit([](const auto& m) { ExpectRoundTrip(m); }, message);
  }
}

TEST(CodecFields, ClientAndFarmRules) {
  using testing::FarmMessageSamples;
  auto rejects = [](const Message& message, const std::string& why) {
    auto decoded = Decode(kHeader, EncodeBody(message));
    ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded)) << why;
    EXPECT_NE(std::get<DecodeError>(decoded).message.find(why), std::string::npos)
        << std::get<DecodeError>(decoded).message;
  };
  SubmitPart part;
  part.tests.emplace_back();
  part.tests[0].name = part.tests[0].suite = "t";
  rejects(part, "needs a command");
  part = SubmitPart{};
  part.file_sets.emplace_back();
  part.file_sets[0].root = "rel";
  rejects(part, "root must be an absolute path");
  part.file_sets[0].root = "/b";
  part.file_sets[0].files.push_back({.path = "../x", .sha256 = std::string(64, 'a'), .size = 1});
  rejects(part, "not a relative path");
  rejects(HasBlobs{.sha256 = {"zz"}}, "not a digest");
  rejects(Upload{.sha256 = std::string(64, 'a'), .offset = 4, .size = 5, .data = "ab"},
          "beyond the stated size");
  TestDone done;
  done.state = "passed";
  done.result.resize(2);
  rejects(done, "at most one");
}

TEST(CodecTypeNames, AreTheWireNames) {
  EXPECT_STREQ(TypeName(Hello{}), "hello");
  EXPECT_STREQ(TypeName(Welcome{}), "welcome");
  EXPECT_STREQ(TypeName(JobAssign{}), "job");
  EXPECT_STREQ(TypeName(JobResult{}), "result");
  EXPECT_STREQ(TypeName(JobStarted{}), "started");
  EXPECT_STREQ(TypeName(Cancel{}), "cancel");
  EXPECT_STREQ(TypeName(Heartbeat{}), "heartbeat");
  EXPECT_STREQ(TypeName(Bye{}), "bye");
  EXPECT_STREQ(TypeName(ErrorReply{}), "error");
  EXPECT_STREQ(TypeName(Fetch{}), "fetch");
  EXPECT_STREQ(TypeName(Chunk{}), "chunk");
  EXPECT_STREQ(TypeName(ProfileRequest{}), "profile_request");
  EXPECT_STREQ(TypeName(ProfileChunk{}), "profile");
  EXPECT_STREQ(TypeName(SetRequest{}), "set_request");
  EXPECT_STREQ(TypeName(SetManifest{}), "set");
  EXPECT_STREQ(TypeName(Drain{}), "drain");
  EXPECT_STREQ(TypeName(HandBack{}), "hand_back");
  EXPECT_STREQ(TypeName(ProfileAck{}), "profile-ack");
}

TEST(CodecCodeNames, AreDistinct) {
  const Code codes[] = {Code::kBadHeader,   Code::kWrongVersion, Code::kOversized,
                        Code::kMalformed,   Code::kNotAMap,      Code::kMissingType,
                        Code::kUnknownType, Code::kBadField,     Code::kMissingField};
  std::set<std::string> names;
  for (Code code : codes) names.insert(CodeName(code));
  EXPECT_EQ(names.size(), std::size(codes));
  EXPECT_EQ(names.count("unknown"), 0u);
}

TEST(CodecEncode, HeartbeatIsItsTypeAndTheWorkersCacheSize) {
  EXPECT_EQ(EncodeBody(Heartbeat{4096}),
            MapOf({{"type", Pack::Str("heartbeat")}, {"cache_bytes", Pack::Uint(4096)}}));
  ExpectRoundTrip(Heartbeat{123456789});
  // A peer from before the dashboard sends none: 0, as from a worker without a cache.
  EXPECT_EQ(DecodedAs<Heartbeat>(DecodeEntries({{"type", Pack::Str("heartbeat")}})).cache_bytes,
            0u);
}

// ---- Frame 0 ----

TEST(CodecHeader, RejectsOtherNames) {
  const std::string body = EncodeBody(Heartbeat{});
  for (std::string header :
       {"", "testfarm", "testfarm/", "testfarm/x", "testfarm/1x", "testfarm/-1", "testfarm/ 1",
        "Testfarm/1", "other/1", "testfarm//1", "testfarm/01", "testfarm/1 ", "testfarm:1"}) {
    EXPECT_TRUE(IsError(Decode(header, body), Code::kBadHeader)) << "header '" << header << "'";
  }
  EXPECT_TRUE(IsError(Decode(std::string("testfarm/3\0", 11), body), Code::kBadHeader));
  EXPECT_TRUE(IsError(Decode("testfarm/" + std::string(100, '1'), body), Code::kBadHeader));
}

TEST(CodecHeader, OtherVersionNamesBothVersions) {
  const std::string body = EncodeBody(Heartbeat{});
  const std::string older = std::to_string(kVersion - 1);
  const std::string newer = std::to_string(kVersion + 1);
  const std::string ours = std::to_string(kVersion);
  EXPECT_TRUE(IsError(Decode("testfarm/" + older, body), Code::kWrongVersion,
                      "version " + older + ", we speak " + ours));
  EXPECT_TRUE(IsError(Decode("testfarm/" + newer, body), Code::kWrongVersion,
                      "version " + newer + ", we speak " + ours));
  EXPECT_TRUE(IsError(Decode("testfarm/0", body), Code::kWrongVersion, "version 0"));
  // Too big for any integer type: still a version, just not ours.
  EXPECT_TRUE(IsError(Decode("testfarm/99999999999999999999999", body), Code::kWrongVersion,
                      "99999999999999999999999"));
}

TEST(CodecHeader, IsCheckedBeforeTheBody) {
  EXPECT_TRUE(IsError(Decode("nope", "\xc1"), Code::kBadHeader));
  EXPECT_TRUE(IsError(Decode("testfarm/3", ""), Code::kWrongVersion));
}

TEST(CodecHeader, PrintsPeerBytesEscaped) {
  auto result = Decode(std::string("\x01\n", 2), EncodeBody(Heartbeat{}));
  ASSERT_TRUE(IsError(result, Code::kBadHeader, "\\x01\\x0a"));
}

// ---- Frame 1: msgpack-level problems ----

TEST(CodecMalformed, EmptyBody) {
  EXPECT_TRUE(IsError(DecodeBody(""), Code::kMalformed));
}

TEST(CodecMalformed, EveryTruncationOfEveryType) {
  const Message messages[] = {
      Hello{.worker_name = "w", .slots = 1, .os = "", .arch = "", .labels = {{"k", "v"}}},
      Welcome{.run_id = "r"},
      JobAssign{.lease = 1,
                .job_id = 1 << 20,
                .name = "",
                .argv = {"a", "b"},
                .env = {{"K", "V"}},
                .cwd = "",
                .report_env = "X=y:",
                .artifact_root = "/b",
                .artifacts =
                    {{.path = "t", .sha256 = std::string(64, '1'), .size = 3, .executable = true}},
                .library_dirs = {"lib"},
                .coverage = true},
      JobResult{.lease = 1,
                .state = ExitState::Signaled(6, true),
                .stdout_text = "out",
                .stderr_text = "",
                .report = "r",
                .report_error = "",
                .profiles = 2,
                .profiles_empty = 1},
      JobStarted{.lease = 1},
      Cancel{.lease = 1},
      Heartbeat{},
      Bye{.reason = "done"},
      ErrorReply{.text = "oops"},
      Fetch{.sha256 = std::string(64, '2'), .offset = 9, .length = 4},
      Chunk{.sha256 = std::string(64, '3'), .offset = 0, .size = 2, .data = "ab", .error = ""},
      ProfileChunk{.offset = 0,
                   .size = 2,
                   .data = "ab",
                   .last = true,
                   .merged = 2,
                   .bad = {"x"},
                   .error = ""},
  };
  std::vector<Message> all(std::begin(messages), std::end(messages));
  for (const Message& message : testing::FarmMessageSamples()) all.push_back(message);
  for (const Message& message : all) {
    const std::string body = EncodeBody(message);
    ASSERT_TRUE(std::holds_alternative<Message>(DecodeBody(body)));
    for (std::size_t n = 0; n < body.size(); ++n) {
      EXPECT_TRUE(IsError(DecodeBody(body.substr(0, n)), Code::kMalformed))
          << TypeName(message) << " cut at " << n << " of " << body.size();
    }
  }
}

TEST(CodecMalformed, TrailingBytes) {
  const std::string body = EncodeBody(Cancel{.lease = 1});
  EXPECT_TRUE(IsError(DecodeBody(body + '\0'), Code::kMalformed, "1 trailing bytes"));
  EXPECT_TRUE(IsError(DecodeBody(body + body), Code::kMalformed, "trailing"));
}

TEST(CodecMalformed, NeverUsedByte0xc1) {
  EXPECT_TRUE(IsError(DecodeBody("\xc1"), Code::kMalformed));
  EXPECT_TRUE(IsError(DecodeBody(MapOf(With(MinimalHello(), "os", "\xc1"))), Code::kMalformed));
}

TEST(CodecMalformed, NonStringKey) {
  std::string body = Pack::MapHeader(2) + Pack::Str("type") + Pack::Str("heartbeat") +
                     Pack::Uint(1) + Pack::Uint(2);
  EXPECT_TRUE(IsError(DecodeBody(body), Code::kMalformed, "key"));
}

// ---- Frame 1: structure ----

TEST(CodecStructure, NotAMap) {
  EXPECT_TRUE(IsError(DecodeBody(Pack::StrArray({"type", "hello"})), Code::kNotAMap));
  EXPECT_TRUE(IsError(DecodeBody(Pack::Uint(1)), Code::kNotAMap));
  EXPECT_TRUE(IsError(DecodeBody(Pack::Nil()), Code::kNotAMap));
  EXPECT_TRUE(IsError(DecodeBody(Pack::Str("hello")), Code::kNotAMap));
}

TEST(CodecStructure, TypeMissingOrNotAString) {
  EXPECT_TRUE(IsError(DecodeEntries({}), Code::kMissingType));
  EXPECT_TRUE(IsError(DecodeEntries(Without(MinimalHello(), "type")), Code::kMissingType));
  EXPECT_TRUE(
      IsError(DecodeEntries(With(MinimalHello(), "type", Pack::Uint(1))), Code::kMissingType));
  EXPECT_TRUE(
      IsError(DecodeEntries(With(MinimalHello(), "type", Pack::Bin("hello"))), Code::kMissingType));
}

TEST(CodecStructure, UnknownType) {
  for (std::string type : {"", "Hello", "hello ", "jobs", "message"}) {
    EXPECT_TRUE(IsError(DecodeEntries({{"type", Pack::Str(type)}}), Code::kUnknownType))
        << "type '" << type << "'";
  }
}

TEST(CodecStructure, UnknownKeysAreIgnored) {
  Entries entries = MinimalJob();
  entries.emplace_back("priority", Pack::Uint(5));
  entries.emplace_back("future", Pack::MapHeader(1) + Pack::Str("nested") + Pack::StrArray({"x"}));
  entries.emplace_back("pi", Pack::Float());
  entries.emplace_back("nothing", Pack::Nil());
  auto job = DecodedAs<JobAssign>(DecodeEntries(entries));
  EXPECT_EQ(job.lease, 7u);
  EXPECT_EQ(job.argv, std::vector<std::string>{"/bin/true"});
}

TEST(CodecStructure, KeyOrderDoesNotMatter) {
  Entries entries = MinimalJob();
  std::reverse(entries.begin(), entries.end());
  EXPECT_EQ(DecodedAs<JobAssign>(DecodeEntries(entries)).job_id, 3u);
}

TEST(CodecStructure, DuplicateKeysAreRejected) {
  Entries hello = MinimalHello();
  hello.emplace_back("slots", Pack::Uint(3));
  EXPECT_TRUE(IsError(DecodeEntries(hello), Code::kBadField, "duplicate key 'slots'"));
  Entries job = MinimalJob();
  job.emplace_back("type", Pack::Str("job"));
  EXPECT_TRUE(IsError(DecodeEntries(job), Code::kBadField, "duplicate key 'type'"));
  Entries unknown = MinimalJob();
  unknown.emplace_back("x", Pack::Uint(1));
  unknown.emplace_back("x", Pack::Uint(1));
  EXPECT_TRUE(IsError(DecodeEntries(unknown), Code::kBadField, "duplicate key 'x'"));
}

TEST(CodecStructure, DuplicateKeysInsideAMapFieldAreRejected) {
  std::string env =
      Pack::MapHeader(2) + Pack::Str("A") + Pack::Str("1") + Pack::Str("A") + Pack::Str("2");
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalJob(), "env", env)), Code::kBadField, "env"));
}

// ---- Fields ----

TEST(CodecFields, OptionalFieldsKeepDefaults) {
  auto job = DecodedAs<JobAssign>(DecodeEntries(MinimalJob()));
  JobAssign expected_job;
  expected_job.lease = 7;
  expected_job.job_id = 3;
  expected_job.argv = {"/bin/true"};
  EXPECT_EQ(job, expected_job);
  auto result = DecodedAs<JobResult>(DecodeEntries(MinimalResult()));
  JobResult expected_result;
  expected_result.lease = 7;
  expected_result.job_id = 3;
  EXPECT_EQ(result, expected_result);
  EXPECT_EQ(DecodedAs<Bye>(DecodeEntries({{"type", Pack::Str("bye")}})), Bye{});
  EXPECT_EQ(DecodedAs<Heartbeat>(DecodeEntries({{"type", Pack::Str("heartbeat")}})), Heartbeat{});
}

TEST(CodecFields, RequiredFieldsAreNamedWhenMissing) {
  const std::pair<Entries, const char*> cases[] = {
      {MinimalHello(), "worker_name"},
      {MinimalHello(), "slots"},
      {MinimalJob(), "lease"},
      {MinimalJob(), "job_id"},
      {MinimalJob(), "argv"},
      {MinimalResult(), "lease"},
      {MinimalResult(), "job_id"},
      {MinimalResult(), "outcome"},
      {{{"type", Pack::Str("cancel")}}, "lease"},
      {{{"type", Pack::Str("welcome")}}, "run_id"},
      {{{"type", Pack::Str("error")}}, "text"},
  };
  for (const auto& [entries, field] : cases) {
    EXPECT_TRUE(IsError(DecodeEntries(Without(entries, field)), Code::kMissingField,
                        std::string("'") + field + "'"));
  }
}

TEST(CodecFields, WrongTypesAreNamed) {
  const std::tuple<Entries, const char*, std::string> cases[] = {
      {MinimalHello(), "worker_name", Pack::Uint(1)},
      {MinimalHello(), "worker_name", Pack::Bin("w1")},
      {MinimalHello(), "worker_name", Pack::Nil()},
      {MinimalHello(), "slots", Pack::Str("2")},
      {MinimalHello(), "slots", Pack::Int(-1)},
      {MinimalHello(), "slots", Pack::Float()},
      {MinimalHello(), "slots", Pack::True()},
      {MinimalHello(), "labels", Pack::StrArray({"a", "b"})},
      {MinimalHello(), "labels", Pack::MapHeader(1) + Pack::Str("k") + Pack::Uint(1)},
      {MinimalHello(), "labels", Pack::MapHeader(1) + Pack::Uint(1) + Pack::Str("v")},
      {MinimalJob(), "lease", Pack::Int(-7)},
      {MinimalJob(), "lease", Pack::Str("7")},
      {MinimalJob(), "argv", Pack::Str("/bin/true")},
      {MinimalJob(), "argv", Pack::ArrayHeader(2) + Pack::Str("a") + Pack::Uint(1)},
      {MinimalJob(), "argv", Pack::ArrayHeader(1) + Pack::StrArray({"nested"})},
      {MinimalJob(), "env", Pack::Nil()},
      {MinimalJob(), "timeout_ms", Pack::Float()},
      {MinimalResult(), "outcome", Pack::Uint(0)},
      {MinimalResult(), "value", Pack::Str("0")},
      {MinimalResult(), "core_dumped", Pack::Uint(1)},
      {MinimalResult(), "detail", Pack::Nil()},
      {MinimalResult(), "stdout_text", Pack::Bin("out")},
  };
  for (const auto& [entries, field, value] : cases) {
    EXPECT_TRUE(IsError(DecodeEntries(With(entries, field, value)), Code::kBadField,
                        std::string("'") + field + "'"));
  }
}

TEST(CodecFields, Uint32Range) {
  const uint64_t max = std::numeric_limits<uint32_t>::max();
  EXPECT_EQ(DecodedAs<Hello>(DecodeEntries(With(MinimalHello(), "slots", Pack::Uint(max)))).slots,
            max);
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalHello(), "slots", Pack::Uint(max + 1))),
                      Code::kBadField, "'slots' is out of range for uint32"));
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalResult(), "slot", Pack::Uint(uint64_t{1} << 63))),
                      Code::kBadField, "'slot'"));
}

TEST(CodecFields, Int32Range) {
  auto value = [](std::string packed) {
    return DecodeEntries(With(MinimalResult(), "value", std::move(packed)));
  };
  EXPECT_EQ(DecodedAs<JobResult>(value(Pack::Int(-2147483648LL))).state.raw_value(),
            std::numeric_limits<int>::min());
  EXPECT_EQ(DecodedAs<JobResult>(value(Pack::Uint(2147483647))).state.raw_value(),
            std::numeric_limits<int>::max());
  EXPECT_TRUE(IsError(value(Pack::Uint(2147483648)), Code::kBadField, "'value' is out of range"));
  EXPECT_TRUE(IsError(value(Pack::Int(-2147483649LL)), Code::kBadField, "'value'"));
}

TEST(CodecFields, SignedWireFormatsHoldingNonNegativeValuesAreUnsigned) {
  // Some encoders write small non-negative numbers as int8..int64; they are still valid.
  const std::string int8_five = "\xd0\x05";
  const std::string int64_five = std::string("\xd3\0\0\0\0\0\0\0\x05", 9);
  EXPECT_EQ(DecodedAs<Hello>(DecodeEntries(With(MinimalHello(), "slots", int8_five))).slots, 5u);
  EXPECT_EQ(DecodedAs<JobAssign>(DecodeEntries(With(MinimalJob(), "lease", int64_five))).lease, 5u);
}

TEST(CodecFields, UnknownOutcomeIsRejected) {
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalResult(), "outcome", Pack::Str("exploded"))),
                      Code::kBadField, "'outcome'"));
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalResult(), "outcome", Pack::Str("Exited"))),
                      Code::kBadField, "'outcome'"));
}

TEST(CodecFields, ExitStatePartsAreDecoded) {
  Entries entries = With(MinimalResult(), "outcome", Pack::Str("signaled"));
  entries = With(entries, "value", Pack::Uint(11));
  entries = With(entries, "core_dumped", Pack::True());
  auto result = DecodedAs<JobResult>(DecodeEntries(entries));
  EXPECT_EQ(result.state, ExitState::Signaled(11, true));
  EXPECT_EQ(result.state.Describe(), "SIGSEGV (core dumped)");
}

TEST(CodecFields, SemanticRules) {
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalHello(), "slots", Pack::Uint(0))), Code::kBadField,
                      "slots"));
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalHello(), "worker_name", Pack::Str(""))),
                      Code::kBadField, "worker_name"));
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalJob(), "argv", Pack::StrArray({}))),
                      Code::kBadField, "argv"));
}

// A job carrying one artifact record; `record` replaces its packed map.
Entries JobWithArtifact(std::string record) {
  return With(With(MinimalJob(), "artifact_root", Pack::Str("/build")), "artifacts",
              Pack::ArrayHeader(1) + std::move(record));
}
std::string ArtifactRecord(const std::string& path, const std::string& sha, std::string size) {
  return Pack::MapHeader(3) + Pack::Str("path") + Pack::Str(path) + Pack::Str("sha256") +
         Pack::Str(sha) + Pack::Str("size") + std::move(size);
}

TEST(CodecFields, ArtifactsAreCheckedRecordByRecord) {
  const std::string sha(64, 'a');
  auto ok = DecodeEntries(JobWithArtifact(ArtifactRecord("bin/t", sha, Pack::Uint(1))));
  ASSERT_TRUE(std::holds_alternative<Message>(ok));
  const auto& job = std::get<JobAssign>(std::get<Message>(ok));
  ASSERT_EQ(job.artifacts.size(), 1u);
  EXPECT_EQ(job.artifacts[0].path, "bin/t");
  EXPECT_FALSE(job.artifacts[0].executable);  // optional, defaults to false

  // Each problem names the record and the field.
  EXPECT_TRUE(IsError(DecodeEntries(JobWithArtifact(ArtifactRecord("t", sha, Pack::Str("1")))),
                      Code::kBadField, "artifacts[0]: field 'size'"));
  EXPECT_TRUE(IsError(
      DecodeEntries(JobWithArtifact(Pack::MapHeader(1) + Pack::Str("path") + Pack::Str("t"))),
      Code::kMissingField, "artifacts[0]: missing required field 'sha256'"));
  EXPECT_TRUE(IsError(DecodeEntries(JobWithArtifact(Pack::Str("t"))), Code::kBadField,
                      "'artifacts' must be an array of maps"));
  // Paths must stay inside the root; digests must be digests.
  for (const char* path : {"/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", ""}) {
    EXPECT_TRUE(IsError(DecodeEntries(JobWithArtifact(ArtifactRecord(path, sha, Pack::Uint(1)))),
                        Code::kBadField, "not a relative path inside its root"))
        << path;
  }
  EXPECT_TRUE(IsError(
      DecodeEntries(JobWithArtifact(ArtifactRecord("t", std::string(64, 'A'), Pack::Uint(1)))),
      Code::kBadField, "is not a digest"));
  EXPECT_TRUE(IsError(DecodeEntries(With(JobWithArtifact(ArtifactRecord("t", sha, Pack::Uint(1))),
                                         "artifact_root", Pack::Str("relative"))),
                      Code::kBadField, "artifact_root must be an absolute path"));
  EXPECT_TRUE(IsError(DecodeEntries(With(MinimalJob(), "library_dirs", Pack::StrArray({"../lib"}))),
                      Code::kBadField, "library dir"));
  // A job names its set or lists its files, not both.
  EXPECT_TRUE(std::holds_alternative<Message>(
      DecodeEntries(With(MinimalJob(), "artifact_set", Pack::Uint(3)))));
  EXPECT_TRUE(IsError(DecodeEntries(With(JobWithArtifact(ArtifactRecord("t", sha, Pack::Uint(1))),
                                         "artifact_set", Pack::Uint(3))),
                      Code::kBadField, "not both"));
}

TEST(CodecFields, ASetManifestHasFilesOrAnError) {
  SetManifest empty;
  empty.set = 2;
  EXPECT_TRUE(IsError(Decode(kHeader, EncodeBody(empty)), Code::kBadField, "needs an error"));
  SetManifest escaping = empty;
  escaping.root = "/src";
  escaping.files = {{"../x", std::string(64, 'a'), 1, false}};
  EXPECT_TRUE(IsError(Decode(kHeader, EncodeBody(escaping)), Code::kBadField,
                      "not a relative path inside its root"));
}

TEST(CodecFields, FetchAndChunkLimits) {
  const std::string sha(64, 'c');
  Entries fetch = {{"type", Pack::Str("fetch")},
                   {"sha256", Pack::Str(sha)},
                   {"offset", Pack::Uint(0)},
                   {"length", Pack::Uint(kMaxChunkBytes)}};
  EXPECT_TRUE(std::holds_alternative<Message>(DecodeEntries(fetch)));
  EXPECT_TRUE(IsError(DecodeEntries(With(fetch, "length", Pack::Uint(kMaxChunkBytes + 1))),
                      Code::kBadField, "length must be"));
  EXPECT_TRUE(IsError(DecodeEntries(With(fetch, "length", Pack::Uint(0))), Code::kBadField,
                      "length must be"));
  EXPECT_TRUE(IsError(DecodeEntries(With(fetch, "sha256", Pack::Str("../../etc/passwd"))),
                      Code::kBadField, "not a digest"));
  Entries chunk = {{"type", Pack::Str("chunk")},
                   {"sha256", Pack::Str(sha)},
                   {"offset", Pack::Uint(0)},
                   {"size", Pack::Uint(2)},
                   {"data", Pack::Bin("ab")}};
  EXPECT_TRUE(std::holds_alternative<Message>(DecodeEntries(chunk)));
  // Blob bytes travel as bin, never str.
  EXPECT_TRUE(IsError(DecodeEntries(With(chunk, "data", Pack::Str("ab"))), Code::kBadField,
                      "'data' must be binary"));
  EXPECT_TRUE(
      IsError(DecodeEntries(With(chunk, "data", Pack::Bin(std::string(kMaxChunkBytes + 1, 'x')))),
              Code::kBadField, "data exceeds"));
}

TEST(CodecFields, ErrorNamesTheMessageType) {
  EXPECT_TRUE(IsError(DecodeEntries(Without(MinimalJob(), "lease")), Code::kMissingField, "job: "));
}

// ---- Limits ----

TEST(CodecLimits, OversizedBody) {
  const std::string body(kMaxFrameBytes + 1, '\x90');
  EXPECT_TRUE(IsError(DecodeBody(body), Code::kOversized, std::to_string(kMaxFrameBytes)));
}

// A map value nested `depth` arrays deep: {"type": "heartbeat", "x": [[...[]...]]}.
std::string NestedBody(int depth) {
  std::string nested(static_cast<std::size_t>(depth), '\x91');
  nested.back() = '\x90';  // the innermost array is empty
  return MapOf({{"type", Pack::Str("heartbeat")}, {"x", nested}});
}

TEST(CodecLimits, DepthLimitIsEightContainers) {
  // The body map is level 1, so seven nested arrays reach the limit exactly.
  EXPECT_TRUE(std::holds_alternative<Message>(DecodeBody(NestedBody(7))));
  EXPECT_TRUE(IsError(DecodeBody(NestedBody(8)), Code::kMalformed, "deeper than 8"));
}

TEST(CodecLimits, VeryDeepNestingFailsWithoutRecursion) {
  const std::string body(1'000'000, '\x91');  // [[[[...: a million levels claimed
  EXPECT_TRUE(IsError(DecodeBody(body), Code::kMalformed, "deeper"));
}

std::string ManyValuesBody(uint32_t items) {
  std::string array = Pack::ArrayHeader(items) + std::string(items, '\xc0');
  return MapOf({{"type", Pack::Str("heartbeat")}, {"x", array}});
}

TEST(CodecLimits, ValueCountLimit) {
  // 2^18 values in all: the map, 2 keys, "heartbeat", the array and its items.
  const uint32_t limit = 1u << 18;
  EXPECT_TRUE(std::holds_alternative<Message>(DecodeBody(ManyValuesBody(limit - 5))));
  EXPECT_TRUE(IsError(DecodeBody(ManyValuesBody(limit - 4)), Code::kMalformed, "values"));
}

TEST(CodecLimits, LargeRealMessagesStillDecode) {
  JobAssign job;
  job.argv = {"runner"};
  for (int i = 0; i < 50'000; ++i) job.argv.push_back("--test=case_" + std::to_string(i));
  for (int i = 0; i < 10'000; ++i) job.env["VAR_" + std::to_string(i)] = std::to_string(i);
  EXPECT_EQ(DecodedAs<JobAssign>(DecodeBody(EncodeBody(job))), job);
}

}  // namespace
}  // namespace testfarm::protocol
