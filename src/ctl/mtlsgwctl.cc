// mtlsgwctl: the control-socket client. The control socket arrives with the
// control-plane issue; until then it answers --version and --help.

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mtlsgw_version.h"

int main(int argc, char** argv) {
  CLI::App app{"mtlsgwctl: control client for the mtlsgw gateway"};
  bool version = false;
  app.add_flag("-V,--version", version, "Print the version and exit");
  app.footer("Counters of a running gateway: dpdk-telemetry.py -f <file-prefix>, "
             "then /mtlsgw/stats, /mtlsgw/workers, /mtlsgw/ports, /mtlsgw/arp.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (version) {
    fmt::print("mtlsgwctl {}\n", MTLSGW_VERSION);
    return 0;
  }
  fmt::print(stderr, "mtlsgwctl: no command given (see --help)\n");
  return 2;
}
