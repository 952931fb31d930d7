#pragma once
// Which host a request names, and whether that is the host the client's TLS
// handshake was for. A client that opened a connection for one SNI and then
// asks, on it, for another host's resources gets 421 Misdirected Request
// (RFC 9110 15.5.20, 7.4): otherwise a certificate checked against one
// host's CAs would reach another host's origin.

#include <string_view>

namespace mtlsgw::forward::http {

struct RequestHead;

// Splits an authority (RFC 3986 3.2: host [":" port], no userinfo) into its
// host: a reg-name, an IPv4 address or a bracketed IP-literal. Returns false
// on any character the grammar does not allow (the Host check of RFC 9112 3.2
// "invalid field value" is this).
bool authority_host(std::string_view authority, std::string_view& host) noexcept;

// host (no port) against expected: case-insensitive (RFC 3986 3.2.2), a
// single trailing dot ignored on either side, and an expected "*.example.com"
// matching exactly one more label, as a wildcard server name does.
bool host_matches(std::string_view host, std::string_view expected) noexcept;

enum class AuthorityCheck : uint8_t {
  kMatch,
  kMisdirected,  // answer 421
  kNoAuthority,  // neither Host nor an absolute-form target (HTTP/1.0)
};

// Every authority the request carries (the absolute-form target's and Host:
// an origin may read either, so both must match) against expected, which is
// the SNI or, for a client that sent none, the host's configured name. An
// empty expected matches anything.
AuthorityCheck check_request_authority(const RequestHead& head, std::string_view expected) noexcept;

}  // namespace mtlsgw::forward::http
