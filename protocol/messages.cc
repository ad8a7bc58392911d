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
}  // namespace

const char* TypeName(const Message& message) {
  return std::visit([](const auto& m) { return Name(m); }, message);
}

}  // namespace testfarm::protocol
