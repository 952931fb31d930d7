#pragma once
// The control thread: runs on the main lcore while the workers poll. For now
// it waits for SIGINT/SIGTERM and prints periodic reports; the control socket
// (issue: control plane) will be served from here too.

#include <cstdint>

namespace mtlsgw::dataplane {
class Dataplane;
}

namespace mtlsgw::control {

// Installs SIGINT/SIGTERM handlers that ask the control thread to stop.
void install_stop_signals();
bool stop_requested();

// Returns when a stop signal arrives.
void run_control_thread(const dataplane::Dataplane& dataplane, uint32_t stats_interval_s);

}  // namespace mtlsgw::control
