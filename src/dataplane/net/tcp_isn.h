#pragma once
// Unpredictable initial sequence numbers (RFC 6528, RFC 9293 3.4.1) and
// ephemeral port selection (RFC 6056 3.3.4, Algorithm 4), both keyed with
// SipHash-2-4 so that an off-path attacker can guess neither the sequence
// space nor the port of a connection (RFC 5961's blind attacks start there).
//
// Both are owned by one worker: no locks. The constructors derive their own
// subkeys, so one master key may be shared with SynCookies.

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "common/siphash.h"
#include "dataplane/net/ipv4_address.h"
#include "dataplane/net/tcp_tuple.h"

namespace mtlsgw::net::tcp {

// RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
// with M a 4-microsecond timer. M keeps successive incarnations of one
// four-tuple moving forward through the sequence space (the reason RFC 9293
// 3.4.1 has a clock at all); F makes each tuple's offset secret.
class IsnGenerator {
 public:
  // RFC 9293 3.4.1: the ISN clock ticks every 4 microseconds.
  static constexpr uint64_t kClockTickUs = 4;

  explicit IsnGenerator(const SipKey& key) noexcept;

  // now_us: any monotonic microsecond clock; the same clock for every call.
  uint32_t next(const FourTuple& t, uint64_t now_us) const noexcept;

 private:
  SipKey key_;
};

// RFC 6056 3.3.4, Algorithm 4 ("double-hash port selection"):
//   offset = F(local_ip, remote_ip, remote_port, key1)
//   index  = G(local_ip, remote_ip, remote_port, key2)
//   candidate i = first + (offset + table[index] + i) mod range
// and table[index] advances by one per candidate tried. F keeps the ports of
// unrelated destinations uncorrelated. The counter makes repeated connections
// to one destination walk forward instead of retrying the port just used,
// whose previous incarnation may still be in TIME-WAIT at the peer; unlike
// Algorithm 3's single global counter, it is shared only by destinations with
// the same index, so an attacker who connects to its own server learns little
// about how many connections went elsewhere.
//
// F and G come from one SipHash call: its low 32 bits give the offset and its
// high bits the index. Disjoint output bits of one PRF are as independent as
// two PRFs under two keys, which is what the RFC's separate keys are for.
class EphemeralPorts {
 public:
  // RFC 6056 3.3.4 leaves the table length to us: more entries means fewer
  // unrelated destinations sharing (and so perturbing) one counter. 256 x 4
  // bytes stays within a few cache lines of the caller's working set.
  static constexpr size_t kTableLength = 256;

  // RFC 6056 3.2: the IANA dynamic range 49152-65535 is the minimum to use;
  // the default follows Linux (32768-60999) so that the gateway behaves like
  // the kernel stacks it replaces. Throws std::invalid_argument when first is
  // 0 or first > last.
  EphemeralPorts(const SipKey& key, uint16_t first = 32768, uint16_t last = 60999);

  // Offers candidates in Algorithm 4's order (consecutive ports, wrapping at
  // last) and returns the first one acceptable(port) accepts, or 0 when none
  // is accepted within max_tries candidates (0, or more than the range: the
  // whole range, each port once). acceptable() refuses ports in use and ports
  // whose reply RSS would steer to another worker, so most calls refuse many
  // candidates: each one costs an add, a compare and the callback, no hash
  // and no division. acceptable() must not throw.
  template <typename Fn>
    requires std::predicate<Fn&, uint16_t>
  uint16_t select(Ipv4Address local_ip, Ipv4Address remote_ip, uint16_t remote_port,
                  Fn&& acceptable, uint32_t max_tries = 0) noexcept {
    const Start s = start(local_ip, remote_ip, remote_port);
    uint32_t& counter = table_[s.index];
    uint32_t pos = static_cast<uint32_t>((uint64_t{s.offset} + counter) % range_);
    const uint32_t tries = max_tries == 0 || max_tries > range_ ? range_ : max_tries;
    for (uint32_t i = 0; i < tries; ++i) {
      const auto port = static_cast<uint16_t>(first_ + pos);
      if (acceptable(port)) {
        counter += i + 1;
        return port;
      }
      pos = pos + 1 == range_ ? 0 : pos + 1;
    }
    counter += tries;
    return 0;
  }

  uint16_t first() const noexcept { return first_; }
  uint16_t last() const noexcept { return static_cast<uint16_t>(first_ + range_ - 1); }
  uint32_t range() const noexcept { return range_; }

  // G(): which perturbation counter a destination uses. For tests and
  // diagnostics; the packet path does not need it.
  size_t table_index(Ipv4Address local_ip, Ipv4Address remote_ip,
                     uint16_t remote_port) const noexcept {
    return start(local_ip, remote_ip, remote_port).index;
  }

 private:
  struct Start {
    uint32_t offset;  // F()
    uint32_t index;   // G()
  };
  Start start(Ipv4Address local_ip, Ipv4Address remote_ip, uint16_t remote_port) const noexcept;

  SipKey key_;
  uint16_t first_;
  uint32_t range_;  // last - first + 1, at most 65535
  std::array<uint32_t, kTableLength> table_;
};

}  // namespace mtlsgw::net::tcp
