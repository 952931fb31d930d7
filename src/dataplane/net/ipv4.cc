#include "dataplane/net/ipv4.h"

#include "dataplane/net/checksum.h"
#include "dataplane/net/icmp.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/tcp_stack.h"
#include "dataplane/net/wire.h"

namespace mtlsgw::net::ipv4 {

Rejection parse(const uint8_t* data, uint16_t len, Header& out) noexcept {
  if (len < kMinHeaderLen) return DropReason::ipv4_truncated;
  if ((data[0] >> 4) != 4) return DropReason::ipv4_bad_version;
  out.header_len = static_cast<uint16_t>((data[0] & 0x0f) * 4);
  if (out.header_len < kMinHeaderLen || out.header_len > len) {
    return DropReason::ipv4_bad_header_length;
  }
  out.total_len = load_be16(data + 2);
  if (out.total_len < out.header_len || out.total_len > len) {
    return DropReason::ipv4_bad_total_length;
  }
  // A correct header sums to 0xffff including its checksum field (RFC 1071).
  const uint16_t sum =
      out.header_len == kMinHeaderLen ? checksum20(data) : checksum(data, out.header_len);
  if (sum != 0xffff) return DropReason::ipv4_bad_checksum;
  const uint16_t flags_fragment = load_be16(data + 6);
  const bool more_fragments = (flags_fragment & 0x2000) != 0;
  const uint16_t fragment_offset = flags_fragment & 0x1fff;
  if (more_fragments || fragment_offset != 0) return DropReason::ipv4_fragment;
  out.ttl = data[8];
  out.protocol = data[9];
  out.src = load_be32(data + 12);
  out.dst = load_be32(data + 16);
  return std::nullopt;
}

void write_header(uint8_t* at, Ipv4Address src, Ipv4Address dst, uint8_t protocol,
                  uint16_t payload_len, uint16_t id, uint8_t ttl) noexcept {
  constexpr uint16_t kVersionIhl = 0x4500;  // version 4, 5 words, TOS 0
  constexpr uint16_t kDontFragment = 0x4000;
  const auto total_len = static_cast<uint16_t>(kMinHeaderLen + payload_len);
  const auto ttl_protocol = static_cast<uint16_t>(ttl << 8 | protocol);
  store_be16(at, kVersionIhl);
  store_be16(at + 2, total_len);
  store_be16(at + 4, id);
  store_be16(at + 6, kDontFragment);
  store_be16(at + 8, ttl_protocol);
  store_be32(at + 12, src);
  store_be32(at + 16, dst);
  // Summed from the values rather than read back from the bytes just
  // stored (a load spanning several fresh stores waits for all of them).
  const uint16_t sum = checksum_fold(uint64_t{kVersionIhl} + total_len + id + kDontFragment +
                                     ttl_protocol + (src >> 16) + (src & 0xffff) + (dst >> 16) +
                                     (dst & 0xffff));
  store_be16(at + 10, static_cast<uint16_t>(~sum));
}

void input(Interface& iface, Frame frame, const ethernet::Header& eth, uint64_t now_us) noexcept {
  iface.counters().ipv4_in.add();
  uint8_t* const packet = frame.data + ethernet::kHeaderLen;
  Header header;
  if (Rejection r = parse(packet, static_cast<uint16_t>(frame.len - ethernet::kHeaderLen), header)) {
    iface.drop(frame, *r);
    return;
  }
  // Short frames arrive padded to 60 bytes; the datagram ends at total_len.
  frame.trim_to(static_cast<uint16_t>(ethernet::kHeaderLen + header.total_len));

  // RFC 1122 3.2.1.3; also refuse our own address as a source (a loop or a
  // spoof: we never send to ourselves through the wire).
  if (is_martian_source(header.src) || iface.is_broadcast(header.src) || iface.owns(header.src)) {
    iface.drop(frame, DropReason::ipv4_bad_source);
    return;
  }
  const bool to_broadcast = iface.is_broadcast(header.dst);
  if (!iface.owns(header.dst) && !to_broadcast) {
    iface.drop(frame, DropReason::ipv4_not_for_us);
    return;
  }
  // RFC 1122 3.2.1.7: a host must not discard a datagram for its TTL.

  switch (header.protocol) {
    case kProtocolIcmp:
      icmp::input(iface, frame, eth, header, to_broadcast, now_us);
      return;
    case kProtocolTcp:
      if (iface.tcp() != nullptr) {
        iface.tcp()->input(iface, frame, header, now_us);
        return;
      }
      break;
    default:
      break;
  }
  iface.drop(frame, DropReason::ipv4_unsupported_protocol);
}

}  // namespace mtlsgw::net::ipv4
