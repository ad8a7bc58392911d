#pragma once
// Wire messages between coordinator or farm (ROUTER) and workers and clients (DEALER). Plain
// structs; the codec maps each to a msgpack map with named keys, so fields can be added without
// breaking peers.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "shared/exit_state.h"

namespace testfarm::protocol {

// One source of truth for the protocol version. Frame 0 of every message is kHeader,
// "<kName>/<kVersion>", spelled out at compile time from the two.
inline constexpr int kVersion = 8;
inline constexpr const char* kName = "testfarm";

namespace detail {
struct HeaderText {
  char text[32]{};
};
constexpr HeaderText MakeHeader() {
  HeaderText header;
  std::size_t n = 0;
  for (const char* p = kName; *p != '\0'; ++p) header.text[n++] = *p;
  header.text[n++] = '/';
  char digits[12]{};
  std::size_t count = 0;
  for (int v = kVersion; v > 0 || count == 0; v /= 10)
    digits[count++] = static_cast<char>('0' + v % 10);
  while (count > 0) header.text[n++] = digits[--count];
  return header;
}
inline constexpr HeaderText kHeaderText = MakeHeader();
}  // namespace detail

inline constexpr const char* kHeader = detail::kHeaderText.text;
// Largest frame a peer accepts; also set as ZMQ_MAXMSGSIZE on every socket.
inline constexpr std::size_t kMaxFrameBytes = 64u << 20;
// Largest piece of a blob one `chunk` carries.
inline constexpr uint32_t kMaxChunkBytes = 1u << 20;

// worker -> coordinator: first message after connecting.
struct Hello {
  std::string worker_name;
  uint32_t slots = 0;
  std::string os;
  std::string arch;
  std::map<std::string, std::string> labels;
  friend bool operator==(const Hello&, const Hello&) = default;
};

// coordinator -> worker: reply to Hello.
struct Welcome {
  std::string run_id;
  friend bool operator==(const Welcome&, const Welcome&) = default;
};

// One file a job needs, named by its content.
struct ArtifactFile {
  std::string path;    // relative to the job's artifact root: '/'-separated, no '.' or '..'
  std::string sha256;  // 64 lowercase hex digits
  uint64_t size = 0;
  bool executable = false;
  friend bool operator==(const ArtifactFile&, const ArtifactFile&) = default;
};

// coordinator -> worker: run one job. `lease` identifies this attempt.
struct JobAssign {
  uint64_t lease = 0;
  uint64_t job_id = 0;
  std::string name;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // added to the worker's environment
  std::string cwd;                         // empty: the worker's cwd
  uint64_t timeout_ms = 0;                 // 0: no timeout
  uint64_t kill_grace_ms = 0;              // SIGTERM -> SIGKILL grace
  // Non-empty: the job writes a report file. "NAME=PREFIX" sets environment variable NAME to
  // PREFIX followed by a path in the job's TMPDIR (e.g. "GTEST_OUTPUT=json:"); the worker sends
  // the file's content back in JobResult::report.
  std::string report_env;
  // Non-empty: the files the job needs, as they are under `artifact_root` on the coordinator.
  // A worker that does not see them there (with these hashes) fetches them and runs the job in
  // its own copy of the tree: argv items, cwd and env values under artifact_root are rewritten,
  // and `library_dirs` (relative) go first on LD_LIBRARY_PATH.
  std::string artifact_root;
  std::vector<ArtifactFile> artifacts;
  std::vector<std::string> library_dirs;
  // Non-zero instead of the three above: the job's files are the run's file set with this id,
  // which the worker asks for once (SetRequest) and keeps for the run's later jobs, so that a
  // job does not carry its suite's whole file list.
  uint64_t artifact_set = 0;
  // Coverage: the job writes LLVM profiles (LLVM_PROFILE_FILE, one per process) which the
  // worker keeps for the run's merged profile.
  bool coverage = false;
  // The run the job belongs to (a farm runs several at once): a worker keeps each run's
  // profiles apart.
  uint64_t run = 0;
  friend bool operator==(const JobAssign&, const JobAssign&) = default;
};

// worker -> coordinator: a job finished (in any way).
struct JobResult {
  uint64_t lease = 0;
  uint64_t job_id = 0;
  ExitState state = ExitState::Exited(0);
  uint64_t duration_ms = 0;
  uint32_t slot = 0;
  std::string stdout_text;
  std::string stderr_text;
  uint64_t stdout_dropped = 0;  // bytes not kept (the middle of a large stream)
  uint64_t stderr_dropped = 0;
  std::string report;        // the report file's content, when one was asked for
  std::string report_error;  // non-empty: why there is no report (missing, unreadable, too big)
  // Coverage: raw profiles the job left, and processes whose profile is empty or missing
  // (killed before they could write it).
  uint32_t profiles = 0;
  uint32_t profiles_empty = 0;
  // The process's resources from its rusage: peak resident set (KiB) and user + system CPU.
  uint64_t peak_rss_kb = 0;
  uint64_t cpu_ms = 0;
  friend bool operator==(const JobResult&, const JobResult&) = default;
};

// worker -> coordinator: the job's process has just been started (its files are in place). The
// coordinator counts a lease as running, and its timeout, from this word alone: a worker may
// start a later job first while an earlier one still waits for its files.
struct JobStarted {
  uint64_t lease = 0;
  friend bool operator==(const JobStarted&, const JobStarted&) = default;
};

// coordinator -> worker: stop this job (terminate it if running) and report it cancelled.
struct Cancel {
  uint64_t lease = 0;
  friend bool operator==(const Cancel&, const Cancel&) = default;
};

// worker -> coordinator: send bytes [offset, offset + length) of a blob.
struct Fetch {
  std::string sha256;
  uint64_t offset = 0;
  uint32_t length = 0;  // at most kMaxChunkBytes
  friend bool operator==(const Fetch&, const Fetch&) = default;
};

// coordinator -> worker: the answer to a Fetch.
struct Chunk {
  std::string sha256;
  uint64_t offset = 0;
  uint64_t size = 0;  // the whole blob's size
  std::string data;   // msgpack bin
  std::string error;  // non-empty: the blob cannot be served (the data is empty)
  friend bool operator==(const Chunk&, const Chunk&) = default;
};

// coordinator -> worker: the run's merged coverage profile, pulled a piece at a time (credit-based
// flow control: the coordinator keeps a few requests in flight, the worker never queues the
// whole profile). Offset 0: the run's tests are done; send the first piece once the merges are
// done. Any other offset (a multiple of kMaxChunkBytes, below the size the first piece told):
// that piece, now.
struct ProfileRequest {
  uint64_t run = 0;  // whose profiles (JobAssign::run)
  uint64_t offset = 0;
  friend bool operator==(const ProfileRequest&, const ProfileRequest&) = default;
};

// worker -> coordinator: the piece of the worker's merged (indexed) coverage profile a
// ProfileRequest asked for: kMaxChunkBytes from its offset (fewer at the end).
struct ProfileChunk {
  uint64_t offset = 0;
  uint64_t size = 0;  // the whole profile's size (0: the worker has none)
  std::string data;   // msgpack bin, at most kMaxChunkBytes
  bool last = false;
  // In the last chunk: raw profiles merged into it, and those that could not be ("file: why").
  uint32_t merged = 0;
  std::vector<std::string> bad;
  std::string error;  // non-empty: the worker could not produce its profile
  uint64_t run = 0;   // whose profile (ProfileRequest::run)
  friend bool operator==(const ProfileChunk&, const ProfileChunk&) = default;
};

// worker -> coordinator: the files of a job's set (JobAssign::artifact_set), asked once per set.
struct SetRequest {
  uint64_t run = 0;  // JobAssign::run
  uint64_t set = 0;  // JobAssign::artifact_set
  friend bool operator==(const SetRequest&, const SetRequest&) = default;
};

// coordinator -> worker: the answer to a SetRequest: the set's files, as JobAssign would carry
// them, or why there are none (every job of the set then fails with it).
struct SetManifest {
  uint64_t run = 0;
  uint64_t set = 0;
  std::string root;
  std::vector<ArtifactFile> files;
  std::vector<std::string> library_dirs;
  std::string error;
  friend bool operator==(const SetManifest&, const SetManifest&) = default;
};

// both ways.
struct Heartbeat {
  // worker -> coordinator: the size of its blob cache in bytes (0: none, or empty); a
  // dashboard shows it. Measured at most every kCacheSizeEvery.
  uint64_t cache_bytes = 0;
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

// coordinator -> worker: the run is over. worker -> coordinator: the worker is leaving.
struct Bye {
  std::string reason;
  friend bool operator==(const Bye&, const Bye&) = default;
};

// worker -> coordinator: the worker is draining (it was asked to stop, e.g. SIGTERM): assign it
// nothing more. Its running jobs finish (their results follow) or are handed back; it then says
// `Bye`.
struct Drain {
  std::string reason;
  friend bool operator==(const Drain&, const Drain&) = default;
};

// worker -> coordinator: a job this worker holds but has not started will not run here (it is
// draining): requeue it at once, not counted against it.
struct HandBack {
  uint64_t lease = 0;
  std::string reason;
  friend bool operator==(const HandBack&, const HandBack&) = default;
};

// either way: the peer sent something we could not accept.
struct ErrorReply {
  std::string text;
  friend bool operator==(const ErrorReply&, const ErrorReply&) = default;
};

// ---- Client <-> farm (protocol 5): `testfarm run --farm` submits a run to `testfarm serve`. ----

// A set of files tests need, as they are under `root` on the client (see JobAssign).
struct FileSet {
  std::string root;
  std::vector<ArtifactFile> files;
  std::vector<std::string> library_dirs;
  friend bool operator==(const FileSet&, const FileSet&) = default;
};

// One test of a submitted run, as the client planned it.
struct RunTest {
  std::string name;
  std::string suite;
  std::string gtest_case;  // "Suite.Case" for a GoogleTest case
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::string cwd;
  uint64_t timeout_ms = 0;
  std::vector<std::string> labels;
  std::map<std::string, std::string> required_labels;
  bool will_fail = false;
  bool has_skip_return_code = false;
  uint32_t skip_return_code = 0;
  bool run_serial = false;
  std::vector<std::string> depends;
  std::vector<std::string> fixtures_setup;
  std::vector<std::string> fixtures_required;
  std::vector<std::string> fixtures_cleanup;
  std::vector<std::string> resource_locks;
  uint32_t processors = 1;
  std::vector<std::string> pass_regex;
  std::vector<std::string> fail_regex;
  std::vector<std::string> skip_regex;
  std::string skip_reason;  // decided before the run: reported without running
  std::string error;
  std::string error_output;
  std::string cannot_run;
  uint32_t file_set = 0;  // 0: none; else 1 + an index into the run's file sets
  uint32_t retries = 0;   // a failed attempt runs again up to this many times
  friend bool operator==(const RunTest&, const RunTest&) = default;
};

// client -> farm: a run, with how it is to be run. Its tests and file sets follow in `tests`
// messages (a run may be far bigger than one message).
struct Submit {
  std::string client;  // who submits: shown by `status`
  std::string label;
  uint64_t test_count = 0;
  uint32_t max_failures = 0;
  uint32_t max_lost_workers = 2;
  bool has_prefetch = false;
  uint32_t prefetch = 0;
  uint64_t kill_grace_ms = 0;
  uint64_t lease_slack_ms = 0;
  uint64_t stop_slack_ms = 0;
  bool batch = false;
  uint64_t batch_target_ms = 0;
  uint64_t first_batch = 0;
  uint64_t max_batch = 0;
  uint64_t slow_timeout_ms = 0;
  uint32_t min_workers = 1;
  uint64_t wait_workers_ms = 0;
  uint32_t max_slots = 0;   // 0: no cap
  bool coverage = false;    // tests write LLVM profiles; the merged ones come back to the client
  bool keep_order = false;  // start the tests in the order given (--shuffle, --no-history), not
                            // in the order the farm's history suggests
  friend bool operator==(const Submit&, const Submit&) = default;
};

// client -> farm: a part of the submitted run. The run starts after the part marked last.
struct SubmitPart {
  std::vector<RunTest> tests;
  std::vector<FileSet> file_sets;
  bool last = false;
  friend bool operator==(const SubmitPart&, const SubmitPart&) = default;
};

// farm -> client: the run was taken (and is running, or waits its turn), or refused.
struct Accepted {
  std::string run_id;
  uint32_t waiting_behind = 0;  // runs ahead of it in the farm's queue
  std::string error;            // non-empty: refused, and why
  friend bool operator==(const Accepted&, const Accepted&) = default;
};

// client -> farm: which of these blobs do you lack? farm -> client: these.
struct HasBlobs {
  std::vector<std::string> sha256;
  friend bool operator==(const HasBlobs&, const HasBlobs&) = default;
};
struct MissingBlobs {
  std::vector<std::string> sha256;
  friend bool operator==(const MissingBlobs&, const MissingBlobs&) = default;
};

// client -> farm: a piece of a blob, in order.
struct Upload {
  std::string sha256;
  uint64_t offset = 0;
  uint64_t size = 0;  // the whole blob's size
  std::string data;   // msgpack bin, at most kMaxChunkBytes
  friend bool operator==(const Upload&, const Upload&) = default;
};

// farm -> client: what the run's reporter hears. Names as in the console.
struct WorkerJoined {
  std::string name;
  uint32_t slots = 0;
  friend bool operator==(const WorkerJoined&, const WorkerJoined&) = default;
};
struct TestStarted {
  std::string name;
  std::string worker;
  friend bool operator==(const TestStarted&, const TestStarted&) = default;
};
struct TestSlow {
  std::string name;
  uint64_t running_ms = 0;
  friend bool operator==(const TestSlow&, const TestSlow&) = default;
};
// What runs now: how many jobs, and the one running longest (empty: none) for how long. Sent
// when the count or the longest changes.
struct Running {
  uint64_t count = 0;
  std::string longest;
  uint64_t longest_ms = 0;
  friend bool operator==(const Running&, const Running&) = default;
};
// One finished test of the run (test: its index in the submission).
struct TestDone {
  uint64_t test = 0;
  std::string state;              // passed, failed, expired, cancelled, not_run, skipped, flaky
  std::vector<JobResult> result;  // the process that ran it: none or one
  std::string reason;
  std::string message;
  uint64_t duration_ms = 0;
  std::string worker;
  uint32_t slot = 0;
  uint64_t started_at_ms = 0;
  uint64_t finished_at_ms = 0;
  uint32_t attempt = 1;
  bool batch = false;
  uint64_t running = 0;  // jobs still out
  bool retried = false;  // a failed attempt the test runs again after (--retries)
  friend bool operator==(const TestDone&, const TestDone&) = default;
};
// farm -> client: a piece of the `index`-th merged coverage profile of the run, in order.
struct ProfileData {
  uint32_t index = 0;
  uint64_t offset = 0;
  uint64_t size = 0;  // the whole profile's
  std::string data;   // msgpack bin, at most kMaxChunkBytes
  friend bool operator==(const ProfileData&, const ProfileData&) = default;
};

// client -> farm: a relayed profile piece (ProfileData) was written. The farm keeps at most
// kProfileRelayWindow pieces unacknowledged per client: a client that stops reading stalls its
// run's profile pulls, never the farm's memory.
struct ProfileAck {
  uint32_t index = 0;
  uint64_t offset = 0;
  friend bool operator==(const ProfileAck&, const ProfileAck&) = default;
};
inline constexpr std::size_t kProfileRelayWindow = 8;

// The run is over; every test (and every profile) was sent before this.
struct RunFinished {
  bool interrupted = false;
  std::string stop_reason;
  uint64_t wall_ms = 0;
  // Coverage (see coordinator::CoverageSummary).
  uint64_t raw_profiles = 0;
  uint64_t merged = 0;
  std::vector<std::string> empty;
  std::vector<std::string> bad;
  std::vector<std::string> errors;
  uint64_t collect_ms = 0;
  friend bool operator==(const RunFinished&, const RunFinished&) = default;
};

// client -> farm: the user interrupted the run (a second one, a second later, stops waiting for
// its cancelled tests).
struct StopRun {
  friend bool operator==(const StopRun&, const StopRun&) = default;
};

// anyone -> farm: what the farm is doing. farm -> them: FarmStatus.
struct StatusRequest {
  friend bool operator==(const StatusRequest&, const StatusRequest&) = default;
};
struct WorkerStatus {
  std::string name;
  std::map<std::string, std::string> labels;
  uint32_t slots = 0;
  uint32_t busy = 0;               // jobs running on it now (every run)
  std::vector<std::string> tests;  // what they are
  bool draining = false;           // it is leaving (protocol::Drain): it takes no new tests
  friend bool operator==(const WorkerStatus&, const WorkerStatus&) = default;
};
struct RunStatus {
  std::string run_id;
  std::string client;
  std::string label;
  std::string state;  // waiting, running, stopping, collecting, done
  uint64_t tests = 0;
  uint64_t finished = 0;
  uint64_t failed = 0;
  uint32_t slots = 0;  // slots it may fill now
  uint32_t running = 0;
  friend bool operator==(const RunStatus&, const RunStatus&) = default;
};
struct FarmStatus {
  std::vector<WorkerStatus> workers;
  std::vector<RunStatus> runs;
  uint32_t max_runs = 0;
  friend bool operator==(const FarmStatus&, const FarmStatus&) = default;
};

// anyone -> farm: a question for the farm's run history. farm -> them: HistoryAnswer.
struct HistoryQuery {
  std::string what;       // "attempts" (testfarm history), "flaky", "failed" (--rerun-failed)
  std::string test;       // attempts: a glob over test names; empty: all
  std::string label;      // failed: the last run whose label starts with this
  uint64_t since_ms = 0;  // attempts, flaky: since this Unix time
  friend bool operator==(const HistoryQuery&, const HistoryQuery&) = default;
};
struct HistoryAnswer {
  std::string json;   // what `testfarm history|flaky --json` prints; failed: a JSON array or null
  std::string error;  // non-empty: why there is no answer (e.g. the farm keeps no history)
  friend bool operator==(const HistoryAnswer&, const HistoryAnswer&) = default;
};

using Message =
    std::variant<Hello, Welcome, JobAssign, JobStarted, JobResult, Cancel, Heartbeat, Bye,
                 ErrorReply, Fetch, Chunk, ProfileRequest, ProfileChunk, Submit, SubmitPart,
                 Accepted, HasBlobs, MissingBlobs, Upload, WorkerJoined, TestStarted, TestSlow,
                 Running, ProfileData, TestDone, RunFinished, StopRun, StatusRequest, FarmStatus,
                 HistoryQuery, HistoryAnswer, SetRequest, SetManifest, Drain, HandBack, ProfileAck>;

// The wire name of a message's type ("hello", "job", ...).
const char* TypeName(const Message& message);

}  // namespace testfarm::protocol
