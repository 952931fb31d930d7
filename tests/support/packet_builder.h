#pragma once
// Builds wire frames for tests and benchmarks, with its own RFC 1071
// checksum so that the code under test is checked against an independent
// implementation.

#include <rte_ether.h>

#include <cstdint>
#include <initializer_list>
#include <utility>
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

// --- TCP segments (RFC 9293 3.1), for tests that play a peer by hand --------

// Options of a crafted segment, written in this order: MSS, NOP+WS,
// NOP+NOP+SACK-permitted, NOP+NOP+TS, NOP+NOP+SACK blocks, then raw bytes,
// then EOL padding to a multiple of 4. Nothing is validated: a test may build
// what no sane stack would send.
struct TcpOptionSpec {
  uint16_t mss = 0;          // 0: absent
  int window_scale = -1;     // -1: absent; any byte value otherwise (15+ is legal on the wire)
  bool sack_permitted = false;
  bool timestamps = false;
  uint32_t ts_value = 0;
  uint32_t ts_echo = 0;
  std::vector<std::pair<uint32_t, uint32_t>> sack;  // [left, right) blocks
  Bytes raw;                                        // appended as they are
};

struct TcpSegmentFields {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;  // FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10
  uint16_t window = 65535;
  TcpOptionSpec options;
  Bytes payload;
};

inline Bytes tcp_option_bytes(const TcpOptionSpec& o) {
  Bytes out;
  if (o.mss != 0) {
    out.push_back(2);
    out.push_back(4);
    put16(out, o.mss);
  }
  if (o.window_scale >= 0) {
    out.push_back(1);
    out.push_back(3);
    out.push_back(3);
    out.push_back(static_cast<uint8_t>(o.window_scale));
  }
  if (o.sack_permitted) {
    out.insert(out.end(), {1, 1, 4, 2});
  }
  if (o.timestamps) {
    out.insert(out.end(), {1, 1, 8, 10});
    put32(out, o.ts_value);
    put32(out, o.ts_echo);
  }
  if (!o.sack.empty()) {
    out.insert(out.end(), {1, 1, 5, static_cast<uint8_t>(2 + 8 * o.sack.size())});
    for (const auto& [left, right] : o.sack) {
      put32(out, left);
      put32(out, right);
    }
  }
  out.insert(out.end(), o.raw.begin(), o.raw.end());
  while (out.size() % 4 != 0) out.push_back(0);
  return out;
}

// The TCP checksum of a segment (header with a zero checksum field, then
// payload) over the IPv4 pseudo-header (RFC 9293 3.1), computed here rather
// than by the code under test.
inline uint16_t tcp_checksum(const uint8_t* segment, size_t len, uint32_t src_ip, uint32_t dst_ip) {
  Bytes buf;
  put32(buf, src_ip);
  put32(buf, dst_ip);
  buf.push_back(0);
  buf.push_back(6);
  put16(buf, static_cast<uint16_t>(len));
  buf.insert(buf.end(), segment, segment + len);
  return internet_checksum(buf.data(), buf.size());
}

// A whole TCP segment with a correct checksum.
inline Bytes tcp_segment(const TcpSegmentFields& f, uint32_t src_ip, uint32_t dst_ip) {
  const Bytes options = tcp_option_bytes(f.options);
  Bytes out;
  put16(out, f.src_port);
  put16(out, f.dst_port);
  put32(out, f.seq);
  put32(out, f.ack);
  out.push_back(static_cast<uint8_t>((20 + options.size()) / 4 << 4));
  out.push_back(f.flags);
  put16(out, f.window);
  put16(out, 0);  // checksum
  put16(out, 0);  // urgent pointer
  out.insert(out.end(), options.begin(), options.end());
  out.insert(out.end(), f.payload.begin(), f.payload.end());
  const uint16_t sum = tcp_checksum(out.data(), out.size(), src_ip, dst_ip);
  out[16] = static_cast<uint8_t>(sum >> 8);
  out[17] = static_cast<uint8_t>(sum);
  return out;
}

// Ethernet + IPv4 + TCP, ready for Interface::input.
inline Bytes tcp_frame(const rte_ether_addr& dst_mac, const rte_ether_addr& src_mac,
                       uint32_t src_ip, uint32_t dst_ip, const TcpSegmentFields& f) {
  Ipv4Fields ipf;
  ipf.src = src_ip;
  ipf.dst = dst_ip;
  ipf.protocol = 6;
  return eth_frame(dst_mac, src_mac, 0x0800, ipv4_packet(ipf, tcp_segment(f, src_ip, dst_ip)));
}

}  // namespace mtlsgw::testing
