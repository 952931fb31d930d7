#pragma once
// Which worker a TCP flow belongs to, per port, so that connect() can choose
// a source port whose replies the device delivers to the opening worker, and
// so that a worker can tell who owns a segment it should not have received.
// Worker i reads RX queue i of every port.
//
// Two modes:
// - rss: the device hashes every received IPv4/TCP segment with the Toeplitz
//   function of Microsoft's RSS specification, over source address,
//   destination address, source port and destination port under its secret
//   key, and its redirection table (RETA) maps the low bits of that hash to
//   an RX queue. With the key and the table read back from the device, the
//   queue of any four-tuple is known before a segment arrives.
// - software: the device spreads flows some other way (net_tap here: the
//   kernel's TUN driver picks the queue with its own flow hash), or does not
//   let us read its key or table. An active open then belongs to worker
//   local port mod N, and the workers pass each other's segments over a ring.
//
// Pure computation: no EAL, so it is tested without a device.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/net/tcp_tuple.h"

namespace mtlsgw::dataplane {

// What a device reports about its RSS after start
// (rte_eth_dev_rss_hash_conf_get, rte_eth_dev_rss_reta_query).
struct DeviceRss {
  std::span<const uint8_t> key;     // the Toeplitz key as the device holds it
  uint64_t hash_types = 0;          // RTE_ETH_RSS_* in effect
  std::span<const uint16_t> reta;   // the RX queue of each table entry, entry 0 first
};

class FlowSteering {
 public:
  enum class Mode : uint8_t { software, rss };

  // An IPv4/TCP hash reads 12 bytes of input and, sliding a 32-bit window
  // over the key, the first 12 + 4 bytes of the key.
  static constexpr size_t kMinKeyBytes = 16;

  // Software steering over `queues` workers (at least 1).
  explicit FlowSteering(uint16_t queues = 1);

  struct FromDevice;
  // RSS steering when what the device reports predicts the queue of every
  // IPv4/TCP four-tuple; otherwise software steering and the reason.
  static FromDevice from_device(const DeviceRss& rss, uint16_t queues);

  Mode mode() const noexcept { return mode_; }
  uint16_t queues() const noexcept { return queues_; }
  size_t reta_size() const noexcept { return reta_.size(); }

  // The Toeplitz hash the device computes for a segment of this flow that
  // travels from remote to local (the reply to our SYN and all that follows
  // it). Meaningful in rss mode only.
  uint32_t reply_hash(const net::tcp::FourTuple& flow) const noexcept;

  // The worker that owns the flow. rss: the queue the device delivers the
  // flow's incoming segments to. software: local port mod the worker count.
  uint16_t owner(const net::tcp::FourTuple& flow) const noexcept;

 private:
  static constexpr size_t kKeyWords = 10;  // the usual 40-byte key; more is never read

  Mode mode_ = Mode::software;
  uint16_t queues_ = 1;
  uint32_t reta_mask_ = 0;
  // In the CPU byte order rte_softrss_be wants (rte_convert_rss_key).
  std::array<uint32_t, kKeyWords> key_{};
  std::vector<uint16_t> reta_;
};

struct FlowSteering::FromDevice {
  FlowSteering steering;
  std::string fallback_reason;  // empty in rss mode
};

std::string_view to_string(FlowSteering::Mode mode) noexcept;

}  // namespace mtlsgw::dataplane
