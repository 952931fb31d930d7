// mtlsgw: the gateway process. Parses its own options, starts EAL, brings up
// the ports and one worker per non-main lcore, then runs the control thread
// on the main lcore until SIGINT/SIGTERM.

#include <rte_eal.h>
#include <rte_errno.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "control/access_log_writer.h"
#include "control/config.h"
#include "control/default_config.h"
#include "control/control_plane.h"
#include "control/control_thread.h"
#include "control/gateway_spec.h"
#include "control/options.h"
#include "control/stats.h"
#include "control/telemetry.h"
#include "dataplane/dataplane.h"
#include "dataplane/tls/openssl_heap.h"
#include "mtlsgw_version.h"

namespace {

using namespace mtlsgw;

constexpr int kExitUsage = 2;
constexpr int kExitRuntime = 1;

std::vector<dataplane::InterfaceSettings> interfaces_of(const control::Config& config) {
  std::vector<dataplane::InterfaceSettings> out;
  for (const control::PortConfig& port : config.ports) {
    dataplane::InterfaceSettings s;
    s.port.port_id = port.port_id;
    s.port.mtu = port.mtu;
    s.port.rx_descriptors = port.rx_descriptors;
    s.port.tx_descriptors = port.tx_descriptors;
    s.address = port.address;
    s.gateway = port.gateway;
    out.push_back(s);
  }
  return out;
}

dataplane::WorkerSettings worker_settings(const control::Config& config,
                                          const control::Options& options,
                                          std::shared_ptr<const gateway::GatewaySpec> gateway) {
  dataplane::WorkerSettings settings;
  settings.busy_poll = options.busy_poll;
  settings.idle_sleep_max_us = options.idle_sleep_max_us;
  const control::TcpSettings& tcp = config.tcp;
  settings.tcp.max_connections = tcp.max_connections;
  settings.tcp.max_half_open = tcp.max_half_open;
  settings.tcp.syn_cookies = tcp.syn_cookies;
  settings.tcp.buffer_size = tcp.buffer_size;
  settings.tcp.buffer_pool = tcp.buffer_pool;
  settings.tcp.congestion = tcp.congestion == "newreno" ? net::tcp::CongestionAlgorithm::newreno
                                                         : net::tcp::CongestionAlgorithm::cubic;
  settings.tcp.time_wait_us = tcp.time_wait_ms * 1000u;
  settings.tcp.max_time_wait = tcp.max_time_wait;
  settings.tcp.keepalive_idle_us = tcp.keepalive_idle_s * 1'000'000u;
  // MSS from the smallest MTU: IPv4 and TCP headers without options.
  uint16_t mtu = 1500;
  for (const control::PortConfig& port : config.ports) mtu = std::min(mtu, port.mtu);
  settings.tcp.mss = static_cast<uint16_t>(mtu - 40);
  for (const control::ListenerConfig& listener : config.listeners) {
    dataplane::ListenerSpec spec;
    spec.port = listener.port;
    spec.service.kind = listener.service;
    spec.service.upstream_ip = listener.upstream_ip;
    spec.service.upstream_port = listener.upstream_port;
    spec.service.port = listener.port;
    if (listener.service == "tls") spec.service.gateway = gateway;
    settings.listeners.push_back(spec);
  }
  settings.access_log = config.access_log.has_value();
  settings.key = random_sip_key();
  settings.fault_seed = options.fault_seed;
  return settings;
}

// Parses --fault-rx/--fault-tx; false (after printing why) when one is bad.
bool parse_faults(const control::Options& options, dataplane::WorkerSettings& settings) {
  const std::pair<const std::string*, dataplane::FaultSpec*> specs[] = {
      {&options.fault_rx, &settings.fault_rx}, {&options.fault_tx, &settings.fault_tx}};
  const char* names[] = {"--fault-rx", "--fault-tx"};
  for (size_t i = 0; i < 2; ++i) {
    if (specs[i].first->empty()) continue;
    std::string error;
    auto spec = dataplane::parse_fault_spec(*specs[i].first, &error);
    if (!spec) {
      fmt::print(stderr, "mtlsgw: {}: {}\n", names[i], error);
      return false;
    }
    *specs[i].second = *spec;
    fmt::print("fault injection {}: {} (seed {})\n", names[i] + 2,
               dataplane::format_fault_spec(*spec), options.fault_seed);
  }
  return true;
}

void print_config(const control::Config& config) {
  for (const control::PortConfig& port : config.ports) {
    fmt::print("port {}: {}/{} gateway {} mtu {}\n", port.port_id,
               net::format_ipv4(port.address.address), port.address.length,
               port.gateway == 0 ? "none" : net::format_ipv4(port.gateway), port.mtu);
  }
  for (const control::ListenerConfig& listener : config.listeners) {
    if (listener.service == "relay") {
      fmt::print("listener tcp/{}: relay to {}:{}\n", listener.port,
                 net::format_ipv4(listener.upstream_ip), listener.upstream_port);
    } else {
      fmt::print("listener tcp/{}: {}\n", listener.port, listener.service);
    }
  }
  for (const control::HostConfig& host : config.hosts) {
    fmt::print("host {}: mtls {}, forward {} to {}:{}{}\n", host.name, control::to_string(host.mtls),
               control::to_string(host.forward), net::format_ipv4(host.upstream_ip), host.upstream_port,
               host.name == config.default_host ? " (default)" : "");
  }
}

int run(int argc, char** argv) {
  control::SplitArgs args = control::split_arguments(argc, argv);
  control::Options options;
  if (auto exit_code = control::parse_options(args.gateway, options)) return *exit_code;

  control::Config config;
  const std::string config_source =
      options.config_path.empty() ? "(embedded)" : options.config_path;
  try {
    config = options.config_path.empty() ? control::default_config()
                                         : control::load_config_file(options.config_path);
  } catch (const control::ConfigError& e) {
    fmt::print(stderr, "mtlsgw: config {}: {}\n", config_source, e.what());
    return kExitUsage;
  }
  // CA files and CRLs are read and checked here, once, before EAL: a bad
  // file stops the start (and --check-config) with its name. The state
  // directory's saved state, when there is one, takes the place of the
  // file's hosts, CAs, rules and revocations.
  std::shared_ptr<const gateway::GatewaySpec> gateway;
  control::ControlPlane control_plane;
  const bool serves_tls = std::any_of(config.listeners.begin(), config.listeners.end(),
                                      [](const control::ListenerConfig& l) { return l.service == "tls"; });
  {
    std::string error;
    bool restored = false;
    if (!control_plane.prepare(options, config, gateway, restored, error)) {
      fmt::print(stderr, "mtlsgw: config {}: {}\n", config_source, error);
      return kExitUsage;
    }
    if (restored) fmt::print("state: restored from {}/state.json\n", options.state_dir);
  }
  for (const std::string& warning : config.warnings) {
    fmt::print(stderr, "mtlsgw: config {}: warning: {}\n", config_source, warning);
  }
  if (options.config_path.empty()) {
    if (serves_tls) {
      fmt::print("embedded config: demo TLS host with the PKI in {}\n", control::kDemoPkiDir);
    } else {
      fmt::print("embedded config: no demo PKI in {}, so no TLS listener (scripts/demo makes one)\n",
                 control::kDemoPkiDir);
    }
  }
  if (options.check_config) {
    print_config(config);
    return 0;
  }

  // EAL may rewrite its argv; it gets a private copy terminated as C expects.
  std::vector<char*> eal_args = args.eal;
  eal_args.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(eal_args.size() - 1), eal_args.data()) < 0) {
    fmt::print(stderr, "mtlsgw: EAL initialisation failed: {}\n", rte_strerror(rte_errno));
    return kExitRuntime;
  }
  control::install_stop_signals();
  fmt::print("mtlsgw {} starting\n", MTLSGW_VERSION);
  print_config(config);

  int exit_code = 0;
  try {
    dataplane::WorkerSettings settings = worker_settings(config, options, gateway);
    if (!parse_faults(options, settings)) {
      rte_eal_cleanup();
      return kExitUsage;
    }
    {
      std::string error;
      const unsigned workers = rte_lcore_count() > 1 ? rte_lcore_count() - 1 : 1;
      if (!control_plane.worker_shared(config, workers, settings.policy, settings.verdict_cache, settings.rule_slots,
                                       error)) {
        fmt::print(stderr, "mtlsgw: {}\n", error);
        rte_eal_cleanup();
        return kExitUsage;
      }
    }
    dataplane::Dataplane dataplane(interfaces_of(config), settings);
    for (const auto& port : dataplane.ports()) {
      char mac[RTE_ETHER_ADDR_FMT_SIZE];
      rte_ether_format_addr(mac, sizeof mac, &port->mac());
      const std::string& fallback = port->steering_fallback();
      fmt::print("port {} ({}): mac {}, {} queue(s), rss {}, steering {}{}\n", port->id(),
                 port->driver(), mac, port->queues(), port->rss() ? "on" : "off",
                 dataplane::to_string(port->steering().mode()),
                 fallback.empty() ? "" : fmt::format(" ({})", fallback));
    }
    std::unique_ptr<control::AccessLogWriter> access_log;
    if (config.access_log) {
      std::vector<gateway::AccessLogQueue*> queues;
      for (const auto& worker : dataplane.workers()) queues.push_back(worker->access_log_queue());
      access_log = std::make_unique<control::AccessLogWriter>(config.access_log->path, queues);
      access_log->start();
      fmt::print("access log: {}\n", config.access_log->path);
    }
    control::telemetry_attach(&dataplane);
    std::string control_error;
    if (!control_plane.start(options, config, dataplane, control_error)) {
      throw std::runtime_error(control_error);
    }
    if (!control_plane.socket_path().empty()) fmt::print("control socket: {}\n", control_plane.socket_path());
    if (!control::stop_requested()) {
      dataplane.start();
      fmt::print("mtlsgw: {} worker(s) running\n", dataplane.workers().size());
      std::fflush(stdout);
      control::ControlLoop loop = control_plane.loop();
      loop.on_hangup = [&access_log] {
        if (access_log && !access_log->reopen()) {
          fmt::print(stderr, "mtlsgw: SIGHUP: cannot reopen the access log {}\n", access_log->path());
        }
      };
      control::run_control_thread(dataplane, options.stats_interval_s, loop);
    }
    control::telemetry_detach();
    dataplane.stop();
    if (access_log) {
      access_log->stop();
      fmt::print("access log: {} lines written, {} dropped, {} write errors\n", access_log->written(),
                 access_log->dropped(), access_log->write_errors());
    }
    fmt::print("{}", control::format_report(control::collect_stats(dataplane)));
  } catch (const std::exception& e) {
    control::telemetry_detach();
    fmt::print(stderr, "mtlsgw: {}\n", e.what());
    exit_code = kExitRuntime;
  }
  std::fflush(stdout);
  rte_eal_cleanup();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything can make OpenSSL allocate (openssl_heap.h): without it,
  // /mtlsgw/memory has no OpenSSL share, and the gateway still runs.
  if (!tls::install_openssl_heap_accounting()) {
    fmt::print(stderr, "mtlsgw: OpenSSL allocated before main(): its heap is not counted\n");
  }
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "mtlsgw: {}\n", e.what());
    return kExitRuntime;
  }
}
