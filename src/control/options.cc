#include "control/options.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

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
  return std::nullopt;
}

}  // namespace mtlsgw::control
