#pragma once
// Text forms of X.509 values, each bounded by a cap: what identity headers,
// PROXY v2 TLVs, logs and control-thread messages print. Every function that
// can cut returns false (and appends what fits) when its value was longer than
// the cap, so callers can flag the cut instead of silently shortening a name a
// rule may match on.

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace mtlsgw::tls {

// RFC 2253 string form, most specific RDN first ("CN=dev-1,O=Example"),
// with RFC 2253 2.4 escaping; bytes outside printable ASCII, UTF-8 included,
// are escaped as \XX, so the result is plain ASCII. Replaces *out.
bool rfc2253_name(const X509_NAME* name, std::size_t cap, std::string* out);

// Hex digits of bytes, no separators. Replaces *out.
bool hex_lower(std::span<const unsigned char> bytes, std::size_t cap, std::string* out);

// Serial number as upper-case hex, two digits per byte as in nginx's
// $ssl_client_serial; a (non-conforming, RFC 5280 4.1.2.2) negative serial
// gets a leading '-'.
bool serial_hex(const ASN1_INTEGER* serial, std::size_t cap, std::string* out);

// Appends bytes, writing control characters, the backslash itself and, unless
// allow_utf8, every byte >= 0x80 as \XX (upper-case hex, as RFC 2253 2.4
// does): a CN or SAN carrying CR LF must not become a header line downstream,
// and the escape stays unambiguous.
bool append_escaped(std::span<const unsigned char> bytes, bool allow_utf8, std::size_t cap,
                    std::string* out);

// Seconds since the epoch of an ASN.1 UTCTime/GeneralizedTime.
std::optional<int64_t> epoch_of(const ASN1_TIME* time);

}  // namespace mtlsgw::tls
