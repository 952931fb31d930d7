#include "dataplane/flow_steering.h"

#include <rte_ethdev.h>
#include <rte_thash.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

namespace mtlsgw::dataplane {
namespace {

// A device that hashes only some of the four fields (the *_ONLY modifiers)
// makes the reply's queue independent of the field we choose, or hashes a
// shorter input than the one computed here.
constexpr uint64_t kPartialTuple = RTE_ETH_RSS_L3_SRC_ONLY | RTE_ETH_RSS_L3_DST_ONLY |
                                   RTE_ETH_RSS_L4_SRC_ONLY | RTE_ETH_RSS_L4_DST_ONLY;

std::string check(const DeviceRss& rss, uint16_t queues) {
  // Without the ports in the hash, every source port of a connection to one
  // remote lands on the same queue: connect() could not steer at all.
  if ((rss.hash_types & RTE_ETH_RSS_NONFRAG_IPV4_TCP) == 0) {
    return "the device does not hash the ports of IPv4/TCP segments";
  }
  if ((rss.hash_types & kPartialTuple) != 0) return "the device hashes only part of the four-tuple";
  if (rss.key.size() < FlowSteering::kMinKeyBytes) {
    return fmt::format("the device reports a {}-byte key, an IPv4/TCP hash needs {}",
                       rss.key.size(), FlowSteering::kMinKeyBytes);
  }
  if (std::all_of(rss.key.begin(), rss.key.end(), [](uint8_t b) { return b == 0; })) {
    return "the device reports an all-zero key";
  }
  if (rss.reta.empty()) return "the device reports no redirection table";
  // Devices index the table with the hash's low bits, which is hash mod size
  // only for a power of two; for other sizes we do not know the rule.
  if (!std::has_single_bit(rss.reta.size())) {
    return fmt::format("redirection table of {} entries is not a power of two", rss.reta.size());
  }
  std::vector<bool> seen(queues, false);
  for (size_t i = 0; i < rss.reta.size(); ++i) {
    if (rss.reta[i] >= queues) {
      return fmt::format("redirection table entry {} names queue {} of {}", i, rss.reta[i], queues);
    }
    seen[rss.reta[i]] = true;
  }
  // A worker whose queue no entry names would receive no reply at all, and
  // its port filter would refuse every source port.
  for (uint16_t q = 0; q < queues; ++q) {
    if (!seen[q]) return fmt::format("no redirection table entry names queue {}", q);
  }
  return {};
}

}  // namespace

FlowSteering::FlowSteering(uint16_t queues) : queues_(queues) {
  if (queues == 0) throw std::invalid_argument("flow steering needs at least one queue");
}

FlowSteering::FromDevice FlowSteering::from_device(const DeviceRss& rss, uint16_t queues) {
  FromDevice out{FlowSteering(queues), check(rss, queues)};
  if (!out.fallback_reason.empty()) return out;
  FlowSteering& s = out.steering;
  s.mode_ = Mode::rss;
  std::array<uint32_t, kKeyWords> raw{};
  std::memcpy(raw.data(), rss.key.data(), std::min(rss.key.size(), sizeof raw));
  rte_convert_rss_key(raw.data(), s.key_.data(), static_cast<int>(sizeof raw));
  s.reta_.assign(rss.reta.begin(), rss.reta.end());
  s.reta_mask_ = static_cast<uint32_t>(rss.reta.size() - 1);
  return out;
}

uint32_t FlowSteering::reply_hash(const net::tcp::FourTuple& flow) const noexcept {
  // The segment the device hashes comes from the remote end: its source is
  // the remote address and port. rte_ipv4_tuple wants host byte order.
  rte_ipv4_tuple input{};
  input.src_addr = flow.remote_ip;
  input.dst_addr = flow.local_ip;
  input.sport = flow.remote_port;
  input.dport = flow.local_port;
  return rte_softrss_be(reinterpret_cast<uint32_t*>(&input), RTE_THASH_V4_L4_LEN,
                        reinterpret_cast<const uint8_t*>(key_.data()));
}

uint16_t FlowSteering::owner(const net::tcp::FourTuple& flow) const noexcept {
  if (mode_ == Mode::rss) return reta_[reply_hash(flow) & reta_mask_];
  return static_cast<uint16_t>(flow.local_port % queues_);
}

std::string_view to_string(FlowSteering::Mode mode) noexcept {
  return mode == FlowSteering::Mode::rss ? "rss" : "software";
}

}  // namespace mtlsgw::dataplane
