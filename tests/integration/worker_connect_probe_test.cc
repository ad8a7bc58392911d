#include <gtest/gtest.h>

#include <string>

#include "tests/support/loopback_port.h"
#include "tests/support/temp_dir.h"
#include "worker/connect_probe.h"

namespace testfarm::worker {
namespace {

using test::LoopbackSocket;
using test::TempDir;

TEST(ProbeEndpoint, APortNothingListensOnIsRefused) {
  LoopbackSocket refusing(false);
  ASSERT_NE(refusing.port(), 0);
  std::string where = "127.0.0.1:" + std::to_string(refusing.port());
  EXPECT_EQ(ProbeEndpoint("tcp://" + where, Millis(2000)),
            "connection refused: nothing listens at " + where);
}

TEST(ProbeEndpoint, AListeningPortSaysSomethingListens) {
  LoopbackSocket listening(true);
  ASSERT_NE(listening.port(), 0);
  std::string where = "127.0.0.1:" + std::to_string(listening.port());
  EXPECT_EQ(ProbeEndpoint("tcp://" + where, Millis(2000)), "something listens at " + where);
}

TEST(ProbeEndpoint, AnUnknownHostCannotBeResolved) {
  // .invalid never resolves (RFC 6761).
  EXPECT_EQ(ProbeEndpoint("tcp://no-such-host.invalid:7700", Millis(2000))
                .rfind("cannot resolve no-such-host.invalid: ", 0),
            0u);
}

TEST(ProbeEndpoint, AMissingIpcSocketIsNamed) {
  TempDir dir;
  std::string path = (dir.path() / "coordinator.sock").string();
  EXPECT_EQ(ProbeEndpoint("ipc://" + path, Millis(2000)), "no socket at ipc://" + path);
}

}  // namespace
}  // namespace testfarm::worker
