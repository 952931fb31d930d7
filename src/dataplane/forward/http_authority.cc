#include "dataplane/forward/http_authority.h"

#include "dataplane/forward/http_request_parser.h"
#include "dataplane/forward/http_syntax.h"

namespace mtlsgw::forward::http {
namespace {

// RFC 3986 2.2, 2.3: unreserved and sub-delims; "%" for pct-encoded.
bool is_reg_name_char(uint8_t c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-': case '.': case '_': case '~': case '%': case '!': case '$': case '&':
    case '\'': case '(': case ')': case '*': case '+': case ',': case ';': case '=':
      return true;
    default:
      return false;
  }
}

bool is_ip_literal_char(uint8_t c) noexcept {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') || c == ':' ||
         c == '.';
}

std::string_view strip_final_dot(std::string_view v) noexcept {
  if (!v.empty() && v.back() == '.') v.remove_suffix(1);
  return v;
}

}  // namespace

bool authority_host(std::string_view authority, std::string_view& host) noexcept {
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : authority.substr(1, close - 1)) {
      if (!is_ip_literal_char(static_cast<uint8_t>(c))) return false;
    }
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    for (char c : host) {
      if (!is_reg_name_char(static_cast<uint8_t>(c))) return false;
    }
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool host_matches(std::string_view host, std::string_view expected) noexcept {
  host = strip_final_dot(host);
  expected = strip_final_dot(expected);
  if (expected.size() > 2 && expected.substr(0, 2) == "*.") {
    const std::string_view suffix = expected.substr(1);  // ".example.com"
    if (host.size() <= suffix.size()) return false;
    const std::string_view label = host.substr(0, host.size() - suffix.size());
    return label.find('.') == std::string_view::npos &&
           iequals(host.substr(label.size()), suffix);
  }
  return !host.empty() && iequals(host, expected);
}

AuthorityCheck check_request_authority(const RequestHead& head, std::string_view expected) noexcept {
  if (expected.empty()) return AuthorityCheck::kMatch;
  bool any = false;
  std::string_view host;
  if (head.form == TargetForm::kAbsolute) {
    any = true;
    if (!authority_host(head.target_authority, host) || !host_matches(host, expected)) {
      return AuthorityCheck::kMisdirected;
    }
  }
  if (head.summary.host_count > 0) {
    any = true;
    if (!authority_host(head.summary.host, host) || !host_matches(host, expected)) {
      return AuthorityCheck::kMisdirected;
    }
  }
  return any ? AuthorityCheck::kMatch : AuthorityCheck::kNoAuthority;
}

}  // namespace mtlsgw::forward::http
