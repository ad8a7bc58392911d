#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "coordinator/plan.h"

namespace testfarm::coordinator {
namespace {

SuiteSpec Suite(std::string name, std::vector<std::string> labels = {}) {
  SuiteSpec s;
  s.name = std::move(name);
  s.command = {"/bin/" + s.name};
  s.labels = std::move(labels);
  return s;
}

std::vector<std::string> Names(const std::vector<TestSpec>& tests) {
  std::vector<std::string> names;
  for (const auto& t : tests) names.push_back(t.name);
  return names;
}

TEST(ExpandSuites, GtestSuitesBecomeOneTestPerCase) {
  std::vector<SuiteSpec> suites = {Suite("plain"), Suite("g")};
  suites[1].timeout = Millis(5000);
  std::vector<std::optional<Listing>> listings(2);
  listings[1] = Listing{
      ExitState::Exited(0), "A.\n  x\n  DISABLED_y\nP/B.\n  z/0  # GetParam() = 1\n", "", {}};
  auto tests = ExpandSuites(suites, listings, Millis(1000));
  EXPECT_EQ(Names(tests),
            (std::vector<std::string>{"plain", "g::A.x", "g::A.DISABLED_y", "g::P/B.z/0"}));
  EXPECT_EQ(tests[0].timeout, Millis(1000));
  EXPECT_EQ(tests[1].timeout, Millis(5000));
  EXPECT_EQ(tests[1].gtest_case, "A.x");
  EXPECT_TRUE(tests[1].skip_reason.empty());
  EXPECT_FALSE(tests[2].skip_reason.empty());
  EXPECT_EQ(tests[1].settings().command, suites[1].command) << "the filter is added per job";
}

TEST(ExpandSuites, TheCasesOfASuiteShareOneCopyOfItsSettings) {
  std::vector<SuiteSpec> suites = {Suite("g")};
  suites[0].env = {{"K", "v"}};
  std::vector<std::optional<Listing>> listings = {
      Listing{ExitState::Exited(0), "A.\n  x\n  y\n  z\n", "", {}}};
  auto tests = ExpandSuites(suites, listings, Millis(0));
  ASSERT_EQ(tests.size(), 3u);
  EXPECT_EQ(tests[0].shared_settings.get(), tests[2].shared_settings.get());
  EXPECT_EQ(tests[0].shared_settings.use_count(), 3);
  // Changing one case's settings gives it its own copy; its siblings keep theirs.
  tests[1].EditSettings().env["K"] = "w";
  EXPECT_NE(tests[1].shared_settings.get(), tests[0].shared_settings.get());
  EXPECT_EQ(tests[0].settings().env.at("K"), "v");
  EXPECT_EQ(tests[2].settings().env.at("K"), "v");
  EXPECT_EQ(tests[1].settings().env.at("K"), "w");
  EXPECT_EQ(tests[0].shared_settings.use_count(), 2);
  TestSpec none;
  EXPECT_TRUE(none.settings().command.empty()) << "a test with no settings reads empty ones";
}

TEST(ExpandSuites, TheJsonListingIsPreferredToThePrintedOne) {
  std::vector<SuiteSpec> suites = {Suite("g")};
  // The printed listing was cut off by the capture cap; the file has every case.
  std::vector<std::optional<Listing>> listings = {
      Listing{ExitState::Exited(0), "A.\n  x\n  y", "",
              R"({"testsuites": [{"name": "A", "testsuite": [{"name": "x"}, {"name": "y1"}]}]})"}};
  auto tests = ExpandSuites(suites, listings, Millis(0));
  EXPECT_EQ(Names(tests), (std::vector<std::string>{"g::A.x", "g::A.y1"}));
  listings[0]->json = "{\"tests\": 3";  // half written
  tests = ExpandSuites(suites, listings, Millis(0));
  ASSERT_EQ(tests.size(), 1u);
  EXPECT_NE(tests[0].error.find("not a GoogleTest listing: not a gtest JSON listing"),
            std::string::npos)
      << tests[0].error;
}

TEST(ExpandSuites, AListingThatCrashedIsOneFailedTestWithItsOutput) {
  std::vector<SuiteSpec> suites = {Suite("g")};
  std::vector<std::optional<Listing>> listings = {
      Listing{ExitState::Signaled(11, false), "partial", "boom", {}}};
  auto tests = ExpandSuites(suites, listings, Millis(0));
  ASSERT_EQ(tests.size(), 1u);
  EXPECT_EQ(tests[0].name, "g");
  EXPECT_EQ(tests[0].error, "listing its tests failed: SIGSEGV");
  EXPECT_EQ(tests[0].error_output, "partialboom");
}

TEST(ExpandSuites, GarbageInsteadOfAListingIsAnError) {
  std::vector<SuiteSpec> suites = {Suite("g")};
  std::vector<std::optional<Listing>> listings = {
      Listing{ExitState::Exited(0), "  orphan case\n", "", {}}};
  auto tests = ExpandSuites(suites, listings, Millis(0));
  ASSERT_EQ(tests.size(), 1u);
  EXPECT_NE(tests[0].error.find("not a GoogleTest listing"), std::string::npos) << tests[0].error;
}

TEST(ExpandSuites, APlainBinaryDeclaredAsGtestIsAnErrorNotAnEmptySuite) {
  std::vector<SuiteSpec> suites = {Suite("g")};
  std::vector<std::optional<Listing>> silent = {Listing{ExitState::Exited(0), "", "", {}}};
  auto tests = ExpandSuites(suites, silent, Millis(0));
  ASSERT_EQ(tests.size(), 1u);
  EXPECT_NE(tests[0].error.find("listed no tests"), std::string::npos) << tests[0].error;
  std::vector<std::optional<Listing>> chatty = {Listing{ExitState::Exited(0), "hello\n", "", {}}};
  tests = ExpandSuites(suites, chatty, Millis(0));
  ASSERT_EQ(tests.size(), 1u);
  EXPECT_NE(tests[0].error.find("not a GoogleTest listing"), std::string::npos) << tests[0].error;
}

TEST(ExpandSuites, DisabledSuitesAreSkippedWithoutListing) {
  std::vector<SuiteSpec> suites = {Suite("off")};
  suites[0].disabled = true;
  auto tests = ExpandSuites(suites, {std::nullopt}, Millis(0));
  ASSERT_EQ(tests.size(), 1u);
  EXPECT_EQ(tests[0].skip_reason, "disabled");
}

TEST(Select, FiltersExcludesAndLabels) {
  std::vector<SuiteSpec> suites = {Suite("fast_a", {"fast"}), Suite("fast_b", {"fast"}),
                                   Suite("slow", {"slow"})};
  auto tests = ExpandSuites(suites, {}, Millis(0));
  auto picked = Select(tests, Selection{{"fast_*"}, {"*_b"}, {}});
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(Names(*picked), (std::vector<std::string>{"fast_a"}));
  auto by_label = Select(tests, Selection{{}, {}, {"slow"}});
  ASSERT_TRUE(by_label.ok());
  EXPECT_EQ(Names(*by_label), (std::vector<std::string>{"slow"}));
}

TEST(Select, ASelectionThatSelectsNothingIsAnError) {
  auto tests = ExpandSuites({Suite("a")}, {}, Millis(0));
  auto none = Select(tests, Selection{{"zzz*"}, {}, {}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "--filter 'zzz*' matches no test");
  auto label = Select(tests, Selection{{}, {}, {"gpu"}});
  ASSERT_FALSE(label.ok());
  EXPECT_EQ(label.error().message, "--label 'gpu' matches no test");
  auto excluded = Select(tests, Selection{{}, {"*"}, {}});
  ASSERT_FALSE(excluded.ok());
}

TEST(GlobMatch, StarCrossesSeparators) {
  EXPECT_TRUE(GlobMatch("bin::*", "bin::Suite/0.Case/1"));
  EXPECT_TRUE(GlobMatch("*Case?", "bin::A.Case1"));
  EXPECT_FALSE(GlobMatch("*Case?", "bin::A.Case12"));
  EXPECT_TRUE(GlobMatch("bin::[AB].*", "bin::B.x"));
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

std::vector<TestSpec> Tests(int count) {
  std::vector<TestSpec> tests;
  for (int i = 0; i < count; ++i) {
    TestSpec t;
    t.name = "suite::Case." + std::to_string(i);
    tests.push_back(std::move(t));
  }
  return tests;
}

TEST(Partition, ParsesBothKindsAndRefusesTheRest) {
  auto hash = ParsePartition("hash:2/5");
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->kind, Partition::Kind::kHash);
  EXPECT_EQ(hash->index, 2u);
  EXPECT_EQ(hash->count, 5u);
  auto count = ParsePartition("count:1/1");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->kind, Partition::Kind::kCount);
  for (const char* bad : {"", "hash", "hash:", "hash:1", "hash:0/2", "hash:3/2", "count:-1/2",
                          "count:1/0", "round:1/2", "hash:1/2/3", "hash:x/2", "hash:1/9999999"}) {
    EXPECT_FALSE(ParsePartition(bad).ok()) << bad;
  }
}

TEST(Partition, PartsAreDisjointCoverEverythingAndHashedPartsAreStable) {
  for (Partition::Kind kind : {Partition::Kind::kHash, Partition::Kind::kCount}) {
    std::multiset<std::string> seen;
    for (unsigned m = 1; m <= 4; ++m) {
      for (const TestSpec& t : TakePartition(Tests(50), Partition{kind, m, 4})) seen.insert(t.name);
    }
    EXPECT_EQ(seen.size(), 50u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 50u);
  }
  // count: every Nth in order.
  EXPECT_EQ(Names(TakePartition(Tests(7), Partition{Partition::Kind::kCount, 2, 3})),
            (std::vector<std::string>{"suite::Case.1", "suite::Case.4"}));
  // hash: a test's part depends on its name alone, not on the others.
  auto part = [](const std::vector<TestSpec>& tests) {
    std::set<std::string> names;
    for (const TestSpec& t : TakePartition(tests, Partition{Partition::Kind::kHash, 1, 3}))
      names.insert(t.name);
    return names;
  };
  std::set<std::string> of_fifty = part(Tests(50));
  std::set<std::string> of_ten = part(Tests(10));
  for (const std::string& name : of_ten) EXPECT_EQ(of_fifty.count(name), 1u) << name;
  EXPECT_FALSE(of_ten.empty());
  EXPECT_LT(of_fifty.size(), 30u) << "about a third";
}

TEST(Shuffle, TheSameSeedGivesTheSameOrderAndEveryTestStays) {
  auto a = Tests(20);
  auto b = Tests(20);
  Shuffle(&a, 42);
  Shuffle(&b, 42);
  EXPECT_EQ(Names(a), Names(b));
  EXPECT_NE(Names(a), Names(Tests(20)));
  auto c = Tests(20);
  Shuffle(&c, 43);
  EXPECT_NE(Names(a), Names(c));
  std::vector<std::string> sorted = Names(a);
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> expected = Names(Tests(20));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(sorted, expected);
  // Pinned: the order is ours (splitmix64 + Fisher-Yates), the same on every machine.
  auto pinned = Tests(5);
  Shuffle(&pinned, 1);
  static const std::vector<std::string> kFirstOrder = Names(pinned);
  auto again = Tests(5);
  Shuffle(&again, 1);
  EXPECT_EQ(Names(again), kFirstOrder);
}

}  // namespace
}  // namespace testfarm::coordinator
