#include <gtest/gtest.h>

#include "protocol/endpoint_policy.h"

namespace testfarm::protocol {
namespace {

TEST(EndpointPolicy, TcpHostChecksTheShapeAndThePort) {
  EXPECT_EQ(*TcpHost("--listen", "tcp://127.0.0.1:7700", PortUse::kListen), "127.0.0.1");
  EXPECT_EQ(*TcpHost("--listen", "tcp://0.0.0.0:*", PortUse::kListen), "0.0.0.0");
  EXPECT_EQ(*TcpHost("--listen", "tcp://[::1]:0", PortUse::kListen), "[::1]");
  EXPECT_FALSE(TcpHost("--connect", "tcp://h:0", PortUse::kConnect).ok());
  EXPECT_FALSE(TcpHost("--connect", "tcp://h:*", PortUse::kConnect).ok());
  auto bad = TcpHost("--connect", "tcp://h:70000", PortUse::kConnect);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "--connect: '70000' is not a port number (1-65535) in 'tcp://h:70000'");
  for (const char* shape : {"h:1", "tcp://h", "tcp://:1", "tcp://h:", "ipc:///x"}) {
    auto wrong = TcpHost("--listen", shape, PortUse::kListen);
    ASSERT_FALSE(wrong.ok()) << shape;
    EXPECT_NE(wrong.error().message.find("expected tcp://HOST:PORT"), std::string::npos) << shape;
  }
}

TEST(EndpointPolicy, LoopbackIsLiteralAddressesAndLocalhostOnly) {
  for (const char* yes : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"}) {
    EXPECT_TRUE(IsLoopback(yes)) << yes;
  }
  for (const char* no : {"0.0.0.0", "10.0.0.1", "127.example.com", "eth0", "*",
                         "127.0.0.1;10.0.0.1", "[::]", "localhost.example.com"}) {
    EXPECT_FALSE(IsLoopback(no)) << no;
  }
}

TEST(EndpointPolicy, WithoutKeysOnlyLoopbackUnlessInsecure) {
  EXPECT_TRUE(CheckEndpoint("--listen", "tcp://127.0.0.1:*", PortUse::kListen, false, false).ok());
  auto open = CheckEndpoint("--listen", "tcp://0.0.0.0:7700", PortUse::kListen, false, false);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().message.find("refusing to accept workers from the network"),
            std::string::npos);
  EXPECT_TRUE(CheckEndpoint("--listen", "tcp://0.0.0.0:7700", PortUse::kListen, true, false).ok());
  EXPECT_TRUE(CheckEndpoint("--listen", "tcp://0.0.0.0:7700", PortUse::kListen, false, true).ok());
  auto remote = CheckEndpoint("--connect", "tcp://10.1.1.1:7700", PortUse::kConnect, false, false);
  ASSERT_FALSE(remote.ok());
  EXPECT_NE(remote.error().message.find("refusing to take commands from the network"),
            std::string::npos);
  auto farm = CheckEndpoint("--farm", "tcp://10.1.1.1:7700", PortUse::kSubmit, false, false);
  ASSERT_FALSE(farm.ok());
  EXPECT_NE(farm.error().message.find("Give --key and --farm-key"), std::string::npos);
  EXPECT_FALSE(CheckEndpoint("--farm", "tcp://127.0.0.1:0", PortUse::kSubmit, false, false).ok());
  EXPECT_FALSE(CheckEndpoint("--connect", "nonsense", PortUse::kConnect, true, true).ok())
      << "keys do not make a malformed endpoint right";
}

TEST(EndpointPolicy, KeysGoInPairs) {
  EXPECT_FALSE(LoadSecurity("--key", "", "--worker-keys", "", true)->keys.has_value());
  auto half = LoadSecurity("--key", "k", "--worker-keys", "", true);
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().message, "--key and --worker-keys go together: give both or neither");
  auto missing =
      LoadSecurity("--key", "/nonexistent/k", "--coordinator-key", "/nonexistent/p", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message.rfind("--key: ", 0), 0u) << missing.error().message;
}

}  // namespace
}  // namespace testfarm::protocol
