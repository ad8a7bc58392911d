#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/test_order.h"

namespace testfarm::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TestSpec Spec(std::string name, Ordering ordering = {}) {
  TestSpec test;
  test.name = name;
  test.suite = name;
  test.EditSettings().command = {"/bin/" + name};
  test.EditSettings().ordering = std::move(ordering);
  return test;
}

Ordering SetsUp(std::vector<std::string> fixtures) {
  Ordering o;
  o.fixtures_setup = std::move(fixtures);
  return o;
}
Ordering Requires(std::vector<std::string> fixtures) {
  Ordering o;
  o.fixtures_required = std::move(fixtures);
  return o;
}
Ordering CleansUp(std::vector<std::string> fixtures) {
  Ordering o;
  o.fixtures_cleanup = std::move(fixtures);
  return o;
}
Ordering Depends(std::vector<std::string> names) {
  Ordering o;
  o.depends = std::move(names);
  return o;
}

// "on" or "on(fixture)" for each wait of test t.
std::vector<std::string> Waits(const TestOrder& order, const std::vector<TestSpec>& tests,
                               std::size_t t) {
  std::vector<std::string> out;
  for (const TestOrder::Wait& wait : order.waits[t]) {
    out.push_back(tests[wait.on].name + (wait.fixture.empty() ? "" : "(" + wait.fixture + ")"));
  }
  return out;
}

TEST(TestOrder, DependsIsOrderOnlyAndIgnoresTestsNotInTheRun) {
  std::vector<TestSpec> tests = {Spec("a"), Spec("b", Depends({"a", "gone", "b"}))};
  Result<TestOrder> order = OrderTests(tests);
  ASSERT_TRUE(order.ok()) << order.error().message;
  EXPECT_THAT(Waits(*order, tests, 0), IsEmpty());
  EXPECT_THAT(Waits(*order, tests, 1), ElementsAre("a")) << "not 'gone', never itself";
  EXPECT_FALSE(order->group[0] || order->group[1]) << "DEPENDS alone groups nothing";
}

TEST(TestOrder, FixturesSetupBeforeUsersAndCleanupAfterAll) {
  // The example of CMake's FIXTURES_REQUIRED documentation.
  Ordering setup_users = SetsUp({"DB"});
  setup_users.depends = {"createDB"};
  std::vector<TestSpec> tests = {
      Spec("testsDone", CleansUp({"DB", "Foo"})), Spec("fooOnly", Requires({"Foo"})),
      Spec("dbOnly", Requires({"DB"})),           Spec("dbWithFoo", Requires({"DB", "Foo"})),
      Spec("createDB", SetsUp({"DB"})),           Spec("setupUsers", setup_users),
      Spec("cleanupDB", CleansUp({"DB"})),        Spec("cleanupFoo", CleansUp({"Foo"}))};
  Result<TestOrder> order = OrderTests(tests);
  ASSERT_TRUE(order.ok()) << order.error().message;
  EXPECT_THAT(Waits(*order, tests, 0),  // testsDone
              ElementsAre("createDB", "setupUsers", "dbOnly", "dbWithFoo", "fooOnly", "dbWithFoo"));
  EXPECT_THAT(Waits(*order, tests, 1), IsEmpty()) << "Foo has no setup";
  EXPECT_THAT(Waits(*order, tests, 2), ElementsAre("createDB(DB)", "setupUsers(DB)"));
  EXPECT_THAT(Waits(*order, tests, 3), ElementsAre("createDB(DB)", "setupUsers(DB)"));
  EXPECT_THAT(Waits(*order, tests, 4), IsEmpty());
  EXPECT_THAT(Waits(*order, tests, 5), ElementsAre("createDB"));
  EXPECT_THAT(Waits(*order, tests, 6),
              ElementsAre("createDB", "setupUsers", "dbOnly", "dbWithFoo"));
  // DB and Foo share tests: one group, on one worker.
  for (std::size_t t = 0; t < tests.size(); ++t) {
    ASSERT_TRUE(order->group[t].has_value()) << tests[t].name;
    EXPECT_EQ(*order->group[t], *order->group[0]) << tests[t].name;
  }
}

TEST(TestOrder, SeparateFixturesAreSeparateGroups) {
  std::vector<TestSpec> tests = {Spec("s1", SetsUp({"one"})), Spec("u1", Requires({"one"})),
                                 Spec("s2", SetsUp({"two"})), Spec("u2", Requires({"two"})),
                                 Spec("free")};
  Result<TestOrder> order = OrderTests(tests);
  ASSERT_TRUE(order.ok()) << order.error().message;
  EXPECT_EQ(order->group[0], order->group[1]);
  EXPECT_EQ(order->group[2], order->group[3]);
  EXPECT_NE(order->group[0], order->group[2]);
  EXPECT_FALSE(order->group[4].has_value());
}

TEST(TestOrder, ARequiredFixtureWithoutSetupOrCleanupOrdersNothing) {
  std::vector<TestSpec> tests = {Spec("u1", Requires({"nobody"})),
                                 Spec("u2", Requires({"nobody"}))};
  Result<TestOrder> order = OrderTests(tests);
  ASSERT_TRUE(order.ok()) << order.error().message;
  EXPECT_TRUE(order->empty()) << "ctest runs such tests as they are";
}

TEST(TestOrder, DisabledTestsTakeNoPart) {
  std::vector<TestSpec> tests = {Spec("setup", SetsUp({"F"})), Spec("user", Requires({"F"})),
                                 Spec("later", Depends({"setup"}))};
  tests[0].skip_reason = "disabled";
  Result<TestOrder> order = OrderTests(tests);
  ASSERT_TRUE(order.ok()) << order.error().message;
  EXPECT_TRUE(order->empty()) << "a disabled setup is as if it passed";
}

TEST(TestOrder, ACycleIsAnErrorNamingIt) {
  std::vector<TestSpec> tests = {Spec("free"), Spec("a", Depends({"c"})), Spec("b", Depends({"a"})),
                                 Spec("c", Depends({"b"}))};
  Result<TestOrder> order = OrderTests(tests);
  ASSERT_FALSE(order.ok());
  EXPECT_THAT(order.error().message, HasSubstr("form a cycle"));
  EXPECT_THAT(order.error().message,
              HasSubstr("'a' waits for 'c', which waits for 'b', which waits for 'a'"));

  // Through a fixture: the setup depends on its own user.
  std::vector<TestSpec> fixture = {Spec("setup", SetsUp({"F"})), Spec("user", Requires({"F"}))};
  fixture[0].EditSettings().ordering.depends = {"user"};
  order = OrderTests(fixture);
  ASSERT_FALSE(order.ok());
  EXPECT_THAT(order.error().message, HasSubstr("waits for 'user', which waits for 'setup'"));
}

std::vector<std::string> Names(const std::vector<TestSpec>& tests) {
  std::vector<std::string> names;
  for (const TestSpec& test : tests) names.push_back(test.name);
  return names;
}

TEST(TestOrder, ASelectedUserBringsItsFixturesSetupAndCleanupTransitively) {
  Ordering setup = SetsUp({"db"});
  setup.fixtures_required = {"net"};  // the setup itself needs the network up
  std::vector<TestSpec> all = {
      Spec("net_up", SetsUp({"net"})),      Spec("db_setup", setup),
      Spec("user", Requires({"db"})),       Spec("other"),
      Spec("db_cleanup", CleansUp({"db"})), Spec("net_down", CleansUp({"net"})),
      Spec("other_setup", SetsUp({"x"}))};
  std::vector<std::string> added;
  std::vector<TestSpec> run = WithFixtureTests(all, {all[2]}, &added);
  EXPECT_THAT(Names(run), ElementsAre("net_up", "db_setup", "user", "db_cleanup", "net_down"));
  EXPECT_THAT(added,
              ::testing::UnorderedElementsAre("net_up", "db_setup", "db_cleanup", "net_down"));

  added.clear();
  run = WithFixtureTests(all, {all[3]}, &added);
  EXPECT_THAT(Names(run), ElementsAre("other"));
  EXPECT_THAT(added, IsEmpty());
}

TEST(TestOrder, ADisabledUserBringsNothingAndADisabledSetupIsNotAdded) {
  std::vector<TestSpec> all = {Spec("setup", SetsUp({"F"})), Spec("user", Requires({"F"})),
                               Spec("cleanup", CleansUp({"F"}))};
  all[0].skip_reason = "disabled";
  std::vector<TestSpec> run = WithFixtureTests(all, {all[1]});
  EXPECT_THAT(Names(run), ElementsAre("user", "cleanup"));

  std::vector<TestSpec> disabled_user = {Spec("setup", SetsUp({"F"})),
                                         Spec("user", Requires({"F"}))};
  disabled_user[1].skip_reason = "disabled";
  EXPECT_THAT(Names(WithFixtureTests(disabled_user, {disabled_user[1]})), ElementsAre("user"));
}

}  // namespace
}  // namespace testfarm::coordinator
