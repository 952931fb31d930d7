#include "dataplane/net/ipv4_address.h"

#include <charconv>

#include <fmt/format.h>

namespace mtlsgw::net {

std::optional<Ipv4Address> parse_ipv4(std::string_view text) {
  Ipv4Address result = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    // Dotted-quad only: no leading '+', no hex or octal forms, at most 3 digits.
    if (p == end || *p < '0' || *p > '9') return std::nullopt;
    unsigned value = 0;
    auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc{} || value > 255 || next - p > 3) return std::nullopt;
    if (next - p > 1 && *p == '0') return std::nullopt;
    result = (result << 8) | value;
    p = next;
  }
  if (p != end) return std::nullopt;
  return result;
}

std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto address = parse_ipv4(text.substr(0, slash));
  if (!address) return std::nullopt;
  auto len_text = text.substr(slash + 1);
  unsigned length = 0;
  auto [next, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), length);
  if (len_text.empty() || ec != std::errc{} || next != len_text.data() + len_text.size() ||
      length > 32) {
    return std::nullopt;
  }
  return Ipv4Prefix{*address, static_cast<uint8_t>(length)};
}

std::string format_ipv4(Ipv4Address a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

}  // namespace mtlsgw::net
