#include "dataplane/forward/http_request_parser.h"

#include <algorithm>

#include "dataplane/forward/http_authority.h"
#include "dataplane/forward/http_syntax.h"

namespace mtlsgw::forward::http {
namespace {

constexpr size_t kMaxHeadBytes = 0xFFFF;  // FieldRef offsets are 16 bits

std::span<char> usable(std::span<char> buffer) noexcept {
  return buffer.first(std::min(buffer.size(), kMaxHeadBytes));
}

bool is_scheme_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

// RFC 9112 2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
// Returns the major digit (-1: not an HTTP-version).
int parse_version(std::string_view v, uint8_t& minor) noexcept {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -1;
  if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return -1;
  minor = static_cast<uint8_t>(v[7] - '0');
  return v[5] - '0';
}

}  // namespace

RequestParser::RequestParser(std::span<char> head_buffer, const RequestLimits& limits) noexcept
    : collector_(usable(head_buffer), limits.max_request_line), limits_(limits), body_(limits.body) {
  limits_.max_fields = std::min(limits_.max_fields, kMaxFieldsCap);
}

Step RequestParser::fail(Error e, size_t consumed) noexcept {
  error_ = e;
  state_ = State::kError;
  return {Event::kError, consumed};
}

// RFC 9112 3: request-line = method SP request-target SP HTTP-version, with
// single spaces (3: a server MAY split on other whitespace; we do not, since
// the origin might not).
Error RequestParser::parse_head() noexcept {
  RequestHead& h = head_;
  h = RequestHead{};
  h.raw = collector_.head();
  const size_t eol = h.raw.find("\r\n");
  h.request_line = h.raw.substr(0, eol);
  const std::string_view line = h.request_line;

  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Error::kBadStartLine;
  h.method = line.substr(0, sp1);
  if (!is_token(h.method)) return Error::kBadMethod;
  const std::string_view rest = line.substr(sp1 + 1);
  const size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return Error::kBadStartLine;
  h.target = rest.substr(0, sp2);
  const int major = parse_version(rest.substr(sp2 + 1), h.minor_version);
  if (major < 0) return Error::kBadStartLine;
  if (major != 1) return Error::kUnsupportedVersion;
  // RFC 9110 2.5: a higher minor version is answered as the highest we speak.
  h.minor_version = std::min<uint8_t>(h.minor_version, 1);
  h.is_head = h.method == "HEAD";  // methods are case-sensitive (RFC 9110 9.1)

  if (h.method == "CONNECT") return Error::kConnectNotSupported;
  if (h.target.empty()) return Error::kBadTarget;
  for (char c : h.target) {
    const auto u = static_cast<uint8_t>(c);
    if (u < 0x21 || u > 0x7E) return Error::kBadTarget;
  }
  if (h.target.front() == '/') {
    h.form = TargetForm::kOrigin;
  } else if (h.target == "*") {
    if (h.method != "OPTIONS") return Error::kBadTarget;  // RFC 9112 3.2.4
    h.form = TargetForm::kAsterisk;
  } else {
    // RFC 9112 3.2.2 absolute-form; only the http(s) schemes a gateway serves.
    const size_t sep = h.target.find("://");
    if (sep == std::string_view::npos || sep == 0) return Error::kBadTarget;
    const std::string_view scheme = h.target.substr(0, sep);
    if (!std::all_of(scheme.begin(), scheme.end(), is_scheme_char)) return Error::kBadTarget;
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) return Error::kBadTarget;
    const std::string_view after = h.target.substr(sep + 3);
    const std::string_view authority = after.substr(0, after.find_first_of("/?#"));
    // RFC 9110 4.2.4: userinfo in an http(s) URI is treated as an error.
    if (authority.empty() || authority.find('@') != std::string_view::npos) {
      return Error::kBadTarget;
    }
    std::string_view host;
    if (!authority_host(authority, host) || host.empty()) return Error::kBadTarget;
    h.form = TargetForm::kAbsolute;
    h.target_authority = authority;
  }

  uint16_t count = 0;
  const Error fe = parse_fields(h.raw, eol + 2, std::span(fields_).first(limits_.max_fields), count,
                                h.summary);
  if (fe != Error::kNone) return fe;
  h.fields = std::span<const FieldRef>(fields_.data(), count);
  const FieldSummary& s = h.summary;

  // RFC 9112 3.2: exactly one Host in HTTP/1.1, never more than one, valid.
  if (s.host_count > 1) return Error::kDuplicateHost;
  if (s.host_count == 0 && h.minor_version == 1) return Error::kMissingHost;
  if (s.host_count == 1 && !s.host.empty()) {
    std::string_view host;
    if (!authority_host(s.host, host) || host.empty()) return Error::kBadHost;
  }

  // RFC 9112 6.3, in its order, for requests.
  if (s.transfer_encoding_count > 0) {
    if (h.minor_version == 0) return Error::kTransferEncodingInHttp10;       // 6.1
    if (s.content_length_count > 0) return Error::kContentLengthWithTransferEncoding;  // rule 3
    if (s.chunked_count > 1) return Error::kChunkedTwice;                     // 7
    if (!s.chunked_last) return Error::kChunkedNotFinal;                      // rule 4
    if (s.unknown_coding) return Error::kUnknownTransferCoding;               // 6.1
    h.framing = Framing::kChunked;
  } else if (s.content_length_count > 0) {
    if (s.content_length_bad) return Error::kBadContentLength;                // rule 5
    if (s.content_length_conflict) return Error::kConflictingContentLength;
    h.framing = Framing::kContentLength;
    h.content_length = s.content_length;
  } else {
    h.framing = Framing::kNone;                                               // rule 6
  }

  // RFC 9112 9.3: persistence defaults by version; "close" always wins.
  h.keep_alive = !s.connection_close && (h.minor_version == 1 || s.connection_keep_alive);
  h.expect_continue = s.expect_continue && h.minor_version == 1;
  h.upgrade = s.has_upgrade && s.connection_upgrade;
  return Error::kNone;
}

Step RequestParser::feed(std::span<const uint8_t> data) noexcept {
  switch (state_) {
    case State::kError: return {Event::kError, 0};
    case State::kClosed: return {Event::kClosed, 0};
    case State::kTunnel:
      return {data.empty() ? Event::kNeedMore : Event::kBody, data.size()};
    case State::kHead: {
      if (data.empty()) return {Event::kNeedMore, 0};
      const HeadCollector::Scan scan = collector_.feed(data.data(), data.size());
      if (scan.error != Error::kNone) return fail(scan.error, scan.consumed);
      if (!scan.complete) return {Event::kNeedMore, scan.consumed};
      const Error e = parse_head();
      if (e != Error::kNone) return fail(e, scan.consumed);
      state_ = State::kHeadDone;
      return {Event::kHead, scan.consumed};
    }
    case State::kHeadDone:
      body_.start(head_.framing, head_.content_length);
      state_ = State::kBody;
      [[fallthrough]];
    case State::kBody: {
      const BodyFramer::Result r = body_.feed(data.data(), data.size());
      if (r.error != Error::kNone) return fail(r.error, r.consumed);
      if (!r.done) return {r.consumed == 0 ? Event::kNeedMore : Event::kBody, r.consumed};
      collector_.reset();
      state_ = head_.keep_alive ? State::kHead : State::kClosed;
      return {Event::kMessageEnd, r.consumed};
    }
  }
  return {Event::kError, 0};
}

}  // namespace mtlsgw::forward::http
