#include "control/options.h"

#include <gtest/gtest.h>

#include <string>

namespace mtlsgw::control {
namespace {

struct Argv {
  std::vector<std::string> storage;
  std::vector<char*> pointers;
  explicit Argv(std::initializer_list<const char*> args) : storage(args.begin(), args.end()) {
    for (auto& s : storage) pointers.push_back(s.data());
  }
  int argc() { return static_cast<int>(pointers.size()); }
  char** argv() { return pointers.data(); }
};

std::vector<std::string> strings(const std::vector<char*>& v) { return {v.begin(), v.end()}; }

TEST(Options, SplitsEalFromGatewayOptionsAtDoubleDash) {
  Argv a{"mtlsgw", "-l", "0-1", "--no-huge", "--", "--config", "gw.json", "--busy-poll"};
  SplitArgs split = split_arguments(a.argc(), a.argv());
  EXPECT_EQ(strings(split.eal), (std::vector<std::string>{"mtlsgw", "-l", "0-1", "--no-huge"}));
  EXPECT_EQ(strings(split.gateway),
            (std::vector<std::string>{"mtlsgw", "--config", "gw.json", "--busy-poll"}));
}

TEST(Options, WithoutDoubleDashEverythingIsEal) {
  Argv a{"mtlsgw", "-l", "0-1"};
  SplitArgs split = split_arguments(a.argc(), a.argv());
  EXPECT_EQ(split.eal.size(), 3u);
  EXPECT_EQ(split.gateway.size(), 1u);
}

TEST(Options, BareHelpIsOurs) {
  Argv a{"mtlsgw", "--help"};
  SplitArgs split = split_arguments(a.argc(), a.argv());
  EXPECT_EQ(strings(split.eal), (std::vector<std::string>{"mtlsgw"}));
  EXPECT_EQ(strings(split.gateway), (std::vector<std::string>{"mtlsgw", "--help"}));
}

TEST(Options, ParsesGatewayOptions) {
  Argv a{"mtlsgw", "--busy-poll", "--idle-sleep-max-us", "50", "--stats-interval", "5"};
  Options o;
  EXPECT_FALSE(parse_options(a.pointers, o).has_value());
  EXPECT_TRUE(o.busy_poll);
  EXPECT_EQ(o.idle_sleep_max_us, 50u);
  EXPECT_EQ(o.stats_interval_s, 5u);
}

TEST(Options, RejectsBadOptionsWithAnExitCode) {
  Argv unknown{"mtlsgw", "--no-such-option"};
  Options o;
  auto rc = parse_options(unknown.pointers, o);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 2);

  Argv range{"mtlsgw", "--idle-sleep-max-us", "0"};
  rc = parse_options(range.pointers, o);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 2);

  Argv missing{"mtlsgw", "--config", "/nonexistent/gw.json"};
  rc = parse_options(missing.pointers, o);
  ASSERT_TRUE(rc.has_value());
  EXPECT_EQ(*rc, 2);
}

}  // namespace
}  // namespace mtlsgw::control
