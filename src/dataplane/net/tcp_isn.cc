#include "dataplane/net/tcp_isn.h"

#include <stdexcept>
#include <type_traits>

namespace mtlsgw::net::tcp {
namespace {

// Fixed-layout hash inputs: no padding, so every byte hashed is defined.
struct IsnInput {
  uint32_t local_ip;
  uint32_t remote_ip;
  uint32_t ports;  // local in the low half, remote in the high half
};
static_assert(std::has_unique_object_representations_v<IsnInput>);

struct PortInput {
  uint32_t local_ip;
  uint32_t remote_ip;
  uint32_t remote_port;
};
static_assert(std::has_unique_object_representations_v<PortInput>);

}  // namespace

IsnGenerator::IsnGenerator(const SipKey& key) noexcept
    : key_(derive_sip_key(key, "mtlsgw tcp isn")) {}

uint32_t IsnGenerator::next(const FourTuple& t, uint64_t now_us) const noexcept {
  const IsnInput in{t.local_ip, t.remote_ip,
                    uint32_t{t.local_port} | uint32_t{t.remote_port} << 16};
  const auto f = static_cast<uint32_t>(siphash24(key_, &in, sizeof in));
  // M wraps modulo 2^32 every 4.77 hours, as RFC 9293 3.4.1's clock does.
  const auto m = static_cast<uint32_t>(now_us / kClockTickUs);
  return m + f;
}

EphemeralPorts::EphemeralPorts(const SipKey& key, uint16_t first, uint16_t last)
    : key_(derive_sip_key(key, "mtlsgw tcp ephemeral port")),
      first_(first),
      range_(static_cast<uint32_t>(last) - first + 1) {
  if (first == 0) throw std::invalid_argument("ephemeral port range must not include port 0");
  if (first > last) throw std::invalid_argument("ephemeral port range: first > last");
  // RFC 6056 3.3.4 starts every counter at a random value, so that even the
  // first connection to a destination does not sit at offset F() exactly.
  const SipKey table_key = derive_sip_key(key, "mtlsgw tcp ephemeral port table");
  for (size_t i = 0; i < kTableLength; ++i) {
    const uint64_t index = i;
    table_[i] = static_cast<uint32_t>(siphash24(table_key, &index, sizeof index));
  }
}

EphemeralPorts::Start EphemeralPorts::start(Ipv4Address local_ip, Ipv4Address remote_ip,
                                            uint16_t remote_port) const noexcept {
  const PortInput in{local_ip, remote_ip, remote_port};
  const uint64_t h = siphash24(key_, &in, sizeof in);
  static_assert((kTableLength & (kTableLength - 1)) == 0, "the index is a mask of hash bits");
  return Start{static_cast<uint32_t>(h), static_cast<uint32_t>((h >> 32) & (kTableLength - 1))};
}

}  // namespace mtlsgw::net::tcp
