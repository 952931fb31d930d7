#include "dataplane/worker.h"

#include <rte_cycles.h>
#include <rte_ring_elem.h>
#include <sys/prctl.h>

#include <fmt/format.h>

#include <stdexcept>
#include <thread>

namespace mtlsgw::dataplane {
namespace {

// Neighbour news is rare (ARP replies); a small ring is plenty, and a full
// one only means a peer resolves the address itself a little later.
constexpr unsigned kInboxSize = 256;
// Segments of another worker's flows in flight between workers.
constexpr unsigned kPacketInboxSize = 1024;

}  // namespace

Worker::Worker(unsigned index, unsigned lcore, const std::vector<PortBinding>& ports,
               const WorkerSettings& settings, const std::atomic<bool>& stop)
    : index_(index), lcore_(lcore), settings_(settings), stop_(stop) {
  tsc_start_ = rte_get_tsc_cycles();
  us_per_tsc_ = 1e6 / static_cast<double>(rte_get_tsc_hz());
  tcp_ = std::make_unique<net::tcp::TcpStack>(settings.tcp, settings.key, now_us(tsc_start_));
  for (size_t p = 0; p < ports.size(); ++p) {
    const PortBinding& binding = ports[p];
    ios_.push_back(std::make_unique<PortQueueIo>(binding.port->id(), static_cast<uint16_t>(index),
                                                 binding.port->pool(), counters_));
    // Distinct seeds per worker, port and direction, so that rx and tx
    // faults do not line up, and a run can be replayed from the base seed.
    const uint64_t seed = settings.fault_seed + 4 * (uint64_t{index} * 64 + p);
    rx_faults_.push_back(settings.fault_rx.enabled()
                             ? std::make_unique<FaultInjector>(settings.fault_rx, seed, *ios_.back())
                             : nullptr);
    tx_faults_.push_back(settings.fault_tx.enabled()
                             ? std::make_unique<FaultInjectingIo>(*ios_.back(), settings.fault_tx, seed + 1)
                             : nullptr);
    net::FrameIo& io = tx_faults_.back() ? static_cast<net::FrameIo&>(*tx_faults_.back())
                                         : static_cast<net::FrameIo&>(*ios_.back());
    interfaces_.push_back(std::make_unique<net::Interface>(binding.interface, io, counters_));
    interfaces_.back()->set_neighbor_listener(this);
    interfaces_.back()->set_tcp(tcp_.get());
    steering_.push_back(binding.port->steering());
  }
  std::vector<net::Interface*> interfaces;
  for (auto& iface : interfaces_) interfaces.push_back(iface.get());
  if (settings.access_log) access_log_ = std::make_unique<gateway::AccessLogQueue>();
  for (const ListenerSpec& listener : settings.listeners) {
    std::string error;
    auto service = services::make_service(listener.service, interfaces, error);
    if (!service) {
      throw std::runtime_error(fmt::format("worker {}: listener {} ({}): {}", index, listener.port,
                                           listener.service.kind, error));
    }
    if (!tcp_->listen(listener.port, service.get())) {
      throw std::runtime_error(fmt::format("worker {}: cannot listen on port {} ({})", index,
                                           listener.port, listener.service.kind));
    }
    if (auto* gateway = dynamic_cast<gateway::TlsGateway*>(service.get())) {
      gateway->set_access_log(access_log_.get());
      gateway->set_policy(settings_.policy.get());
      gateway->set_verdict_cache(settings_.verdict_cache.get());
      gateway->set_rule_slots(settings_.rule_slots);
      gateways_.push_back(gateway);
    }
    services_.push_back(std::move(service));
  }
  // Many producers (the peers), one consumer (this worker).
  inbox_.reset(rte_ring_create_elem(fmt::format("w{}_inbox", index).c_str(),
                                    sizeof(NeighborMessage), kInboxSize, SOCKET_ID_ANY,
                                    RING_F_SC_DEQ));
  if (!inbox_) throw std::runtime_error(fmt::format("worker {}: cannot create inbox ring", index));
  packet_inbox_.reset(rte_ring_create(fmt::format("w{}_packets", index).c_str(), kPacketInboxSize,
                                      SOCKET_ID_ANY, RING_F_SC_DEQ));
  if (!packet_inbox_) throw std::runtime_error(fmt::format("worker {}: cannot create packet ring", index));
}

Worker::~Worker() {
  // Dispatched mbufs nobody took, then everything that holds frames, before
  // the queues that own the buffers.
  if (packet_inbox_) {
    void* m;
    while (rte_ring_sc_dequeue(packet_inbox_.get(), &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }
  services_.clear();
  tcp_.reset();
  interfaces_.clear();
  rx_faults_.clear();
  tx_faults_.clear();
  ios_.clear();
}

void Worker::set_workers(const std::vector<Worker*>& workers) {
  workers_ = workers;
  peers_.clear();
  for (Worker* w : workers) {
    if (w != this) peers_.push_back(w);
  }
  if (workers_.size() > 1) {
    tcp_->set_port_filter(&Worker::owns_port, this);
    tcp_->set_foreign_handler(&Worker::dispatch_foreign, this);
  }
}

// Who owns a flow is the port's FlowSteering rule. rss: the worker whose
// queue the device's Toeplitz hash and redirection table give the flow's
// incoming segments, so that connect() only takes source ports whose replies
// reach the opening worker directly. software (devices without a readable
// key and table, like net_tap here): worker local port mod N for active
// opens, so that every worker can tell from a segment alone where it
// belongs. Passive flows stay with the worker that got the SYN either way
// (the device keeps a flow on one queue).
const FlowSteering* Worker::steering_for_port(uint16_t port_id) const noexcept {
  for (size_t p = 0; p < interfaces_.size(); ++p) {
    if (interfaces_[p]->config().port_id == port_id) return &steering_[p];
  }
  return nullptr;
}

const FlowSteering* Worker::steering_for_address(net::Ipv4Address local_ip) const noexcept {
  for (size_t p = 0; p < interfaces_.size(); ++p) {
    if (interfaces_[p]->config().address.address == local_ip) return &steering_[p];
  }
  return nullptr;
}

bool Worker::owns_port(void* self, const net::tcp::FourTuple& tuple) noexcept {
  const auto* worker = static_cast<const Worker*>(self);
  // connect() leaves from one of our interfaces with its own address, so
  // there is always a port; refusing otherwise fails the connect visibly.
  const FlowSteering* steering = worker->steering_for_address(tuple.local_ip);
  return steering != nullptr && steering->owner(tuple) == worker->index_;
}

// With rss steering the owner computed here is normally the receiving worker
// itself, and nothing moves; only a segment the device put elsewhere (a hash
// function other than Toeplitz, a table changed behind our back) takes the
// ring, so the flow survives a wrong prediction.
bool Worker::dispatch_foreign(void* self, net::Interface& iface, const net::Frame& frame,
                              const net::tcp::FourTuple& tuple) noexcept {
  auto* worker = static_cast<Worker*>(self);
  const net::tcp::EphemeralPorts& ports = worker->tcp_->ephemeral_ports();
  if (tuple.local_port < ports.first() || tuple.local_port > ports.last()) return false;
  const FlowSteering* steering = worker->steering_for_port(iface.config().port_id);
  if (steering == nullptr) return false;
  const unsigned owner = steering->owner(tuple);
  if (owner == worker->index_ || owner >= worker->workers_.size()) return false;
  auto* m = static_cast<rte_mbuf*>(frame.handle);
  if (rte_ring_mp_enqueue(worker->workers_[owner]->packet_inbox_.get(), m) != 0) {
    iface.drop(frame, net::DropReason::tcp_not_owner);
    return true;
  }
  worker->counters_.dispatched_to_owner.add();
  return true;
}

uint32_t Worker::receive_dispatched(uint64_t now) noexcept {
  void* mbufs[kBurstSize];
  const unsigned n = rte_ring_sc_dequeue_burst(packet_inbox_.get(), mbufs, kBurstSize, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    auto* m = static_cast<rte_mbuf*>(mbufs[i]);
    net::Interface* iface = interface_for(m->port);
    if (iface == nullptr) {
      rte_pktmbuf_free(m);
      continue;
    }
    iface->input_dispatched(PortQueueIo::frame_of(m), now);
  }
  return n;
}

FaultInjector::Stats Worker::fault_stats(FaultDirection direction) const noexcept {
  FaultInjector::Stats total;
  if (direction == FaultDirection::rx) {
    for (const auto& faults : rx_faults_) {
      if (faults) total += faults->stats();
    }
  } else {
    for (const auto& faults : tx_faults_) {
      if (faults) total += faults->injector().stats();
    }
  }
  return total;
}

uint64_t Worker::now_us(uint64_t tsc) const noexcept {
  return static_cast<uint64_t>(static_cast<double>(tsc - tsc_start_) * us_per_tsc_);
}

net::Interface* Worker::interface_for(uint16_t port_id) noexcept {
  for (auto& iface : interfaces_) {
    if (iface->config().port_id == port_id) return iface.get();
  }
  return nullptr;
}

void Worker::neighbor_learned(uint16_t port_id, net::Ipv4Address ip,
                              const rte_ether_addr& mac) noexcept {
  NeighborMessage message{ip, port_id, mac};
  for (Worker* peer : peers_) {
    // A full inbox only delays that peer: it resolves the address itself.
    if (rte_ring_mp_enqueue_elem(peer->inbox_.get(), &message, sizeof message) != 0) {
      counters_.neighbor_relay_lost.add();
    }
  }
}

void Worker::receive_from_peers(uint64_t now) noexcept {
  NeighborMessage messages[16];
  const unsigned n = rte_ring_sc_dequeue_burst_elem(inbox_.get(), messages, sizeof(NeighborMessage),
                                                    16, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    if (net::Interface* iface = interface_for(messages[i].port_id)) {
      iface->learn_from_peer(messages[i].ip, messages[i].mac, now);
    }
  }
}

void Worker::serve_requests(uint64_t now) noexcept {
  const uint32_t wanted = requested_.load(std::memory_order_acquire);
  if (wanted == served_.load(std::memory_order_relaxed)) return;
  // Control-path work: allocation is acceptable here, it is asked for by an
  // operator, not by a packet.
  neighbor_reply_.clear();
  for (auto& iface : interfaces_) {
    for (const auto& entry : iface->arp_cache().snapshot(now)) {
      neighbor_reply_.push_back(NeighborRow{iface->config().port_id, entry});
    }
  }
  served_.store(wanted, std::memory_order_release);
}

std::optional<std::vector<NeighborRow>> Worker::neighbors(std::chrono::milliseconds timeout) {
  std::lock_guard guard(request_lock_);
  const uint32_t ticket = requested_.load(std::memory_order_relaxed) + 1;
  requested_.store(ticket, std::memory_order_release);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (served_.load(std::memory_order_acquire) != ticket) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return neighbor_reply_;
}

int Worker::run() noexcept {
  // Sleeps of a few µs are only honest with a small timer slack (the
  // default 50 µs would make every idle sleep at least that long).
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  IdleBackoff backoff(settings_.busy_poll, settings_.idle_sleep_max_us);
  const uint64_t tick_cycles = rte_get_tsc_hz() / 1'000'000 * settings_.tick_interval_us;

  uint64_t tsc = rte_get_tsc_cycles();
  uint64_t next_tick = tsc;
  if (index_ == 0) {
    for (auto& iface : interfaces_) iface->start(now_us(tsc));
  }

  gateway::PolicyCell* policy = settings_.policy.get();
  if (policy != nullptr) policy->online(index_);

  rte_mbuf* burst[kBurstSize];
  while (!stop_.load(std::memory_order_relaxed)) {
    const uint64_t begin = tsc;
    const uint64_t now = now_us(begin);
    uint32_t work = 0;
    for (size_t p = 0; p < ios_.size(); ++p) {
      PortQueueIo& io = *ios_[p];
      net::Interface& iface = *interfaces_[p];
      const uint16_t n = io.receive(burst, kBurstSize);
      work += n;
      FaultInjector* faults = rx_faults_[p].get();
      for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = burst[i];
        if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(burst[i + 1], void*));
        const net::Frame frame = PortQueueIo::frame_of(m);
        if (m->nb_segs != 1) {
          counters_.rx_frames.add();
          counters_.rx_bytes.add(m->pkt_len);
          iface.drop(frame, net::DropReason::rx_multi_segment);
          continue;
        }
        if (faults != nullptr) {
          faults->push(frame, now, [&](const net::Frame& f) { iface.input(f, now); });
        } else {
          iface.input(frame, now);
        }
      }
      if (FaultInjector* faults = rx_faults_[p].get()) {
        faults->release_due(now, [&](const net::Frame& f) { iface.input(f, now); });
        if (faults->held() != 0) ++work;  // keep polling: held frames come due soon
      }
      if (FaultInjectingIo* tx = tx_faults_[p].get()) {
        tx->advance(now);
        if (tx->injector().held() != 0) ++work;
      }
    }
    if (!rte_ring_empty(packet_inbox_.get())) work += receive_dispatched(now);
    tcp_->poll(now);
    for (auto& service : services_) work += service->poll(*tcp_, now);
    if (!rte_ring_empty(inbox_.get())) {
      receive_from_peers(now);
      ++work;
    }
    if (begin >= next_tick) {
      for (auto& iface : interfaces_) iface->tick(now);
      next_tick = begin + tick_cycles;
    }
    for (auto& io : ios_) io->flush();
    serve_requests(now);
    // Between iterations the worker holds no Policy pointer (policy.h);
    // reported before any idle sleep, so a commit never waits on a sleeper.
    if (policy != nullptr) policy->quiescent(index_);

    tsc = rte_get_tsc_cycles();
    load_.iterations.add();
    if (work != 0) {
      load_.busy_cycles.add(tsc - begin);
      load_.busy_iterations.add();
    }
    switch (backoff.after_poll(work != 0)) {
      case IdleBackoff::Action::poll:
        break;
      case IdleBackoff::Action::pause:
        rte_pause();
        break;
      case IdleBackoff::Action::sleep:
        load_.sleeps.add();
        rte_delay_us_sleep(backoff.next_sleep_us());
        break;
    }
    if (work == 0) {
      tsc = rte_get_tsc_cycles();
      load_.idle_cycles.add(tsc - begin);
    }
  }
  for (auto& tx : tx_faults_) {
    if (tx) tx->flush();
  }
  for (auto& io : ios_) io->flush();
  if (policy != nullptr) policy->offline(index_);
  return 0;
}

}  // namespace mtlsgw::dataplane
