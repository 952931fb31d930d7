#include "dataplane/dataplane.h"

#include <rte_launch.h>
#include <rte_lcore.h>

#include <fmt/format.h>

#include <stdexcept>

namespace mtlsgw::dataplane {
namespace {

int launch_worker(void* arg) { return static_cast<Worker*>(arg)->run(); }

}  // namespace

Dataplane::Dataplane(const std::vector<InterfaceSettings>& interfaces,
                     const WorkerSettings& settings)
    : interfaces_(interfaces) {
  std::vector<unsigned> lcores;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) { lcores.push_back(lcore); }
  if (lcores.empty()) {
    throw std::runtime_error(
        "no worker lcore: give EAL at least two (e.g. -l 0-1); the main lcore runs the control "
        "thread");
  }
  for (InterfaceSettings& iface : interfaces_) {
    iface.port.queues = static_cast<uint16_t>(lcores.size());
    ports_.push_back(std::make_unique<Port>(iface.port));
  }
  for (unsigned index = 0; index < lcores.size(); ++index) {
    std::vector<PortBinding> bindings;
    for (size_t p = 0; p < ports_.size(); ++p) {
      PortBinding binding;
      binding.port = ports_[p].get();
      binding.interface.port_id = ports_[p]->id();
      binding.interface.mac = ports_[p]->mac();
      binding.interface.address = interfaces_[p].address;
      binding.interface.gateway = interfaces_[p].gateway;
      binding.interface.mtu = interfaces_[p].port.mtu;
      bindings.push_back(binding);
    }
    workers_.push_back(std::make_unique<Worker>(index, lcores[index], bindings, settings, stop_));
  }
  std::vector<Worker*> all;
  for (auto& worker : workers_) all.push_back(worker.get());
  for (auto& worker : workers_) worker->set_workers(all);
}

Dataplane::~Dataplane() {
  stop();
  // Workers release their held mbufs into the pools before the ports (and
  // their pools) go away.
  workers_.clear();
  ports_.clear();
}

void Dataplane::start() {
  for (auto& worker : workers_) {
    if (int rc = rte_eal_remote_launch(launch_worker, worker.get(), worker->lcore()); rc != 0) {
      stop();
      throw std::runtime_error(fmt::format("cannot launch worker on lcore {}", worker->lcore()));
    }
  }
  running_ = true;
}

void Dataplane::stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  if (running_) {
    rte_eal_mp_wait_lcore();
    running_ = false;
  }
  for (auto& port : ports_) port->stop();
}

}  // namespace mtlsgw::dataplane
