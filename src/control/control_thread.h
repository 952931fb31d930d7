#pragma once
// The control thread: runs on the main lcore while the workers poll. For now
// it waits for SIGINT/SIGTERM and prints periodic reports; the control socket
// (issue: control plane) will be served from here too.

#include <cstdint>
#include <functional>

namespace mtlsgw::dataplane {
class Dataplane;
}

namespace mtlsgw::control {

// Installs SIGINT/SIGTERM handlers that ask the control thread to stop, a
// SIGHUP handler that asks it to reopen the access log (log rotation), and
// ignores SIGPIPE (a closed log pipe is a write error, not a reason to die).
void install_stop_signals();
bool stop_requested();

// Returns when a stop signal arrives. on_hangup runs on this thread after
// each SIGHUP (may be empty).
void run_control_thread(const dataplane::Dataplane& dataplane, uint32_t stats_interval_s,
                        const std::function<void()>& on_hangup = {});

}  // namespace mtlsgw::control
