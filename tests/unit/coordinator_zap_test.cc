#include <gtest/gtest.h>

#include "coordinator/zap_handler.h"

namespace testfarm::coordinator {
namespace {

ZapRequest Curve(const std::string& key) {
  return ZapRequest{"1.0", "1", "testfarm", "10.0.0.7", "CURVE", key};
}

TEST(DecideZap, OnlyListedCurveKeysAreAdmitted) {
  std::map<std::string, std::string> allowed = {{"KEY-A", "host a"}, {"KEY-B", ""}};
  ZapReply a = DecideZap(Curve("KEY-A"), allowed);
  EXPECT_EQ(a.status_code, "200");
  EXPECT_EQ(a.user_id, "host a");
  ZapReply b = DecideZap(Curve("KEY-B"), allowed);
  EXPECT_EQ(b.status_code, "200");
  EXPECT_EQ(b.user_id, "KEY-B");  // no label: the key itself

  ZapReply stranger = DecideZap(Curve("KEY-C"), allowed);
  EXPECT_EQ(stranger.status_code, "400");
  EXPECT_EQ(stranger.status_text, "key not allowed");

  ZapRequest plain = Curve("");
  plain.mechanism = "NULL";
  EXPECT_EQ(DecideZap(plain, allowed).status_code, "400");

  ZapRequest future = Curve("KEY-A");
  future.version = "2.0";
  EXPECT_EQ(DecideZap(future, allowed).status_code, "500");
}

}  // namespace
}  // namespace testfarm::coordinator
