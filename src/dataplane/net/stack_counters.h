#pragma once
// Per-worker protocol counters. Written only by the owning worker; read by the
// telemetry thread and the exit report (see common/counter.h).

#include <array>

#include "common/counter.h"
#include "dataplane/net/drop_reason.h"

namespace mtlsgw::net {

#define MTLSGW_STACK_COUNTERS(X) \
  X(rx_frames)                   \
  X(rx_bytes)                    \
  X(tx_frames)                   \
  X(tx_bytes)                    \
  X(arp_requests_in)             \
  X(arp_replies_in)              \
  X(arp_requests_out)            \
  X(arp_replies_out)             \
  X(arp_gratuitous_out)          \
  X(arp_learned)                 \
  X(arp_expired)                 \
  X(ipv4_in)                     \
  X(icmp_echo_requests)          \
  X(icmp_echo_replies)           \
  X(icmp_other_in)               \
  X(neighbor_relay_lost)         \
  X(dispatched_to_owner)         \
  X(dispatched_from_peer)

struct StackCounters {
#define MTLSGW_COUNTER_FIELD(name) Counter name;
  MTLSGW_STACK_COUNTERS(MTLSGW_COUNTER_FIELD)
#undef MTLSGW_COUNTER_FIELD
  std::array<Counter, kDropReasonCount> drops;

  void drop(DropReason reason) noexcept { drops[static_cast<std::size_t>(reason)].add(); }
  uint64_t dropped(DropReason reason) const noexcept {
    return drops[static_cast<std::size_t>(reason)].get();
  }
};

// Visits every named counter: used by telemetry and the exit report so the
// list of names lives in one place.
template <typename Fn>
void for_each_counter(const StackCounters& c, Fn&& fn) {
#define MTLSGW_COUNTER_VISIT(name) fn(#name, c.name.get());
  MTLSGW_STACK_COUNTERS(MTLSGW_COUNTER_VISIT)
#undef MTLSGW_COUNTER_VISIT
}

}  // namespace mtlsgw::net
