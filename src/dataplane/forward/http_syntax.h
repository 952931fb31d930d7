#pragma once
// Character classes and small value grammars of HTTP (RFC 9110 5.5, 5.6),
// shared by the request and response parsers and the header rewriter.

#include <cstdint>
#include <string_view>

namespace mtlsgw::forward::http {

// RFC 9110 5.6.2: tchar.
constexpr bool is_tchar(uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

// RFC 9110 5.5: field-vchar, obs-text, SP and HTAB; every other CTL (NUL, CR,
// LF, DEL, ...) is refused.
constexpr bool is_field_value_char(uint8_t c) noexcept {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

constexpr bool is_ows(uint8_t c) noexcept { return c == ' ' || c == '\t'; }

constexpr uint8_t ascii_lower(uint8_t c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c | 0x20) : c;
}

// Case-insensitive ASCII comparison (field names, tokens: RFC 9110 5.1).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(static_cast<uint8_t>(a[i])) != ascii_lower(static_cast<uint8_t>(b[i]))) {
      return false;
    }
  }
  return true;
}

constexpr std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && is_ows(static_cast<uint8_t>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && is_ows(static_cast<uint8_t>(v.back()))) v.remove_suffix(1);
  return v;
}

constexpr bool is_token(std::string_view v) noexcept {
  if (v.empty()) return false;
  for (char c : v) {
    if (!is_tchar(static_cast<uint8_t>(c))) return false;
  }
  return true;
}

// The elements of a comma-separated list (RFC 9110 5.6.1), OWS trimmed, empty
// elements skipped as 5.6.1.2 asks of recipients.
class ListElements {
 public:
  explicit constexpr ListElements(std::string_view list) noexcept : rest_(list) {}
  constexpr bool next(std::string_view& element) noexcept {
    while (!rest_.empty()) {
      const size_t comma = rest_.find(',');
      const std::string_view item = trim_ows(rest_.substr(0, comma));
      rest_ = comma == std::string_view::npos ? std::string_view{} : rest_.substr(comma + 1);
      if (!item.empty()) {
        element = item;
        return true;
      }
    }
    return false;
  }

 private:
  std::string_view rest_;
};

// 1*DIGIT (RFC 9110 8.6) without overflow; false on anything else.
constexpr bool parse_decimal(std::string_view v, uint64_t& out) noexcept {
  if (v.empty()) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (UINT64_MAX - d) / 10) return false;
    n = n * 10 + d;
  }
  out = n;
  return true;
}

}  // namespace mtlsgw::forward::http
