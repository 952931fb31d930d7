#include <openssl/ssl.h>

#include "dataplane/forward/proxy_v2.h"
#include "dataplane/gateway/tls_gateway.h"
#include "dataplane/gateway/tls_gateway_internal.h"
#include "dataplane/net/interface.h"

// The upstream connection of a session: opening it to the host's route,
// the PROXY v2 header, and what a refusal, timeout or reset does.

namespace mtlsgw::gateway {

using net::tcp::ConnHandle;

void TlsGateway::open_upstream(Session& s) noexcept {
  const HostRoute& route = s.tables->route(s.host);
  if (route.forward == ForwardMode::http) {
    if (take_http_slot(s) == nullptr) return;
  }
  s.phase = Phase::connecting;
  counters_.upstream_connects.add();
  const ConnHandle up = stack_.connect(egress_for(route.upstream_ip), route.upstream_ip, route.upstream_port, this, stack_.now_us());
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
  const HostRoute& route = s.tables->route(s.host);
  s.last_active_us = stack_.now_us();
  set_deadline(s, Deadline::idle, s.last_active_us + ms_to_us(route.idle_timeout_ms));
  if (route.forward == ForwardMode::proxy_v2) {
    forward::proxy_v2::Connection conn;
    conn.client_address = s.tuple.remote_ip;
    conn.client_port = s.tuple.remote_port;
    conn.local_address = s.tuple.local_ip;
    conn.local_port = s.tuple.local_port;
    conn.session_resumed = s.tls.resumed();
    const char* group = s.tls.group_name();
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
  if (s.http != nullptr || s.http_parked) {
    if (unpark_http(s)) http_origin_failed(s, why, before_data);
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

}  // namespace mtlsgw::gateway
