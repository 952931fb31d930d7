#pragma once
// Counters and tables through DPDK's telemetry socket
// (/var/run/dpdk/<file-prefix>/dpdk_telemetry.v2), under /mtlsgw/, so that
// `dpdk-telemetry.py -f <prefix>` and scripts can read a running gateway:
//   /mtlsgw/stats    summed counters and drops
//   /mtlsgw/drops    every drop reason, summed over workers
//   /mtlsgw/workers  per worker: lcore, busy/idle cycles, load, counters
//   /mtlsgw/ports    per port: MAC, addresses, link, ethdev statistics
//   /mtlsgw/arp      every worker's neighbour table
//   /mtlsgw/version

namespace mtlsgw::dataplane {
class Dataplane;
}

namespace mtlsgw::control {

// Registers the commands (once per process) and points them at dataplane.
void telemetry_attach(const dataplane::Dataplane* dataplane);
// Detaches; commands answer with an error until the next attach. Waits for
// any command in progress.
void telemetry_detach();

}  // namespace mtlsgw::control
