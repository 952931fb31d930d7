#pragma once
// A worker's TCP (RFC 9293): its connection table, listeners, buffer pool and
// timers. One per worker, never shared: every connection is owned by the
// worker whose queue its packets reach (see dataplane/worker.cc for the
// dispatch between workers). The state machine itself lives in
// tcp_input.cc (segment arrival) and tcp_output.cc (segment departure,
// retransmission); this file's .cc holds tables, timers and the
// application-facing calls.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/counter.h"
#include "common/flat_index.h"
#include "common/siphash.h"
#include "dataplane/net/frame.h"
#include "dataplane/net/ipv4.h"
#include "dataplane/net/tcp_app.h"
#include "dataplane/net/tcp_buffers.h"
#include "dataplane/net/tcp_config.h"
#include "dataplane/net/tcp_congestion.h"
#include "dataplane/net/tcp_header.h"
#include "dataplane/net/tcp_isn.h"
#include "dataplane/net/tcp_rtt.h"
#include "dataplane/net/tcp_rack.h"
#include "dataplane/net/tcp_syn_cookie.h"
#include "dataplane/net/tcp_tuple.h"
#include "dataplane/timer_wheel.h"

namespace mtlsgw::net {
class Interface;
}

namespace mtlsgw::net::tcp {

// RFC 9293 3.3.2.
enum class State : uint8_t {
  closed,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};
constexpr size_t kStateCount = 10;
const char* name_of(State state) noexcept;

// Telemetry names of the connections-by-state gauges: "tcp_state_" and the
// state's name. CLOSED has no gauge: a TCB in CLOSED is being set up or
// released, not a connection, so its count would always be 0.
inline constexpr std::array<const char*, kStateCount> kStateGaugeNames = {
    nullptr,
    "tcp_state_syn_sent",
    "tcp_state_syn_received",
    "tcp_state_established",
    "tcp_state_fin_wait_1",
    "tcp_state_fin_wait_2",
    "tcp_state_close_wait",
    "tcp_state_closing",
    "tcp_state_last_ack",
    "tcp_state_time_wait",
};

struct TupleHash {
  size_t operator()(const FourTuple& t) const noexcept {
    // Multiplicative mix of the fields: the table is internal (not keyed by
    // attacker-chosen values alone: local addresses are ours), and the
    // connection cap bounds any clustering.
    uint64_t a = (uint64_t{t.remote_ip} << 32) | (uint32_t{t.remote_port} << 16) | t.local_port;
    uint64_t b = t.local_ip;
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xC2B2AE3D27D4EB4Full;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

enum class TimerKind : uint8_t { retransmit, delayed_ack, keepalive, linger };

// The smallest shift that fits a buffer into the 16-bit window field
// (RFC 7323 2.2).
constexpr uint8_t window_shift_for(uint32_t buffer) noexcept {
  uint8_t shift = 0;
  while (shift < kMaxWindowScale && (buffer >> shift) > 0xffff) ++shift;
  return shift;
}

// One connection's state (RFC 9293 3.3.1 "TCB"). Kept in a fixed array; a
// handle's generation must match to use it.
struct Tcb {
  struct Timer {
    dataplane::TimerNode node;
    uint32_t tcb = 0;
    TimerKind kind = TimerKind::retransmit;
  };

  uint32_t generation = 1;
  State state = State::closed;
  bool passive = false;
  bool in_use = false;
  FourTuple tuple;
  Interface* iface = nullptr;
  TcpApp* app = nullptr;

  // Send sequence space (RFC 9293 3.3.1).
  uint32_t iss = 0;
  uint32_t snd_una = 0;
  uint32_t snd_nxt = 0;
  uint32_t snd_max = 0;  // highest sequence sent + 1 (snd_nxt rewinds on RTO)
  uint32_t snd_wnd = 0;  // scaled
  uint32_t snd_wl1 = 0;
  uint32_t snd_wl2 = 0;
  uint32_t max_snd_wnd = 0;  // RFC 5961 5.2
  uint16_t smss = 536;       // RFC 9293 3.7.1 default without the MSS option
  uint8_t snd_wscale = 0;    // the peer's shift
  uint8_t rcv_wscale = 0;    // ours

  // Receive sequence space.
  uint32_t irs = 0;
  uint32_t rcv_nxt = 0;
  uint32_t rcv_adv = 0;  // right edge advertised: never moved left (RFC 9293 3.8.6.2.2)

  // Negotiated options.
  bool ts_ok = false;
  bool sack_ok = false;
  bool wscale_ok = false;
  uint32_t ts_recent = 0;
  uint64_t ts_recent_us = 0;
  uint32_t last_ack_sent = 0;

  SendBuffer snd;
  ReceiveBuffer rcv;
  uint32_t snd_buffer = UINT32_MAX;  // pool index, UINT32_MAX: none
  uint32_t rcv_buffer = UINT32_MAX;
  // With SACK: the segments in flight and RACK-TLP's state (RFC 8985); its
  // log comes from the worker's pool with the send buffer.
  Rack rack;

  // Loss recovery (RFC 6582 NewReno without SACK; RFC 6675 with it, losses
  // found by RACK).
  bool in_recovery = false;
  bool rto_recovery = false;      // with SACK: resending what an RTO marked lost
  bool partial_ack_seen = false;  // RFC 6582 "Impatient": timer restarted once
  uint32_t recover = 0;
  uint8_t dupacks = 0;
  uint8_t retries = 0;
  RttEstimator rtt{};
  CongestionControl cc{CongestionAlgorithm::newreno, 536};
  bool rtt_timing = false;  // Karn: a segment is being timed (no timestamps)
  uint32_t rtt_seq = 0;
  uint64_t rtt_start_us = 0;

  // Application side.
  bool fin_queued = false;     // shutdown(): FIN after the queued data
  bool fin_received = false;
  bool pending_fin = false;  // FIN seen beyond a hole
  uint32_t pending_fin_seq = 0;
  bool read_closed = false;    // close(): further data is discarded
  // send() refused bytes or send_space() said 0: tell on_writable when the
  // peer's ACKs make room.
  mutable bool want_writable = false;
  bool waiting_for_buffer = false;  // queued in buffer_waiters_
  bool close_notified = false;
  bool fin_told = false;  // on_peer_closed was called (or nobody to call)
  bool drained_close = false;  // protocol done; freed once the app read all
  void* user = nullptr;

  // ACK policy (RFC 9293 3.8.6.3; RFC 5681 4.2).
  bool ack_now = false;
  bool output_marked = false;  // queued for TcpStack::poll
  bool fin_acked = false;
  uint8_t unacked_full_segments = 0;
  uint64_t last_received_us = 0;
  uint64_t last_sent_us = 0;
  uint8_t keepalive_probes_sent = 0;
  uint64_t challenge_window_us = 0;  // RFC 5961 7, per connection
  uint32_t challenge_acks_in_window = 0;

  // D-SACK (RFC 2883) for the next ACK: a duplicate segment arrived.
  bool dsack_pending = false;
  uint32_t dsack_left = 0;
  uint32_t dsack_right = 0;

  // retransmit_timer serves three deadlines (0: not set), whichever is
  // first: the RTO (RFC 6298), the tail loss probe (RFC 8985 7.2) and
  // RACK's reordering timer (RFC 8985 6.3). One wheel node, so that
  // re-arming on every ACK stays one reschedule.
  uint64_t rto_at_us = 0;
  uint64_t pto_at_us = 0;
  uint64_t reorder_at_us = 0;

  Timer retransmit_timer;
  Timer delayed_ack_timer;
  Timer keepalive_timer;
  Timer linger_timer;  // TIME-WAIT, FIN-WAIT-2 timeout, handshake timeout

  uint32_t flight_size() const noexcept { return snd_max - snd_una; }
  // Payload of a full segment: the MSS less the timestamp option every
  // segment carries (RFC 6691). RFC 6675's byte rules count in these.
  uint32_t payload_mss() const noexcept { return smss - (ts_ok ? 12u : 0u); }
};

// Per-worker TCP counters, written by the owning worker only.
#define MTLSGW_TCP_COUNTERS(X) \
  X(segments_in)               \
  X(segments_out)              \
  X(bytes_in)                  \
  X(bytes_out)                 \
  X(retransmitted_segments)    \
  X(fast_retransmits)          \
  X(rto_expirations)           \
  X(out_of_order_segments)     \
  X(duplicate_segments)        \
  X(delayed_acks)              \
  X(challenge_acks)            \
  X(challenge_acks_suppressed) \
  X(resets_sent)               \
  X(resets_received)           \
  X(syn_cookies_sent)          \
  X(syn_cookies_validated)     \
  X(passive_opens)             \
  X(active_opens)              \
  X(connections_closed)        \
  X(connections_reset)         \
  X(connections_timed_out)     \
  X(zero_window_probes)        \
  X(keepalive_probes)          \
  X(tlp_probes)                \
  X(tlp_recoveries)            \
  X(rack_detected_lost)        \
  X(dsack_received)            \
  X(dsack_sent)                \
  X(buffer_pool_exhausted)     \
  X(time_wait_overflows)

struct TcpCounters {
#define MTLSGW_TCP_FIELD(name) Counter name;
  MTLSGW_TCP_COUNTERS(MTLSGW_TCP_FIELD)
#undef MTLSGW_TCP_FIELD
  std::array<Counter, kStateCount> connections_by_state;
  Counter buffers_held;  // gauge: buffers of the pool attached to connections
};

template <typename Fn>
void for_each_counter(const TcpCounters& c, Fn&& fn) {
#define MTLSGW_TCP_VISIT(name) fn("tcp_" #name, c.name.get());
  MTLSGW_TCP_COUNTERS(MTLSGW_TCP_VISIT)
#undef MTLSGW_TCP_VISIT
  for (size_t s = 0; s < kStateCount; ++s) {
    if (kStateGaugeNames[s] != nullptr) fn(kStateGaugeNames[s], c.connections_by_state[s].get());
  }
  fn("tcp_buffers_held", c.buffers_held.get());
}

class TcpStack {
 public:
  // Decides whether a local port may be used for an active open towards a
  // remote: free here AND the reply hashes to this worker (RSS / dispatch).
  using PortFilter = bool (*)(void* context, const FourTuple& tuple) noexcept;
  // Offered every segment that matches no connection before it is treated
  // as a stray: a worker passes segments of flows another worker owns over
  // to that worker (software dispatch). True: the frame was taken.
  using ForeignHandler = bool (*)(void* context, Interface& iface, const Frame& frame,
                                  const FourTuple& tuple) noexcept;

  TcpStack(const TcpConfig& config, const SipKey& key, uint64_t now_us);
  ~TcpStack();
  TcpStack(const TcpStack&) = delete;
  TcpStack& operator=(const TcpStack&) = delete;

  // From ipv4::input: a validated datagram carrying TCP (ownership passes).
  void input(Interface& iface, Frame frame, const ipv4::Header& ip, uint64_t now_us) noexcept;
  // Timers; call every poll iteration (cheap when nothing is due).
  void poll(uint64_t now_us) noexcept;

  // Passive open on every interface. False if the port is taken.
  bool listen(uint16_t port, TcpApp* app);
  void set_port_filter(PortFilter filter, void* context) noexcept;
  void set_foreign_handler(ForeignHandler handler, void* context) noexcept {
    foreign_ = handler;
    foreign_context_ = context;
  }
  const EphemeralPorts& ephemeral_ports() const noexcept { return ports_; }
  // Active open; an invalid handle when no TCB or no port can be had.
  ConnHandle connect(Interface& iface, Ipv4Address remote_ip, uint16_t remote_port, TcpApp* app,
                     uint64_t now_us) noexcept;

  // Application calls; an invalid or stale handle is a no-op returning 0.
  uint32_t send(ConnHandle h, const uint8_t* data, uint32_t len) noexcept;
  uint32_t send_space(ConnHandle h) const noexcept;
  // What send() will take now, exactly: attaches the send buffer if the
  // connection has none yet (send_space promises a whole buffer then, which
  // an empty pool cannot keep). 0 arms on_writable, as a refused send does.
  // For applications that must not hold bytes of their own (the TLS
  // gateway decrypts only what the upstream will take).
  uint32_t reserve_send(ConnHandle h) noexcept;
  uint32_t unsent_bytes(ConnHandle h) const noexcept;
  uint32_t read(ConnHandle h, uint8_t* out, uint32_t len) noexcept;
  ReceiveBuffer::Spans peek(ConnHandle h) const noexcept;
  void consume(ConnHandle h, uint32_t len) noexcept;
  uint32_t readable(ConnHandle h) const noexcept;
  void shutdown(ConnHandle h) noexcept;  // half-close: FIN after queued data
  void close(ConnHandle h) noexcept;     // shutdown, and discard what still arrives
  void abort(ConnHandle h) noexcept;     // RST now
  void set_user(ConnHandle h, void* user) noexcept;
  void* user(ConnHandle h) const noexcept;
  const FourTuple* tuple(ConnHandle h) const noexcept;
  State state(ConnHandle h) const noexcept;

  // One line of a connection's sequence and window state, for operators
  // (telemetry) and test failures. Control path: allocates.
  std::string describe(ConnHandle h) const;
  // Every live connection's handle, in table order. Control path.
  template <typename Fn>
  void for_each_connection(Fn&& fn) const {
    for (const Tcb& tcb : tcbs_) {
      if (tcb.in_use) fn(handle_of(tcb));
    }
  }

  const TcpCounters& counters() const noexcept { return counters_; }
  uint64_t now_us() const noexcept { return now_us_; }
  const TcpConfig& config() const noexcept { return config_; }
  uint32_t connections() const noexcept { return used_; }
  // What one connection costs in memory before any buffer (the TCB), for
  // the memory report (docs/telemetry.md, /mtlsgw/memory).
  static constexpr size_t tcb_bytes() noexcept { return sizeof(Tcb); }
  // The TCB table, the buffer pool and RACK's logs, reserved at start and
  // backed by pages only as they are first used.
  size_t reserved_bytes() const noexcept;
  uint32_t half_open() const noexcept { return half_open_; }
  // Segments header prediction took (tcp_input.cc). For tests and
  // perf/tcp_bench, which check that the fast path is the one they measure;
  // not telemetry.
  uint64_t predicted_segments() const noexcept { return predicted_segments_; }

 private:
  struct Listener {
    uint16_t port = 0;
    TcpApp* app = nullptr;
  };

  // Inline: every application call and every callback's return checks its
  // handle; out of line it cost ~18 instructions a call, four calls per
  // received segment (perf/tcp_bench).
  Tcb* get(ConnHandle h) noexcept {
    if (h.index >= tcbs_.size()) return nullptr;
    Tcb& tcb = tcbs_[h.index];
    return tcb.in_use && tcb.generation == h.generation ? &tcb : nullptr;
  }
  const Tcb* get(ConnHandle h) const noexcept { return const_cast<TcpStack*>(this)->get(h); }
  ConnHandle handle_of(const Tcb& tcb) const noexcept;
  Tcb* allocate(const FourTuple& tuple, Interface& iface, TcpApp* app, uint64_t now_us) noexcept;
  void release(Tcb& tcb) noexcept;
  void give_back_buffer(uint32_t buffer) noexcept;
  void sweep_idle_buffers(uint64_t now_us) noexcept;
  void count_buffers_held() noexcept {
    counters_.buffers_held.set(config_.buffer_pool - static_cast<uint32_t>(free_buffers_.size()));
  }
  void set_state(Tcb& tcb, State state) noexcept;
  const Listener* find_listener(uint16_t port) const noexcept;
  bool attach_send_buffer(Tcb& tcb) noexcept;
  Tcb* writable_tcb(ConnHandle h) noexcept;
  bool attach_receive_buffer(Tcb& tcb) noexcept;
  void detach_buffers_if_idle(Tcb& tcb) noexcept;
  void wait_for_buffer(Tcb& tcb) noexcept;
  void wake_buffer_waiters() noexcept;
  void on_timer(Tcb::Timer& timer, uint64_t now_us) noexcept;
  void schedule(Tcb::Timer& timer, uint64_t at_us) noexcept;
  void cancel(Tcb::Timer& timer) noexcept;
  void cancel_all_timers(Tcb& tcb) noexcept;
  // Ends the connection: tells the application once, frees the TCB.
  void finish(Tcb& tcb, CloseReason reason) noexcept;
  void finish_when_read(Tcb& tcb) noexcept;
  void enter_time_wait(Tcb& tcb, uint64_t now_us) noexcept;
  void notify_complete(Tcb& tcb) noexcept;
  bool drained(Tcb& tcb) noexcept;

  // tcp_input.cc: segment arrival (RFC 9293 3.10.7).
  void listen_input(Interface& iface, const ipv4::Header& ip, const Segment& seg,
                    const Listener& listener, uint64_t now_us) noexcept;
  void syn_sent_input(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept;
  void synchronized_input(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept;
  void synchronized_checks(Tcb& tcb, const Segment& seg, ConnHandle h, uint64_t now_us) noexcept;
  bool acceptable(const Tcb& tcb, const Segment& seg) const noexcept;
  bool paws_reject(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept;
  bool process_ack(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept;
  // An acceptable SEG.ACK above SND.UNA (process_ack, predicted_input).
  void acknowledge(Tcb& tcb, const Segment& seg, bool rack, uint64_t now_us) noexcept;
  // Header prediction: handles an in-order data segment or a pure ACK of an
  // ESTABLISHED connection as synchronized_input would, with fewer tests.
  // False (and nothing changed) for any other segment.
  bool predicted_input(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept;
  // The end of a segment's processing: the application's callbacks, then
  // output() and the buffer pool's upkeep.
  void notify_and_output(Tcb& tcb, ConnHandle h, uint32_t readable_before, bool writable,
                         bool fin_now, uint64_t now_us) noexcept;
  // Feeds the SACK blocks to RACK; returns the D-SACK block (left == right:
  // none).
  SackBlock process_sack(Tcb& tcb, const Segment& seg, uint32_t snd_una, uint64_t now_us) noexcept;
  // RFC 8985 6.2 steps 4-6 after an ACK: reordering window, loss detection,
  // the tail loss probe's outcome.
  void rack_after_ack(Tcb& tcb, const Segment& seg, const SackBlock& dsack, bool acked_new,
                      uint64_t now_us) noexcept;
  void rack_detect_losses(Tcb& tcb, uint64_t now_us) noexcept;
  void enter_recovery(Tcb& tcb, uint64_t now_us) noexcept;
  // RFC 2883: the next ACK reports [left, right) as received twice.
  void note_duplicate(Tcb& tcb, uint32_t left, uint32_t right) noexcept;
  void process_data(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept;
  void process_fin(Tcb& tcb, uint64_t now_us) noexcept;
  void update_send_window(Tcb& tcb, const Segment& seg, bool acked_new) noexcept;
  void take_rtt_sample(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept;
  void negotiate_syn_options(Tcb& tcb, const Segment& seg) noexcept;
  void establish(Tcb& tcb, uint64_t now_us) noexcept;

  // tcp_output.cc: segment departure.
  void output(Tcb& tcb, uint64_t now_us) noexcept;
  // Builds and sends one segment; len is cut to one segment's payload (the
  // FIN is then left off). *sent_len: payload bytes that went out.
  bool send_segment(Tcb& tcb, uint32_t seq, uint32_t len, uint8_t flags, uint64_t now_us,
                    uint32_t* sent_len = nullptr) noexcept;
  void send_ack_now(Tcb& tcb, uint64_t now_us) noexcept;
  void schedule_ack(Tcb& tcb, bool full_segment, uint64_t now_us) noexcept;
  void send_reset_for(Interface& iface, const ipv4::Header& ip, const Segment& seg) noexcept;
  void send_reset(Tcb& tcb) noexcept;
  void send_cookie_syn_ack(Interface& iface, const ipv4::Header& ip, const Segment& seg,
                           uint64_t now_us) noexcept;
  void retransmit_timeout(Tcb& tcb, uint64_t now_us) noexcept;
  void restart_retransmit_timer(Tcb& tcb) noexcept;
  // All three deadlines of retransmit_timer cleared (nothing in flight).
  void stop_retransmit_timer(Tcb& tcb) noexcept;
  // Puts retransmit_timer's node on the earliest deadline.
  void arm_retransmit_timer(Tcb& tcb) noexcept;
  void on_retransmit_timer(Tcb& tcb, uint64_t now_us) noexcept;
  // RFC 8985 7.2: sets (or clears) the probe's deadline; the caller arms
  // the node (arm_retransmit_timer).
  void schedule_loss_probe(Tcb& tcb, uint64_t now_us) noexcept;
  void send_loss_probe(Tcb& tcb, uint64_t now_us) noexcept;
  // Resends the logged segment [seq, seq + len), its FIN included.
  bool retransmit_range(Tcb& tcb, uint32_t seq, uint32_t len, uint64_t now_us) noexcept;
  // SACK negotiated and a segment log attached: losses are RACK's.
  static bool rack_mode(const Tcb& tcb) noexcept { return tcb.sack_ok && tcb.rack.attached(); }
  void mark_output(Tcb& tcb) noexcept;
  uint32_t receive_window(const Tcb& tcb) const noexcept;
  uint32_t ts_clock(uint64_t now_us) const noexcept;
  // RFC 5961 7: challenge ACKs are rate-limited, per connection.
  bool allow_challenge_ack(Tcb& tcb, uint64_t now_us) noexcept;

  TcpConfig config_;
  IsnGenerator isn_;
  EphemeralPorts ports_;
  SynCookies cookies_;
  std::vector<Tcb> tcbs_;
  std::vector<uint32_t> free_tcbs_;
  FlatIndex<FourTuple, TupleHash> table_;
  std::vector<Listener> listeners_;
  // Not value-initialised: the pages of unused buffers are never touched.
  std::unique_ptr<uint8_t[]> buffer_storage_;
  // RACK's segment logs, sent_per_buffer_ records per buffer slot; a send
  // buffer's slot index picks its log (not value-initialised either).
  std::unique_ptr<SentSegment[]> sent_storage_;
  uint32_t sent_per_buffer_ = 0;
  std::vector<uint32_t> free_buffers_;
  // The TCB index holding each buffer (kNoOwner: free), for the idle sweep.
  static constexpr uint32_t kNoOwner = UINT32_MAX;
  static constexpr uint64_t kBufferSweepIntervalUs = 200'000;
  std::vector<uint32_t> buffer_owner_;
  uint64_t next_buffer_sweep_us_ = 0;
  dataplane::TimerWheel wheel_;
  PortFilter port_filter_ = nullptr;
  ForeignHandler foreign_ = nullptr;
  void* foreign_context_ = nullptr;
  void* port_filter_context_ = nullptr;
  uint32_t used_ = 0;
  uint32_t half_open_ = 0;
  uint64_t now_us_ = 0;
  uint64_t predicted_segments_ = 0;
  TcpCounters counters_;
  // Frames to send built by the application calls, flushed by poll(): lets
  // send() from inside on_readable() coalesce into one segment.
  std::vector<uint32_t> output_pending_;
  std::vector<ConnHandle> buffer_waiters_;  // FIFO
};

}  // namespace mtlsgw::net::tcp
