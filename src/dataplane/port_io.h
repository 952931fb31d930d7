#pragma once
// The FrameIo of one worker on one port queue: mbufs from the port's pool,
// transmissions gathered into bursts (rte_eth_tx_burst is called once per
// poll iteration, or when a burst fills, never per packet).

#include <rte_mbuf.h>

#include <array>
#include <cstdint>

#include "dataplane/net/frame.h"
#include "dataplane/net/stack_counters.h"

namespace mtlsgw::dataplane {

constexpr uint16_t kBurstSize = 32;

class PortQueueIo final : public net::FrameIo {
 public:
  PortQueueIo(uint16_t port_id, uint16_t queue_id, rte_mempool* pool,
              net::StackCounters& counters) noexcept
      : port_id_(port_id), queue_id_(queue_id), pool_(pool), counters_(counters) {}
  ~PortQueueIo() override;

  bool alloc(net::Frame& out) noexcept override;
  void send(const net::Frame& frame) noexcept override;
  void release(const net::Frame& frame) noexcept override;

  // Hands the gathered burst to the device; what it refuses is freed and
  // counted as tx_queue_full.
  void flush() noexcept;

  uint16_t receive(rte_mbuf** mbufs, uint16_t max) noexcept;

  static net::Frame frame_of(rte_mbuf* m) noexcept {
    net::Frame f;
    f.data = rte_pktmbuf_mtod(m, uint8_t*);
    f.len = m->data_len;
    f.headroom = rte_pktmbuf_headroom(m);
    f.tailroom = rte_pktmbuf_tailroom(m);
    f.handle = m;
    return f;
  }

 private:
  uint16_t port_id_;
  uint16_t queue_id_;
  rte_mempool* pool_;
  net::StackCounters& counters_;
  uint16_t pending_ = 0;
  std::array<rte_mbuf*, kBurstSize> tx_{};
};

}  // namespace mtlsgw::dataplane
