#pragma once
// The control thread: runs on the main lcore while the workers poll. It
// serves the control socket (control_socket.h), frees the tables workers
// hand back, prints periodic reports, and returns on SIGINT/SIGTERM.

#include <chrono>
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

struct ControlLoop {
  // Waits up to the given time for work (the control socket's events) and
  // handles it; empty: sleeps.
  std::function<void(std::chrono::milliseconds)> serve;
  // Every loop turn, after serve (freeing retired tables).
  std::function<void()> housekeeping;
  // After each SIGHUP.
  std::function<void()> on_hangup;
};

// Returns when a stop signal arrives.
void run_control_thread(const dataplane::Dataplane& dataplane, uint32_t stats_interval_s, const ControlLoop& loop);

}  // namespace mtlsgw::control
