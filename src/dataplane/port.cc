#include "dataplane/port.h"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <fmt/format.h>

#include <stdexcept>

namespace mtlsgw::dataplane {
namespace {

[[noreturn]] void fail(uint16_t port, const char* step, int rc) {
  throw std::runtime_error(
      fmt::format("port {}: {} failed: {} ({})", port, step, rte_strerror(-rc), rc));
}

// Enough mbufs for every descriptor of every queue, plus a burst in flight per
// queue and the per-lcore caches; 2^n - 1 is the mempool's efficient size.
unsigned pool_size(const PortSettings& s) {
  const unsigned per_queue = s.rx_descriptors + s.tx_descriptors + 2 * 64 + 256;
  unsigned n = 8191;
  while (n < per_queue * s.queues) n = n * 2 + 1;
  return n;
}

}  // namespace

Port::Port(const PortSettings& settings) : settings_(settings) {
  const uint16_t id = settings.port_id;
  if (!rte_eth_dev_is_valid_port(id)) {
    throw std::runtime_error(fmt::format(
        "port {}: no such ethdev ({} available); pass a NIC with -a or a vdev with --vdev", id,
        rte_eth_dev_count_avail()));
  }
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(id, &info); rc != 0) fail(id, "rte_eth_dev_info_get", rc);
  driver_ = info.driver_name != nullptr ? info.driver_name : "?";
  if (settings.queues > info.max_rx_queues || settings.queues > info.max_tx_queues) {
    throw std::runtime_error(fmt::format("port {} ({}): {} workers need {} queues, device has {}",
                                         id, driver_, settings.queues, settings.queues,
                                         std::min(info.max_rx_queues, info.max_tx_queues)));
  }
  const int socket = rte_eth_dev_socket_id(id) < 0 ? 0 : rte_eth_dev_socket_id(id);
  pool_.reset(rte_pktmbuf_pool_create(fmt::format("mbufs_p{}", id).c_str(), pool_size(settings),
                                      256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket));
  if (!pool_) fail(id, "rte_pktmbuf_pool_create", -rte_errno);

  rte_eth_conf conf{};
  const uint64_t rss_wanted = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  const uint64_t rss_have = info.flow_type_rss_offloads & rss_wanted;
  if (settings.queues > 1 && rss_have != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss_have;
    rss_ = true;
  }
  if (int rc = rte_eth_dev_configure(id, settings.queues, settings.queues, &conf); rc != 0) {
    fail(id, "rte_eth_dev_configure", rc);
  }
  uint16_t rxd = settings.rx_descriptors;
  uint16_t txd = settings.tx_descriptors;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(id, &rxd, &txd); rc != 0) {
    fail(id, "rte_eth_dev_adjust_nb_rx_tx_desc", rc);
  }
  for (uint16_t q = 0; q < settings.queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(id, q, rxd, socket, nullptr, pool_.get()); rc != 0) {
      fail(id, "rte_eth_rx_queue_setup", rc);
    }
    if (int rc = rte_eth_tx_queue_setup(id, q, txd, socket, nullptr); rc != 0) {
      fail(id, "rte_eth_tx_queue_setup", rc);
    }
  }
  if (int rc = rte_eth_dev_set_mtu(id, settings.mtu); rc != 0 && rc != -ENOTSUP) {
    fail(id, "rte_eth_dev_set_mtu", rc);
  }
  if (int rc = rte_eth_macaddr_get(id, &mac_); rc != 0) fail(id, "rte_eth_macaddr_get", rc);
  if (int rc = rte_eth_dev_start(id); rc != 0) fail(id, "rte_eth_dev_start", rc);
  started_ = true;
  // We filter by destination MAC ourselves; promiscuous mode only costs us
  // frames for other hosts. Some vdevs cannot turn it off: that is fine.
  rte_eth_promiscuous_disable(id);
}

void Port::stop() noexcept {
  if (!started_) return;
  started_ = false;
  rte_eth_dev_stop(settings_.port_id);
  rte_eth_dev_close(settings_.port_id);
}

Port::~Port() { stop(); }

}  // namespace mtlsgw::dataplane
