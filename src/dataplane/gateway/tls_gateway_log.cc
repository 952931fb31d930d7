#include "dataplane/gateway/access_log_queue.h"
#include "dataplane/gateway/tls_gateway.h"
#include "dataplane/gateway/tls_gateway_internal.h"

// A finished connection's access record, filled in place in the worker's
// queue for the control side's writer (off the packet path's hot loop: one
// record per connection).

namespace mtlsgw::gateway {

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
  r.start_unix_us = unix_us(s.start_us);
  r.duration_us = stack_.now_us() - s.start_us;
  r.client_ip = s.tuple.remote_ip;
  r.client_port = s.tuple.remote_port;
  r.listener_port = listener_port_;
  if (s.upstream_opened) {
    const HostRoute& route = s.tables->route(s.host);
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
  } else if (s.http_parked) {
    r.requests = s.http_tally.requests;
  }
  r.set_text(r.sni, s.tls.sni());
  if (s.host < s.tables->host_count()) {
    r.set_text(r.host, s.tables->host_name(s.host));
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

}  // namespace mtlsgw::gateway
