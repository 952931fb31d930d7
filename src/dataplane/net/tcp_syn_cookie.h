#pragma once
// SYN cookies (RFC 4987 3.6): once the SYN queue is full, the listener keeps
// no state for a SYN and instead encodes what it must remember into the ISN of
// its SYN-ACK. The ACK that completes the handshake returns that ISN + 1; if
// its MAC checks, the connection is created from the ACK alone. A flood of
// spoofed SYNs then costs one hash and one SYN-ACK each, and no memory.
//
// The cookie, RFC 4987 3.6's layout:
//   bits 31..27  t mod 32, t = now / 64 s: the ISN still advances slowly with
//                time, and the check knows which period the cookie claims
//   bits 26..24  index into kMssTable: the peer's MSS, rounded down
//   bits 23..0   SipHash-2-4(key; four-tuple, peer ISN, full t, MSS index),
//                truncated: forging one is a 2^-24 guess per packet
// The MAC covers the whole 64-bit t, not only the 5 visible bits, so a cookie
// does not come back to life 32 periods later; it covers the peer's ISN, so a
// cookie is bound to the SYN it answered.
//
// Validity: a cookie made during period t checks during periods t and t + 1,
// that is for at least 64 s and less than 128 s after it was sent. That covers
// the client's SYN-ACK processing and the ACK's trip with a wide margin; a
// longer window would only widen replays of a captured cookie.
//
// What does not fit the ISN (window scale, SACK-permitted) travels in the low
// bits of our SYN-ACK's TSval when the peer sent a timestamp (RFC 7323 allows
// any TSval clock that is monotonic enough) and comes back in the ACK's TSecr.
// A peer without timestamps gets neither window scaling nor SACK, so the
// SYN-ACK must then not offer them.

#include <array>
#include <cstdint>
#include <optional>

#include "common/siphash.h"
#include "dataplane/net/tcp_tuple.h"

namespace mtlsgw::net::tcp {

class SynCookies {
 public:
  static constexpr uint64_t kPeriodUs = 64'000'000;  // RFC 4987 3.6: t ticks every 64 s
  static constexpr uint32_t kMaxAge = 1;             // periods: current and previous
  static constexpr int kCounterBits = 5;
  static constexpr int kMssBits = 3;
  static constexpr int kMacBits = 24;

  // Ascending. 536 is RFC 9293 3.7.1's default; 1460 a 1500-byte Ethernet
  // MTU; 1440 down to 1300 are the usual clamps behind PPPoE, VPNs and
  // tunnels; 1220 fits paths through tunnels and translators with IPv6's
  // 1280-byte minimum MTU. 64 serves peers with a tiny MSS; one below 64 is
  // rounded up to 64, as Linux raises it to its tcp_min_snd_mss.
  static constexpr std::array<uint16_t, 1u << kMssBits> kMssTable = {
      64, 536, 1220, 1300, 1360, 1400, 1440, 1460};
  static constexpr uint16_t kDefaultPeerMss = 536;  // RFC 9293 3.7.1: no MSS option

  // TSval low bits: window scale (4 bits, kNoWindowScale = none), then
  // SACK-permitted (1 bit).
  static constexpr uint8_t kNoWindowScale = 15;
  static constexpr uint8_t kMaxWindowScale = 14;  // RFC 7323 2.3
  static constexpr int kTsOptionBits = 5;

  explicit SynCookies(const SipKey& key) noexcept;

  // Our ISN for a SYN from t with sequence number peer_isn that offered
  // peer_mss (0: no MSS option, RFC 9293 3.7.1's 536). Encodes the largest
  // table entry not above peer_mss (or the smallest entry, see kMssTable).
  uint32_t make(const FourTuple& t, uint32_t peer_isn, uint16_t peer_mss,
                uint64_t now_us) const noexcept;

  // For the ACK completing the handshake: peer_isn = SEG.SEQ - 1 and
  // cookie = SEG.ACK - 1. Returns the MSS encoded by make() when the cookie
  // is genuine for this tuple and peer ISN and within the validity window,
  // otherwise nullopt.
  std::optional<uint16_t> check(const FourTuple& t, uint32_t peer_isn, uint32_t cookie,
                                uint64_t now_us) const noexcept;

  // TSval for the SYN-ACK, from the clock that stamps the connection's later
  // segments. window_scale: the peer's shift, 0-14, or kNoWindowScale when
  // it sent none; a parser that hands over a wire value above 14 gets 14
  // (RFC 7323 2.3), except 15 itself, which means none. The result is never
  // ahead of ts_clock (modulo 2^32) and at most 31 behind, so later TSvals
  // from the same clock never go backwards (RFC 7323 5.4).
  uint32_t encode_ts(uint32_t ts_clock, uint8_t window_scale,
                     bool sack_permitted) const noexcept;

  struct TsOptions {
    uint8_t window_scale;  // kNoWindowScale: none
    bool sack_permitted;
  };
  // From the TSecr of the ACK that carried a valid cookie. Not
  // authenticated: a peer can only misstate its own options, which it could
  // as well have done in its SYN.
  TsOptions decode_ts(uint32_t ts_echo) const noexcept;

  // The kMssTable index make() encodes for peer_mss.
  static uint32_t mss_index(uint16_t peer_mss) noexcept;

 private:
  uint32_t mac(const FourTuple& t, uint32_t peer_isn, uint64_t counter,
               uint32_t mss_index) const noexcept;

  SipKey key_;
};

}  // namespace mtlsgw::net::tcp
