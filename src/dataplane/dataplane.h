#pragma once
// Everything the data plane owns: the ports and one worker per non-main
// lcore. Built and torn down by the main lcore; while it runs, other threads
// read counters and use each worker's mailbox, nothing else.

#include <atomic>
#include <memory>
#include <vector>

#include "dataplane/port.h"
#include "dataplane/worker.h"

namespace mtlsgw::dataplane {

struct InterfaceSettings {
  PortSettings port;             // port.queues is set to the worker count
  net::Ipv4Prefix address;
  net::Ipv4Address gateway = 0;
};

class Dataplane {
 public:
  // Requires EAL; throws std::runtime_error when a port or worker cannot be
  // set up.
  Dataplane(const std::vector<InterfaceSettings>& interfaces, const WorkerSettings& settings);
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  // Launches every worker on its lcore.
  void start();
  // Signals the workers, waits for them, stops the ports. Idempotent.
  void stop() noexcept;

  const std::vector<std::unique_ptr<Port>>& ports() const noexcept { return ports_; }
  const std::vector<std::unique_ptr<Worker>>& workers() const noexcept { return workers_; }
  const std::vector<InterfaceSettings>& interfaces() const noexcept { return interfaces_; }

 private:
  std::vector<InterfaceSettings> interfaces_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stop_{false};
  bool running_ = false;
};

}  // namespace mtlsgw::dataplane
