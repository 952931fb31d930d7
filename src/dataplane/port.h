#pragma once
// Ethernet device bring-up: one RX and one TX queue per worker on every port,
// RSS where the device offers it, one mbuf pool per port on the port's NUMA
// socket, and the flow steering the device allows (its Toeplitz key and
// redirection table read back, or software). Runs on the main lcore at start
// and shutdown only.

#include <rte_ether.h>

#include <cstdint>
#include <string>

#include "common/handles.h"
#include "dataplane/flow_steering.h"

namespace mtlsgw::dataplane {

struct PortSettings {
  uint16_t port_id = 0;
  uint16_t queues = 1;       // one per worker
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  uint16_t mtu = 1500;
};

class Port {
 public:
  // Configures and starts the device; throws std::runtime_error naming the
  // step that failed.
  explicit Port(const PortSettings& settings);
  ~Port();
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  uint16_t id() const noexcept { return settings_.port_id; }
  uint16_t queues() const noexcept { return settings_.queues; }
  const rte_ether_addr& mac() const noexcept { return mac_; }
  rte_mempool* pool() const noexcept { return pool_.get(); }
  const std::string& driver() const noexcept { return driver_; }
  bool rss() const noexcept { return rss_; }
  // How workers tell which of them owns a flow on this port.
  const FlowSteering& steering() const noexcept { return steering_; }
  // Why steering is software although there are several queues; empty
  // otherwise.
  const std::string& steering_fallback() const noexcept { return steering_fallback_; }

  // Stops the device; safe to call twice. Workers must have stopped.
  void stop() noexcept;

 private:
  void set_up_steering();

  PortSettings settings_;
  MempoolHandle pool_;
  rte_ether_addr mac_{};
  std::string driver_;
  bool rss_ = false;
  bool started_ = false;
  FlowSteering steering_;
  std::string steering_fallback_;
};

}  // namespace mtlsgw::dataplane
