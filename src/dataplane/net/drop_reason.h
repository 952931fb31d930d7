#pragma once
// Why the stack dropped a frame. Every malformed or unexpected packet ends in
// exactly one of these counters, so an operator can tell a misconfigured peer
// from an attack from a bug without capturing traffic.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mtlsgw::net {

#define MTLSGW_DROP_REASONS(X)                                                   \
  X(rx_multi_segment)          /* scattered mbuf: the stack parses one segment */ \
  X(eth_truncated)             /* shorter than an Ethernet header */              \
  X(eth_not_for_us)            /* unicast to another MAC */                       \
  X(eth_multicast)             /* multicast other than broadcast */               \
  X(eth_bad_source)            /* source MAC is multicast, or our own */         \
  X(eth_ipv6)                  /* IPv6 is not served yet */                       \
  X(eth_vlan)                  /* 802.1Q/802.1ad tagged frames */                 \
  X(eth_unknown_type)          /* any other EtherType */                          \
  X(arp_truncated)                                                                \
  X(arp_bad_format)            /* not Ethernet/IPv4, or wrong address lengths */  \
  X(arp_bad_op)                /* neither request nor reply */                    \
  X(arp_bad_sender)            /* sender MAC multicast/ours, IP martian/off-link */   \
  X(arp_not_for_us)            /* request for an address we do not own */         \
  X(arp_address_conflict)      /* someone else claims one of our addresses */     \
  X(ipv4_truncated)                                                               \
  X(ipv4_bad_version)                                                             \
  X(ipv4_bad_header_length)    /* IHL < 5 or beyond the frame */                 \
  X(ipv4_bad_total_length)     /* shorter than the header or beyond the frame */ \
  X(ipv4_bad_checksum)                                                            \
  X(ipv4_fragment)             /* reassembly is not supported yet */             \
  X(ipv4_bad_source)           /* multicast, broadcast, loopback, zero, ours */  \
  X(ipv4_not_for_us)           /* we are a host, not a router */                 \
  X(ipv4_unsupported_protocol) /* no handler for this IP protocol yet */         \
  X(icmp_truncated)                                                               \
  X(icmp_bad_checksum)                                                            \
  X(icmp_broadcast_echo)       /* RFC 1122 3.2.2.6: may be silently ignored */   \
  X(icmp_unhandled_type)                                                          \
  X(tcp_truncated)                                                                \
  X(tcp_bad_header_length)     /* data offset < 5 or beyond the segment */       \
  X(tcp_bad_checksum)                                                             \
  X(tcp_bad_options)           /* option length runs past the header */         \
  X(tcp_bad_flags)             /* SYN+FIN, SYN+RST, no ACK where required */     \
  X(tcp_bad_port)              /* source or destination port 0 */                \
  X(tcp_no_listener)           /* answered with RST (RFC 9293 3.10.7.1) */       \
  X(tcp_out_of_window)         /* unacceptable segment (RFC 9293 3.10.7.4) */    \
  X(tcp_bad_ack)               /* acknowledges data never sent */                \
  X(tcp_paws)                  /* old timestamp (RFC 7323 5) */                  \
  X(tcp_syn_queue_full)        /* half-open cap reached and cookies off */       \
  X(tcp_bad_cookie)            /* ACK to a SYN cookie that does not check */     \
  X(tcp_connection_limit)      /* per-worker connection cap reached */           \
  X(tcp_receive_queue_full)    /* out-of-order data beyond what we keep */       \
  X(tcp_not_owner)             /* flow belongs to another worker */              \
  X(arp_table_full)            /* no room to resolve a next hop */               \
  X(arp_hold_full)             /* too many frames waiting on one resolution */   \
  X(arp_unresolved)            /* next hop never answered */                     \
  X(no_route)                  /* destination outside every interface */         \
  X(tx_no_buffer)              /* mempool empty */                               \
  X(tx_queue_full)             /* the NIC did not take the burst */

enum class DropReason : uint8_t {
#define MTLSGW_DROP_ENUM(name) name,
  MTLSGW_DROP_REASONS(MTLSGW_DROP_ENUM)
#undef MTLSGW_DROP_ENUM
};

inline constexpr std::size_t kDropReasonCount = 0
#define MTLSGW_DROP_COUNT(name) +1
    MTLSGW_DROP_REASONS(MTLSGW_DROP_COUNT)
#undef MTLSGW_DROP_COUNT
    ;

inline constexpr std::array<std::string_view, kDropReasonCount> kDropReasonNames = {
#define MTLSGW_DROP_NAME(name) #name,
    MTLSGW_DROP_REASONS(MTLSGW_DROP_NAME)
#undef MTLSGW_DROP_NAME
};

// A parser's answer: empty when the input is acceptable, otherwise why not.
using Rejection = std::optional<DropReason>;

constexpr std::string_view name_of(DropReason reason) {
  return kDropReasonNames[static_cast<std::size_t>(reason)];
}

}  // namespace mtlsgw::net
