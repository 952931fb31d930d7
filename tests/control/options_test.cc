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

TEST(Options, ControlSocketDefaultsAndOverrides) {
  Argv none{"mtlsgw"};
  Options defaults;
  EXPECT_FALSE(parse_options(none.pointers, defaults).has_value());
  EXPECT_EQ(defaults.control_socket, "/run/mtlsgw/control.sock");
  EXPECT_TRUE(defaults.control_uids.empty());
  EXPECT_TRUE(defaults.control_gids.empty());

  Argv path{"mtlsgw", "--control-socket", "/tmp/gw/control.sock"};
  Options o;
  EXPECT_FALSE(parse_options(path.pointers, o).has_value());
  EXPECT_EQ(o.control_socket, "/tmp/gw/control.sock");

  for (const char* off : {"none", ""}) {
    Argv disabled{"mtlsgw", "--control-socket", off};
    Options d;
    EXPECT_FALSE(parse_options(disabled.pointers, d).has_value());
    EXPECT_EQ(d.control_socket, "") << off;
  }
}

TEST(Options, ControlPeersByNumberOrName) {
  Argv a{"mtlsgw", "--control-uid", "1000", "--control-uid", "root", "--control-gid", "4343",
         "--control-gid", "0", "--stats-interval", "1"};
  Options o;
  EXPECT_FALSE(parse_options(a.pointers, o).has_value());
  EXPECT_EQ(o.control_uids, (std::vector<uid_t>{1000, 0}));
  EXPECT_EQ(o.control_gids, (std::vector<gid_t>{4343, 0}));
  EXPECT_EQ(o.stats_interval_s, 1u);
}

TEST(Options, BadControlOptionsAreUsageErrors) {
  const std::string long_path = "/tmp/" + std::string(110, 'x');
  for (auto args : {std::vector<std::string>{"mtlsgw", "--control-uid", "no-such-user-mtlsgw"},
                    std::vector<std::string>{"mtlsgw", "--control-gid", "no-such-group-mtlsgw"},
                    std::vector<std::string>{"mtlsgw", "--control-uid", "-1"},
                    std::vector<std::string>{"mtlsgw", "--control-uid"},
                    std::vector<std::string>{"mtlsgw", "--control-socket", long_path}}) {
    std::vector<char*> pointers;
    for (auto& arg : args) pointers.push_back(arg.data());
    Options o;
    auto rc = parse_options(pointers, o);
    ASSERT_TRUE(rc.has_value()) << args[1] << " " << (args.size() > 2 ? args[2] : "");
    EXPECT_EQ(*rc, 2);
  }
}

}  // namespace
}  // namespace mtlsgw::control
