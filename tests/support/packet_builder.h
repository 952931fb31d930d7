#pragma once
// Builds wire frames for tests and benchmarks, with its own RFC 1071
// checksum so that the code under test is checked against an independent
// implementation.

#include <rte_ether.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace mtlsgw::testing {

using Bytes = std::vector<uint8_t>;

inline rte_ether_addr mac(std::initializer_list<uint8_t> b) {
  rte_ether_addr m{};
  size_t i = 0;
  for (uint8_t v : b) m.addr_bytes[i++] = v;
  return m;
}
inline rte_ether_addr broadcast_mac() { return mac({0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); }

inline uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return uint32_t{a} << 24 | uint32_t{b} << 16 | uint32_t{c} << 8 | d;
}

inline void put16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
inline void put32(Bytes& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v));
}
inline void put_mac(Bytes& out, const rte_ether_addr& m) {
  out.insert(out.end(), m.addr_bytes, m.addr_bytes + RTE_ETHER_ADDR_LEN);
}
inline uint16_t get16(const Bytes& in, size_t at) {
  return static_cast<uint16_t>(in[at] << 8 | in[at + 1]);
}
inline uint32_t get32(const Bytes& in, size_t at) {
  return uint32_t{get16(in, at)} << 16 | get16(in, at + 2);
}

// RFC 1071 Internet checksum over bytes [begin, begin + len).
inline uint16_t internet_checksum(const uint8_t* p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += uint32_t{p[i]} << 8 | p[i + 1];
  if (len % 2 != 0) sum += uint32_t{p[len - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

inline Bytes eth_frame(const rte_ether_addr& dst, const rte_ether_addr& src, uint16_t type,
                      const Bytes& payload) {
  Bytes out;
  put_mac(out, dst);
  put_mac(out, src);
  put16(out, type);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

inline Bytes arp_payload(uint16_t op, const rte_ether_addr& sender_mac, uint32_t sender_ip,
                 const rte_ether_addr& target_mac, uint32_t target_ip) {
  Bytes out;
  put16(out, 1);       // Ethernet
  put16(out, 0x0800);  // IPv4
  out.push_back(6);
  out.push_back(4);
  put16(out, op);
  put_mac(out, sender_mac);
  put32(out, sender_ip);
  put_mac(out, target_mac);
  put32(out, target_ip);
  return out;
}

struct Ipv4Fields {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint8_t protocol = 1;
  uint8_t ttl = 64;
  uint16_t flags_fragment = 0x4000;  // DF
  uint16_t id = 0x1234;
  Bytes options;                     // multiple of 4 bytes
};

inline Bytes ipv4_packet(const Ipv4Fields& f, const Bytes& payload) {
  Bytes out;
  const uint16_t header_len = static_cast<uint16_t>(20 + f.options.size());
  out.push_back(static_cast<uint8_t>(0x40 | header_len / 4));
  out.push_back(0);
  put16(out, static_cast<uint16_t>(header_len + payload.size()));
  put16(out, f.id);
  put16(out, f.flags_fragment);
  out.push_back(f.ttl);
  out.push_back(f.protocol);
  put16(out, 0);
  put32(out, f.src);
  put32(out, f.dst);
  out.insert(out.end(), f.options.begin(), f.options.end());
  const uint16_t sum = internet_checksum(out.data(), header_len);
  out[10] = static_cast<uint8_t>(sum >> 8);
  out[11] = static_cast<uint8_t>(sum);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

inline Bytes icmp_echo(uint8_t type, uint16_t id, uint16_t seq, const Bytes& data) {
  Bytes out;
  out.push_back(type);
  out.push_back(0);
  put16(out, 0);
  put16(out, id);
  put16(out, seq);
  out.insert(out.end(), data.begin(), data.end());
  const uint16_t sum = internet_checksum(out.data(), out.size());
  out[2] = static_cast<uint8_t>(sum >> 8);
  out[3] = static_cast<uint8_t>(sum);
  return out;
}

}  // namespace mtlsgw::testing
