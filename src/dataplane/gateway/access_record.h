#pragma once
// One access-log line's facts about one gateway connection, as the worker
// hands them to the access-log writer (control/access_log_writer.h). It
// crosses from the worker to the writer thread by a plain copy through
// AccessLogQueue, so it is fixed-size and trivially copyable: no pointer, no
// std::string, text in bounded arrays. The worker fills it without
// allocating; the writer turns it into JSON (docs/config.md "Access log").
//
// Text caps: sni and host 255 (the DNS name limit, RFC 1035 2.3.4);
// subject_dn and issuer_dn 511, half of ClientIdentity's 1 KiB cap, which real
// client certificates stay far below; serial_hex 64 (RFC 5280 4.1.2.2 allows
// 20 octets = 40 hex, with room for non-conforming longer ones);
// fingerprint_sha256 exactly 64 hex. A longer value is cut and `truncated`
// set, as ClientIdentity does, so a reader knows a DN is not whole.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "dataplane/tls/verify_reason.h"

namespace mtlsgw::gateway {

// How a connection ended, one value per connection (the first cause wins).
//      name                  meaning
#define MTLSGW_CONNECTION_ENDS(X)                                                              \
  X(closed,               "both sides finished cleanly (close_notify / FIN from each)")       \
  X(client_reset,         "the client sent a RST")                                            \
  X(client_truncated,     "the client sent FIN without a TLS close_notify")                   \
  X(handshake_failed,     "the TLS handshake failed (alert sent or received)")                \
  X(handshake_timeout,    "the TLS handshake did not finish in time")                         \
  X(idle_timeout,         "no data either way for the idle timeout")                          \
  X(upstream_refused,     "the upstream answered the connect with RST")                       \
  X(upstream_unreachable, "no route or ARP answer for the upstream")                          \
  X(upstream_timeout,     "the upstream connect did not complete in time")                    \
  X(upstream_reset,       "the upstream sent a RST on an established connection")             \
  X(upstream_truncated,   "the upstream closed before its response was complete")             \
  X(no_host,              "the SNI matched no host and there is no default host")             \
  X(overload,             "no free connection slot")                                          \
  X(revoked,              "closed because the operator revoked the client's certificate")     \
  X(blocked,              "a rule blocked the connection")                                    \
  X(internal,             "a gateway error (or a record nobody set an end for)")

enum class ConnectionEnd : uint8_t {
#define MTLSGW_CONNECTION_END_ENUM(name, meaning) name,
  MTLSGW_CONNECTION_ENDS(MTLSGW_CONNECTION_END_ENUM)
#undef MTLSGW_CONNECTION_END_ENUM
};

inline constexpr std::size_t kConnectionEndCount = 0
#define MTLSGW_CONNECTION_END_COUNT(name, meaning) +1
    MTLSGW_CONNECTION_ENDS(MTLSGW_CONNECTION_END_COUNT)
#undef MTLSGW_CONNECTION_END_COUNT
    ;

// "closed", "client_reset", ...; "unknown" for a value outside the enum (a
// record is raw bytes by the time the writer reads it).
constexpr const char* name_of(ConnectionEnd end) noexcept {
  constexpr const char* kNames[] = {
#define MTLSGW_CONNECTION_END_NAME(name, meaning) #name,
      MTLSGW_CONNECTION_ENDS(MTLSGW_CONNECTION_END_NAME)
#undef MTLSGW_CONNECTION_END_NAME
  };
  const auto index = static_cast<std::size_t>(end);
  return index < kConnectionEndCount ? kNames[index] : "unknown";
}

// verify_reason when no client-certificate verification ran (the handshake
// ended before the Certificate message, or the connection never got a TLS
// session): the log shows null rather than a reason that did not happen.
inline constexpr uint8_t kVerifyNotRun = 0xff;
// alert_sent / alert_received when no alert went that way.
inline constexpr int16_t kNoAlert = -1;

struct AccessRecord {
  // Time: when the connection was accepted, and how long it lived.
  int64_t start_unix_us = 0;
  uint64_t duration_us = 0;

  // Plaintext application bytes each way (TLS records' payload, not TCP).
  uint64_t bytes_from_client = 0;
  uint64_t bytes_to_client = 0;
  uint64_t bytes_to_upstream = 0;
  uint64_t bytes_from_upstream = 0;

  uint32_t client_ip = 0;    // host byte order, as net::Ipv4Address
  uint32_t upstream_ip = 0;  // host byte order
  uint32_t requests = 0;     // HTTP requests seen (0 for raw TCP forwarding)
  uint16_t client_port = 0;
  uint16_t listener_port = 0;
  uint16_t upstream_port = 0;  // 0: no upstream connection was made
  uint16_t http_status = 0;    // the last status the gateway itself answered, 0: none

  int16_t alert_sent = kNoAlert;      // TLS AlertDescription (RFC 8446 6), kNoAlert: none
  int16_t alert_received = kNoAlert;
  bool cert_presented = false;
  bool verified = false;
  bool resumed = false;
  bool truncated = false;  // some text field below was cut to fit
  uint8_t verify_reason = kVerifyNotRun;  // a tls::VerifyReason value, or kVerifyNotRun
  uint8_t end = static_cast<uint8_t>(ConnectionEnd::internal);  // a ConnectionEnd value

  // NUL-terminated text; empty when unknown. Written through set_text.
  char sni[256] = {};
  char host[256] = {};  // the configured host name the connection was routed to
  char tls_version[16] = {};
  char cipher[64] = {};
  char alpn[32] = {};
  char subject_dn[512] = {};
  char issuer_dn[512] = {};
  char serial_hex[65] = {};
  char fingerprint_sha256[65] = {};  // lower-case hex

  // Copies text into field, cut to fit with its NUL; a cut sets truncated.
  // The cut never splits a UTF-8 sequence, so the writer does not have to
  // repair what a cut CN or SNI would otherwise leave behind.
  template <std::size_t N>
  void set_text(char (&field)[N], std::string_view text) noexcept {
    static_assert(N >= 2);
    std::size_t length = text.size();
    if (length > N - 1) {
      truncated = true;
      length = N - 1;
      while (length > 0 && (static_cast<unsigned char>(text[length]) & 0xc0) == 0x80) --length;
    }
    std::memcpy(field, text.data(), length);
    field[length] = '\0';
  }

  void set_end(ConnectionEnd value) noexcept { end = static_cast<uint8_t>(value); }
  void set_verify_reason(tls::VerifyReason reason) noexcept {
    verify_reason = static_cast<uint8_t>(reason);
  }
  void set_alert_sent(tls::TlsAlert alert) noexcept { alert_sent = static_cast<int16_t>(alert); }
};

// The text of a field: up to its NUL, never past its end (a record read from
// a queue is trusted no further than its size).
template <std::size_t N>
std::string_view text_of(const char (&field)[N]) noexcept {
  return std::string_view(field, strnlen(field, N));
}

static_assert(std::is_trivially_copyable_v<AccessRecord>,
              "AccessRecord crosses threads by memcpy through AccessLogQueue");
static_assert(sizeof(AccessRecord) <= 2048, "a queue slot should stay within 2 KiB");

}  // namespace mtlsgw::gateway
