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

}  // namespace

Worker::Worker(unsigned index, unsigned lcore, const std::vector<PortBinding>& ports,
               const WorkerSettings& settings, const std::atomic<bool>& stop)
    : index_(index), lcore_(lcore), settings_(settings), stop_(stop) {
  for (const PortBinding& binding : ports) {
    ios_.push_back(std::make_unique<PortQueueIo>(binding.port->id(), static_cast<uint16_t>(index),
                                                 binding.port->pool(), counters_));
    interfaces_.push_back(
        std::make_unique<net::Interface>(binding.interface, *ios_.back(), counters_));
    interfaces_.back()->set_neighbor_listener(this);
  }
  // Many producers (the peers), one consumer (this worker).
  inbox_.reset(rte_ring_create_elem(fmt::format("w{}_inbox", index).c_str(),
                                    sizeof(NeighborMessage), kInboxSize, SOCKET_ID_ANY,
                                    RING_F_SC_DEQ));
  if (!inbox_) throw std::runtime_error(fmt::format("worker {}: cannot create inbox ring", index));
  tsc_start_ = rte_get_tsc_cycles();
  us_per_tsc_ = 1e6 / static_cast<double>(rte_get_tsc_hz());
}

Worker::~Worker() {
  // Interfaces release held frames through their io, so they go first.
  interfaces_.clear();
  ios_.clear();
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
        iface.input(frame, now);
      }
    }
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
  for (auto& io : ios_) io->flush();
  return 0;
}

}  // namespace mtlsgw::dataplane
