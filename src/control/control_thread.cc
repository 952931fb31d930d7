#include "control/control_thread.h"

#include <csignal>

#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "control/stats.h"

namespace mtlsgw::control {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_hangups = 0;

void on_stop_signal(int signo) { g_stop_signal = signo; }
void on_hangup_signal(int) { g_hangups = g_hangups + 1; }

}  // namespace

void install_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  struct sigaction hangup {};
  hangup.sa_handler = on_hangup_signal;
  sigemptyset(&hangup.sa_mask);
  sigaction(SIGHUP, &hangup, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

bool stop_requested() { return g_stop_signal != 0; }

void run_control_thread(const dataplane::Dataplane& dataplane, uint32_t stats_interval_s, const ControlLoop& loop) {
  using clock = std::chrono::steady_clock;
  auto next_report = clock::now() + std::chrono::seconds(stats_interval_s);
  std::sig_atomic_t hangups_seen = g_hangups;
  while (!stop_requested()) {
    // 50 ms: how soon a stop signal or a report is noticed when nothing
    // else wakes the thread.
    if (loop.serve) {
      loop.serve(std::chrono::milliseconds(50));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (loop.housekeeping) loop.housekeeping();
    if (g_hangups != hangups_seen) {
      hangups_seen = g_hangups;
      if (loop.on_hangup) loop.on_hangup();
    }
    if (stats_interval_s != 0 && clock::now() >= next_report) {
      fmt::print("{}", format_report(collect_stats(dataplane)));
      std::fflush(stdout);
      next_report += std::chrono::seconds(stats_interval_s);
    }
  }
  fmt::print("mtlsgw: {} received, stopping\n", strsignal(g_stop_signal));
}

}  // namespace mtlsgw::control
