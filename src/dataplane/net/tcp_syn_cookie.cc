#include "dataplane/net/tcp_syn_cookie.h"

#include <type_traits>

#include "dataplane/net/tcp_seq.h"

namespace mtlsgw::net::tcp {
namespace {

static_assert(SynCookies::kCounterBits + SynCookies::kMssBits + SynCookies::kMacBits == 32);

constexpr int kMssShift = SynCookies::kMacBits;
constexpr int kCounterShift = SynCookies::kMacBits + SynCookies::kMssBits;
constexpr uint32_t kMacMask = (uint32_t{1} << SynCookies::kMacBits) - 1;
constexpr uint32_t kMssMask = (uint32_t{1} << SynCookies::kMssBits) - 1;
constexpr uint32_t kCounterMask = (uint32_t{1} << SynCookies::kCounterBits) - 1;
static_assert(SynCookies::kMaxAge < kCounterMask,
              "the visible counter bits must tell every accepted age apart from a future one");

constexpr uint32_t kTsMask = (uint32_t{1} << SynCookies::kTsOptionBits) - 1;
constexpr uint32_t kTsWindowMask = 0x0f;
constexpr uint32_t kTsSackBit = 0x10;
static_assert((kTsWindowMask | kTsSackBit) == kTsMask);

// Fixed-layout MAC input: no padding, so every byte hashed is defined.
struct MacInput {
  uint32_t local_ip;
  uint32_t remote_ip;
  uint32_t ports;  // local in the low half, remote in the high half
  uint32_t peer_isn;
  uint64_t counter_and_mss;  // t << kMssBits | MSS index
};
static_assert(std::has_unique_object_representations_v<MacInput>);

}  // namespace

SynCookies::SynCookies(const SipKey& key) noexcept
    : key_(derive_sip_key(key, "mtlsgw tcp syn cookie")) {}

uint32_t SynCookies::mss_index(uint16_t peer_mss) noexcept {
  if (peer_mss == 0) peer_mss = kDefaultPeerMss;
  auto i = static_cast<uint32_t>(kMssTable.size() - 1);
  while (i > 0 && kMssTable[i] > peer_mss) --i;
  return i;
}

uint32_t SynCookies::mac(const FourTuple& t, uint32_t peer_isn, uint64_t counter,
                         uint32_t mss_index) const noexcept {
  const MacInput in{t.local_ip, t.remote_ip,
                    uint32_t{t.local_port} | uint32_t{t.remote_port} << 16, peer_isn,
                    counter << kMssBits | mss_index};
  return static_cast<uint32_t>(siphash24(key_, &in, sizeof in)) & kMacMask;
}

uint32_t SynCookies::make(const FourTuple& t, uint32_t peer_isn, uint16_t peer_mss,
                          uint64_t now_us) const noexcept {
  const uint64_t counter = now_us / kPeriodUs;
  const uint32_t index = mss_index(peer_mss);
  return (static_cast<uint32_t>(counter) & kCounterMask) << kCounterShift |
         index << kMssShift | mac(t, peer_isn, counter, index);
}

std::optional<uint16_t> SynCookies::check(const FourTuple& t, uint32_t peer_isn, uint32_t cookie,
                                          uint64_t now_us) const noexcept {
  const uint64_t now = now_us / kPeriodUs;
  // Periods since the cookie was made, as far as its 5 visible bits tell; a
  // cookie from the future or from beyond the window lands outside [0, kMaxAge].
  const uint32_t age = (static_cast<uint32_t>(now) - (cookie >> kCounterShift)) & kCounterMask;
  if (age > kMaxAge || age > now) return std::nullopt;
  const uint32_t index = cookie >> kMssShift & kMssMask;
  // The MAC binds the full counter: a cookie 32 periods old shows the same
  // visible bits as a fresh one but was hashed with a different t.
  if ((cookie & kMacMask) != mac(t, peer_isn, now - age, index)) return std::nullopt;
  return kMssTable[index];
}

uint32_t SynCookies::encode_ts(uint32_t ts_clock, uint8_t window_scale,
                               bool sack_permitted) const noexcept {
  uint32_t ws = window_scale;
  if (ws > kNoWindowScale) ws = kMaxWindowScale;
  const uint32_t bits = ws | (sack_permitted ? kTsSackBit : 0);
  uint32_t ts = (ts_clock & ~kTsMask) | bits;
  // Replacing the low bits may have moved the value ahead of the clock; one
  // step back keeps it behind, so the connection's next TSval is not older.
  if (seq_gt(ts, ts_clock)) ts -= kTsMask + 1;
  return ts;
}

SynCookies::TsOptions SynCookies::decode_ts(uint32_t ts_echo) const noexcept {
  return TsOptions{static_cast<uint8_t>(ts_echo & kTsWindowMask), (ts_echo & kTsSackBit) != 0};
}

}  // namespace mtlsgw::net::tcp
