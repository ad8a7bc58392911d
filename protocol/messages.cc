#include "protocol/messages.h"

namespace testfarm::protocol {

namespace {
// The codec derives its type table from these names, so they are the only copy.
const char* Name(const Hello&) {
  return "hello";
}
const char* Name(const Welcome&) {
  return "welcome";
}
const char* Name(const JobAssign&) {
  return "job";
}
const char* Name(const JobResult&) {
  return "result";
}
const char* Name(const JobStarted&) {
  return "started";
}
const char* Name(const Cancel&) {
  return "cancel";
}
const char* Name(const Heartbeat&) {
  return "heartbeat";
}
const char* Name(const Bye&) {
  return "bye";
}
const char* Name(const ErrorReply&) {
  return "error";
}
const char* Name(const Fetch&) {
  return "fetch";
}
const char* Name(const Chunk&) {
  return "chunk";
}
const char* Name(const ProfileRequest&) {
  return "profile_request";
}
const char* Name(const ProfileChunk&) {
  return "profile";
}
const char* Name(const SetRequest&) {
  return "set_request";
}
const char* Name(const SetManifest&) {
  return "set";
}
const char* Name(const Drain&) {
  return "drain";
}
const char* Name(const HandBack&) {
  return "hand_back";
}
const char* Name(const ProfileAck&) {
  return "profile-ack";
}
const char* Name(const Submit&) {
  return "submit";
}
const char* Name(const SubmitPart&) {
  return "tests";
}
const char* Name(const Accepted&) {
  return "accepted";
}
const char* Name(const HasBlobs&) {
  return "has";
}
const char* Name(const MissingBlobs&) {
  return "missing";
}
const char* Name(const Upload&) {
  return "upload";
}
const char* Name(const WorkerJoined&) {
  return "joined";
}
const char* Name(const TestStarted&) {
  return "test-started";
}
const char* Name(const TestSlow&) {
  return "test-slow";
}
const char* Name(const Running&) {
  return "running";
}
const char* Name(const ProfileData&) {
  return "profile-data";
}
const char* Name(const TestDone&) {
  return "test-done";
}
const char* Name(const RunFinished&) {
  return "run-finished";
}
const char* Name(const StopRun&) {
  return "stop";
}
const char* Name(const StatusRequest&) {
  return "status";
}
const char* Name(const FarmStatus&) {
  return "farm-status";
}
const char* Name(const HistoryQuery&) {
  return "history-query";
}
const char* Name(const HistoryAnswer&) {
  return "history";
}
}  // namespace

const char* TypeName(const Message& message) {
  return std::visit([](const auto& m) { return Name(m); }, message);
}

}  // namespace testfarm::protocol
