#include "dataplane/net/tcp_stack.h"

#include <algorithm>
#include <bit>

#include <fmt/format.h>

#include "dataplane/net/interface.h"

namespace mtlsgw::net::tcp {
namespace {

// Records in a segment log: one per KiB of send buffer covers a buffer of
// full-size segments (64 KiB: 45 of 1448 bytes) with room for the smaller
// ones an application's short writes make; beyond that the log merges.
uint32_t sent_records_for(uint32_t buffer_size) noexcept {
  return std::clamp<uint32_t>(std::bit_ceil(std::max<uint32_t>(buffer_size / 1024, 1)), 16, 1024);
}

}  // namespace

const char* name_of(State state) noexcept {
  switch (state) {
    case State::closed: return "closed";
    case State::syn_sent: return "syn_sent";
    case State::syn_received: return "syn_received";
    case State::established: return "established";
    case State::fin_wait_1: return "fin_wait_1";
    case State::fin_wait_2: return "fin_wait_2";
    case State::close_wait: return "close_wait";
    case State::closing: return "closing";
    case State::last_ack: return "last_ack";
    case State::time_wait: return "time_wait";
  }
  return "?";
}

const char* name_of(CloseReason reason) noexcept {
  switch (reason) {
    case CloseReason::closed: return "closed";
    case CloseReason::reset_by_peer: return "reset_by_peer";
    case CloseReason::aborted: return "aborted";
    case CloseReason::timed_out: return "timed_out";
    case CloseReason::refused: return "refused";
    case CloseReason::unreachable: return "unreachable";
  }
  return "?";
}

TcpStack::TcpStack(const TcpConfig& config, const SipKey& key, uint64_t now_us)
    : config_(config),
      isn_(key),
      ports_(key),
      cookies_(key),
      tcbs_(config.max_connections),
      table_(config.max_connections),
      buffer_storage_(new uint8_t[size_t{config.buffer_pool} * config.buffer_size]),
      sent_storage_(new SentSegment[size_t{config.buffer_pool} * sent_records_for(config.buffer_size)]),
      sent_per_buffer_(sent_records_for(config.buffer_size)),
      wheel_(now_us),
      now_us_(now_us) {
  free_tcbs_.reserve(config.max_connections);
  for (uint32_t i = config.max_connections; i > 0; --i) {
    const uint32_t index = i - 1;
    free_tcbs_.push_back(index);
    Tcb& tcb = tcbs_[index];
    tcb.retransmit_timer = {{}, index, TimerKind::retransmit};
    tcb.delayed_ack_timer = {{}, index, TimerKind::delayed_ack};
    tcb.keepalive_timer = {{}, index, TimerKind::keepalive};
    tcb.linger_timer = {{}, index, TimerKind::linger};
  }
  free_buffers_.reserve(config.buffer_pool);
  buffer_owner_.assign(config.buffer_pool, kNoOwner);
  for (uint32_t i = config.buffer_pool; i > 0; --i) free_buffers_.push_back(i - 1);
  output_pending_.reserve(config.max_connections);
  // A live TCB has at most one entry; wait_for_buffer() compacts away the
  // entries of TCBs that were released meanwhile before the vector grows.
  buffer_waiters_.reserve(size_t{config.max_connections} * 2);
}

TcpStack::~TcpStack() = default;

// --- handles ---------------------------------------------------------------

ConnHandle TcpStack::handle_of(const Tcb& tcb) const noexcept {
  return ConnHandle{static_cast<uint32_t>(&tcb - tcbs_.data()), tcb.generation};
}

// --- allocation --------------------------------------------------------------

Tcb* TcpStack::allocate(const FourTuple& tuple, Interface& iface, TcpApp* app,
                        uint64_t now_us) noexcept {
  if (free_tcbs_.empty()) return nullptr;
  const uint32_t index = free_tcbs_.back();
  if (!table_.insert(tuple, index)) return nullptr;
  free_tcbs_.pop_back();
  Tcb& tcb = tcbs_[index];
  const uint32_t generation = tcb.generation;
  const Tcb::Timer timers[4] = {tcb.retransmit_timer, tcb.delayed_ack_timer, tcb.keepalive_timer,
                                tcb.linger_timer};
  tcb = Tcb{};
  tcb.generation = generation;
  tcb.retransmit_timer = timers[0];
  tcb.delayed_ack_timer = timers[1];
  tcb.keepalive_timer = timers[2];
  tcb.linger_timer = timers[3];
  tcb.in_use = true;
  tcb.tuple = tuple;
  tcb.iface = &iface;
  tcb.app = app;
  tcb.rtt = RttEstimator(config_.min_rto_us, config_.max_rto_us, config_.initial_rto_us);
  tcb.smss = 536;
  tcb.cc = CongestionControl(config_.congestion, tcb.smss);
  tcb.last_received_us = now_us;
  ++used_;
  return &tcb;
}

void TcpStack::release(Tcb& tcb) noexcept {
  cancel_all_timers(tcb);
  set_state(tcb, State::closed);
  if (tcb.snd_buffer != UINT32_MAX) give_back_buffer(tcb.snd_buffer);
  if (tcb.rcv_buffer != UINT32_MAX) give_back_buffer(tcb.rcv_buffer);
  tcb.snd_buffer = tcb.rcv_buffer = UINT32_MAX;
  count_buffers_held();
  tcb.rack.detach();
  table_.erase(tcb.tuple);
  tcb.in_use = false;
  // A new generation: every handle to this slot is stale from now on.
  ++tcb.generation;
  free_tcbs_.push_back(static_cast<uint32_t>(&tcb - tcbs_.data()));
  --used_;
}

void TcpStack::set_state(Tcb& tcb, State state) noexcept {
  if (tcb.state == state) return;
  if (tcb.state == State::syn_received) --half_open_;
  if (state == State::syn_received) ++half_open_;
  // The gauges count live connections: CLOSED is a TCB being set up or torn
  // down, not a state anybody asks about.
  if (tcb.state != State::closed) {
    Counter& from = counters_.connections_by_state[static_cast<size_t>(tcb.state)];
    from.set(from.get() - 1);
  }
  if (state != State::closed) counters_.connections_by_state[static_cast<size_t>(state)].add();
  tcb.state = state;
}

void TcpStack::enter_time_wait(Tcb& tcb, uint64_t now_us) noexcept {
  set_state(tcb, State::time_wait);
  cancel_all_timers(tcb);
  // Over the cap the TCB is not freed here (its caller is still using it)
  // but at the next poll. The cost is Linux's: a lost last ACK makes the
  // peer's retransmitted FIN meet a RST instead of an ACK.
  const uint32_t cap = config_.max_time_wait != 0 ? config_.max_time_wait : config_.max_connections / 4;
  const uint64_t lingering = counters_.connections_by_state[static_cast<size_t>(State::time_wait)].get();
  if (lingering > cap) {
    counters_.time_wait_overflows.add();
    schedule(tcb.linger_timer, now_us);
    return;
  }
  schedule(tcb.linger_timer, now_us + config_.time_wait_us);
}

// In TIME-WAIT both directions are finished and acknowledged: nothing the
// application does can change the connection any more, and 2*MSL is far too
// long for it to wait (a relay would keep its pair for a minute). Like
// Linux's timewait sockets, the TCB stays for the protocol alone: the
// application hears of a clean end as soon as it has read everything and
// the peer's FIN was announced. Its handle still names the TIME-WAIT TCB
// (state() and describe() show it) until 2*MSL ends, but nothing the
// application could still call changes the protocol: there is nothing to
// read, send and shutdown are refused, and abort only ends TIME-WAIT early.
void TcpStack::notify_complete(Tcb& tcb) noexcept {
  if (tcb.close_notified || !tcb.fin_told || (tcb.rcv.readable() != 0 && !tcb.read_closed)) return;
  tcb.close_notified = true;
  TcpApp* app = tcb.app;
  tcb.app = nullptr;
  if (app != nullptr) app->on_closed(*this, handle_of(tcb), CloseReason::closed);
  tcb.user = nullptr;
}

void TcpStack::finish_when_read(Tcb& tcb) noexcept {
  // The protocol is done (TIME-WAIT over, or our FIN acknowledged in
  // LAST-ACK) but the application has not read everything the peer sent:
  // keep the TCB until it has (read /
  // consume / close / abort finish it), so that no received byte is lost.
  if (tcb.rcv.readable() != 0 && !tcb.read_closed) {
    cancel_all_timers(tcb);
    tcb.drained_close = true;
    return;
  }
  finish(tcb, CloseReason::closed);
}

void TcpStack::finish(Tcb& tcb, CloseReason reason) noexcept {
  switch (reason) {
    case CloseReason::closed: counters_.connections_closed.add(); break;
    case CloseReason::timed_out: counters_.connections_timed_out.add(); break;
    default: counters_.connections_reset.add(); break;
  }
  const ConnHandle h = handle_of(tcb);
  TcpApp* app = tcb.app;
  // A passive connection the application never saw (still in SYN-RECEIVED)
  // ends silently; an active one (simultaneous open) was the application's.
  const bool tell = app != nullptr && !tcb.close_notified &&
                    !(tcb.passive && tcb.state == State::syn_received);
  tcb.close_notified = true;
  // The application hears of the end while the handle still resolves, so
  // that it can find its own state (user()) and act on the other side of a
  // relay; the TCB is CLOSED and its timers stopped, so nothing more can
  // happen to it meanwhile.
  cancel_all_timers(tcb);
  set_state(tcb, State::closed);
  if (tell) app->on_closed(*this, h, reason);
  if (Tcb* still = get(h)) release(*still);
}

// --- buffers -------------------------------------------------------------

size_t TcpStack::reserved_bytes() const noexcept {
  return tcbs_.size() * sizeof(Tcb) + size_t{config_.buffer_pool} * config_.buffer_size +
         size_t{config_.buffer_pool} * sent_per_buffer_ * sizeof(SentSegment);
}

bool TcpStack::attach_send_buffer(Tcb& tcb) noexcept {
  if (tcb.snd_buffer != UINT32_MAX) return true;
  if (free_buffers_.empty()) {
    counters_.buffer_pool_exhausted.add();
    return false;
  }
  tcb.snd_buffer = free_buffers_.back();
  free_buffers_.pop_back();
  buffer_owner_[tcb.snd_buffer] = static_cast<uint32_t>(&tcb - tcbs_.data());
  tcb.snd.attach(buffer_storage_.get() + size_t{tcb.snd_buffer} * config_.buffer_size,
                 config_.buffer_size);
  tcb.rack.attach(sent_storage_.get() + size_t{tcb.snd_buffer} * sent_per_buffer_, sent_per_buffer_);
  count_buffers_held();
  return true;
}

bool TcpStack::attach_receive_buffer(Tcb& tcb) noexcept {
  if (tcb.rcv_buffer != UINT32_MAX) return true;
  if (free_buffers_.empty()) {
    counters_.buffer_pool_exhausted.add();
    return false;
  }
  tcb.rcv_buffer = free_buffers_.back();
  free_buffers_.pop_back();
  buffer_owner_[tcb.rcv_buffer] = static_cast<uint32_t>(&tcb - tcbs_.data());
  tcb.rcv.attach(buffer_storage_.get() + size_t{tcb.rcv_buffer} * config_.buffer_size,
                 config_.buffer_size);
  count_buffers_held();
  return true;
}

// An idle connection gives its buffers back to the pool, so what it costs is
// its TCB alone (issue 5: <= 8 KiB per idle connection).
void TcpStack::detach_buffers_if_idle(Tcb& tcb) noexcept {
  // A FIN in flight keeps the log (and with it the buffer) until acked.
  if (tcb.snd_buffer != UINT32_MAX && tcb.snd.empty() && tcb.snd_una == tcb.snd_max) {
    give_back_buffer(tcb.snd_buffer);
    tcb.snd_buffer = UINT32_MAX;
    tcb.snd.attach(nullptr, 0);
    tcb.rack.detach();
  }
  if (tcb.rcv_buffer != UINT32_MAX && tcb.rcv.readable() == 0 &&
      tcb.rcv.out_of_order_bytes() == 0) {
    give_back_buffer(tcb.rcv_buffer);
    tcb.rcv_buffer = UINT32_MAX;
    tcb.rcv.attach(nullptr, 0);
  }
  count_buffers_held();
}

void TcpStack::give_back_buffer(uint32_t buffer) noexcept {
  buffer_owner_[buffer] = kNoOwner;
  free_buffers_.push_back(buffer);
}

// The input path gives buffers back only when the pool runs low (see the end
// of synchronized_input), so a connection that went quiet would keep up to
// two 64 KiB buffers for as long as it stays open. A sweep a few times a
// second returns them; its cost is one look per held buffer, and a busy
// transfer caught empty at that instant re-takes a buffer on its next
// segment.
void TcpStack::sweep_idle_buffers(uint64_t now_us) noexcept {
  next_buffer_sweep_us_ = now_us + kBufferSweepIntervalUs;
  if (free_buffers_.size() == buffer_owner_.size()) return;
  for (const uint32_t owner : buffer_owner_) {
    if (owner != kNoOwner && tcbs_[owner].in_use) detach_buffers_if_idle(tcbs_[owner]);
  }
}

// A connection refused a send buffer because the pool was empty may never
// receive another segment (its peer waits for it to speak): only the pool
// can wake it. Waiters are served in arrival order, as many per poll as
// there are free buffers.
void TcpStack::wait_for_buffer(Tcb& tcb) noexcept {
  if (tcb.waiting_for_buffer) return;
  tcb.waiting_for_buffer = true;
  if (buffer_waiters_.size() == buffer_waiters_.capacity()) {
    std::erase_if(buffer_waiters_, [this](ConnHandle w) {
      const Tcb* t = get(w);
      return t == nullptr || !t->waiting_for_buffer;
    });
  }
  buffer_waiters_.push_back(handle_of(tcb));
}

void TcpStack::wake_buffer_waiters() noexcept {
  // Callbacks may queue again (appending) or release other TCBs (whose
  // entries then fail the handle check): only the first n are served now.
  const size_t n = std::min(buffer_waiters_.size(), free_buffers_.size());
  for (size_t i = 0; i < n; ++i) {
    Tcb* tcb = get(buffer_waiters_[i]);
    if (tcb == nullptr || !tcb->waiting_for_buffer) continue;
    tcb->waiting_for_buffer = false;
    if (tcb->app == nullptr || !tcb->want_writable) continue;
    tcb->want_writable = false;
    tcb->app->on_writable(*this, buffer_waiters_[i]);
  }
  buffer_waiters_.erase(buffer_waiters_.begin(), buffer_waiters_.begin() + static_cast<ptrdiff_t>(n));
}

// --- timers --------------------------------------------------------------

void TcpStack::schedule(Tcb::Timer& timer, uint64_t at_us) noexcept { wheel_.schedule(timer.node, at_us); }

void TcpStack::cancel(Tcb::Timer& timer) noexcept { wheel_.cancel(timer.node); }

void TcpStack::cancel_all_timers(Tcb& tcb) noexcept {
  stop_retransmit_timer(tcb);
  cancel(tcb.delayed_ack_timer);
  cancel(tcb.keepalive_timer);
  cancel(tcb.linger_timer);
}

void TcpStack::poll(uint64_t now_us) noexcept {
  now_us_ = now_us;
  wheel_.advance(now_us, [this, now_us](dataplane::TimerNode& node) {
    // Timer is standard-layout with the node first.
    on_timer(*reinterpret_cast<Tcb::Timer*>(&node), now_us);
  });
  if (!buffer_waiters_.empty() && !free_buffers_.empty()) wake_buffer_waiters();
  if (now_us >= next_buffer_sweep_us_) sweep_idle_buffers(now_us);
  // Output requested by application calls made outside the receive path.
  for (size_t i = 0; i < output_pending_.size(); ++i) {
    Tcb& tcb = tcbs_[output_pending_[i]];
    tcb.output_marked = false;
    if (tcb.in_use) output(tcb, now_us);
  }
  output_pending_.clear();
}

void TcpStack::on_timer(Tcb::Timer& timer, uint64_t now_us) noexcept {
  Tcb& tcb = tcbs_[timer.tcb];
  if (!tcb.in_use) return;
  switch (timer.kind) {
    case TimerKind::retransmit:
      on_retransmit_timer(tcb, now_us);
      return;
    case TimerKind::delayed_ack:
      if (tcb.ack_now || tcb.unacked_full_segments != 0) {
        counters_.delayed_acks.add();
        send_ack_now(tcb, now_us);
      }
      return;
    case TimerKind::keepalive: {
      // RFC 1122 4.2.3.6: probe an idle connection, give up after the probes.
      if (now_us - tcb.last_received_us < config_.keepalive_idle_us) {
        schedule(tcb.keepalive_timer, tcb.last_received_us + config_.keepalive_idle_us);
        return;
      }
      if (tcb.keepalive_probes_sent >= config_.keepalive_probes) {
        send_reset(tcb);
        finish(tcb, CloseReason::timed_out);
        return;
      }
      ++tcb.keepalive_probes_sent;
      counters_.keepalive_probes.add();
      // SEG.SEQ = SND.NXT - 1 elicits an ACK (RFC 9293 3.8.4).
      send_segment(tcb, tcb.snd_nxt - 1, 0, kFlagAck, now_us);
      schedule(tcb.keepalive_timer, now_us + config_.keepalive_interval_us);
      return;
    }
    case TimerKind::linger:
      switch (tcb.state) {
        case State::time_wait:
          finish_when_read(tcb);
          return;
        case State::fin_wait_2:
          // The peer never closed: Linux's tcp_fin_timeout behaviour.
          send_reset(tcb);
          finish(tcb, CloseReason::timed_out);
          return;
        default:
          return;
      }
  }
}

// --- listeners and opens ---------------------------------------------------

const TcpStack::Listener* TcpStack::find_listener(uint16_t port) const noexcept {
  for (const Listener& l : listeners_) {
    if (l.port == port) return &l;
  }
  return nullptr;
}

bool TcpStack::listen(uint16_t port, TcpApp* app) {
  if (port == 0 || app == nullptr || find_listener(port) != nullptr) return false;
  listeners_.push_back(Listener{port, app});
  return true;
}

void TcpStack::set_port_filter(PortFilter filter, void* context) noexcept {
  port_filter_ = filter;
  port_filter_context_ = context;
}

ConnHandle TcpStack::connect(Interface& iface, Ipv4Address remote_ip, uint16_t remote_port,
                             TcpApp* app, uint64_t now_us) noexcept {
  const Ipv4Address local_ip = iface.config().address.address;
  FourTuple tuple{local_ip, 0, remote_ip, remote_port};
  const uint16_t port = ports_.select(local_ip, remote_ip, remote_port, [&](uint16_t candidate) {
    FourTuple t = tuple;
    t.local_port = candidate;
    if (table_.find(t) != FlatIndex<FourTuple, TupleHash>::kNone) return false;
    if (find_listener(candidate) != nullptr) return false;
    return port_filter_ == nullptr || port_filter_(port_filter_context_, t);
  });
  if (port == 0) return ConnHandle{};
  tuple.local_port = port;
  Tcb* tcb = allocate(tuple, iface, app, now_us);
  if (tcb == nullptr) return ConnHandle{};
  counters_.active_opens.add();
  tcb->passive = false;
  tcb->iss = config_.fixed_isn != 0 ? config_.fixed_isn : isn_.next(tuple, now_us);
  tcb->snd_una = tcb->iss;
  tcb->snd_nxt = tcb->iss;
  tcb->snd_max = tcb->iss;
  // The shift we offer in our SYN is the one we use if the peer agrees.
  tcb->rcv_wscale = window_shift_for(config_.buffer_size);
  set_state(*tcb, State::syn_sent);
  send_segment(*tcb, tcb->iss, 0, kFlagSyn, now_us);
  return handle_of(*tcb);
}

// --- application calls -----------------------------------------------------

void TcpStack::mark_output(Tcb& tcb) noexcept {
  if (tcb.output_marked) return;
  tcb.output_marked = true;
  output_pending_.push_back(static_cast<uint32_t>(&tcb - tcbs_.data()));
}

// The TCB a send may write into with its send buffer attached, or null:
// a stale handle, a FIN already queued, a state that takes no more data
// (RFC 9293 3.10.2), or no buffer in the pool (then on_writable is armed
// and the TCB waits in the buffer FIFO).
Tcb* TcpStack::writable_tcb(ConnHandle h) noexcept {
  Tcb* tcb = get(h);
  if (tcb == nullptr || tcb->fin_queued) return nullptr;
  switch (tcb->state) {
    case State::syn_sent:
    case State::syn_received:
    case State::established:
    case State::close_wait:
      break;
    default:
      return nullptr;
  }
  if (!attach_send_buffer(*tcb)) {
    tcb->want_writable = true;
    wait_for_buffer(*tcb);
    return nullptr;
  }
  return tcb;
}

uint32_t TcpStack::send(ConnHandle h, const uint8_t* data, uint32_t len) noexcept {
  Tcb* tcb = writable_tcb(h);
  if (tcb == nullptr) return 0;
  const uint32_t taken = tcb->snd.write(data, len);
  if (taken < len) tcb->want_writable = true;
  if (taken != 0) mark_output(*tcb);
  return taken;
}

uint32_t TcpStack::send_space(ConnHandle h) const noexcept {
  const Tcb* tcb = get(h);
  if (tcb == nullptr || tcb->fin_queued) return 0;
  const uint32_t space = tcb->snd_buffer == UINT32_MAX ? config_.buffer_size : tcb->snd.free_space();
  if (space == 0) tcb->want_writable = true;
  return space;
}

uint32_t TcpStack::reserve_send(ConnHandle h) noexcept {
  Tcb* tcb = writable_tcb(h);
  if (tcb == nullptr) return 0;
  const uint32_t space = tcb->snd.free_space();
  if (space == 0) tcb->want_writable = true;
  return space;
}

uint32_t TcpStack::unsent_bytes(ConnHandle h) const noexcept {
  const Tcb* tcb = get(h);
  if (tcb == nullptr) return 0;
  return tcb->snd.size();
}

// The application has read the last byte of a connection whose protocol is
// over (drained_close) or lingering in TIME-WAIT: it ends for the
// application now. True when the handle is stale from here on.
bool TcpStack::drained(Tcb& tcb) noexcept {
  if (tcb.drained_close) {
    finish(tcb, CloseReason::closed);
    return true;
  }
  if (tcb.state == State::time_wait) {
    notify_complete(tcb);
    return true;
  }
  return false;
}

uint32_t TcpStack::readable(ConnHandle h) const noexcept {
  const Tcb* tcb = get(h);
  return tcb == nullptr ? 0 : tcb->rcv.readable();
}

uint32_t TcpStack::read(ConnHandle h, uint8_t* out, uint32_t len) noexcept {
  Tcb* tcb = get(h);
  if (tcb == nullptr) return 0;
  const uint32_t window_before = receive_window(*tcb);
  const uint32_t n = tcb->rcv.read(out, len);
  if (tcb->rcv.readable() == 0 && drained(*tcb)) return n;
  // RFC 9293 3.8.6.2.2 (receiver SWS avoidance): announce the opened window
  // once it grew by a full segment or half the buffer.
  if (n != 0 && receive_window(*tcb) - window_before >= std::min<uint32_t>(tcb->smss, config_.buffer_size / 2)) {
    tcb->ack_now = true;
    mark_output(*tcb);
  }
  return n;
}

ReceiveBuffer::Spans TcpStack::peek(ConnHandle h) const noexcept {
  const Tcb* tcb = get(h);
  if (tcb == nullptr) return ReceiveBuffer::Spans{{nullptr, nullptr}, {0, 0}};
  return tcb->rcv.peek();
}

void TcpStack::consume(ConnHandle h, uint32_t len) noexcept {
  Tcb* tcb = get(h);
  if (tcb == nullptr) return;
  const uint32_t window_before = receive_window(*tcb);
  tcb->rcv.consume(len);
  if (tcb->rcv.readable() == 0 && drained(*tcb)) return;
  if (len != 0 && receive_window(*tcb) - window_before >= std::min<uint32_t>(tcb->smss, config_.buffer_size / 2)) {
    tcb->ack_now = true;
    mark_output(*tcb);
  }
}

void TcpStack::shutdown(ConnHandle h) noexcept {
  Tcb* tcb = get(h);
  if (tcb == nullptr || tcb->fin_queued) return;
  switch (tcb->state) {
    case State::syn_sent:
      // A relay may see its client's EOF before the upstream answered: the
      // queued data and the FIN go out once the connection is established
      // (RFC 9293 3.10.4 allows queuing the CLOSE until then).
    case State::syn_received:
    case State::established:
    case State::close_wait:
      tcb->fin_queued = true;
      mark_output(*tcb);
      return;
    default:
      return;
  }
}

void TcpStack::close(ConnHandle h) noexcept {
  Tcb* tcb = get(h);
  if (tcb == nullptr) return;
  if (tcb->drained_close) {
    finish(*tcb, CloseReason::closed);
    return;
  }
  tcb->read_closed = true;
  // RFC 2525 2.17: closing with unread data loses it; tell the peer with RST.
  if (tcb->rcv.readable() != 0) {
    abort(h);
    return;
  }
  // Nobody will read what the peer still sends: do not wait forever for its
  // FIN (Linux's tcp_fin_timeout).
  if (tcb->state == State::fin_wait_2) schedule(tcb->linger_timer, now_us_ + config_.fin_wait_2_timeout_us);
  shutdown(h);
}

void TcpStack::abort(ConnHandle h) noexcept {
  Tcb* tcb = get(h);
  if (tcb == nullptr) return;
  if (tcb->state != State::syn_sent && tcb->state != State::time_wait) send_reset(*tcb);
  tcb->close_notified = true;  // the application asked: no callback
  finish(*tcb, CloseReason::aborted);
}

void TcpStack::set_user(ConnHandle h, void* user) noexcept {
  if (Tcb* tcb = get(h)) tcb->user = user;
}

void* TcpStack::user(ConnHandle h) const noexcept {
  const Tcb* tcb = get(h);
  return tcb == nullptr ? nullptr : tcb->user;
}

const FourTuple* TcpStack::tuple(ConnHandle h) const noexcept {
  const Tcb* tcb = get(h);
  return tcb == nullptr ? nullptr : &tcb->tuple;
}

std::string TcpStack::describe(ConnHandle h) const {
  const Tcb* t = get(h);
  if (t == nullptr) return "stale handle";
  return fmt::format(
      "{} {}:{}->{}:{} una={} nxt={} max={} wnd={} cwnd={} ssthresh={} rto={}us srtt={}us "
      "flight={} unsent={} rcv_nxt={} rcv_adv={} readable={} ooo={} recovery={} dupacks={} "
      "retries={} sacked={} lost={} rack_rtt={}us reo_mult={} tlp={} ts={} sack={} wscale={}/{} "
      "smss={} ts_recent={} last_ack_sent={} wl1={} wl2={} max_wnd={} unacked_full={} "
      "ack_now={} readable_total={}",
      name_of(t->state), format_ipv4(t->tuple.local_ip), t->tuple.local_port,
      format_ipv4(t->tuple.remote_ip), t->tuple.remote_port, t->snd_una - t->iss,
      t->snd_nxt - t->iss, t->snd_max - t->iss, t->snd_wnd, t->cc.cwnd(), t->cc.ssthresh(),
      t->rtt.rto_us(), t->rtt.srtt_us(), t->flight_size(), t->snd.size(), t->rcv_nxt - t->irs,
      t->rcv_adv - t->irs, t->rcv.readable(), t->rcv.out_of_order_bytes(), t->in_recovery,
      t->dupacks, t->retries, t->rack.sacked_bytes(), t->rack.lost_bytes(), t->rack.rtt_us(),
      t->rack.reo_wnd_mult(), t->rack.probe_outstanding(), t->ts_ok, t->sack_ok, t->snd_wscale,
      t->rcv_wscale, t->smss, t->ts_recent, t->last_ack_sent - t->irs, t->snd_wl1 - t->irs,
      t->snd_wl2 - t->iss, t->max_snd_wnd, t->unacked_full_segments, t->ack_now,
      t->rcv.readable());
}

State TcpStack::state(ConnHandle h) const noexcept {
  const Tcb* tcb = get(h);
  return tcb == nullptr ? State::closed : tcb->state;
}

}  // namespace mtlsgw::net::tcp
