#include "coordinator/test_order.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <utility>

namespace testfarm::coordinator {

namespace {

// A disabled test is reported skipped and takes no part in fixtures or ordering.
bool TakesPart(const TestSpec& test) {
  return test.skip_reason.empty();
}

std::size_t Root(std::vector<std::size_t>& parent, std::size_t t) {
  while (parent[t] != t) {
    parent[t] = parent[parent[t]];
    t = parent[t];
  }
  return t;
}

// Tests that Kahn's algorithm cannot order each wait for another such test: follow the waits
// from one of them until a test repeats; the repeat closes a cycle.
std::string DescribeCycle(const std::vector<TestSpec>& tests, const TestOrder& order,
                          const std::vector<bool>& ordered) {
  std::size_t start =
      static_cast<std::size_t>(std::find(ordered.begin(), ordered.end(), false) - ordered.begin());
  std::vector<std::size_t> path{start};
  std::map<std::size_t, std::size_t> position{{start, 0}};
  for (;;) {
    std::size_t at = path.back();
    std::size_t next = at;
    for (const TestOrder::Wait& wait : order.waits[at]) {
      if (!ordered[wait.on]) {
        next = wait.on;
        break;
      }
    }
    auto seen = position.find(next);
    if (seen != position.end()) {
      std::string text = "'" + tests[next].name + "'";
      for (std::size_t i = seen->second + 1; i < path.size(); ++i) {
        text += " waits for '" + tests[path[i]].name + "', which";
      }
      return text + " waits for '" + tests[next].name + "'";
    }
    position[next] = path.size();
    path.push_back(next);
  }
}

}  // namespace

bool TestOrder::empty() const {
  return std::all_of(waits.begin(), waits.end(), [](const auto& w) { return w.empty(); }) &&
         std::none_of(group.begin(), group.end(), [](const auto& g) { return g.has_value(); });
}

Result<TestOrder> OrderTests(const std::vector<TestSpec>& tests) {
  const std::size_t n = tests.size();
  TestOrder order;
  order.waits.resize(n);
  order.group.resize(n);
  std::map<std::string, std::size_t> index;
  std::map<std::string, std::vector<std::size_t>> setups;
  std::map<std::string, std::vector<std::size_t>> users;
  std::map<std::string, std::vector<std::size_t>> cleanups;
  for (std::size_t t = 0; t < n; ++t) {
    if (!TakesPart(tests[t])) continue;
    index.emplace(tests[t].name, t);
    const Ordering& o = tests[t].settings().ordering;
    for (const std::string& f : o.fixtures_setup) setups[f].push_back(t);
    for (const std::string& f : o.fixtures_required) users[f].push_back(t);
    for (const std::string& f : o.fixtures_cleanup) cleanups[f].push_back(t);
  }
  for (std::size_t t = 0; t < n; ++t) {
    if (!TakesPart(tests[t])) continue;
    for (const std::string& name : tests[t].settings().ordering.depends) {
      auto on = index.find(name);
      if (on != index.end() && on->second != t) order.waits[t].push_back({on->second, {}});
    }
  }
  std::vector<std::size_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  std::set<std::string> fixtures;
  for (const auto& [f, list] : setups) fixtures.insert(f);
  for (const auto& [f, list] : cleanups) fixtures.insert(f);
  for (const std::string& f : fixtures) {
    const std::vector<std::size_t>& up = setups[f];
    const std::vector<std::size_t>& using_it = users[f];
    const std::vector<std::size_t>& down = cleanups[f];
    for (std::size_t u : using_it) {
      for (std::size_t s : up) {
        if (s != u) order.waits[u].push_back({s, f});
      }
    }
    for (std::size_t c : down) {
      for (const auto* before : {&up, &using_it}) {
        for (std::size_t b : *before) {
          if (b != c) order.waits[c].push_back({b, {}});
        }
      }
    }
    std::vector<std::size_t> members = up;
    members.insert(members.end(), using_it.begin(), using_it.end());
    members.insert(members.end(), down.begin(), down.end());
    for (std::size_t m : members) parent[Root(parent, m)] = Root(parent, members.front());
    for (std::size_t m : members) order.group[m] = m;  // marked; the root is set below
  }
  for (std::size_t t = 0; t < n; ++t) {
    if (order.group[t]) order.group[t] = Root(parent, t);
  }

  // Kahn's algorithm: whatever it cannot order waits, through a cycle, for itself.
  std::vector<std::size_t> pending(n);
  std::vector<std::vector<std::size_t>> waiting_on(n);
  for (std::size_t t = 0; t < n; ++t) {
    pending[t] = order.waits[t].size();
    for (const TestOrder::Wait& wait : order.waits[t]) waiting_on[wait.on].push_back(t);
  }
  std::vector<bool> ordered(n, false);
  std::vector<std::size_t> ready;
  for (std::size_t t = 0; t < n; ++t) {
    if (pending[t] == 0) ready.push_back(t);
  }
  while (!ready.empty()) {
    std::size_t t = ready.back();
    ready.pop_back();
    ordered[t] = true;
    for (std::size_t waiter : waiting_on[t]) {
      if (--pending[waiter] == 0) ready.push_back(waiter);
    }
  }
  if (std::find(ordered.begin(), ordered.end(), false) != ordered.end()) {
    return Error{
        "the tests' DEPENDS and fixtures form a cycle, so none of its tests could ever "
        "start: " +
        DescribeCycle(tests, order, ordered)};
  }
  return order;
}

std::vector<TestSpec> WithFixtureTests(const std::vector<TestSpec>& all,
                                       std::vector<TestSpec> selected,
                                       std::vector<std::string>* added) {
  std::map<std::string, std::vector<std::size_t>> providers;  // fixture -> setup/cleanup tests
  std::map<std::string, std::size_t> index;
  for (std::size_t t = 0; t < all.size(); ++t) {
    if (!TakesPart(all[t])) continue;
    index.emplace(all[t].name, t);
    for (const std::string& f : all[t].settings().ordering.fixtures_setup)
      providers[f].push_back(t);
    for (const std::string& f : all[t].settings().ordering.fixtures_cleanup)
      providers[f].push_back(t);
  }
  std::set<std::string> chosen;
  std::vector<std::size_t> work;
  for (const TestSpec& test : selected) {
    chosen.insert(test.name);
    auto it = index.find(test.name);
    if (it != index.end()) work.push_back(it->second);
  }
  bool grew = false;
  while (!work.empty()) {
    const TestSpec& test = all[work.back()];
    work.pop_back();
    for (const std::string& f : test.settings().ordering.fixtures_required) {
      for (std::size_t p : providers[f]) {
        if (!chosen.insert(all[p].name).second) continue;
        grew = true;
        if (added != nullptr) added->push_back(all[p].name);
        work.push_back(p);
      }
    }
  }
  if (!grew) return selected;
  std::vector<TestSpec> out;
  for (const TestSpec& test : all) {
    if (chosen.count(test.name) != 0) out.push_back(test);
  }
  return out;
}

}  // namespace testfarm::coordinator
