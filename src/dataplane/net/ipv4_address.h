#pragma once
// IPv4 addresses in host byte order, and the address classes RFC 1122 3.2.1.3
// tells a host to refuse as a source.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mtlsgw::net {

using Ipv4Address = uint32_t;  // host byte order

struct Ipv4Prefix {
  Ipv4Address address = 0;
  uint8_t length = 0;

  Ipv4Address mask() const noexcept {
    return length == 0 ? 0 : ~Ipv4Address{0} << (32 - length);
  }
  bool contains(Ipv4Address a) const noexcept { return (a & mask()) == (address & mask()); }
  Ipv4Address directed_broadcast() const noexcept { return address | ~mask(); }
};

constexpr Ipv4Address kIpv4Broadcast = 0xffffffffu;

constexpr bool is_multicast(Ipv4Address a) noexcept { return (a >> 28) == 0xe; }
constexpr bool is_loopback(Ipv4Address a) noexcept { return (a >> 24) == 127; }
constexpr bool is_this_network(Ipv4Address a) noexcept { return (a >> 24) == 0; }
constexpr bool is_reserved_class_e(Ipv4Address a) noexcept {
  return (a >> 28) == 0xf && a != kIpv4Broadcast;
}

// RFC 1122 3.2.1.3: a host silently discards datagrams whose source is
// {0,0}, {127,*}, multicast, or a broadcast address.
inline bool is_martian_source(Ipv4Address a) noexcept {
  return a == kIpv4Broadcast || is_this_network(a) || is_loopback(a) || is_multicast(a) ||
         is_reserved_class_e(a);
}

std::optional<Ipv4Address> parse_ipv4(std::string_view text);
std::optional<Ipv4Prefix> parse_ipv4_prefix(std::string_view text);
std::string format_ipv4(Ipv4Address a);

}  // namespace mtlsgw::net
