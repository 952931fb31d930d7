#pragma once
// The header rewriter of `forward: http`: on every request, first every
// identity field the client sent is removed (all occurrences, any case), then
// the identity the TLS handshake established is added. The origin can trust
// these fields because no client can set them: this is Envoy's SANITIZE_SET
// for forward_client_cert_details, applied to per-field headers and to
// RFC 9440 Client-Cert.
//
// Fields added (names configurable, values below):
//   X-Client-Verified       "true" when a certificate was presented and
//                           verified, else "false" (always sent)
//   X-Client-Verify-Reason  the verifier's reason name ("ok", "expired", ...)
//   X-Client-Subject        subject DN, RFC 4514 string      } only when a
//   X-Client-Issuer         issuer DN, RFC 4514 string       } certificate
//   X-Client-Serial         upper-case hex                   } was presented
//   X-Client-Fingerprint    SHA-256 of the DER, lower-case hex
//   X-Client-Not-Before     RFC 3339 UTC, "2025-01-31T23:59:59Z"
//   X-Client-Not-After      RFC 3339 UTC
//   Client-Cert             RFC 9440 2.2: the leaf's DER as an RFC 8941 3.3.5
//                           byte sequence, ":" base64 ":"; by default only
//                           for a verified certificate, so that an origin that
//                           trusts the field's presence is not fooled by an
//                           `optional` host's unverified client
// Client-Cert-Chain (RFC 9440 2.3) is never sent but always removed.
//
// Values are header-safe whatever the certificate holds: every byte outside
// visible ASCII (CR, LF, NUL, other CTLs, DEL, UTF-8) and a leading or
// trailing space becomes "\XX" (upper-case hex), which is also how RFC 4514
// 2.4 escapes a DN character, so an RFC 4514 DN stays one; a backslash is
// kept as it is (the DN's own escapes).
//
// A request whose Connection field names one of these fields is refused
// (400): a proxy between us and the origin would otherwise delete the
// identity we add (RFC 9110 7.6.1).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/forward/http_request_parser.h"
#include "dataplane/tls/client_identity.h"

namespace mtlsgw::forward::http {

struct IdentityFieldNames {
  std::string_view verified = "X-Client-Verified";
  std::string_view verify_reason = "X-Client-Verify-Reason";
  std::string_view subject = "X-Client-Subject";
  std::string_view issuer = "X-Client-Issuer";
  std::string_view serial = "X-Client-Serial";
  std::string_view fingerprint = "X-Client-Fingerprint";
  std::string_view not_before = "X-Client-Not-Before";
  std::string_view not_after = "X-Client-Not-After";
  std::string_view client_cert = "Client-Cert";
};

// Removed from every request, besides the names the rewriter adds. Also the
// names refused in a chunked request's trailer section.
inline constexpr std::string_view kDefaultStripNames[] = {
    "X-Client-Verified",   "X-Client-Verify-Reason", "X-Client-Subject",
    "X-Client-Issuer",     "X-Client-Serial",        "X-Client-Fingerprint",
    "X-Client-Not-Before", "X-Client-Not-After",     "Client-Cert",
    "Client-Cert-Chain",
};

struct IdentityConfig {
  std::span<const std::string_view> strip_names = kDefaultStripNames;
  IdentityFieldNames names;
  bool client_cert_when_unverified = false;
};

enum class RewriteError : uint8_t {
  kNone,
  kBufferTooSmall,                // length says how many bytes are needed
  kConnectionNamesIdentityField,  // answer 400
};

struct RewriteResult {
  size_t length = 0;   // bytes written (kBufferTooSmall: bytes needed)
  RewriteError error = RewriteError::kNone;
  uint16_t removed = 0;  // client-sent identity field lines dropped
};

// Writes head with the identity fields replaced into out: the request line
// and every other field line byte for byte, in order, then the added fields,
// then the empty line.
RewriteResult rewrite_request_head(const RequestHead& head, const tls::ClientIdentity& id,
                                   const IdentityConfig& config, char* out,
                                   size_t capacity) noexcept;

// True when name is one the rewriter removes under config.
bool is_identity_field(std::string_view name, const IdentityConfig& config) noexcept;

// The header-safe form of value (see above): its length, and the writer.
size_t safe_value_length(std::string_view value) noexcept;
size_t write_safe_value(std::string_view value, char* out) noexcept;

}  // namespace mtlsgw::forward::http
