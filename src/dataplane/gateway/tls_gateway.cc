#include "dataplane/gateway/tls_gateway.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "dataplane/forward/http_exchange.h"
#include "dataplane/forward/proxy_v2.h"
#include "dataplane/gateway/access_log_queue.h"
#include "dataplane/net/interface.h"
#include "dataplane/tls/client_identity_extract.h"

namespace mtlsgw::gateway {

using net::tcp::CloseReason;
using net::tcp::ConnHandle;
using net::tcp::TcpStack;

namespace {

// Decrypted client bytes per pass, and the room for a PROXY v2 header
// (at most 16 + 65535 bytes, proxy_v2.h).
constexpr uint32_t kScratchBytes = 16 + 65535;
constexpr uint32_t kPlainChunk = tls::TlsSession::kMaxRecordPlaintext;

constexpr uint64_t ms_to_us(uint32_t ms) { return uint64_t{ms} * 1000; }

int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// One `http` connection's exchange and its buffers, from a pool made at
// construction. The buffers are left uninitialised, so the pool's memory is
// only backed once a connection touches it.
struct HttpSlot {
  static constexpr uint32_t kHeadBytes = 8192;
  static constexpr uint32_t kRewrittenBytes = 32768;
  char request_head[kHeadBytes];
  char response_head[kHeadBytes];
  char rewritten[kRewrittenBytes];
  // Decrypted client bytes the exchange has not taken yet (it stops at a
  // head that does not fit the origin's room, at the pipelining limit, or
  // after a request it answers itself).
  uint8_t carry[kPlainChunk];
  uint32_t carry_len = 0;
  bool origin_end_told = false;
  forward::http::HttpExchange exchange;

  HttpSlot()
      : exchange(forward::http::ExchangeBuffers{{request_head, kHeadBytes},
                                                {response_head, kHeadBytes},
                                                {rewritten, kRewrittenBytes}}) {}
};

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

// The exchange's two ends for one call: the origin's TCP send side and the
// client's TLS session (which encrypts into the client's TCP send side).
struct TlsGateway::HttpSinks {
  explicit HttpSinks(Session& s) noexcept
      : origin{origin_write, origin_space, &s}, client{client_write, client_space, &s} {}

  static uint32_t origin_write(void* context, const uint8_t* data, uint32_t len) noexcept {
    auto& s = *static_cast<Session*>(context);
    const uint32_t taken = s.owner->stack_.send(s.upstream, data, len);
    s.bytes_to_upstream += taken;
    return taken;
  }
  static uint32_t origin_space(void* context) noexcept {
    auto& s = *static_cast<Session*>(context);
    return s.owner->stack_.reserve_send(s.upstream);
  }
  static uint32_t client_write(void* context, const uint8_t* data, uint32_t len) noexcept {
    auto& s = *static_cast<Session*>(context);
    const uint32_t taken = s.tls.send(data, len);
    s.bytes_to_client += taken;
    s.owner->counters_.bytes_to_client.add(taken);
    return taken;
  }
  // The client's TCP room as it is, record overhead included: a write
  // that then takes less is reported as taken, and TlsSession's refused
  // tail is what arms on_writable. Subtracting the overhead here would
  // report 0 for a room of 1..34 bytes without arming anything, and the
  // origin's bytes would wait forever (a response over one send buffer).
  static uint32_t client_space(void* context) noexcept {
    auto& s = *static_cast<Session*>(context);
    if (s.tls.state() != tls::TlsState::established) return 0;
    return s.owner->stack_.reserve_send(s.client);
  }

  forward::http::ByteSink origin;
  forward::http::ByteSink client;
};

TlsGateway::TlsGateway(TcpStack& stack, std::vector<net::Interface*> egress,
                       std::unique_ptr<GatewayTables> tables, const GatewayLimits& limits,
                       uint16_t listener_port)
    : stack_(stack),
      egress_(std::move(egress)),
      tables_(std::move(tables)),
      limits_(limits),
      listener_port_(listener_port),
      timers_(stack.now_us()),
      host_counters_(tables_->host_count()) {
  ssl_pool_ = std::make_unique<tls::SslPool>(tables_->contexts().front(), limits_.ssl_pool_idle);
  sessions_ = std::make_unique<Session[]>(limits_.max_sessions);
  free_.reserve(limits_.max_sessions);
  reap_.reserve(limits_.max_sessions);
  for (uint32_t i = limits_.max_sessions; i > 0; --i) {
    sessions_[i - 1].owner = this;
    free_.push_back(i - 1);
  }
  bool any_http = false;
  for (uint32_t h = 0; h < tables_->host_count(); ++h) {
    max_handshake_timeout_us_ =
        std::max<uint32_t>(max_handshake_timeout_us_, tables_->route(h).handshake_timeout_ms * 1000u);
    any_http = any_http || tables_->route(h).forward == ForwardMode::http;
  }
  if (any_http && limits_.http_exchanges > 0) {
    http_slots_.reset(new HttpSlot[limits_.http_exchanges]);
    free_http_.reserve(limits_.http_exchanges);
    for (uint32_t i = limits_.http_exchanges; i > 0; --i) free_http_.push_back(&http_slots_[i - 1]);
  }
  scratch_.reset(new uint8_t[kScratchBytes]);
  ssl_pool_->prefill(std::min<uint32_t>(limits_.ssl_pool_idle, 64));
}

TlsGateway::~TlsGateway() {
  for (uint32_t i = 0; i < limits_.max_sessions; ++i) {
    Session& s = sessions_[i];
    timers_.cancel(s.timer);
    if (s.phase != Phase::free) ssl_pool_->release(s.tls.finish());
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
  s.client_gone = s.upstream_opened = s.upstream_gone = false;
  s.client_fin = s.client_eof = s.upstream_fin = s.upstream_shut = false;
  s.closing_client = s.client_shut = s.reaping = s.verdict_known = false;
  s.end = ConnectionEnd::closed;
  s.start_us = s.last_active_us = stack.now_us();
  s.start_unix_us = unix_now_us();
  s.bytes_from_client = s.bytes_to_client = s.bytes_to_upstream = s.bytes_from_upstream = 0;
  s.http = nullptr;
  s.verify = tls::HandshakeVerify{};
  s.verify.refused_identity = &s.identity;
  s.identity.clear();
  stack.set_user(h, &s);
  SSL* ssl = ssl_pool_->acquire();
  const tls::CiphertextSink sink{client_sink_send, client_sink_space, &s};
  if (!s.tls.start(ssl, sink) || !tls::attach_handshake_verify(ssl, &s.verify)) {
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
    if (s->http != nullptr) {
      HttpSinks sinks(*s);
      s->http->exchange.on_client_writable(sinks.client, unix_now_us() / 1'000'000);
      apply_http(*s);
    }
    pump_upstream(*s);
    continue_client_close(*s);
  } else {
    if (s->http != nullptr && s->phase == Phase::forwarding) {
      HttpSinks sinks(*s);
      s->http->exchange.on_origin_writable(sinks.origin, sinks.client, unix_now_us() / 1'000'000);
      apply_http(*s);
    }
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
  return static_cast<uint32_t>(timers_.advance(now_us, [&](dataplane::TimerNode& node) {
    on_deadline(dataplane::owner_of<Session, &Session::timer>(node), now_us);
  }));
}

// ---- Client side: handshake, then decrypted bytes towards the origin ----

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

void TlsGateway::drive_handshake(Session& s) noexcept {
  const auto spans = stack_.peek(s.client);
  const tls::TlsSession::Progress p = s.tls.receive(spans, s.client_fin, nullptr, 0);
  stack_.consume(s.client, p.ciphertext_taken);
  if (s.tls.state() == tls::TlsState::failed) {
    handshake_failed(s);
    return;
  }
  if (p.handshake_done) {
    handshake_done(s);
    return;
  }
  // Once the ClientHello named a host, its own handshake timeout applies.
  const uint32_t host = s.tls.host();
  if (host < tables_->host_count() && s.deadline == Deadline::handshake) {
    const uint64_t at = s.start_us + ms_to_us(tables_->route(host).handshake_timeout_ms);
    if (at < s.timer.expires_us) set_deadline(s, Deadline::handshake, at);
  }
}

void TlsGateway::handshake_failed(Session& s) noexcept {
  s.phase = Phase::refused;
  counters_.handshakes_failed.add();
  const uint32_t host = s.tls.host();
  s.host = host;
  s.end = ConnectionEnd::handshake_failed;
  if (host >= tables_->host_count()) {
    // The ClientHello named no host we serve (or came without SNI and no
    // default is configured): on_client_hello refused it.
    if (s.tls.alert_sent() == SSL_AD_UNRECOGNIZED_NAME || s.tls.alert_sent() == SSL_AD_HANDSHAKE_FAILURE) {
      counters_.no_host.add();
      s.end = ConnectionEnd::no_host;
    }
  } else {
    HostCounters& hc = host_counters_[host];
    hc.handshakes_failed.add();
    if (s.verify.ran) {
      s.verdict_known = true;
      hc.verify[static_cast<size_t>(s.verify.verdict.reason)].add();
    } else if (tables_->mtls(host) == tls::MtlsMode::required && s.tls.client_certificate() == nullptr &&
               ERR_GET_REASON(s.tls.error_code()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      s.verify.verdict.reason = tls::VerifyReason::no_certificate;
      s.verdict_known = true;
      hc.verify[static_cast<size_t>(tls::VerifyReason::no_certificate)].add();
    }
  }
  // The alert is in the send buffer (if it had room): read and drop what
  // else the client sent, so that closing sends a FIN after the alert
  // instead of a RST that could overtake it (RFC 2525 2.17).
  stack_.consume(s.client, stack_.readable(s.client));
  timers_.cancel(s.timer);
  s.deadline = Deadline::none;
  s.client_shut = true;
  stack_.close(s.client);
  set_deadline(s, Deadline::closing, stack_.now_us() + ms_to_us(limits_.closing_grace_ms));
}

void TlsGateway::handshake_done(Session& s) noexcept {
  s.host = s.tls.host();
  if (s.host >= tables_->host_count()) {  // cannot happen: on_client_hello chose one
    s.end = ConnectionEnd::internal;
    reset_both(s);
    return;
  }
  HostCounters& hc = host_counters_[s.host];
  counters_.handshakes_ok.add();
  hc.handshakes_ok.add();
  const bool resumed = s.tls.resumed();
  if (resumed) counters_.resumed.add();

  // The verdict: this handshake's verification, or for a resumption the one
  // its session kept, or no certificate at all.
  tls::ClientVerdict verdict = s.verify.verdict;
  const bool presented = s.tls.client_cert_presented();
  if (!s.verify.ran) {
    if (!presented) {
      verdict = tls::ClientVerdict{};
    } else {
      const long result = s.tls.verify_result();
      verdict.reason = result == X509_V_OK ? tls::VerifyReason::ok : tls::reason_for_x509_error(static_cast<int>(result));
      verdict.x509_error = static_cast<int>(result);
    }
  }
  const tls::MtlsMode mtls = tables_->mtls(s.host);
  s.verify.verdict = verdict;
  s.verdict_known = mtls != tls::MtlsMode::off;
  if (mtls != tls::MtlsMode::off && !resumed) hc.verify[static_cast<size_t>(verdict.reason)].add();
  if (mtls != tls::MtlsMode::off && !verdict.ok()) hc.passed_unverified.add();
  // Once per handshake; allocates inside OpenSSL's encoders (the strings
  // keep their storage across the slot's connections).
  tls::extract_client_identity(s.tls.ssl(), verdict, &s.identity, tables_->sha256());
  s.tls.fill_session_facts(tables_->contexts(), s.identity);
  open_upstream(s);
}

// ---- Upstream ----

void TlsGateway::open_upstream(Session& s) noexcept {
  const HostRoute& route = tables_->route(s.host);
  if (route.forward == ForwardMode::http) {
    if (free_http_.empty()) {
      // No exchange for this connection: refuse it as an overloaded origin
      // would, cleanly.
      counters_.overload.add();
      s.end = ConnectionEnd::overload;
      close_client(s);
      return;
    }
    s.http = free_http_.back();
    free_http_.pop_back();
    s.http->carry_len = 0;
    s.http->origin_end_told = false;
    const std::string_view authority = s.identity.sni.empty() ? std::string_view(tables_->host_name(s.host))
                                                              : std::string_view(s.identity.sni);
    s.http->exchange.start(&s.identity, authority);
  }
  s.phase = Phase::connecting;
  counters_.upstream_connects.add();
  const ConnHandle up = stack_.connect(*egress_[s.host], route.upstream_ip, route.upstream_port, this, stack_.now_us());
  if (!up.valid()) {
    upstream_failed(s, UpstreamFailure::unreachable);
    return;
  }
  s.upstream = up;
  s.upstream_opened = true;
  stack_.set_user(up, &s);
  set_deadline(s, Deadline::connect, stack_.now_us() + ms_to_us(route.connect_timeout_ms));
}

void TlsGateway::upstream_ready(Session& s) noexcept {
  if (s.phase != Phase::connecting) return;
  s.phase = Phase::forwarding;
  const HostRoute& route = tables_->route(s.host);
  s.last_active_us = stack_.now_us();
  set_deadline(s, Deadline::idle, s.last_active_us + ms_to_us(route.idle_timeout_ms));
  if (route.forward == ForwardMode::proxy_v2) {
    forward::proxy_v2::Connection conn;
    conn.client_address = s.tuple.remote_ip;
    conn.client_port = s.tuple.remote_port;
    conn.local_address = s.tuple.local_ip;
    conn.local_port = s.tuple.local_port;
    conn.session_resumed = s.tls.resumed();
    const char* group = SSL_group_to_name(s.tls.ssl(), SSL_get_negotiated_group(s.tls.ssl()));
    if (group != nullptr) conn.group = group;
    conn.sig_scheme = s.tls.signature_scheme();
    const auto header =
        forward::proxy_v2::encode(conn, s.identity, forward::proxy_v2::Options{}, scratch_.get(), kScratchBytes);
    // A fresh connection's send buffer (64 KiB by default) takes any header
    // encode() accepts; a smaller configured buffer that cannot is a
    // configuration this host cannot be served with.
    const bool sent = header.error == forward::proxy_v2::EncodeError::kNone &&
                      stack_.reserve_send(s.upstream) >= header.length &&
                      stack_.send(s.upstream, scratch_.get(), static_cast<uint32_t>(header.length)) == header.length;
    if (!sent) {
      s.end = ConnectionEnd::internal;
      reset_both(s);
      return;
    }
  }
  forward_from_client(s);
  pump_upstream(s);
}

void TlsGateway::upstream_failed(Session& s, UpstreamFailure why) noexcept {
  switch (why) {
    case UpstreamFailure::refused:
      counters_.upstream_refused.add();
      if (s.end == ConnectionEnd::closed) s.end = ConnectionEnd::upstream_refused;
      break;
    case UpstreamFailure::unreachable:
      counters_.upstream_unreachable.add();
      if (s.end == ConnectionEnd::closed) s.end = ConnectionEnd::upstream_unreachable;
      break;
    case UpstreamFailure::timed_out:
      counters_.upstream_timed_out.add();
      if (s.end == ConnectionEnd::closed) s.end = ConnectionEnd::upstream_timeout;
      break;
    case UpstreamFailure::reset:
      counters_.upstream_reset.add();
      if (s.end == ConnectionEnd::closed) s.end = ConnectionEnd::upstream_reset;
      break;
  }
  s.upstream_gone = true;
  if (s.client_gone) return;
  const bool before_data = s.phase == Phase::connecting;
  s.phase = Phase::forwarding;
  if (s.http != nullptr) {
    forward::http::OriginFailure kind = forward::http::OriginFailure::reset;
    switch (why) {
      case UpstreamFailure::refused:
        kind = forward::http::OriginFailure::refused;
        break;
      case UpstreamFailure::unreachable:
        kind = forward::http::OriginFailure::unreachable;
        break;
      case UpstreamFailure::timed_out:
        kind = forward::http::OriginFailure::timed_out;
        break;
      case UpstreamFailure::reset:
        break;
    }
    HttpSinks sinks(s);
    s.http->exchange.origin_failed(kind, sinks.client, unix_now_us() / 1'000'000);
    apply_http(s);
    // Before the origin answered, the client's request waited in TCP (or in
    // OpenSSL's read-ahead); the exchange answers it 502/504 only once it
    // reads the head, and no further client segment may come to prompt
    // that.
    if (before_data) forward_from_client(s);
    return;
  }
  if (before_data) {
    // Nothing reached the origin: the client gets a clean close rather than
    // a reset, as the issue asks of a refusing or silent upstream.
    close_client(s);
  } else {
    // The origin's stream broke: reset the client so the truncated stream
    // is not taken for a complete one.
    reset_both(s);
  }
}

void TlsGateway::shut_upstream(Session& s) noexcept {
  if (s.upstream_shut || !s.upstream_opened || s.upstream_gone) return;
  s.upstream_shut = true;
  stack_.shutdown(s.upstream);
}

// ---- Moving bytes ----

void TlsGateway::forward_from_client(Session& s) noexcept {
  if (s.phase != Phase::forwarding || s.client_gone || s.client_eof) return;
  for (int round = 0; round < 64; ++round) {
    if (s.tls.state() != tls::TlsState::established) break;
    uint32_t plain = 0;
    if (s.http != nullptr) {
      HttpSlot& slot = *s.http;
      if (slot.carry_len == 0 && !s.http->exchange.client_paused()) {
        // TCP's FIN is not passed to OpenSSL here: a client that ends with
        // FIN and no close_notify (most HTTP clients) may still be owed a
        // response, which a failed session could no longer encrypt; the end
        // of input is detected below instead.
        const auto p = s.tls.receive(stack_.peek(s.client), false, slot.carry, kPlainChunk);
        stack_.consume(s.client, p.ciphertext_taken);
        slot.carry_len = p.plaintext;
        plain = p.plaintext;
        s.bytes_from_client += p.plaintext;
        counters_.bytes_from_client.add(p.plaintext);
      }
      if (slot.carry_len > 0) {
        HttpSinks sinks(s);
        const size_t taken = slot.exchange.from_client({slot.carry, slot.carry_len}, sinks.origin,
                                                       sinks.client, unix_now_us() / 1'000'000);
        if (taken > 0) {
          std::memmove(slot.carry, slot.carry + taken, slot.carry_len - taken);
          slot.carry_len -= static_cast<uint32_t>(taken);
        }
        apply_http(s);
        if (s.client_gone || s.http == nullptr) return;
        if (slot.carry_len > 0 || taken == 0) break;
      } else if (plain == 0) {
        break;
      }
    } else {
      if (s.upstream_gone) return;
      const uint32_t room = stack_.reserve_send(s.upstream);
      if (room == 0) break;  // on_writable(upstream) comes back here
      const uint32_t cap = std::min(room, kPlainChunk);
      const auto p = s.tls.receive(stack_.peek(s.client), false, scratch_.get(), cap);
      stack_.consume(s.client, p.ciphertext_taken);
      if (p.plaintext > 0) {
        const uint32_t sent = stack_.send(s.upstream, scratch_.get(), p.plaintext);
        s.bytes_from_client += p.plaintext;
        s.bytes_to_upstream += sent;
        counters_.bytes_from_client.add(p.plaintext);
        if (sent != p.plaintext) {  // reserve_send promised the room
          s.end = ConnectionEnd::internal;
          reset_both(s);
          return;
        }
      }
      if (p.plaintext == 0 && !s.tls.has_buffered_input()) break;
    }
  }
  if (s.tls.state() == tls::TlsState::failed) {
    // A bad record, a fatal alert from the client, or a renegotiation
    // attempt mid-stream: the stream to the origin is cut, not ended.
    s.end = ConnectionEnd::client_reset;
    reset_both(s);
    return;
  }
  const bool input_over = s.tls.peer_closed() || (s.client_fin && stack_.readable(s.client) == 0 &&
                                                  !s.tls.has_buffered_input());
  const bool carried = s.http == nullptr || s.http->carry_len == 0;
  if (input_over && carried) client_input_ended(s);
}

void TlsGateway::client_input_ended(Session& s) noexcept {
  if (s.client_eof) return;
  s.client_eof = true;
  if (!s.tls.peer_closed()) {
    counters_.client_truncated.add();
    if (s.end == ConnectionEnd::closed) s.end = ConnectionEnd::client_truncated;
  }
  if (s.http != nullptr) {
    s.http->exchange.client_ended();
    apply_http(s);
    return;
  }
  shut_upstream(s);
}

void TlsGateway::pump_upstream(Session& s) noexcept {
  if (s.phase != Phase::forwarding || s.client_gone || !s.upstream_opened) return;
  if (s.tls.state() != tls::TlsState::established || s.closing_client) {
    continue_client_close(s);
    return;
  }
  bool blocked = false;
  for (int round = 0; round < 64 && !blocked; ++round) {
    const auto spans = stack_.peek(s.upstream);
    if (spans.len[0] + spans.len[1] == 0) break;
    uint32_t moved = 0;
    for (int i = 0; i < 2 && !blocked; ++i) {
      if (spans.len[i] == 0) continue;
      uint32_t taken = 0;
      if (s.http != nullptr) {
        HttpSinks sinks(s);
        taken = static_cast<uint32_t>(s.http->exchange.from_origin({spans.data[i], spans.len[i]}, sinks.client,
                                                                   unix_now_us() / 1'000'000));
      } else {
        taken = s.tls.send(spans.data[i], spans.len[i]);
        s.bytes_to_client += taken;
        counters_.bytes_to_client.add(taken);
      }
      moved += taken;
      blocked = taken < spans.len[i];
    }
    s.bytes_from_upstream += moved;
    if (moved == 0) break;
    stack_.consume(s.upstream, moved);  // may report the upstream closed
    if (s.client_gone) return;
  }
  if (s.http != nullptr) {
    apply_http(s);
    if (s.client_gone) return;
    const bool origin_over = s.upstream_fin && (s.upstream_gone || stack_.readable(s.upstream) == 0);
    if (origin_over && !s.http->origin_end_told) {
      s.http->origin_end_told = true;
      HttpSinks sinks(s);
      s.http->exchange.origin_ended(sinks.client, unix_now_us() / 1'000'000);
      apply_http(s);
    }
    return;
  }
  const bool origin_over = s.upstream_fin && (s.upstream_gone || stack_.readable(s.upstream) == 0);
  if (origin_over) close_client(s);
}

// ---- Endings ----

void TlsGateway::apply_http(Session& s) noexcept {
  if (s.http == nullptr || s.client_gone) return;
  const forward::http::HttpExchange& exchange = s.http->exchange;
  if (exchange.must_reset_client()) {
    if (s.end == ConnectionEnd::closed) s.end = ConnectionEnd::upstream_truncated;
    reset_both(s);
    return;
  }
  if (exchange.must_reset_origin() && s.upstream_opened && !s.upstream_gone) {
    s.upstream_gone = true;
    stack_.abort(s.upstream);
  }
  if (exchange.wants_origin_shutdown()) shut_upstream(s);
  if (exchange.wants_client_close()) close_client(s);
}

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
      const uint64_t idle_us = ms_to_us(tables_->route(s.host).idle_timeout_ms);
      if (now_us < s.last_active_us + idle_us) {
        set_deadline(s, Deadline::idle, s.last_active_us + idle_us);
        return;
      }
      counters_.idle_timeouts.add();
      s.end = ConnectionEnd::idle_timeout;
      shut_upstream(s);
      close_client(s);
      if (!s.client_shut) set_deadline(s, Deadline::closing, now_us + ms_to_us(limits_.closing_grace_ms));
      return;
    }
    case Deadline::closing:
      reset_both(s);
      return;
  }
}

void TlsGateway::mark_done_if_over(Session& s) noexcept {
  if (s.phase == Phase::free || s.reaping) return;
  if (!s.client_gone) return;
  if (s.upstream_opened && !s.upstream_gone) return;
  s.reaping = true;
  reap_.push_back(&s);
}

void TlsGateway::write_access_record(const Session& s) noexcept {
  if (s.http != nullptr && s.http->exchange.local_status() != 0) counters_.http_local_responses.add();
  if (access_log_ == nullptr) return;
  // Filled in place in the queue's slot: no 2 KiB copy per connection.
  AccessRecord* slot = access_log_->try_claim();
  if (slot == nullptr) {
    counters_.access_log_dropped.add();
    return;
  }
  AccessRecord& r = *slot;
  r = AccessRecord{};
  r.start_unix_us = s.start_unix_us;
  r.duration_us = stack_.now_us() - s.start_us;
  r.client_ip = s.tuple.remote_ip;
  r.client_port = s.tuple.remote_port;
  r.listener_port = listener_port_;
  if (s.upstream_opened) {
    const HostRoute& route = tables_->route(s.host);
    r.upstream_ip = route.upstream_ip;
    r.upstream_port = route.upstream_port;
  }
  r.bytes_from_client = s.bytes_from_client;
  r.bytes_to_client = s.bytes_to_client;
  r.bytes_to_upstream = s.bytes_to_upstream;
  r.bytes_from_upstream = s.bytes_from_upstream;
  r.cert_presented = s.identity.presented || s.tls.client_cert_presented();
  r.verified = s.identity.verified;
  r.resumed = s.tls.resumed();
  if (s.verdict_known) r.set_verify_reason(s.verify.verdict.reason);
  r.alert_sent = static_cast<int16_t>(s.tls.alert_sent());
  r.alert_received = static_cast<int16_t>(s.tls.alert_received());
  r.end = static_cast<uint8_t>(s.end);
  if (s.http != nullptr) {
    r.http_status = s.http->exchange.local_status();
    r.requests = s.http->exchange.requests();
  }
  r.set_text(r.sni, s.tls.sni());
  if (s.host < tables_->host_count()) {
    r.set_text(r.host, tables_->host_name(s.host));
    r.set_text(r.tls_version, s.tls.version_name());
  }
  if (s.phase == Phase::connecting || s.phase == Phase::forwarding) {
    r.set_text(r.cipher, s.identity.cipher);
    r.set_text(r.alpn, s.identity.alpn);
  }
  // Also for a refused certificate (HandshakeVerify::refused_identity):
  // which device failed is what an operator looks for.
  if (s.identity.presented) {
    r.set_text(r.subject_dn, s.identity.subject_dn);
    r.set_text(r.issuer_dn, s.identity.issuer_dn);
    r.set_text(r.serial_hex, s.identity.serial_hex);
    r.set_text(r.fingerprint_sha256, s.identity.fingerprint_sha256_hex);
  }
  access_log_->publish();
}

void TlsGateway::release(Session& s) noexcept {
  write_access_record(s);
  timers_.cancel(s.timer);
  s.deadline = Deadline::none;
  if (s.http != nullptr) {
    free_http_.push_back(s.http);
    s.http = nullptr;
  }
  ssl_pool_->release(s.tls.finish());
  s.phase = Phase::free;
  s.reaping = false;
  counters_.active.set(counters_.active.get() - 1);
  free_.push_back(static_cast<uint32_t>(&s - sessions_.get()));
}

}  // namespace mtlsgw::gateway
