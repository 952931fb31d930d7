#pragma once
// Command line of mtlsgw. DPDK's convention: `mtlsgw [EAL options] --
// [gateway options]`. The gateway options are parsed before EAL starts, so
// --help, --version and a bad config file answer without touching devices.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mtlsgw::control {

struct Options {
  std::string config_path;          // empty: the embedded default
  bool busy_poll = false;
  uint32_t idle_sleep_max_us = 200;
  uint32_t stats_interval_s = 0;    // 0: no periodic report
  bool check_config = false;        // validate, print, exit
  std::string fault_rx;             // fault injection on received frames
  std::string fault_tx;             // and on sent frames (off when empty)
  uint64_t fault_seed = 1;
  // The control socket (docs/control.md); empty: no control socket.
  std::string control_socket = "/run/mtlsgw/control.sock";
  std::vector<uid_t> control_uids;  // allowed besides root and the gateway's own user
  std::vector<gid_t> control_gids;
  // Where committed control-socket changes are kept and restored from
  // (state_store.h); empty: they last until the process ends.
  std::string state_dir;
};

struct SplitArgs {
  std::vector<char*> eal;      // argv[0] followed by EAL options
  std::vector<char*> gateway;  // argv[0] followed by gateway options
};

SplitArgs split_arguments(int argc, char** argv);

// Parses the gateway options. Returns the exit code when the process should
// stop here (help, version, usage error), after printing what it must.
std::optional<int> parse_options(std::vector<char*>& args, Options& out);

}  // namespace mtlsgw::control
