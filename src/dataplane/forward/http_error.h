#pragma once
// Why an HTTP/1.1 message was refused, and the status the gateway answers a
// refused request with. One reason per rule, so that the counters say which
// rule a client broke; the RFC 9112 / RFC 9110 section that makes each one an
// error is beside it.

#include <cstdint>
#include <string_view>

namespace mtlsgw::forward::http {

enum class Error : uint8_t {
  kNone,
  // Message syntax (RFC 9112 2.2, 3, 4, 5).
  kBareLf,                 // LF without CR: 2.2 allows accepting it, but the origin may not
  kBareCr,                 // 2.2: a CR not followed by LF is invalid
  kBadStartLine,           // request-line or status-line grammar
  kBadMethod,              // not a token (RFC 9110 9.1)
  kBadTarget,              // RFC 9112 3.2 forms, RFC 9110 4.2.4 userinfo
  kUnsupportedVersion,     // HTTP/ with a major version other than 1: 505
  kStartLineTooLong,       // RFC 9112 3: 414 for requests
  kHeadTooLarge,           // RFC 6585 5: 431
  kTooManyFields,          // 431
  kObsFold,                // RFC 9112 5.2: rejected, not unfolded
  kWhitespaceBeforeColon,  // RFC 9112 5.1: MUST reject with 400
  kBadFieldName,
  kBadFieldValue,          // CTL other than HTAB (RFC 9110 5.5)
  kMissingHost,            // RFC 9112 3.2
  kDuplicateHost,          // RFC 9112 3.2
  kBadHost,
  // Framing (RFC 9112 6).
  kBadContentLength,            // 6.3 rule 5
  kConflictingContentLength,    // differing values (RFC 9110 8.6)
  kContentLengthWithTransferEncoding,  // 6.3 rule 3: smuggling signal
  kChunkedNotFinal,             // 6.3 rule 4, requests
  kChunkedTwice,                // 7: chunked applied more than once
  kUnknownTransferCoding,       // 6.1: 501
  kTransferEncodingInHttp10,    // 6.1: framing treated as faulty
  kBadChunkSize,                // 7.1: hex digits, no overflow
  kChunkLineTooLong,            // our bound on chunk-size + chunk-ext
  kBadChunkExtension,           // 7.1.1 grammar
  kMissingChunkCrlf,            // 7.1: CRLF after chunk-data
  kBadTrailer,                  // 7.1.2 field syntax
  kTrailerTooLarge,
  kForbiddenTrailer,            // an identity field name in the trailer section
  // Semantics the gateway does not offer.
  kConnectNotSupported,         // CONNECT: 501
  // Response side only.
  kBadStatus,
  kUnsolicitedResponse,         // a response with no request outstanding
};

std::string_view error_name(Error e) noexcept;

// The status a request refused for e is answered with: 400, 414, 431, 501 or
// 505 (0 for kNone). Whatever ResponseParser refuses is answered with 502
// instead (RFC 9110 15.6.3: an invalid response from the upstream), if no
// byte of that response has reached the client yet.
uint16_t request_error_status(Error e) noexcept;

}  // namespace mtlsgw::forward::http
