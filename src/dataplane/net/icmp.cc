#include "dataplane/net/icmp.h"

#include <cstring>

#include "dataplane/net/checksum.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/wire.h"

namespace mtlsgw::net::icmp {

void input(Interface& iface, Frame frame, const ethernet::Header& eth, const ipv4::Header& ip,
           bool to_broadcast, uint64_t /*now_us*/) noexcept {
  StackCounters& counters = iface.counters();
  uint8_t* const packet = frame.data + ethernet::kHeaderLen;
  uint8_t* const message = packet + ip.header_len;
  const uint16_t message_len = static_cast<uint16_t>(ip.total_len - ip.header_len);
  if (message_len < kHeaderLen) {
    iface.drop(frame, DropReason::icmp_truncated);
    return;
  }
  if (net::checksum(message, message_len) != 0xffff) {
    iface.drop(frame, DropReason::icmp_bad_checksum);
    return;
  }
  if (message[0] != kTypeEchoRequest || message[1] != 0) {
    counters.icmp_other_in.add();
    iface.drop(frame, DropReason::icmp_unhandled_type);
    return;
  }
  counters.icmp_echo_requests.add();
  if (to_broadcast) {
    // RFC 1122 3.2.2.6 lets a host ignore echo to a broadcast address;
    // answering makes us a smurf amplifier.
    iface.drop(frame, DropReason::icmp_broadcast_echo);
    return;
  }

  // RFC 792: the reply carries the request's identifier, sequence and data;
  // only the type and checksum change. It goes back in the same buffer to
  // the MAC it came from (the sender itself, or the router that forwarded
  // it), so an echo never waits on ARP.
  message[0] = kTypeEchoReply;
  store_be16(message + 2, 0);
  const uint16_t message_checksum = static_cast<uint16_t>(~net::checksum(message, message_len));
  std::memcpy(message + 2, &message_checksum, sizeof message_checksum);

  // IP options of the request (RFC 1122 3.2.2.6: record route, timestamp)
  // are returned as received.
  store_be32(packet + 12, ip.dst);
  store_be32(packet + 16, ip.src);
  packet[8] = ipv4::kDefaultTtl;
  store_be16(packet + 10, 0);
  const uint16_t ip_checksum = static_cast<uint16_t>(~net::checksum(packet, ip.header_len));
  std::memcpy(packet + 10, &ip_checksum, sizeof ip_checksum);

  ethernet::write_header(frame.data, eth.src, iface.config().mac, RTE_ETHER_TYPE_IPV4);
  ethernet::pad(frame);
  counters.icmp_echo_replies.add();
  iface.transmit(frame);
}

}  // namespace mtlsgw::net::icmp
