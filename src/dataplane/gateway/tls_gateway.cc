#include "dataplane/gateway/tls_gateway.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <new>
#include <utility>

#include "dataplane/gateway/tls_gateway_internal.h"
#include "dataplane/net/interface.h"

// Sessions and their life: accept, the TCP events, timers and endings. The
// other parts of TlsGateway are in tls_gateway_handshake.cc,
// tls_gateway_upstream.cc, tls_gateway_forward.cc and tls_gateway_log.cc.

namespace mtlsgw::gateway {

using net::tcp::CloseReason;
using net::tcp::ConnHandle;
using net::tcp::TcpStack;

struct TlsGateway::Reentry {
  explicit Reentry(TlsGateway& g) noexcept : gateway(g) { ++gateway.depth_; }
  ~Reentry() {
    if (--gateway.depth_ != 0) return;
    while (!gateway.reap_.empty()) {
      Session* s = gateway.reap_.back();
      gateway.reap_.pop_back();
      gateway.release(*s);
    }
  }
  TlsGateway& gateway;
};

TlsGateway::TlsGateway(TcpStack& stack, std::vector<net::Interface*> interfaces,
                       std::unique_ptr<GatewayTables> tables, const GatewayLimits& limits,
                       uint16_t listener_port)
    : stack_(stack),
      egress_(std::move(interfaces)),
      tables_(std::move(tables)),
      limits_(limits),
      listener_port_(listener_port),
      timers_(stack.now_us()),
      host_counters_(std::max(limits.host_slots, tables_->counter_slots_needed())) {
  unix_offset_us_ = unix_now_us() - static_cast<int64_t>(stack.now_us());
  host_slots_ = tables_->host_slots();
  adopted_generation_.store(tables_->generation(), std::memory_order_release);
  ssl_pool_ = std::make_unique<tls::SslPool>(tables_->contexts().front(), limits_.ssl_pool_idle);
  sessions_ = std::make_unique<Session[]>(limits_.max_sessions);
  free_.reserve(limits_.max_sessions);
  reap_.reserve(limits_.max_sessions);
  for (uint32_t i = limits_.max_sessions; i > 0; --i) {
    sessions_[i - 1].owner = this;
    free_.push_back(i - 1);
  }
  provide_http_slots();
  scratch_.reset(new uint8_t[kScratchBytes]);
  imb_mgr_ = make_imb_mgr();
  if (imb_mgr_) {
    record_scratch_.reset(new uint8_t[tls::kMaxRecordLength]);
    record_offload_ = tls::RecordOffload{imb_mgr_.get(), record_scratch_.get()};
  }
  counters_.ssl_pool_idle.set(ssl_pool_->prefill(std::min<uint32_t>(limits_.ssl_pool_idle, 64)));
  // The policy's scratch, made here on the control side: the worker then
  // evaluates rules and checks revocations without allocating or throwing.
  rule_scratch_ = std::make_unique<rules::EvalScratch>();
  hasher_ = tls::CertificateHasher::create();
  issuer_lookup_.reset(X509_STORE_CTX_new());
  if (!hasher_ || !issuer_lookup_) throw std::bad_alloc();
}

TlsGateway::~TlsGateway() {
  for (uint32_t i = 0; i < limits_.max_sessions; ++i) {
    Session& s = sessions_[i];
    timers_.cancel(s.timer);
    if (s.phase != Phase::free) ssl_pool_->discard(s.tls.finish());
  }
  ssl_pool_.reset();
  for (GatewayTables* t = superseded_; t != nullptr;) delete std::exchange(t, t->retired_next);
  free_retired();
  delete pending_.exchange(nullptr);
}

// Sized once, for every host the gateway may ever serve: the longest
// handshake timeout of the current tables, and `http` exchange slots the
// first time a table has an `http` host (a publication, not a packet, pays
// for that allocation).
void TlsGateway::provide_http_slots() noexcept {
  bool any_http = false;
  max_handshake_timeout_us_ = 0;
  for (uint32_t h = 0; h < tables_->host_count(); ++h) {
    max_handshake_timeout_us_ =
        std::max<uint32_t>(max_handshake_timeout_us_, tables_->route(h).handshake_timeout_ms * 1000u);
    any_http = any_http || tables_->route(h).forward == ForwardMode::http;
  }
  if (any_http && !http_slots_ && limits_.http_exchanges > 0) {
    http_slots_.reset(new HttpSlot[limits_.http_exchanges]);
    free_http_.reserve(limits_.http_exchanges);
    for (uint32_t i = limits_.http_exchanges; i > 0; --i) free_http_.push_back(&http_slots_[i - 1]);
  }
}

net::Interface& TlsGateway::egress_for(net::Ipv4Address origin) const noexcept {
  for (net::Interface* iface : egress_) {
    if (iface->config().address.contains(origin)) return *iface;
  }
  return *egress_.front();
}

// ---- Publication ----

bool TlsGateway::publish(std::unique_ptr<GatewayTables> tables) noexcept {
  if (!tables || tables->counter_slots_needed() > host_counters_.size()) return false;
  // release: the worker that takes the pointer sees the tables built.
  delete pending_.exchange(tables.release(), std::memory_order_acq_rel);
  return true;
}

uint32_t TlsGateway::free_retired() noexcept {
  uint32_t freed = 0;
  for (GatewayTables* t = retired_.exchange(nullptr, std::memory_order_acquire); t != nullptr; ++freed) {
    delete std::exchange(t, t->retired_next);
  }
  return freed;
}

// At the top of poll(), between connections' events: from here on new
// connections start on the new tables. The superseded ones stay with their
// connections; the SSL free list starts over, because a pooled SSL is bound
// to the old front context (and, after SSL_clear, to the host context its
// last connection switched to).
void TlsGateway::adopt_pending_tables() noexcept {
  GatewayTables* next = pending_.exchange(nullptr, std::memory_order_acquire);
  if (next == nullptr) return;
  GatewayTables* old = tables_.release();
  tables_.reset(next);
  if (old->users == 0) {
    retire_to_control(old);
  } else {
    old->retired_next = superseded_;
    superseded_ = old;
  }
  ssl_pool_->rebase(tables_->contexts().front());
  counters_.ssl_pool_idle.set(ssl_pool_->idle());
  provide_http_slots();
  counters_.tables_adopted.add();
  adopted_generation_.store(tables_->generation(), std::memory_order_release);
}

void TlsGateway::retire_to_control(GatewayTables* tables) noexcept {
  tables->retired_next = retired_.load(std::memory_order_relaxed);
  while (!retired_.compare_exchange_weak(tables->retired_next, tables, std::memory_order_release,
                                         std::memory_order_relaxed)) {
  }
}

void TlsGateway::drop_table_user(GatewayTables* tables) noexcept {
  if (tables == nullptr || --tables->users != 0 || tables == tables_.get()) return;
  for (GatewayTables** link = &superseded_; *link != nullptr; link = &(*link)->retired_next) {
    if (*link == tables) {
      *link = tables->retired_next;
      retire_to_control(tables);
      return;
    }
  }
}

TlsGateway::Session* TlsGateway::session_of(ConnHandle h) noexcept {
  return static_cast<Session*>(stack_.user(h));
}

uint32_t TlsGateway::client_sink_send(void* context, const uint8_t* data, uint32_t len) noexcept {
  auto& s = *static_cast<Session*>(context);
  return s.owner->stack_.send(s.client, data, len);
}

uint32_t TlsGateway::client_sink_space(void* context) noexcept {
  auto& s = *static_cast<Session*>(context);
  return s.owner->stack_.reserve_send(s.client);
}

// ---- Connection events ----

void TlsGateway::on_accepted(TcpStack& stack, ConnHandle h, const net::tcp::FourTuple& tuple) noexcept {
  Reentry guard(*this);
  if (free_.empty()) {
    counters_.overload.add();
    stack.abort(h);
    return;
  }
  Session& s = sessions_[free_.back()];
  free_.pop_back();
  counters_.accepted.add();
  counters_.active.set(counters_.active.get() + 1);
  s.client = h;
  s.upstream = ConnHandle{};
  s.tuple = tuple;
  s.phase = Phase::handshaking;
  s.host = tls::TlsContexts::kNoHost;
  s.tables = tables_.get();
  ++s.tables->users;
  s.client_gone = s.upstream_opened = s.upstream_gone = false;
  s.client_fin = s.client_eof = s.upstream_fin = s.upstream_shut = false;
  s.closing_client = s.client_shut = s.reaping = s.verdict_known = false;
  s.end = ConnectionEnd::closed;
  s.start_us = s.last_active_us = stack.now_us();
  s.bytes_from_client = s.bytes_to_client = s.bytes_to_upstream = s.bytes_from_upstream = 0;
  s.http = nullptr;
  s.resting = s.http_parked = false;
  s.http_tally = {};
  s.verify = tls::HandshakeVerify{};
  s.verify.refused_identity = &s.identity;
  s.identity.clear();
  stack.set_user(h, &s);
  SSL* ssl = ssl_pool_->acquire();
  counters_.ssl_pool_idle.set(ssl_pool_->idle());
  const tls::CiphertextSink sink{client_sink_send, client_sink_space, &s};
  const tls::RecordOffload* offload = record_offload_.mgr != nullptr ? &record_offload_ : nullptr;
  if (!s.tls.start(ssl, sink, offload) || !tls::attach_handshake_verify(ssl, &s.verify)) {
    s.end = ConnectionEnd::internal;
    reset_both(s);
    return;
  }
  set_deadline(s, Deadline::handshake, s.start_us + max_handshake_timeout_us_);
}

void TlsGateway::on_connected(TcpStack&, ConnHandle h) noexcept {
  Reentry guard(*this);
  Session* s = session_of(h);
  if (s == nullptr || h != s->upstream) return;
  upstream_ready(*s);
}

void TlsGateway::on_readable(TcpStack&, ConnHandle h) noexcept {
  Reentry guard(*this);
  Session* s = session_of(h);
  if (s == nullptr) return;
  s->last_active_us = stack_.now_us();
  s->resting = false;
  if (is_client(*s, h)) {
    pump_client(*s);
  } else {
    pump_upstream(*s);
  }
}

void TlsGateway::on_writable(TcpStack&, ConnHandle h) noexcept {
  Reentry guard(*this);
  Session* s = session_of(h);
  if (s == nullptr) return;
  if (is_client(*s, h)) {
    if (s->tls.on_sink_writable()) {
      handshake_done(*s);
      return;
    }
    if (s->phase == Phase::handshaking) {
      if (s->tls.state() == tls::TlsState::failed) handshake_failed(*s);
      return;
    }
    if (s->phase == Phase::refused) return;
    if (s->http != nullptr) http_client_writable(*s);
    pump_upstream(*s);
    continue_client_close(*s);
  } else {
    if (s->http != nullptr && s->phase == Phase::forwarding) http_origin_writable(*s);
    pump_client(*s);
  }
}

void TlsGateway::on_peer_closed(TcpStack&, ConnHandle h) noexcept {
  Reentry guard(*this);
  Session* s = session_of(h);
  if (s == nullptr) return;
  if (is_client(*s, h)) {
    s->client_fin = true;
    pump_client(*s);
  } else {
    s->upstream_fin = true;
    pump_upstream(*s);
  }
}

void TlsGateway::on_closed(TcpStack&, ConnHandle h, CloseReason reason) noexcept {
  Reentry guard(*this);
  Session* s = session_of(h);
  if (s == nullptr) return;
  if (is_client(*s, h)) {
    s->client_gone = true;
    if (reason != CloseReason::closed && !s->client_eof) {
      counters_.client_resets.add();
      if (s->end == ConnectionEnd::closed) s->end = ConnectionEnd::client_reset;
      // A client that vanished must not leave the origin with a stream
      // that looks complete.
      if (s->upstream_opened && !s->upstream_gone) {
        s->upstream_gone = true;
        stack_.abort(s->upstream);
      }
    } else if (s->upstream_opened && !s->upstream_gone) {
      // The client had finished its stream (close_notify or FIN) and then
      // left; a RST here is usually its kernel answering our close_notify
      // on a socket the client already closed (curl does this). The origin
      // got the whole request: it sees an end, and a RST only if what it
      // still sends is lost (TcpStack::close, RFC 2525 2.17).
      if (reason == CloseReason::closed) {
        shut_upstream(*s);
      } else {
        s->upstream_shut = true;
        stack_.close(s->upstream);
      }
    }
    if (s->phase == Phase::handshaking && s->end == ConnectionEnd::closed) {
      s->end = ConnectionEnd::handshake_failed;
    }
  } else {
    s->upstream_gone = true;
    if (s->phase == Phase::connecting) {
      switch (reason) {
        case CloseReason::refused:
          upstream_failed(*s, UpstreamFailure::refused);
          break;
        case CloseReason::timed_out:
          upstream_failed(*s, UpstreamFailure::timed_out);
          break;
        case CloseReason::unreachable:
          upstream_failed(*s, UpstreamFailure::unreachable);
          break;
        default:
          upstream_failed(*s, UpstreamFailure::reset);
          break;
      }
    } else if (reason != CloseReason::closed) {
      upstream_failed(*s, reason == CloseReason::timed_out ? UpstreamFailure::timed_out : UpstreamFailure::reset);
    } else {
      // A clean end: whatever the origin sent has been read (the stack
      // reports it only then); make sure the client hears the end too.
      s->upstream_fin = true;
      pump_upstream(*s);
    }
  }
  mark_done_if_over(*s);
}

uint32_t TlsGateway::poll(TcpStack&, uint64_t now_us) noexcept {
  Reentry guard(*this);
  if (pending_.load(std::memory_order_relaxed) != nullptr) adopt_pending_tables();
  if (policy_ != nullptr) {
    const Policy* policy = policy_->read();
    if (policy->generation != policy_seen_) adopt_policy(*policy);
  }
  uint32_t work = static_cast<uint32_t>(timers_.advance(now_us, [&](dataplane::TimerNode& node) {
    on_deadline(dataplane::owner_of<Session, &Session::timer>(node), now_us);
  }));
  if (now_us >= next_rest_sweep_us_) work += rest_idle_sessions(now_us);
  return work;
}

// What a connection holds only while bytes move goes back once it has been
// quiet for a second: OpenSSL's record buffers and, in `http` mode, the
// exchange slot (~70 KiB). Idle keep-alive connections are the common case
// (a device keeps its connection for hours), and issue 5 holds an idle
// established connection to 8 KiB. A sweep of the session table four times
// a second costs one look per slot; the next byte from either side takes
// the buffers and a slot again (unpark_http).
uint32_t TlsGateway::rest_idle_sessions(uint64_t now_us) noexcept {
  constexpr uint64_t kSweepIntervalUs = 250'000;
  constexpr uint64_t kQuietForUs = 1'000'000;
  next_rest_sweep_us_ = now_us + kSweepIntervalUs;
  if (counters_.active.get() == 0) return 0;
  uint32_t rested = 0;
  for (uint32_t i = 0; i < limits_.max_sessions; ++i) {
    Session& s = sessions_[i];
    if (s.phase != Phase::forwarding || s.resting || s.client_gone || s.closing_client) continue;
    if (now_us < s.last_active_us + kQuietForUs) continue;
    if (s.http != nullptr) {
      HttpSlot& slot = *s.http;
      if (slot.carry_len != 0 || slot.origin_end_told || !slot.exchange.at_rest()) continue;
      s.http_tally = slot.exchange.tally();
      free_http_.push_back(s.http);
      s.http = nullptr;
      s.http_parked = true;
      counters_.http_slots.set(counters_.http_slots.get() - 1);
    }
    s.tls.release_buffers();
    s.resting = true;
    ++rested;
  }
  return rested;
}

void TlsGateway::pump_client(Session& s) noexcept {
  if (s.client_gone) return;
  switch (s.phase) {
    case Phase::handshaking:
      drive_handshake(s);
      return;
    case Phase::connecting:
      return;  // the bytes wait in TCP; its window holds the client back
    case Phase::refused:
      stack_.consume(s.client, stack_.readable(s.client));
      return;
    case Phase::forwarding:
      forward_from_client(s);
      return;
    case Phase::free:
      return;
  }
}

// ---- Endings and deadlines ----

void TlsGateway::close_client(Session& s) noexcept {
  if (s.client_gone) return;
  s.closing_client = true;
  continue_client_close(s);
}

void TlsGateway::continue_client_close(Session& s) noexcept {
  if (!s.closing_client || s.client_gone || s.client_shut) return;
  if (s.tls.state() == tls::TlsState::established && !s.tls.close_notify_sent()) {
    // close() refuses while a record is owed to send() or the sink is full;
    // on_writable(client) retries.
    if (!s.tls.close() || !s.tls.close_notify_sent()) return;
  }
  s.client_shut = true;
  stack_.shutdown(s.client);
  // The client may never answer our FIN; the idle deadline becomes the
  // closing grace.
  set_deadline(s, Deadline::closing, stack_.now_us() + ms_to_us(limits_.closing_grace_ms));
}

void TlsGateway::reset_both(Session& s) noexcept {
  if (!s.client_gone) {
    s.client_gone = true;
    stack_.abort(s.client);
  }
  if (s.upstream_opened && !s.upstream_gone) {
    s.upstream_gone = true;
    stack_.abort(s.upstream);
  }
  mark_done_if_over(s);
}

void TlsGateway::set_deadline(Session& s, Deadline kind, uint64_t at_us) noexcept {
  s.deadline = kind;
  timers_.schedule(s.timer, at_us);
}

void TlsGateway::on_deadline(Session& s, uint64_t now_us) noexcept {
  switch (s.deadline) {
    case Deadline::none:
      return;
    case Deadline::handshake:
      counters_.handshake_timeouts.add();
      s.end = ConnectionEnd::handshake_timeout;
      reset_both(s);
      return;
    case Deadline::connect:
      if (s.phase != Phase::connecting) return;
      s.upstream_gone = true;
      stack_.abort(s.upstream);
      upstream_failed(s, UpstreamFailure::timed_out);
      mark_done_if_over(s);
      return;
    case Deadline::idle: {
      const uint64_t idle_us = ms_to_us(s.tables->route(s.host).idle_timeout_ms);
      if (now_us < s.last_active_us + idle_us) {
        set_deadline(s, Deadline::idle, s.last_active_us + idle_us);
        return;
      }
      counters_.idle_timeouts.add();
      end_by_gateway(s, ConnectionEnd::idle_timeout, true);
      return;
    }
    case Deadline::closing:
      reset_both(s);
      return;
  }
}

// An SSL bound to superseded tables' contexts is freed, not pooled.
void TlsGateway::return_ssl(const Session& s, SSL* ssl) noexcept {
  if (s.tables == tables_.get()) {
    ssl_pool_->release(ssl);
  } else {
    ssl_pool_->discard(ssl);
  }
  counters_.ssl_pool_idle.set(ssl_pool_->idle());
}

void TlsGateway::end_by_gateway(Session& s, ConnectionEnd end, bool upstream_too) noexcept {
  s.end = end;
  if (upstream_too) shut_upstream(s);
  close_client(s);
  if (!s.client_shut) set_deadline(s, Deadline::closing, stack_.now_us() + ms_to_us(limits_.closing_grace_ms));
}

void TlsGateway::mark_done_if_over(Session& s) noexcept {
  if (s.phase == Phase::free || s.reaping) return;
  if (!s.client_gone) return;
  if (s.upstream_opened && !s.upstream_gone) return;
  s.reaping = true;
  reap_.push_back(&s);
}

void TlsGateway::release(Session& s) noexcept {
  write_access_record(s);
  timers_.cancel(s.timer);
  s.deadline = Deadline::none;
  if (s.http != nullptr) {
    free_http_.push_back(s.http);
    s.http = nullptr;
    counters_.http_slots.set(counters_.http_slots.get() - 1);
  }
  s.http_parked = false;
  return_ssl(s, s.tls.finish());
  drop_table_user(s.tables);
  s.tables = nullptr;
  s.phase = Phase::free;
  s.reaping = false;
  counters_.active.set(counters_.active.get() - 1);
  free_.push_back(static_cast<uint32_t>(&s - sessions_.get()));
}

size_t TlsGateway::session_bytes() noexcept { return sizeof(Session); }

size_t TlsGateway::http_slot_bytes() noexcept { return sizeof(HttpSlot); }

uint64_t TlsGateway::pooled_ssl_bytes() const noexcept {
  return counters_.ssl_pool_idle.get() * ssl_pool_->ssl_bytes();
}

size_t TlsGateway::reserved_bytes() const noexcept {
  const size_t http = http_slots_ ? size_t{limits_.http_exchanges} * sizeof(HttpSlot) : 0;
  const size_t record_scratch = record_scratch_ ? tls::kMaxRecordLength : 0;
  return size_t{limits_.max_sessions} * sizeof(Session) + http + kScratchBytes + record_scratch;
}

}  // namespace mtlsgw::gateway
