#include "control/telemetry.h"

#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "control/stats.h"
#include "dataplane/dataplane.h"
#include "mtlsgw_version.h"

namespace mtlsgw::control {
namespace {

// Telemetry runs its commands on its own threads. The lock is taken by those
// threads and by attach/detach only, never by a worker.
std::shared_mutex g_lock;
const dataplane::Dataplane* g_dataplane = nullptr;

std::string mac_text(const rte_ether_addr& mac) {
  char buf[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(buf, sizeof buf, &mac);
  return buf;
}

const char* state_name(net::ArpCache::State s) {
  switch (s) {
    case net::ArpCache::State::incomplete: return "incomplete";
    case net::ArpCache::State::reachable: return "reachable";
    case net::ArpCache::State::stale: return "stale";
    case net::ArpCache::State::failed: return "failed";
    case net::ArpCache::State::empty: break;
  }
  return "empty";
}

template <typename Fn>
int with_dataplane(rte_tel_data* d, Fn&& fn) {
  std::shared_lock guard(g_lock);
  if (g_dataplane == nullptr) return -EAGAIN;
  return fn(*g_dataplane, d);
}

int cmd_stats(const char*, const char*, rte_tel_data* d) {
  return with_dataplane(d, [](const dataplane::Dataplane& dp, rte_tel_data* out) {
    const StatsSnapshot stats = collect_stats(dp);
    rte_tel_data_start_dict(out);
    for (const auto& [name, value] : stats.counters) {
      rte_tel_data_add_dict_u64(out, std::string(name).c_str(), value);
    }
    rte_tel_data_add_dict_u64(out, "dropped", stats.dropped_total);
    uint64_t busy = 0, idle = 0;
    for (const WorkerStats& w : stats.workers) {
      busy += w.busy_cycles;
      idle += w.idle_cycles;
    }
    rte_tel_data_add_dict_u64(out, "busy_cycles", busy);
    rte_tel_data_add_dict_u64(out, "idle_cycles", idle);
    rte_tel_data_add_dict_u64(out, "workers", stats.workers.size());
    rte_tel_data* drops = rte_tel_data_alloc();
    rte_tel_data_start_dict(drops);
    for (const auto& [name, value] : stats.drops) {
      if (value != 0) rte_tel_data_add_dict_u64(drops, std::string(name).c_str(), value);
    }
    rte_tel_data_add_dict_container(out, "drops", drops, 0);
    return 0;
  });
}

// The TLS gateway's counters summed over workers, and one container per
// host ("host_0", ...: telemetry names allow no dots) with its name,
// handshake outcomes and verification reasons ("verify_<reason>").
// What connections hold now (stats.h MemoryStats). openssl_heap_bytes is
// left out when the heap is not counted (a library user that did not
// install the accounting).
int cmd_memory(const char*, const char*, rte_tel_data* d) {
  return with_dataplane(d, [](const dataplane::Dataplane& dp, rte_tel_data* out) {
    const MemoryStats m = collect_stats(dp).memory;
    rte_tel_data_start_dict(out);
    rte_tel_data_add_dict_u64(out, "in_use_bytes", m.in_use_bytes());
    if (m.openssl_heap_bytes >= 0) {
      rte_tel_data_add_dict_u64(out, "openssl_heap_bytes", static_cast<uint64_t>(m.openssl_heap_bytes));
    }
    rte_tel_data_add_dict_u64(out, "tcbs", m.tcbs);
    rte_tel_data_add_dict_u64(out, "tcb_bytes", m.tcb_bytes);
    rte_tel_data_add_dict_u64(out, "tcp_buffers", m.tcp_buffers);
    rte_tel_data_add_dict_u64(out, "tcp_buffer_bytes", m.tcp_buffer_bytes);
    rte_tel_data_add_dict_u64(out, "tls_sessions_active", m.tls_sessions);
    rte_tel_data_add_dict_u64(out, "tls_session_bytes", m.tls_session_bytes);
    rte_tel_data_add_dict_u64(out, "http_slots", m.http_slots);
    rte_tel_data_add_dict_u64(out, "http_slot_bytes", m.http_slot_bytes);
    rte_tel_data_add_dict_u64(out, "ssl_pool_idle", m.ssl_pool_idle);
    rte_tel_data_add_dict_u64(out, "ssl_pool_bytes", m.ssl_pool_bytes);
    rte_tel_data_add_dict_u64(out, "reserved_bytes", m.reserved_bytes);
    return 0;
  });
}

int cmd_tls(const char*, const char*, rte_tel_data* d) {
  return with_dataplane(d, [](const dataplane::Dataplane& dp, rte_tel_data* out) {
    const StatsSnapshot stats = collect_stats(dp);
    rte_tel_data_start_dict(out);
    for (const auto& [name, value] : stats.tls.counters) {
      rte_tel_data_add_dict_u64(out, std::string(name).c_str(), value);
    }
    for (size_t h = 0; h < stats.tls.hosts.size(); ++h) {
      const TlsHostStats& host = stats.tls.hosts[h];
      rte_tel_data* c = rte_tel_data_alloc();
      rte_tel_data_start_dict(c);
      rte_tel_data_add_dict_string(c, "name", host.name.c_str());
      rte_tel_data_add_dict_u64(c, "handshakes_ok", host.handshakes_ok);
      rte_tel_data_add_dict_u64(c, "handshakes_failed", host.handshakes_failed);
      rte_tel_data_add_dict_u64(c, "passed_unverified", host.passed_unverified);
      for (size_t r = 0; r < tls::kVerifyReasonCount; ++r) {
        rte_tel_data_add_dict_u64(c, fmt::format("verify_{}", tls::kVerifyReasonNames[r]).c_str(), host.verify[r]);
      }
      rte_tel_data_add_dict_container(out, fmt::format("host_{}", h).c_str(), c, 0);
    }
    return 0;
  });
}

int cmd_drops(const char*, const char*, rte_tel_data* d) {
  return with_dataplane(d, [](const dataplane::Dataplane& dp, rte_tel_data* out) {
    const StatsSnapshot stats = collect_stats(dp);
    rte_tel_data_start_dict(out);
    for (const auto& [name, value] : stats.drops) {
      rte_tel_data_add_dict_u64(out, std::string(name).c_str(), value);
    }
    return 0;
  });
}

int cmd_workers(const char*, const char*, rte_tel_data* d) {
  return with_dataplane(d, [](const dataplane::Dataplane& dp, rte_tel_data* out) {
    const StatsSnapshot stats = collect_stats(dp);
    rte_tel_data_start_dict(out);
    for (size_t i = 0; i < stats.workers.size(); ++i) {
      const WorkerStats& w = stats.workers[i];
      rte_tel_data* c = rte_tel_data_alloc();
      rte_tel_data_start_dict(c);
      rte_tel_data_add_dict_u64(c, "lcore", w.lcore);
      rte_tel_data_add_dict_u64(c, "busy_cycles", w.busy_cycles);
      rte_tel_data_add_dict_u64(c, "idle_cycles", w.idle_cycles);
      // Telemetry carries integers: load in parts per ten thousand.
      rte_tel_data_add_dict_u64(c, "busy_per_10k", static_cast<uint64_t>(w.busy_percent() * 100));
      rte_tel_data_add_dict_u64(c, "iterations", w.iterations);
      rte_tel_data_add_dict_u64(c, "busy_iterations", w.busy_iterations);
      rte_tel_data_add_dict_u64(c, "sleeps", w.sleeps);
      for (const auto& [name, value] : stats.worker_counters[i]) {
        if (value != 0) rte_tel_data_add_dict_u64(c, std::string(name).c_str(), value);
      }
      rte_tel_data_add_dict_container(out, fmt::format("{}", w.index).c_str(), c, 0);
    }
    return 0;
  });
}

// One direction of one worker's fault injectors, as "<direction>_<name>"
// fields: enabled, the spec, and every count (zero when the direction has
// no injector). Flat, because the names allow no other separator and one
// level of nesting is what every telemetry client shows well.
void add_fault_fields(rte_tel_data* c, const char* direction, const FaultStats& f) {
  rte_tel_data_add_dict_u64(c, fmt::format("{}_enabled", direction).c_str(), f.enabled ? 1 : 0);
  rte_tel_data_add_dict_string(c, fmt::format("{}_spec", direction).c_str(),
                               f.enabled ? f.spec.c_str() : "off");
  f.counts.for_each([&](const char* name, uint64_t value) {
    rte_tel_data_add_dict_u64(c, fmt::format("{}_{}", direction, name).c_str(), value);
  });
}

int cmd_faults(const char*, const char*, rte_tel_data* d) {
  return with_dataplane(d, [](const dataplane::Dataplane& dp, rte_tel_data* out) {
    const StatsSnapshot stats = collect_stats(dp);
    rte_tel_data_start_dict(out);
    for (const WorkerStats& w : stats.workers) {
      rte_tel_data* c = rte_tel_data_alloc();
      rte_tel_data_start_dict(c);
      add_fault_fields(c, "rx", w.fault_rx);
      add_fault_fields(c, "tx", w.fault_tx);
      rte_tel_data_add_dict_container(out, fmt::format("{}", w.index).c_str(), c, 0);
    }
    return 0;
  });
}

int cmd_ports(const char*, const char*, rte_tel_data* d) {
  return with_dataplane(d, [](const dataplane::Dataplane& dp, rte_tel_data* out) {
    rte_tel_data_start_dict(out);
    for (size_t p = 0; p < dp.ports().size(); ++p) {
      const dataplane::Port& port = *dp.ports()[p];
      const dataplane::InterfaceSettings& iface = dp.interfaces()[p];
      rte_tel_data* c = rte_tel_data_alloc();
      rte_tel_data_start_dict(c);
      rte_tel_data_add_dict_string(c, "driver", port.driver().c_str());
      rte_tel_data_add_dict_string(c, "mac", mac_text(port.mac()).c_str());
      rte_tel_data_add_dict_string(
          c, "address",
          fmt::format("{}/{}", net::format_ipv4(iface.address.address), iface.address.length)
              .c_str());
      rte_tel_data_add_dict_string(
          c, "gateway", iface.gateway == 0 ? "none" : net::format_ipv4(iface.gateway).c_str());
      rte_tel_data_add_dict_u64(c, "queues", port.queues());
      rte_tel_data_add_dict_u64(c, "rss", port.rss() ? 1 : 0);
      rte_tel_data_add_dict_string(c, "steering",
                                   std::string(dataplane::to_string(port.steering().mode())).c_str());
      if (port.steering().mode() == dataplane::FlowSteering::Mode::rss) {
        rte_tel_data_add_dict_u64(c, "reta_size", port.steering().reta_size());
      } else if (!port.steering_fallback().empty()) {
        rte_tel_data_add_dict_string(c, "steering_fallback", port.steering_fallback().c_str());
      }
      rte_eth_link link{};
      if (rte_eth_link_get_nowait(port.id(), &link) == 0) {
        rte_tel_data_add_dict_u64(c, "link_up", link.link_status);
        rte_tel_data_add_dict_u64(c, "link_speed_mbps", link.link_speed);
      }
      rte_eth_stats s{};
      if (rte_eth_stats_get(port.id(), &s) == 0) {
        rte_tel_data_add_dict_u64(c, "ipackets", s.ipackets);
        rte_tel_data_add_dict_u64(c, "opackets", s.opackets);
        rte_tel_data_add_dict_u64(c, "ibytes", s.ibytes);
        rte_tel_data_add_dict_u64(c, "obytes", s.obytes);
        rte_tel_data_add_dict_u64(c, "imissed", s.imissed);
        rte_tel_data_add_dict_u64(c, "ierrors", s.ierrors);
        rte_tel_data_add_dict_u64(c, "oerrors", s.oerrors);
        rte_tel_data_add_dict_u64(c, "rx_nombuf", s.rx_nombuf);
      }
      rte_tel_data_add_dict_container(out, fmt::format("{}", port.id()).c_str(), c, 0);
    }
    return 0;
  });
}

int cmd_arp(const char*, const char*, rte_tel_data* d) {
  return with_dataplane(d, [](const dataplane::Dataplane& dp, rte_tel_data* out) {
    rte_tel_data_start_dict(out);
    for (const auto& worker : dp.workers()) {
      auto rows = worker->neighbors(std::chrono::milliseconds(500));
      if (!rows) return -ETIMEDOUT;
      // Telemetry names allow only [A-Za-z0-9_/], so an entry is one string:
      // "<port> <ip> <mac> <state> <age ms>".
      rte_tel_data* c = rte_tel_data_alloc();
      rte_tel_data_start_array(c, RTE_TEL_STRING_VAL);
      for (const dataplane::NeighborRow& row : *rows) {
        const std::string entry =
            fmt::format("{} {} {} {} {}", row.port_id, net::format_ipv4(row.entry.ip),
                        mac_text(row.entry.mac), state_name(row.entry.state),
                        row.entry.age_us / 1000);
        rte_tel_data_add_array_string(c, entry.c_str());
      }
      rte_tel_data_add_dict_container(out, fmt::format("{}", worker->index()).c_str(), c, 0);
    }
    return 0;
  });
}

int cmd_version(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_string(d, "mtlsgw " MTLSGW_VERSION);
  return 0;
}

void register_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    rte_telemetry_register_cmd("/mtlsgw/stats", cmd_stats,
                               "Counters and drops summed over workers. No parameters.");
    rte_telemetry_register_cmd("/mtlsgw/drops", cmd_drops,
                               "Every drop reason, summed over workers. No parameters.");
    rte_telemetry_register_cmd("/mtlsgw/workers", cmd_workers,
                               "Per worker: lcore, busy/idle cycles, load, counters.");
    rte_telemetry_register_cmd("/mtlsgw/ports", cmd_ports,
                               "Per port: MAC, addresses, link and ethdev statistics.");
    rte_telemetry_register_cmd("/mtlsgw/arp", cmd_arp, "Every worker's neighbour table.");
    rte_telemetry_register_cmd("/mtlsgw/faults", cmd_faults,
                               "Per worker and direction: the fault injectors' spec and counts.");
    rte_telemetry_register_cmd("/mtlsgw/version", cmd_version, "The gateway's version.");
    rte_telemetry_register_cmd("/mtlsgw/memory", cmd_memory,
                               "Memory held for connections now (OpenSSL heap, TCBs, buffers, slots).");
    rte_telemetry_register_cmd("/mtlsgw/tls", cmd_tls,
                               "TLS gateway counters, and per host handshakes and verification reasons.");
  });
}

}  // namespace

void telemetry_attach(const dataplane::Dataplane* dataplane) {
  register_once();
  std::unique_lock guard(g_lock);
  g_dataplane = dataplane;
}

void telemetry_detach() {
  std::unique_lock guard(g_lock);
  g_dataplane = nullptr;
}

}  // namespace mtlsgw::control
