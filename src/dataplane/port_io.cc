#include "dataplane/port_io.h"

#include <rte_ethdev.h>

namespace mtlsgw::dataplane {

PortQueueIo::~PortQueueIo() {
  rte_pktmbuf_free_bulk(tx_.data(), pending_);
  pending_ = 0;
}

bool PortQueueIo::alloc(net::Frame& out) noexcept {
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (m == nullptr) return false;
  // A frame made here may be handed to another worker (a duplicate from the
  // fault injector): it must name its port like a received one.
  m->port = port_id_;
  out = frame_of(m);
  return true;
}

void PortQueueIo::send(const net::Frame& frame) noexcept {
  auto* m = static_cast<rte_mbuf*>(frame.handle);
  // Layers may have moved the start (prepend) or the end (append/trim).
  m->data_off = static_cast<uint16_t>(frame.data - static_cast<uint8_t*>(m->buf_addr));
  m->data_len = frame.len;
  m->pkt_len = frame.len;
  tx_[pending_++] = m;
  if (pending_ == kBurstSize) flush();
}

void PortQueueIo::release(const net::Frame& frame) noexcept {
  rte_pktmbuf_free(static_cast<rte_mbuf*>(frame.handle));
}

void PortQueueIo::flush() noexcept {
  if (pending_ == 0) return;
  const uint16_t sent = rte_eth_tx_burst(port_id_, queue_id_, tx_.data(), pending_);
  if (sent < pending_) {
    const uint16_t refused = static_cast<uint16_t>(pending_ - sent);
    counters_.drops[static_cast<size_t>(net::DropReason::tx_queue_full)].add(refused);
    rte_pktmbuf_free_bulk(tx_.data() + sent, refused);
  }
  pending_ = 0;
}

uint16_t PortQueueIo::receive(rte_mbuf** mbufs, uint16_t max) noexcept {
  return rte_eth_rx_burst(port_id_, queue_id_, mbufs, max);
}

}  // namespace mtlsgw::dataplane
