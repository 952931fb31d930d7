#pragma once
// What a rule reads: views of the connection's, the client certificate's and
// the HTTP request's facts, filled by the gateway without allocation (the
// SAN arrays are spans over string_views the caller keeps, e.g. a fixed
// array of ClientIdentity::kMaxSanEntries). Nothing here is owned; the views
// must outlive the evaluation.
//
// Presence (docs/rules.md, "Absent fields"): the certificate fields are
// present when cert_presented is true, the HTTP fields when http_present is
// true; the other fields are always present (empty when the handshake did not
// carry them, e.g. tls_alpn without ALPN).

#include <cstdint>
#include <span>
#include <string_view>

namespace mtlsgw::rules {

struct RuleInput {
  // Connection: always present.
  std::string_view tls_sni;      // the server_name the client sent
  std::string_view tls_version;  // "TLSv1.3", "TLSv1.2"
  std::string_view tls_alpn;     // negotiated protocol
  std::string_view tls_cipher;   // OpenSSL's name
  std::string_view tls_host;     // the configured host SNI selected, maybe "*.example.test"
  uint32_t ip_src = 0;           // client IPv4 address, host order
  bool cert_presented = false;
  bool cert_verified = false;
  bool cert_revoked = false;

  // Certificate: present when cert_presented.
  std::string_view cert_subject_dn;  // RFC 2253, "CN=dev-1,O=Devices"
  std::string_view cert_issuer_dn;
  std::string_view cert_common_name;
  std::string_view cert_serial;              // upper-case hex, no separators
  std::string_view cert_fingerprint_sha256;  // lower-case hex
  std::string_view cert_ski;                 // lower-case hex
  std::string_view cert_issuer_ski;          // lower-case hex
  std::span<const std::string_view> cert_san_dns;
  std::span<const std::string_view> cert_san_uri;
  int64_t cert_not_before = 0;  // seconds since the epoch
  int64_t cert_not_after = 0;

  // HTTP: present when http_present (a request of an `http` host).
  bool http_present = false;
  std::string_view http_host;
  std::string_view http_method;
  std::string_view http_uri_path;  // the path without the query
  std::string_view http_uri;       // path and query, as in the request line
};

}  // namespace mtlsgw::rules
