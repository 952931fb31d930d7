#pragma once
// What the gateway knows about a TLS client once its handshake is over: the
// facts of its certificate and of the session. The forwarders (PROXY v2 TLVs,
// HTTP identity headers, RFC 9440 Client-Cert), the rules and the access log
// read it; only the TLS layer writes it, once per handshake. It holds no
// OpenSSL type, so code that forwards identity never includes OpenSSL.
//
// Bounds: every field has a cap (below), so a hostile certificate cannot make
// a connection carry more than about 24 KiB of identity. A field that would
// exceed its cap is cut (text) or left out (DER, list entries), and one that
// cannot be read is left empty; `truncated` says either happened: a cut DN
// must not silently match a rule written for the full one.
//
// Text is safe to put in a header or a log line as it is: DNs are RFC 2253
// ASCII, and control characters, backslashes and (outside the UTF-8 CN) bytes
// >= 0x80 in the CN, SANs, SNI and ALPN are written as \XX.

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace mtlsgw::tls {

struct ClientIdentity {
  // Caps, in bytes or entries. A DN or SAN of 1 KiB is far beyond anything a
  // CA issues in practice; 16 KiB of DER is above Cloudflare's 10 KiB limit
  // for an RFC 9440 leaf header and well above real client certificates.
  static constexpr std::size_t kMaxTextBytes = 1024;
  static constexpr std::size_t kMaxSanEntries = 16;
  static constexpr std::size_t kMaxDerBytes = 16 * 1024;

  // Certificate facts. presented: the client sent a certificate (also for one
  // that failed verification). verified: it chained to the host's trust and
  // passed every check. verify_reason: the reason's name from
  // client_verify.h ("ok", "no_certificate", "unknown_ca", "revoked", ...).
  bool presented = false;
  bool verified = false;
  std::string verify_reason;

  std::string subject_dn;  // RFC 2253 string form, e.g. "CN=dev-1,O=Devices"
  std::string issuer_dn;
  std::string common_name;            // the subject's last CN, UTF-8
  std::string serial_hex;             // upper-case hex, no separators
  std::string fingerprint_sha256_hex;  // SHA-256 of the DER, lower-case hex
  int64_t not_before_epoch = 0;       // seconds since 1970-01-01T00:00:00Z
  int64_t not_after_epoch = 0;
  std::vector<std::string> san_dns;
  std::vector<std::string> san_uri;
  std::string ski_hex;         // subjectKeyIdentifier, lower-case hex
  std::string issuer_ski_hex;  // authorityKeyIdentifier keyid, lower-case hex
  std::string der;             // the leaf certificate, DER bytes
  bool truncated = false;      // some field above was cut to its cap

  // Session facts, filled for every completed handshake (with or without a
  // client certificate).
  std::string tls_version;  // "TLSv1.3", "TLSv1.2"
  std::string cipher;       // OpenSSL name, e.g. "TLS_AES_128_GCM_SHA256"
  std::string sni;          // server_name the client sent, empty if none
  std::string alpn;         // negotiated protocol, e.g. "h2", empty if none
  // The gateway's own certificate for this host, in the forms the PROXY
  // protocol v2 spec (2.2.5, PP2_SUBTYPE_SSL_SIG_ALG / _KEY_ALG) defines them
  // for "the certificate presented by the frontend": the digest that signed it
  // ("SHA256") and its key type and size ("EC256", "RSA2048").
  std::string sig_alg;
  std::string key_alg;

  // Back to the empty state, keeping the strings' storage for the next
  // handshake on the same connection slot.
  void clear() noexcept {
    presented = verified = truncated = false;
    not_before_epoch = not_after_epoch = 0;
    for (std::string* s : {&verify_reason, &subject_dn, &issuer_dn, &common_name, &serial_hex,
                           &fingerprint_sha256_hex, &ski_hex, &issuer_ski_hex, &der, &tls_version,
                           &cipher, &sni, &alpn, &sig_alg, &key_alg}) {
      s->clear();
    }
    san_dns.clear();
    san_uri.clear();
  }
};

// RFC 3339 (section 5.6) UTC form of an epoch time, "2025-01-31T23:59:59Z",
// for headers and logs. Returns the number of characters written to out (20),
// or 0 when the time does not fit a four-digit year.
inline std::size_t format_rfc3339_utc(int64_t epoch, char (&out)[21]) noexcept {
  const time_t t = static_cast<time_t>(epoch);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) return 0;
  return std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

}  // namespace mtlsgw::tls
