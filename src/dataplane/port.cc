#include "dataplane/port.h"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <vector>

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
  set_up_steering();
}

// Hardware steering needs the device's Toeplitz key and redirection table.
// The table is programmed round-robin so that every worker gets an equal
// share of hash values (and so of source ports for its active opens), then
// both are read back: what counts is what the device holds, whether or not
// it took our table. Anything missing or unreadable means software steering.
// DPDK 22.11 cannot report the hash function itself; devices use Toeplitz by
// default, and if one did not, replies would reach other workers, which pass
// them on through the software dispatch (counted as dispatched_to_owner).
void Port::set_up_steering() {
  const uint16_t id = settings_.port_id;
  const uint16_t queues = settings_.queues;
  steering_ = FlowSteering(queues);
  if (queues == 1) return;
  if (!rss_) {
    steering_fallback_ = "the device offers no RSS hash types";
    return;
  }
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(id, &info); rc != 0) {
    steering_fallback_ = fmt::format("rte_eth_dev_info_get: {}", rte_strerror(-rc));
    return;
  }
  // net_tap: reports hash types but no table; its "RSS" is an eBPF program
  // behind rte_flow, and without flow rules the kernel's TUN driver chooses
  // the queue with its own flow hash.
  const uint16_t reta_size = info.reta_size;
  if (reta_size == 0) {
    steering_fallback_ = "the device reports no redirection table";
    return;
  }
  std::vector<rte_eth_rss_reta_entry64> groups((reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
                                               RTE_ETH_RETA_GROUP_SIZE);
  for (uint16_t i = 0; i < reta_size; ++i) {
    rte_eth_rss_reta_entry64& group = groups[i / RTE_ETH_RETA_GROUP_SIZE];
    group.mask |= uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
    group.reta[i % RTE_ETH_RETA_GROUP_SIZE] = static_cast<uint16_t>(i % queues);
  }
  const int programmed = rte_eth_dev_rss_reta_update(id, groups.data(), reta_size);
  const std::string not_programmed =
      programmed == 0 ? ""
                      : fmt::format("; programming it failed: {}", rte_strerror(-programmed));
  for (rte_eth_rss_reta_entry64& group : groups) {
    std::fill(std::begin(group.reta), std::end(group.reta), uint16_t{0});
  }
  if (int rc = rte_eth_dev_rss_reta_query(id, groups.data(), reta_size); rc != 0) {
    steering_fallback_ = fmt::format("the redirection table cannot be read: {}{}",
                                     rte_strerror(-rc), not_programmed);
    return;
  }
  std::vector<uint16_t> reta(reta_size);
  for (uint16_t i = 0; i < reta_size; ++i) {
    reta[i] = groups[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
  }
  // rss_key_len is a uint8_t, so no device key is longer than this buffer;
  // some drivers write their whole key whatever length we pass.
  std::array<uint8_t, 256> key{};
  rte_eth_rss_conf conf{};
  conf.rss_key = key.data();
  conf.rss_key_len = info.hash_key_size != 0 ? info.hash_key_size : 40;
  if (int rc = rte_eth_dev_rss_hash_conf_get(id, &conf); rc != 0) {
    steering_fallback_ = fmt::format("the hash key cannot be read: {}", rte_strerror(-rc));
    return;
  }
  FlowSteering::FromDevice made = FlowSteering::from_device(
      DeviceRss{std::span<const uint8_t>(key.data(), conf.rss_key_len), conf.rss_hf, reta}, queues);
  steering_ = std::move(made.steering);
  steering_fallback_ = made.fallback_reason.empty() ? "" : made.fallback_reason + not_programmed;
}

void Port::stop() noexcept {
  if (!started_) return;
  started_ = false;
  rte_eth_dev_stop(settings_.port_id);
  rte_eth_dev_close(settings_.port_id);
}

Port::~Port() { stop(); }

}  // namespace mtlsgw::dataplane
