#pragma once
// Tunables of a worker's TCP. Defaults follow what Linux ships unless a
// comment says otherwise; every limit exists so that a flood or a slow peer
// cannot exhaust a worker.

#include <cstdint>

#include "dataplane/net/tcp_congestion.h"

namespace mtlsgw::net::tcp {

struct TcpConfig {
  uint32_t max_connections = 8192;  // TCBs per worker, every state included
  // SYN-RECEIVED entries per worker; beyond it SYN cookies answer (RFC 4987
  // 3.6), or SYNs are dropped when cookies are off.
  uint32_t max_half_open = 1024;
  bool syn_cookies = true;
  // Per-direction buffer of a connection (power of two). A connection holds a
  // buffer only while it has data queued in that direction (buffer pool).
  uint32_t buffer_size = 64 * 1024;
  uint32_t buffer_pool = 4096;  // buffers per worker
  uint16_t mss = 1460;          // from the interface MTU: MTU - 40
  // RFC 9293 3.8.6.3: delayed ACKs at most 0.5 s and every second full
  // segment; 40 ms is Linux's minimum delayed-ACK timeout.
  uint32_t delayed_ack_us = 40'000;
  // 2*MSL. RFC 9293 3.4.2 suggests MSL = 2 min; Linux's TIME-WAIT is 60 s.
  uint32_t time_wait_us = 60'000'000;
  // At most this many TCBs linger in TIME-WAIT; past it a connection that
  // enters TIME-WAIT ends at the next poll instead (Linux's
  // tcp_max_tw_buckets). A gateway closes its upstream connections first,
  // so at 1,000 connections/s a full 2*MSL would hold 60,000 TCBs and as
  // many ephemeral ports; the cap keeps TIME-WAIT from starving live
  // connections of TCBs. 0: max_connections / 4.
  uint32_t max_time_wait = 0;
  uint32_t fin_wait_2_timeout_us = 60'000'000;
  // R2 for SYN: 1 s doubling to 64 s, ~2 min in all (RFC 9293 3.8.3 asks
  // for at least 3 min; Linux's 6 retries give 127 s).
  uint8_t max_syn_retries = 6;
  uint8_t max_retries = 15;          // R2 for data (RFC 9293 3.8.3: at least 100 s)
  uint32_t min_rto_us = 200'000;
  uint32_t max_rto_us = 60'000'000;
  uint32_t initial_rto_us = 1'000'000;  // RFC 6298 2.1
  // RFC 8985 7.2 WCDelAckT: added to the tail loss probe's timeout when a
  // single segment is in flight, whose ACK the receiver may delay. The RFC's
  // default; Linux adds its minimum RTO (also 200 ms) in the same case.
  uint32_t tlp_max_ack_delay_us = 200'000;
  uint32_t keepalive_idle_us = 0;       // 0: off (RFC 1122 4.2.3.6: off by default)
  uint32_t keepalive_interval_us = 75'000'000;
  uint8_t keepalive_probes = 9;
  CongestionAlgorithm congestion = CongestionAlgorithm::cubic;
  // RFC 5961 7: challenge ACKs per second and connection.
  uint32_t challenge_ack_limit = 1000;
  // Header prediction (tcp_input.cc, predicted_input): in-order data and
  // pure ACKs of an ESTABLISHED connection skip the general state machine.
  // Off only in tests, which run the same segments both ways and compare.
  bool header_prediction = true;
  // Tests only: nonzero replaces the RFC 6528 ISN, so that a transfer can
  // start just below 2^32 and cross the wrap at a known point.
  uint32_t fixed_isn = 0;
};

}  // namespace mtlsgw::net::tcp
