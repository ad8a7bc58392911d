#include "protocol/codec.h"

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "msgpack/pack.hpp"
#include "msgpack/parse.hpp"
#include "msgpack/sbuffer.hpp"
#include "msgpack/unpack.hpp"  // completes the parser's helper types
#include "shared/sha256.h"

namespace testfarm::protocol {

namespace {

using Code = DecodeError::Code;
using Decoded = std::variant<Message, DecodeError>;

// Our deepest real message is 2 (body map -> labels). The parser keeps a stack entry per level,
// so an unbounded depth would let a small body make it grow without limit.
constexpr std::size_t kMaxDepth = 8;
// Every value costs a Node (~64 bytes) however few bytes it took on the wire, so the count, not
// the body size, bounds decoding memory: 2^18 values is ~16 MiB (32 MiB with vector slack).
constexpr std::size_t kMaxValues = std::size_t{1} << 18;
constexpr std::size_t kMaxHeaderBytes = 64;

DecodeError Fail(Code code, std::string message) {
  return {code, std::move(message)};
}

// Peer bytes go into error messages (and so into logs): escape and cap them.
std::string Printable(std::string_view text) {
  constexpr std::size_t kMax = 40;
  std::string out;
  for (unsigned char c : text.substr(0, kMax)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    }
  }
  if (text.size() > kMax) out += "...";
  return out;
}

// ---- Header (frame 0) ----

std::optional<DecodeError> CheckHeader(std::string_view header) {
  const std::string prefix = std::string(kName) + "/";
  if (header.size() > kMaxHeaderBytes || !header.starts_with(prefix)) {
    return Fail(Code::kBadHeader, "bad header '" + Printable(header) + "'");
  }
  std::string_view digits = header.substr(prefix.size());
  bool all_digits = !digits.empty() && std::all_of(digits.begin(), digits.end(),
                                                   [](char c) { return c >= '0' && c <= '9'; });
  // A leading zero would make two spellings of one version; only the canonical one is valid.
  if (!all_digits || (digits.size() > 1 && digits[0] == '0')) {
    return Fail(Code::kBadHeader, "bad header '" + Printable(header) + "'");
  }
  if (header != kHeader) {
    return Fail(Code::kWrongVersion, "peer speaks protocol version " + std::string(digits) +
                                         ", we speak " + std::to_string(kVersion));
  }
  return std::nullopt;
}

// ---- Body (frame 1) as a small tree ----

// One msgpack value. Strings point into the body, which outlives the tree.
struct Node {
  enum class Kind { kNil, kBool, kUint, kInt, kFloat, kStr, kBin, kExt, kArray, kMap };
  Kind kind = Kind::kNil;
  bool boolean = false;
  uint64_t uint = 0;           // kUint
  int64_t sint = 0;            // kInt: always negative
  std::string_view bytes;      // kStr, kBin, kExt
  std::vector<Node> children;  // kArray: the items; kMap: key, value, key, value, ...

  static Node Of(Kind kind) {
    Node node;
    node.kind = kind;
    return node;
  }
};

// A visitor for msgpack::parse that builds a Node tree. Unlike msgpack::unpack it never trusts
// a container's declared size: containers grow per element, so memory follows real content.
class TreeBuilder {
 public:
  bool visit_nil() { return Add(Node::Of(Node::Kind::kNil)) != nullptr; }
  bool visit_boolean(bool v) {
    Node* node = Add(Node::Of(Node::Kind::kBool));
    if (node != nullptr) node->boolean = v;
    return node != nullptr;
  }
  bool visit_positive_integer(uint64_t v) {
    Node* node = Add(Node::Of(Node::Kind::kUint));
    if (node != nullptr) node->uint = v;
    return node != nullptr;
  }
  // The parser reports every signed wire format here, including non-negative values.
  bool visit_negative_integer(int64_t v) {
    if (v >= 0) return visit_positive_integer(static_cast<uint64_t>(v));
    Node* node = Add(Node::Of(Node::Kind::kInt));
    if (node != nullptr) node->sint = v;
    return node != nullptr;
  }
  // No field is a float; the value is kept only as "a float" so it can be rejected by type.
  bool visit_float32(float) { return Add(Node::Of(Node::Kind::kFloat)) != nullptr; }
  bool visit_float64(double) { return Add(Node::Of(Node::Kind::kFloat)) != nullptr; }
  bool visit_str(const char* v, uint32_t size) { return AddBytes(Node::Kind::kStr, v, size); }
  bool visit_bin(const char* v, uint32_t size) { return AddBytes(Node::Kind::kBin, v, size); }
  bool visit_ext(const char* v, uint32_t size) { return AddBytes(Node::Kind::kExt, v, size); }
  bool start_array(uint32_t) { return Open(Node::Kind::kArray); }
  bool start_array_item() { return true; }
  bool end_array_item() { return true; }
  bool end_array() { return Close(); }
  bool start_map(uint32_t) { return Open(Node::Kind::kMap); }
  bool start_map_key() { return true; }
  bool end_map_key() { return true; }
  bool start_map_value() { return true; }
  bool end_map_value() { return true; }
  bool end_map() { return Close(); }
  void parse_error(size_t, size_t at) { SetError("invalid msgpack at byte " + std::to_string(at)); }
  void insufficient_bytes(size_t, size_t) { SetError("truncated msgpack"); }
  bool referenced() const { return false; }
  void set_referenced(bool) {}

  Node& root() { return root_; }
  const std::string& error() const { return error_; }

 private:
  Node* Add(Node node) {
    if (++values_ > kMaxValues) {
      SetError("more than " + std::to_string(kMaxValues) + " values");
      return nullptr;
    }
    if (open_.empty()) {
      root_ = std::move(node);
      return &root_;
    }
    // Only the innermost open container grows, so pointers to the outer ones stay valid.
    open_.back()->children.push_back(std::move(node));
    return &open_.back()->children.back();
  }
  bool AddBytes(Node::Kind kind, const char* data, uint32_t size) {
    Node* node = Add(Node::Of(kind));
    if (node != nullptr) node->bytes = std::string_view(data, size);
    return node != nullptr;
  }
  bool Open(Node::Kind kind) {
    if (open_.size() >= kMaxDepth) {
      SetError("nested deeper than " + std::to_string(kMaxDepth));
      return false;
    }
    Node* node = Add(Node::Of(kind));
    if (node == nullptr) return false;
    open_.push_back(node);
    return true;
  }
  bool Close() {
    open_.pop_back();
    return true;
  }
  // The first cause is the useful one; later callbacks only report the stop it caused.
  void SetError(std::string error) {
    if (error_.empty()) error_ = std::move(error);
  }

  Node root_;
  std::vector<Node*> open_;
  std::size_t values_ = 0;
  std::string error_;
};

std::optional<DecodeError> ParseTree(std::string_view body, TreeBuilder& builder) {
  std::size_t offset = 0;
  bool ok = msgpack::parse(body.data(), body.size(), offset, builder);
  if (!ok) {
    std::string why = builder.error().empty() ? "invalid msgpack" : builder.error();
    return Fail(Code::kMalformed, why);
  }
  if (offset != body.size()) {
    return Fail(Code::kMalformed,
                std::to_string(body.size() - offset) + " trailing bytes after the message");
  }
  return std::nullopt;
}

// The body map's entries sorted by key: finds duplicates and answers lookups in O(log n).
class KeyIndex {
 public:
  std::optional<DecodeError> Build(const Node& map) {
    for (std::size_t i = 0; i + 1 < map.children.size(); i += 2) {
      const Node& key = map.children[i];
      if (key.kind != Node::Kind::kStr) return Fail(Code::kMalformed, "a map key is not a string");
      entries_.emplace_back(key.bytes, &map.children[i + 1]);
    }
    std::sort(entries_.begin(), entries_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    auto dup = std::adjacent_find(entries_.begin(), entries_.end(),
                                  [](const auto& a, const auto& b) { return a.first == b.first; });
    if (dup != entries_.end()) {
      return Fail(Code::kBadField, "duplicate key '" + Printable(dup->first) + "'");
    }
    return std::nullopt;
  }
  const Node* Find(std::string_view key) const {
    auto it =
        std::lower_bound(entries_.begin(), entries_.end(), key,
                         [](const auto& entry, std::string_view k) { return entry.first < k; });
    return it != entries_.end() && it->first == key ? it->second : nullptr;
  }

 private:
  std::vector<std::pair<std::string_view, const Node*>> entries_;
};

// ---- Field lists: one per message, shared by the encoder, the key counter and the decoder ----

enum class Need { kRequired, kOptional };

// `io` is a FieldCounter, FieldWriter or FieldReader; `M` is const-qualified when encoding.
// Listing each message's keys once keeps the encoder and the decoder from drifting apart.
template <typename M, typename T>
concept Is = std::same_as<std::remove_const_t<M>, T>;

template <typename Io, Is<Hello> M>
void Fields(Io& io, M& m) {
  io.Str("worker_name", m.worker_name, Need::kRequired);
  io.U32("slots", m.slots, Need::kRequired);
  io.Str("os", m.os, Need::kOptional);
  io.Str("arch", m.arch, Need::kOptional);
  io.StrMap("labels", m.labels, Need::kOptional);
}

template <typename Io, Is<Welcome> M>
void Fields(Io& io, M& m) {
  io.Str("run_id", m.run_id, Need::kRequired);
}

template <typename Io, Is<JobAssign> M>
void Fields(Io& io, M& m) {
  io.U64("lease", m.lease, Need::kRequired);
  io.U64("job_id", m.job_id, Need::kRequired);
  io.Str("name", m.name, Need::kOptional);
  io.StrArray("argv", m.argv, Need::kRequired);
  io.StrMap("env", m.env, Need::kOptional);
  io.Str("cwd", m.cwd, Need::kOptional);
  io.U64("timeout_ms", m.timeout_ms, Need::kOptional);
  io.U64("kill_grace_ms", m.kill_grace_ms, Need::kOptional);
  io.Str("report_env", m.report_env, Need::kOptional);
  io.Str("artifact_root", m.artifact_root, Need::kOptional);
  io.Records("artifacts", m.artifacts, Need::kOptional);
  io.StrArray("library_dirs", m.library_dirs, Need::kOptional);
  io.Bool("coverage", m.coverage, Need::kOptional);
  io.U64("run", m.run, Need::kOptional);
  io.U64("artifact_set", m.artifact_set, Need::kOptional);
}

template <typename Io, Is<SetRequest> M>
void Fields(Io& io, M& m) {
  io.U64("run", m.run, Need::kOptional);
  io.U64("set", m.set, Need::kRequired);
}

template <typename Io, Is<SetManifest> M>
void Fields(Io& io, M& m) {
  io.U64("run", m.run, Need::kOptional);
  io.U64("set", m.set, Need::kRequired);
  io.Str("root", m.root, Need::kOptional);
  io.Records("files", m.files, Need::kOptional);
  io.StrArray("library_dirs", m.library_dirs, Need::kOptional);
  io.Str("error", m.error, Need::kOptional);
}

template <typename Io, Is<ArtifactFile> M>
void Fields(Io& io, M& m) {
  io.Str("path", m.path, Need::kRequired);
  io.Str("sha256", m.sha256, Need::kRequired);
  io.U64("size", m.size, Need::kRequired);
  io.Bool("executable", m.executable, Need::kOptional);
}

template <typename Io, Is<Fetch> M>
void Fields(Io& io, M& m) {
  io.Str("sha256", m.sha256, Need::kRequired);
  io.U64("offset", m.offset, Need::kRequired);
  io.U32("length", m.length, Need::kRequired);
}

template <typename Io, Is<Chunk> M>
void Fields(Io& io, M& m) {
  io.Str("sha256", m.sha256, Need::kRequired);
  io.U64("offset", m.offset, Need::kRequired);
  io.U64("size", m.size, Need::kRequired);
  io.Bin("data", m.data, Need::kOptional);
  io.Str("error", m.error, Need::kOptional);
}

template <typename Io, Is<JobResult> M>
void Fields(Io& io, M& m) {
  io.U64("lease", m.lease, Need::kRequired);
  io.U64("job_id", m.job_id, Need::kRequired);
  io.Exit(m.state);  // "outcome" (required), "value", "core_dumped", "detail"
  io.U64("duration_ms", m.duration_ms, Need::kOptional);
  io.U32("slot", m.slot, Need::kOptional);
  io.Str("stdout_text", m.stdout_text, Need::kOptional);
  io.Str("stderr_text", m.stderr_text, Need::kOptional);
  io.U64("stdout_dropped", m.stdout_dropped, Need::kOptional);
  io.U64("stderr_dropped", m.stderr_dropped, Need::kOptional);
  io.Str("report", m.report, Need::kOptional);
  io.Str("report_error", m.report_error, Need::kOptional);
  io.U32("profiles", m.profiles, Need::kOptional);
  io.U32("profiles_empty", m.profiles_empty, Need::kOptional);
  io.U64("peak_rss_kb", m.peak_rss_kb, Need::kOptional);
  io.U64("cpu_ms", m.cpu_ms, Need::kOptional);
}

template <typename Io, Is<JobStarted> M>
void Fields(Io& io, M& m) {
  io.U64("lease", m.lease, Need::kRequired);
}

template <typename Io, Is<Cancel> M>
void Fields(Io& io, M& m) {
  io.U64("lease", m.lease, Need::kRequired);
}

template <typename Io, Is<ProfileRequest> M>
void Fields(Io& io, M& m) {
  io.U64("run", m.run, Need::kOptional);
  io.U64("offset", m.offset, Need::kOptional);
}

template <typename Io, Is<ProfileChunk> M>
void Fields(Io& io, M& m) {
  io.U64("offset", m.offset, Need::kRequired);
  io.U64("size", m.size, Need::kRequired);
  io.Bin("data", m.data, Need::kOptional);
  io.Bool("last", m.last, Need::kOptional);
  io.U32("merged", m.merged, Need::kOptional);
  io.StrArray("bad", m.bad, Need::kOptional);
  io.Str("error", m.error, Need::kOptional);
  io.U64("run", m.run, Need::kOptional);
}

template <typename Io, Is<Heartbeat> M>
void Fields(Io& io, M& m) {
  io.U64("cache_bytes", m.cache_bytes, Need::kOptional);
}

template <typename Io, Is<Bye> M>
void Fields(Io& io, M& m) {
  io.Str("reason", m.reason, Need::kOptional);
}

template <typename Io, Is<Drain> M>
void Fields(Io& io, M& m) {
  io.Str("reason", m.reason, Need::kOptional);
}

template <typename Io, Is<ProfileAck> M>
void Fields(Io& io, M& m) {
  io.U32("index", m.index, Need::kRequired);
  io.U64("offset", m.offset, Need::kRequired);
}

template <typename Io, Is<HandBack> M>
void Fields(Io& io, M& m) {
  io.U64("lease", m.lease, Need::kRequired);
  io.Str("reason", m.reason, Need::kOptional);
}

template <typename Io, Is<ErrorReply> M>
void Fields(Io& io, M& m) {
  io.Str("text", m.text, Need::kRequired);
}

template <typename Io, Is<FileSet> M>
void Fields(Io& io, M& m) {
  io.Str("root", m.root, Need::kRequired);
  io.Records("files", m.files, Need::kOptional);
  io.StrArray("library_dirs", m.library_dirs, Need::kOptional);
}

template <typename Io, Is<RunTest> M>
void Fields(Io& io, M& m) {
  io.Str("name", m.name, Need::kRequired);
  io.Str("suite", m.suite, Need::kRequired);
  io.Str("gtest_case", m.gtest_case, Need::kOptional);
  io.StrArray("command", m.command, Need::kOptional);
  io.StrMap("env", m.env, Need::kOptional);
  io.Str("cwd", m.cwd, Need::kOptional);
  io.U64("timeout_ms", m.timeout_ms, Need::kOptional);
  io.StrArray("labels", m.labels, Need::kOptional);
  io.StrMap("required_labels", m.required_labels, Need::kOptional);
  io.Bool("will_fail", m.will_fail, Need::kOptional);
  io.Bool("has_skip_return_code", m.has_skip_return_code, Need::kOptional);
  io.U32("skip_return_code", m.skip_return_code, Need::kOptional);
  io.Bool("run_serial", m.run_serial, Need::kOptional);
  io.StrArray("depends", m.depends, Need::kOptional);
  io.StrArray("fixtures_setup", m.fixtures_setup, Need::kOptional);
  io.StrArray("fixtures_required", m.fixtures_required, Need::kOptional);
  io.StrArray("fixtures_cleanup", m.fixtures_cleanup, Need::kOptional);
  io.StrArray("resource_locks", m.resource_locks, Need::kOptional);
  io.U32("processors", m.processors, Need::kOptional);
  io.StrArray("pass_regex", m.pass_regex, Need::kOptional);
  io.StrArray("fail_regex", m.fail_regex, Need::kOptional);
  io.StrArray("skip_regex", m.skip_regex, Need::kOptional);
  io.Str("skip_reason", m.skip_reason, Need::kOptional);
  io.Str("error", m.error, Need::kOptional);
  io.Str("error_output", m.error_output, Need::kOptional);
  io.Str("cannot_run", m.cannot_run, Need::kOptional);
  io.U32("file_set", m.file_set, Need::kOptional);
  io.U32("retries", m.retries, Need::kOptional);
}

template <typename Io, Is<Submit> M>
void Fields(Io& io, M& m) {
  io.Str("client", m.client, Need::kOptional);
  io.Str("label", m.label, Need::kOptional);
  io.U64("test_count", m.test_count, Need::kRequired);
  io.U32("max_failures", m.max_failures, Need::kOptional);
  io.U32("max_lost_workers", m.max_lost_workers, Need::kOptional);
  io.Bool("has_prefetch", m.has_prefetch, Need::kOptional);
  io.U32("prefetch", m.prefetch, Need::kOptional);
  io.U64("kill_grace_ms", m.kill_grace_ms, Need::kOptional);
  io.U64("lease_slack_ms", m.lease_slack_ms, Need::kOptional);
  io.U64("stop_slack_ms", m.stop_slack_ms, Need::kOptional);
  io.Bool("batch", m.batch, Need::kOptional);
  io.U64("batch_target_ms", m.batch_target_ms, Need::kOptional);
  io.U64("first_batch", m.first_batch, Need::kOptional);
  io.U64("max_batch", m.max_batch, Need::kOptional);
  io.U64("slow_timeout_ms", m.slow_timeout_ms, Need::kOptional);
  io.U32("min_workers", m.min_workers, Need::kOptional);
  io.U64("wait_workers_ms", m.wait_workers_ms, Need::kOptional);
  io.U32("max_slots", m.max_slots, Need::kOptional);
  io.Bool("coverage", m.coverage, Need::kOptional);
  io.Bool("keep_order", m.keep_order, Need::kOptional);
}

template <typename Io, Is<ProfileData> M>
void Fields(Io& io, M& m) {
  io.U32("index", m.index, Need::kRequired);
  io.U64("offset", m.offset, Need::kRequired);
  io.U64("size", m.size, Need::kRequired);
  io.Bin("data", m.data, Need::kOptional);
}

template <typename Io, Is<SubmitPart> M>
void Fields(Io& io, M& m) {
  io.Records("tests", m.tests, Need::kOptional);
  io.Records("file_sets", m.file_sets, Need::kOptional);
  io.Bool("last", m.last, Need::kOptional);
}

template <typename Io, Is<Accepted> M>
void Fields(Io& io, M& m) {
  io.Str("run_id", m.run_id, Need::kOptional);
  io.U32("waiting_behind", m.waiting_behind, Need::kOptional);
  io.Str("error", m.error, Need::kOptional);
}

template <typename Io, Is<HasBlobs> M>
void Fields(Io& io, M& m) {
  io.StrArray("sha256", m.sha256, Need::kRequired);
}

template <typename Io, Is<MissingBlobs> M>
void Fields(Io& io, M& m) {
  io.StrArray("sha256", m.sha256, Need::kRequired);
}

template <typename Io, Is<Upload> M>
void Fields(Io& io, M& m) {
  io.Str("sha256", m.sha256, Need::kRequired);
  io.U64("offset", m.offset, Need::kRequired);
  io.U64("size", m.size, Need::kRequired);
  io.Bin("data", m.data, Need::kOptional);
}

template <typename Io, Is<WorkerJoined> M>
void Fields(Io& io, M& m) {
  io.Str("name", m.name, Need::kRequired);
  io.U32("slots", m.slots, Need::kOptional);
}

template <typename Io, Is<TestStarted> M>
void Fields(Io& io, M& m) {
  io.Str("name", m.name, Need::kRequired);
  io.Str("worker", m.worker, Need::kOptional);
}

template <typename Io, Is<TestSlow> M>
void Fields(Io& io, M& m) {
  io.Str("name", m.name, Need::kRequired);
  io.U64("running_ms", m.running_ms, Need::kOptional);
}

template <typename Io, Is<Running> M>
void Fields(Io& io, M& m) {
  io.U64("count", m.count, Need::kRequired);
  io.Str("longest", m.longest, Need::kOptional);
  io.U64("longest_ms", m.longest_ms, Need::kOptional);
}

template <typename Io, Is<TestDone> M>
void Fields(Io& io, M& m) {
  io.U64("test", m.test, Need::kRequired);
  io.Str("state", m.state, Need::kRequired);
  io.Records("result", m.result, Need::kOptional);
  io.Str("reason", m.reason, Need::kOptional);
  io.Str("message", m.message, Need::kOptional);
  io.U64("duration_ms", m.duration_ms, Need::kOptional);
  io.Str("worker", m.worker, Need::kOptional);
  io.U32("slot", m.slot, Need::kOptional);
  io.U64("started_at_ms", m.started_at_ms, Need::kOptional);
  io.U64("finished_at_ms", m.finished_at_ms, Need::kOptional);
  io.U32("attempt", m.attempt, Need::kOptional);
  io.Bool("batch", m.batch, Need::kOptional);
  io.U64("running", m.running, Need::kOptional);
  io.Bool("retried", m.retried, Need::kOptional);
}

template <typename Io, Is<RunFinished> M>
void Fields(Io& io, M& m) {
  io.Bool("interrupted", m.interrupted, Need::kOptional);
  io.Str("stop_reason", m.stop_reason, Need::kOptional);
  io.U64("wall_ms", m.wall_ms, Need::kOptional);
  io.U64("raw_profiles", m.raw_profiles, Need::kOptional);
  io.U64("merged", m.merged, Need::kOptional);
  io.StrArray("empty", m.empty, Need::kOptional);
  io.StrArray("bad", m.bad, Need::kOptional);
  io.StrArray("errors", m.errors, Need::kOptional);
  io.U64("collect_ms", m.collect_ms, Need::kOptional);
}

template <typename Io, Is<StopRun> M>
void Fields(Io&, M&) {}

template <typename Io, Is<StatusRequest> M>
void Fields(Io&, M&) {}

template <typename Io, Is<HistoryQuery> M>
void Fields(Io& io, M& m) {
  io.Str("what", m.what, Need::kRequired);
  io.Str("test", m.test, Need::kOptional);
  io.Str("label", m.label, Need::kOptional);
  io.U64("since_ms", m.since_ms, Need::kOptional);
}

template <typename Io, Is<HistoryAnswer> M>
void Fields(Io& io, M& m) {
  io.Str("json", m.json, Need::kOptional);
  io.Str("error", m.error, Need::kOptional);
}

template <typename Io, Is<WorkerStatus> M>
void Fields(Io& io, M& m) {
  io.Str("name", m.name, Need::kRequired);
  io.StrMap("labels", m.labels, Need::kOptional);
  io.U32("slots", m.slots, Need::kOptional);
  io.U32("busy", m.busy, Need::kOptional);
  io.StrArray("tests", m.tests, Need::kOptional);
  io.Bool("draining", m.draining, Need::kOptional);
}

template <typename Io, Is<RunStatus> M>
void Fields(Io& io, M& m) {
  io.Str("run_id", m.run_id, Need::kRequired);
  io.Str("client", m.client, Need::kOptional);
  io.Str("label", m.label, Need::kOptional);
  io.Str("state", m.state, Need::kOptional);
  io.U64("tests", m.tests, Need::kOptional);
  io.U64("finished", m.finished, Need::kOptional);
  io.U64("failed", m.failed, Need::kOptional);
  io.U32("slots", m.slots, Need::kOptional);
  io.U32("running", m.running, Need::kOptional);
}

template <typename Io, Is<FarmStatus> M>
void Fields(Io& io, M& m) {
  io.Records("workers", m.workers, Need::kOptional);
  io.Records("runs", m.runs, Need::kOptional);
  io.U32("max_runs", m.max_runs, Need::kOptional);
}

// Rules the field list cannot express. Checked after the fields are read.
std::optional<std::string> Invalid(const Hello& m) {
  if (m.worker_name.empty()) return "worker_name must not be empty";
  if (m.slots == 0) return "slots must be at least 1";
  return std::nullopt;
}
// A relative path that stays inside its root: no empty, '.' or '..' parts, not absolute.
bool IsSafeRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != part.npos) return false;
    start = end + 1;
  }
  return true;
}

// Files named by content under an absolute root (a job's artifacts, a submitted file set).
std::optional<std::string> InvalidFiles(const std::string& root,
                                        const std::vector<ArtifactFile>& files,
                                        const std::vector<std::string>& library_dirs) {
  if (!files.empty() && (root.empty() || root.front() != '/')) {
    return "artifact_root must be an absolute path";
  }
  for (const ArtifactFile& file : files) {
    if (!IsSafeRelativePath(file.path)) {
      return "artifact path '" + Printable(file.path) + "' is not a relative path inside its root";
    }
    if (!IsSha256Hex(file.sha256))
      return "artifact sha256 '" + Printable(file.sha256) + "' is not a digest";
  }
  for (const std::string& dir : library_dirs) {
    if (dir != "." && !IsSafeRelativePath(dir)) {
      return "library dir '" + Printable(dir) + "' is not a relative path inside its root";
    }
  }
  return std::nullopt;
}

std::optional<std::string> Invalid(const JobAssign& m) {
  if (m.argv.empty()) return "argv must not be empty";
  if (m.artifact_set != 0 &&
      (!m.artifact_root.empty() || !m.artifacts.empty() || !m.library_dirs.empty())) {
    return "a job names its artifact set or carries its files, not both";
  }
  return InvalidFiles(m.artifact_root, m.artifacts, m.library_dirs);
}
std::optional<std::string> Invalid(const SetManifest& m) {
  if (!m.error.empty()) return std::nullopt;
  if (m.files.empty()) return "a file set without files needs an error";
  return InvalidFiles(m.root, m.files, m.library_dirs);
}
std::optional<std::string> Invalid(const Fetch& m) {
  if (!IsSha256Hex(m.sha256)) return "sha256 is not a digest";
  if (m.length == 0 || m.length > kMaxChunkBytes) {
    return "length must be 1.." + std::to_string(kMaxChunkBytes);
  }
  return std::nullopt;
}
std::optional<std::string> Invalid(const ProfileChunk& m) {
  if (m.data.size() > kMaxChunkBytes) return "data exceeds " + std::to_string(kMaxChunkBytes);
  return std::nullopt;
}
std::optional<std::string> Invalid(const Chunk& m) {
  if (!IsSha256Hex(m.sha256)) return "sha256 is not a digest";
  if (m.data.size() > kMaxChunkBytes) return "data exceeds " + std::to_string(kMaxChunkBytes);
  return std::nullopt;
}
std::optional<std::string> Invalid(const FileSet& m) {
  if (m.root.empty() || m.root.front() != '/') return "root must be an absolute path";
  return InvalidFiles(m.root, m.files, m.library_dirs);
}
std::optional<std::string> Invalid(const SubmitPart& m) {
  for (std::size_t i = 0; i < m.file_sets.size(); ++i) {
    if (auto why = Invalid(m.file_sets[i])) return "file_sets[" + std::to_string(i) + "]: " + *why;
  }
  for (std::size_t i = 0; i < m.tests.size(); ++i) {
    const RunTest& test = m.tests[i];
    bool decided = !test.skip_reason.empty() || !test.error.empty() || !test.cannot_run.empty();
    if (test.command.empty() && !decided) {
      return "tests[" + std::to_string(i) + "]: a test that is to run needs a command";
    }
  }
  return std::nullopt;
}
std::optional<std::string> Invalid(const HasBlobs& m) {
  for (const std::string& sha : m.sha256) {
    if (!IsSha256Hex(sha)) return "sha256 '" + Printable(sha) + "' is not a digest";
  }
  return std::nullopt;
}
std::optional<std::string> Invalid(const Upload& m) {
  if (!IsSha256Hex(m.sha256)) return "sha256 is not a digest";
  if (m.data.size() > kMaxChunkBytes) return "data exceeds " + std::to_string(kMaxChunkBytes);
  if (m.offset + m.data.size() > m.size || m.offset > m.size) return "data beyond the stated size";
  return std::nullopt;
}
std::optional<std::string> Invalid(const ProfileData& m) {
  if (m.data.size() > kMaxChunkBytes) return "data exceeds " + std::to_string(kMaxChunkBytes);
  if (m.offset > m.size || m.data.size() > m.size - m.offset) return "data beyond the stated size";
  return std::nullopt;
}
std::optional<std::string> Invalid(const TestDone& m) {
  if (m.result.size() > 1) return "result holds at most one process";
  return std::nullopt;
}
template <typename M>
std::optional<std::string> Invalid(const M&) {
  return std::nullopt;
}

// ---- Encoding ----

using Packer = msgpack::packer<msgpack::sbuffer>;

class FieldCounter {
 public:
  template <typename T>
  void Str(const char*, const T&, Need) {
    ++count_;
  }
  template <typename T>
  void U32(const char*, const T&, Need) {
    ++count_;
  }
  template <typename T>
  void U64(const char*, const T&, Need) {
    ++count_;
  }
  template <typename T>
  void StrArray(const char*, const T&, Need) {
    ++count_;
  }
  template <typename T>
  void StrMap(const char*, const T&, Need) {
    ++count_;
  }
  template <typename T>
  void Bin(const char*, const T&, Need) {
    ++count_;
  }
  template <typename T>
  void Bool(const char*, const T&, Need) {
    ++count_;
  }
  template <typename T>
  void Records(const char*, const T&, Need) {
    ++count_;
  }
  void Exit(const ExitState&) { count_ += 4; }  // as many keys as FieldWriter::Exit writes
  uint32_t count() const { return count_; }

 private:
  uint32_t count_ = 0;
};

// Packs by hand rather than through msgpack's adaptors: the wire types stay visible here.
class FieldWriter {
 public:
  explicit FieldWriter(Packer& packer) : packer_(packer) {}
  void Str(const char* key, const std::string& v, Need) {
    Key(key);
    PackStr(v);
  }
  void U32(const char* key, uint32_t v, Need) { Key(key).pack_uint32(v); }
  void U64(const char* key, uint64_t v, Need) { Key(key).pack_uint64(v); }
  void StrArray(const char* key, const std::vector<std::string>& v, Need) {
    Key(key).pack_array(Size(v.size()));
    for (const std::string& item : v) PackStr(item);
  }
  void StrMap(const char* key, const std::map<std::string, std::string>& v, Need) {
    Key(key).pack_map(Size(v.size()));
    for (const auto& [k, value] : v) {
      PackStr(k);
      PackStr(value);
    }
  }
  void Bin(const char* key, const std::string& v, Need) {
    Key(key).pack_bin(Size(v.size()));
    packer_.pack_bin_body(v.data(), Size(v.size()));
  }
  void Bool(const char* key, bool v, Need) {
    if (v) {
      Key(key).pack_true();
    } else {
      Key(key).pack_false();
    }
  }
  // An array of records, each a map written by its own field list.
  template <typename R>
  void Records(const char* key, const std::vector<R>& v, Need) {
    Key(key).pack_array(Size(v.size()));
    for (const R& record : v) {
      FieldCounter counter;
      Fields(counter, record);
      packer_.pack_map(counter.count());
      Fields(*this, record);
    }
  }
  void Exit(const ExitState& state) {
    Key("outcome");
    PackStr(KindName(state.kind()));
    Key("value").pack_int(state.raw_value());
    Bool("core_dumped", state.core_dumped(), Need::kOptional);
    Key("detail");
    PackStr(state.detail());
  }
  void PackStr(std::string_view s) {
    packer_.pack_str(Size(s.size())).pack_str_body(s.data(), Size(s.size()));
  }

 private:
  // msgpack lengths are 32-bit. Far beyond kMaxFrameBytes, so this only stops silent truncation.
  static uint32_t Size(std::size_t n) {
    if (n > std::numeric_limits<uint32_t>::max()) throw std::length_error("msgpack: too large");
    return static_cast<uint32_t>(n);
  }
  Packer& Key(std::string_view key) {
    PackStr(key);
    return packer_;
  }
  Packer& packer_;
};

// ---- Decoding ----

// Reads fields from a KeyIndex into a struct. Keeps the first error and skips the rest, so the
// field lists above stay straight-line.
class FieldReader {
 public:
  FieldReader(const KeyIndex& index, const char* type) : index_(index), type_(type) {}

  void Str(const char* key, std::string& out, Need need) {
    if (const Node* n = Take(key, need, Node::Kind::kStr, "a string")) out = n->bytes;
  }
  void U64(const char* key, uint64_t& out, Need need) {
    if (const Node* n = Take(key, need, Node::Kind::kUint, "an unsigned integer")) out = n->uint;
  }
  void U32(const char* key, uint32_t& out, Need need) {
    const Node* n = Take(key, need, Node::Kind::kUint, "an unsigned integer");
    if (n == nullptr) return;
    if (n->uint > std::numeric_limits<uint32_t>::max()) return OutOfRange(key, "uint32");
    out = static_cast<uint32_t>(n->uint);
  }
  void StrArray(const char* key, std::vector<std::string>& out, Need need);
  void StrMap(const char* key, std::map<std::string, std::string>& out, Need need);
  void Bin(const char* key, std::string& out, Need need) {
    if (const Node* n = Take(key, need, Node::Kind::kBin, "binary (msgpack bin)")) out = n->bytes;
  }
  void Bool(const char* key, bool& out, Need need) {
    if (const Node* n = Take(key, need, Node::Kind::kBool, "a boolean")) out = n->boolean;
  }
  template <typename R>
  void Records(const char* key, std::vector<R>& out, Need need);
  void Exit(ExitState& out);

  std::optional<DecodeError>& error() { return error_; }

 private:
  const Node* Take(const char* key, Need need, Node::Kind kind, const char* kind_text);
  void I32(const char* key, int& out);
  void Set(Code code, std::string message) {
    if (!error_) error_ = Fail(code, std::string(type_) + ": " + message);
  }
  void OutOfRange(const char* key, const char* type) {
    Set(Code::kBadField, std::string("field '") + key + "' is out of range for " + type);
  }
  void WrongType(const char* key, const char* what) {
    Set(Code::kBadField, std::string("field '") + key + "' must be " + what);
  }

  const KeyIndex& index_;
  const char* type_;
  std::optional<DecodeError> error_;
};

// Returns the field's node if it is present and of `kind`; nullptr (recording any error)
// otherwise, or if an earlier field already failed.
const Node* FieldReader::Take(const char* key, Need need, Node::Kind kind, const char* kind_text) {
  if (error_) return nullptr;
  const Node* n = index_.Find(key);
  if (n == nullptr) {
    if (need == Need::kRequired) {
      Set(Code::kMissingField, std::string("missing required field '") + key + "'");
    }
    return nullptr;
  }
  if (n->kind != kind) {
    WrongType(key, kind_text);
    return nullptr;
  }
  return n;
}

void FieldReader::StrArray(const char* key, std::vector<std::string>& out, Need need) {
  const Node* n = Take(key, need, Node::Kind::kArray, "an array of strings");
  if (n == nullptr) return;
  std::vector<std::string> items;
  for (const Node& item : n->children) {
    if (item.kind != Node::Kind::kStr) return WrongType(key, "an array of strings");
    items.emplace_back(item.bytes);
  }
  out = std::move(items);
}

void FieldReader::StrMap(const char* key, std::map<std::string, std::string>& out, Need need) {
  const Node* n = Take(key, need, Node::Kind::kMap, "a map of string to string");
  if (n == nullptr) return;
  std::map<std::string, std::string> entries;
  for (std::size_t i = 0; i + 1 < n->children.size(); i += 2) {
    const Node& k = n->children[i];
    const Node& v = n->children[i + 1];
    if (k.kind != Node::Kind::kStr || v.kind != Node::Kind::kStr) {
      return WrongType(key, "a map of string to string");
    }
    if (!entries.emplace(k.bytes, v.bytes).second) {
      return Set(Code::kBadField,
                 std::string("field '") + key + "' has duplicate key '" + Printable(k.bytes) + "'");
    }
  }
  out = std::move(entries);
}

void FieldReader::I32(const char* key, int& out) {
  if (error_) return;
  const Node* n = index_.Find(key);
  if (n == nullptr) return;
  constexpr auto kMin = std::numeric_limits<int32_t>::min();
  constexpr auto kMax = std::numeric_limits<int32_t>::max();
  if (n->kind == Node::Kind::kUint) {
    if (n->uint > static_cast<uint64_t>(kMax)) return OutOfRange(key, "int32");
    out = static_cast<int>(n->uint);
  } else if (n->kind == Node::Kind::kInt) {
    if (n->sint < kMin) return OutOfRange(key, "int32");
    out = static_cast<int>(n->sint);
  } else {
    WrongType(key, "an integer");
  }
}

template <typename R>
void FieldReader::Records(const char* key, std::vector<R>& out, Need need) {
  const Node* n = Take(key, need, Node::Kind::kArray, "an array of maps");
  if (n == nullptr) return;
  std::vector<R> records;
  for (std::size_t i = 0; i < n->children.size(); ++i) {
    const Node& item = n->children[i];
    if (item.kind != Node::Kind::kMap) return WrongType(key, "an array of maps");
    KeyIndex index;
    if (auto error = index.Build(item)) {
      return Set(error->code, std::string(key) + "[" + std::to_string(i) + "]: " + error->message);
    }
    R record;
    FieldReader reader(index, type_);
    Fields(reader, record);
    if (reader.error()) {
      // "job: field 'x'..." becomes "job: artifacts[3]: field 'x'...".
      std::string message = reader.error()->message.substr(std::string(type_).size() + 2);
      return Set(reader.error()->code,
                 std::string(key) + "[" + std::to_string(i) + "]: " + message);
    }
    records.push_back(std::move(record));
  }
  out = std::move(records);
}

void FieldReader::Exit(ExitState& out) {
  std::string outcome;
  int value = 0;
  bool core_dumped = false;
  std::string detail;
  Str("outcome", outcome, Need::kRequired);
  I32("value", value);
  Bool("core_dumped", core_dumped, Need::kOptional);
  Str("detail", detail, Need::kOptional);
  if (error_) return;
  ExitState::Kind kind;
  if (!KindFromName(outcome, &kind)) {
    return Set(Code::kBadField, "field 'outcome' has unknown value '" + Printable(outcome) + "'");
  }
  out = ExitState::FromParts(kind, value, core_dumped, std::move(detail));
}

template <typename M>
Decoded DecodeAs(const KeyIndex& index, const char* type) {
  M message;
  FieldReader reader(index, type);
  Fields(reader, message);
  if (reader.error()) return std::move(*reader.error());
  if (auto why = Invalid(message)) return Fail(Code::kBadField, std::string(type) + ": " + *why);
  return Message(std::move(message));
}

// Walks the variant's alternatives so that every message type is decodable by its TypeName.
template <std::size_t I = 0>
Decoded DecodeByType(std::string_view type, const KeyIndex& index) {
  if constexpr (I == std::variant_size_v<Message>) {
    return Fail(Code::kUnknownType, "unknown message type '" + Printable(type) + "'");
  } else {
    const char* name = TypeName(Message(std::in_place_index<I>));
    if (type == name) return DecodeAs<std::variant_alternative_t<I, Message>>(index, name);
    return DecodeByType<I + 1>(type, index);
  }
}

Decoded DecodeBody(std::string_view body) {
  if (body.size() > kMaxFrameBytes) {
    return Fail(Code::kOversized, "body of " + std::to_string(body.size()) + " bytes exceeds " +
                                      std::to_string(kMaxFrameBytes));
  }
  TreeBuilder builder;
  if (auto error = ParseTree(body, builder)) return std::move(*error);
  const Node& root = builder.root();
  if (root.kind != Node::Kind::kMap) return Fail(Code::kNotAMap, "body is not a msgpack map");
  KeyIndex index;
  if (auto error = index.Build(root)) return std::move(*error);
  const Node* type = index.Find("type");
  if (type == nullptr) return Fail(Code::kMissingType, "no 'type' key");
  if (type->kind != Node::Kind::kStr) return Fail(Code::kMissingType, "'type' is not a string");
  return DecodeByType(type->bytes, index);
}

}  // namespace

const char* CodeName(DecodeError::Code code) {
  switch (code) {
    case Code::kBadHeader:
      return "bad_header";
    case Code::kWrongVersion:
      return "wrong_version";
    case Code::kOversized:
      return "oversized";
    case Code::kMalformed:
      return "malformed";
    case Code::kNotAMap:
      return "not_a_map";
    case Code::kMissingType:
      return "missing_type";
    case Code::kUnknownType:
      return "unknown_type";
    case Code::kBadField:
      return "bad_field";
    case Code::kMissingField:
      return "missing_field";
  }
  return "unknown";
}

std::string EncodeBody(const Message& message) {
  return std::visit(
      [&message](const auto& m) {
        FieldCounter counter;
        Fields(counter, m);
        msgpack::sbuffer buffer;
        Packer packer(buffer);
        packer.pack_map(counter.count() + 1);  // + "type"
        FieldWriter writer(packer);
        writer.PackStr("type");
        writer.PackStr(TypeName(message));
        Fields(writer, m);
        return std::string(buffer.data(), buffer.size());
      },
      message);
}

Decoded Decode(std::string_view header, std::string_view body) {
  // Decode is total: anything unexpected (bad_alloc, a msgpack exception) becomes an error value.
  try {
    if (auto error = CheckHeader(header)) return std::move(*error);
    return DecodeBody(body);
  } catch (const std::bad_alloc&) {
    return Fail(Code::kMalformed, "out of memory while decoding");
  } catch (const std::exception& e) {
    return Fail(Code::kMalformed, std::string("decode failed: ") + e.what());
  } catch (...) {
    return Fail(Code::kMalformed, "decode failed");
  }
}

}  // namespace testfarm::protocol
