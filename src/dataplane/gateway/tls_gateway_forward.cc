#include <algorithm>
#include <cstring>

#include "dataplane/gateway/tls_gateway.h"
#include "dataplane/gateway/tls_gateway_internal.h"

// Moving bytes between a client and its origin: decrypted client bytes
// towards the origin (only what the upstream takes now), origin bytes
// encrypted towards the client, and the `http` exchange in between.

namespace mtlsgw::gateway {

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

// An exchange slot for an `http` session, fresh or to resume a parked one;
// none free: the client is closed cleanly, as an overloaded origin would
// (a keep-alive client retries a request that met a close, RFC 9112 9.3.1).
HttpSlot* TlsGateway::take_http_slot(Session& s) noexcept {
  if (free_http_.empty()) {
    counters_.overload.add();
    if (s.end == ConnectionEnd::closed) s.end = ConnectionEnd::overload;
    close_client(s);
    shut_upstream(s);
    return nullptr;
  }
  HttpSlot* slot = free_http_.back();
  free_http_.pop_back();
  counters_.http_slots.set(counters_.http_slots.get() + 1);
  slot->carry_len = 0;
  slot->origin_end_told = false;
  const std::string_view authority = s.identity.sni.empty() ? std::string_view(s.tables->host_name(s.host))
                                                            : std::string_view(s.identity.sni);
  slot->exchange.start(&s.identity, authority);
  slot->exchange.set_request_gate({admit_request, &s});
  s.http = slot;
  return slot;
}

bool TlsGateway::unpark_http(Session& s) noexcept {
  if (!s.http_parked) return true;
  if (take_http_slot(s) == nullptr) return false;
  s.http->exchange.resume(s.http_tally);
  s.http_parked = false;
  return true;
}

void TlsGateway::forward_from_client(Session& s) noexcept {
  if (s.phase != Phase::forwarding || s.client_gone || s.client_eof) return;
  if (s.http_parked && s.closing_client) {
    // Woke with no slot free (take_http_slot): what it still sends has
    // nowhere to go.
    stack_.consume(s.client, stack_.readable(s.client));
    return;
  }
  if (s.http_parked) {
    const bool client_stirred = stack_.readable(s.client) > 0 || s.tls.has_buffered_input() || s.client_fin;
    if (!client_stirred || !unpark_http(s)) return;
  }
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
                                                       sinks.client, now_epoch());
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
  if (s.http_parked) {
    const bool origin_stirred = s.upstream_fin || (!s.upstream_gone && stack_.readable(s.upstream) > 0);
    if (!origin_stirred || !unpark_http(s)) return;
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
                                                                   now_epoch()));
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
      s.http->exchange.origin_ended(sinks.client, now_epoch());
      apply_http(s);
    }
    return;
  }
  const bool origin_over = s.upstream_fin && (s.upstream_gone || stack_.readable(s.upstream) == 0);
  if (origin_over) close_client(s);
}

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

void TlsGateway::http_client_writable(Session& s) noexcept {
  HttpSinks sinks(s);
  s.http->exchange.on_client_writable(sinks.client, now_epoch());
  apply_http(s);
}

void TlsGateway::http_origin_writable(Session& s) noexcept {
  HttpSinks sinks(s);
  s.http->exchange.on_origin_writable(sinks.origin, sinks.client, now_epoch());
  apply_http(s);
}

void TlsGateway::http_origin_failed(Session& s, UpstreamFailure why, bool before_data) noexcept {
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
  s.http->exchange.origin_failed(kind, sinks.client, now_epoch());
  apply_http(s);
  // Before the origin answered, the client's request waited in TCP (or in
  // OpenSSL's read-ahead); the exchange answers it 502/504 only once it
  // reads the head, and no further client segment may come to prompt
  // that.
  if (before_data) forward_from_client(s);
}

}  // namespace mtlsgw::gateway
