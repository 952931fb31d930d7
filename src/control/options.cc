#include "control/options.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <grp.h>
#include <pwd.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>

#include "mtlsgw_version.h"

namespace mtlsgw::control {

SplitArgs split_arguments(int argc, char** argv) {
  SplitArgs split;
  split.eal.push_back(argv[0]);
  split.gateway.push_back(argv[0]);
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) split.eal.push_back(argv[i]);
  if (i < argc) {
    for (++i; i < argc; ++i) split.gateway.push_back(argv[i]);
  } else if (split.eal.size() == 2 &&
             (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
              std::strcmp(argv[1], "--version") == 0)) {
    // `mtlsgw --help` without EAL options means our help, not EAL's.
    split.gateway.push_back(argv[1]);
    split.eal.pop_back();
  }
  return split;
}

namespace {

// A number, or a name the user or group database knows; nullopt otherwise.
template <typename Id>
std::optional<Id> numeric_id(const std::string& text) {
  Id id{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return id;
}

std::optional<uid_t> user_id(const std::string& text) {
  if (auto id = numeric_id<uid_t>(text)) return id;
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwnam_r(text.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || !found) {
    return std::nullopt;
  }
  return found->pw_uid;
}

std::optional<gid_t> group_id(const std::string& text) {
  if (auto id = numeric_id<gid_t>(text)) return id;
  group entry{};
  group* found = nullptr;
  std::vector<char> buffer(16384);
  if (getgrnam_r(text.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || !found) {
    return std::nullopt;
  }
  return found->gr_gid;
}

}  // namespace

std::optional<int> parse_options(std::vector<char*>& args, Options& out) {
  CLI::App app{"mtlsgw: kernel-bypass mutual-TLS gateway",
               "mtlsgw [EAL options] --"};
  app.footer(
      "EAL options are DPDK's own (-l/--lcores, -a, --vdev, --no-huge, -m, --file-prefix, ...):\n"
      "the main lcore runs the control thread, every other lcore a poll-mode worker.\n"
      "Example (net_tap, no hugepages):\n"
      "  mtlsgw -l 0-1 --no-huge -m 256 --no-pci \\\n"
      "      --vdev net_tap0,iface=mtg0,mac=02:00:c6:12:00:02 -- --config gw.json\n"
      "(net_tap gives the kernel side the PMD's MAC unless the kernel interface gets its own:\n"
      " ip link set mtg0 address 02:00:c6:12:00:01)");
  bool version = false;
  app.add_option("-c,--config", out.config_path,
                 "JSON configuration file (default: the embedded net_tap configuration)")
      ->check(CLI::ExistingFile);
  app.add_flag("--busy-poll", out.busy_poll,
               "Poll without ever sleeping (dedicated cores); default is adaptive idle");
  app.add_option("--idle-sleep-max-us", out.idle_sleep_max_us,
                 "Longest idle sleep of a worker, the bound on added wake-up latency")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--stats-interval", out.stats_interval_s,
                 "Print counters every N seconds (0: only at exit)");
  app.add_flag("--check-config", out.check_config,
               "Validate the configuration, print it and any warnings, and exit");
  app.add_option("--fault-rx", out.fault_rx,
                 "Inject faults into received frames, for tests: "
                 "drop=P,duplicate=P,reorder=P,corrupt=P,delay_us=N,reorder_us=N");
  app.add_option("--fault-tx", out.fault_tx, "Inject faults into sent frames (same syntax)");
  app.add_option("--fault-seed", out.fault_seed,
                 "Seed of the fault injectors: the same seed replays the same decisions");
  std::vector<std::string> control_users;
  std::vector<std::string> control_groups;
  app.add_option("--control-socket", out.control_socket,
                 "Unix socket for mtlsgwctl (default /run/mtlsgw/control.sock; \"none\" or "
                 "empty: no control socket)")
      ->type_name("PATH")
      ->check(CLI::Validator(
          [](std::string& path) -> std::string {
            if (path.size() >= sizeof(sockaddr_un::sun_path)) {
              return fmt::format("longer than the {} bytes a Unix socket path may have",
                                 sizeof(sockaddr_un::sun_path) - 1);
            }
            return "";
          },
          "", ""));
  app.add_option("--control-uid", control_users,
                 "A user allowed on the control socket besides root and the gateway's own "
                 "(number or name; repeatable)")
      ->type_name("UID")
      ->allow_extra_args(false)
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            return user_id(text) ? "" : fmt::format("no such user: {}", text);
          },
          "", ""));
  app.add_option("--control-gid", control_groups,
                 "A group whose members may use the control socket (number or name; repeatable)")
      ->type_name("GID")
      ->allow_extra_args(false)
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            return group_id(text) ? "" : fmt::format("no such group: {}", text);
          },
          "", ""));
  app.add_option("--state-dir", out.state_dir,
                 "Directory where every committed control-socket change is saved and restored "
                 "from at start (default: none, changes last until the gateway stops)")
      ->type_name("DIR");
  app.add_flag("-V,--version", version, "Print the version and exit");
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    // Help is a success; every usage error is exit code 2, like a bad
    // config file, whatever CLI11's own code for it.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (version) {
    fmt::print("mtlsgw {}\n", MTLSGW_VERSION);
    return 0;
  }
  if (out.control_socket == "none") out.control_socket.clear();
  for (const std::string& user : control_users) out.control_uids.push_back(*user_id(user));
  for (const std::string& group : control_groups) out.control_gids.push_back(*group_id(group));
  return std::nullopt;
}

}  // namespace mtlsgw::control
