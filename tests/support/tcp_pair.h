#pragma once
// Two TCP stacks wired back to back in one process, without EAL: each side
// is a real Interface + TcpStack; frames cross a fake link that may pass
// through a FaultInjector. Time is simulated, so retransmission timeouts,
// delayed ACKs and TIME-WAIT run in microseconds of real time.

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/fault_injector.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/tcp_stack.h"
#include "heap_frame_io.h"
#include "packet_builder.h"

namespace mtlsgw::testing {

// One end of the link: buffers from a shared pool; sent frames wait in an
// outbox until the harness carries them across.
class LinkEnd final : public net::FrameIo {
 public:
  explicit LinkEnd(HeapFrameIo& pool) : pool_(pool) {}
  bool alloc(net::Frame& out) noexcept override { return pool_.alloc(out); }
  void release(const net::Frame& frame) noexcept override { pool_.release(frame); }
  void send(const net::Frame& frame) noexcept override { outbox.push_back(frame); }
  std::deque<net::Frame> outbox;

 private:
  HeapFrameIo& pool_;
};

// Records what the stack tells an application and keeps what it reads.
struct RecordingApp : net::tcp::TcpApp {
  struct Conn {
    net::tcp::ConnHandle handle;
    std::string received;
    bool peer_closed = false;
    bool closed = false;
    net::tcp::CloseReason reason = net::tcp::CloseReason::closed;
    bool connected = false;
  };
  std::vector<Conn> conns;
  bool auto_read = true;
  bool echo = false;

  Conn* find(net::tcp::ConnHandle h) {
    for (auto& c : conns) {
      if (c.handle == h) return &c;
    }
    return nullptr;
  }
  Conn& add(net::tcp::ConnHandle h) {
    conns.push_back(Conn{h});
    return conns.back();
  }
  void on_accepted(net::tcp::TcpStack&, net::tcp::ConnHandle h, const net::tcp::FourTuple&) noexcept override {
    add(h).connected = true;
  }
  void on_connected(net::tcp::TcpStack&, net::tcp::ConnHandle h) noexcept override {
    Conn* c = find(h);
    if (c == nullptr) c = &add(h);
    c->connected = true;
  }
  void on_readable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override {
    if (!auto_read) return;
    Conn* c = find(h);
    uint8_t buf[4096];
    for (;;) {
      // An echo reads no more than it can send: back-pressure, not loss.
      const uint32_t room = echo ? std::min<uint32_t>(stack.send_space(h), sizeof buf) : sizeof buf;
      if (room == 0) break;
      const uint32_t n = stack.read(h, buf, room);
      if (n == 0) break;
      if (c != nullptr) c->received.append(reinterpret_cast<char*>(buf), n);
      if (echo) stack.send(h, buf, n);
    }
    if (echo && c != nullptr && c->peer_closed && stack.readable(h) == 0) stack.shutdown(h);
  }
  void on_writable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override {
    on_readable(stack, h);
  }
  void on_peer_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override {
    if (Conn* c = find(h)) c->peer_closed = true;
    if (echo && stack.readable(h) == 0) stack.shutdown(h);
  }
  void on_closed(net::tcp::TcpStack&, net::tcp::ConnHandle h, net::tcp::CloseReason reason) noexcept override {
    if (Conn* c = find(h)) {
      c->closed = true;
      c->reason = reason;
    }
  }
};

class TcpPair {
 public:
  struct Side {
    std::unique_ptr<LinkEnd> link;
    std::unique_ptr<dataplane::FaultInjector> faults;  // on this side's transmit
    net::StackCounters counters;
    std::unique_ptr<net::Interface> iface;
    std::unique_ptr<net::tcp::TcpStack> tcp;
  };

  explicit TcpPair(const net::tcp::TcpConfig& config = small_config(), size_t pool = 8192)
      : pool_(pool, false) {
    init(a, mac({2, 0, 0xc6, 0x12, 0, 2}), ip(198, 18, 0, 2), config, SipKey{1, 2});
    init(b, mac({2, 0, 0xc6, 0x12, 0, 1}), ip(198, 18, 0, 1), config, SipKey{3, 4});
  }
  ~TcpPair() {
    // Stacks release frames into the pool: drop in-flight frames first.
    for (Side* s : {&a, &b}) {
      if (s->faults) s->faults->drain();
      for (const auto& f : s->link->outbox) pool_.release(f);
      s->link->outbox.clear();
    }
  }

  static net::tcp::TcpConfig small_config() {
    net::tcp::TcpConfig c;
    c.max_connections = 256;
    c.max_half_open = 64;
    c.buffer_size = 64 * 1024;
    c.buffer_pool = 256;
    c.time_wait_us = 2'000'000;
    return c;
  }

  void set_faults(Side& side, const dataplane::FaultSpec& spec, uint64_t seed) {
    side.faults = std::make_unique<dataplane::FaultInjector>(spec, seed, *side.link);
  }

  // One step of simulated time: carry frames both ways, run timers.
  void step(uint64_t dt_us = 50) {
    now_us += dt_us;
    for (int round = 0; round < 4; ++round) {
      carry(a, b);
      carry(b, a);
    }
    a.tcp->poll(now_us);
    b.tcp->poll(now_us);
    a.iface->tick(now_us);
    b.iface->tick(now_us);
  }

  template <typename Pred>
  bool run_until(Pred&& done, uint64_t max_us = 30'000'000, uint64_t dt_us = 50) {
    const uint64_t end = now_us + max_us;
    while (now_us < end) {
      if (done()) return true;
      step(dt_us);
    }
    return done();
  }
  void run_for(uint64_t us, uint64_t dt_us = 50) {
    const uint64_t end = now_us + us;
    while (now_us < end) step(dt_us);
  }

  Side a, b;
  uint64_t now_us = 1'000'000;
  uint64_t frames_carried = 0;
  HeapFrameIo& pool() { return pool_; }

 private:
  void init(Side& s, const rte_ether_addr& m, uint32_t address, const net::tcp::TcpConfig& config,
            const SipKey& key) {
    s.link = std::make_unique<LinkEnd>(pool_);
    net::InterfaceConfig ic;
    ic.mac = m;
    ic.address = net::Ipv4Prefix{address, 24};
    s.iface = std::make_unique<net::Interface>(ic, *s.link, s.counters);
    s.tcp = std::make_unique<net::tcp::TcpStack>(config, key, now_us);
    s.iface->set_tcp(s.tcp.get());
  }

  void carry(Side& from, Side& to) {
    auto deliver = [&](const net::Frame& f) {
      ++frames_carried;
      to.iface->input(f, now_us);
    };
    if (from.faults) from.faults->release_due(now_us, deliver);
    while (!from.link->outbox.empty()) {
      net::Frame f = from.link->outbox.front();
      from.link->outbox.pop_front();
      if (from.faults) {
        from.faults->push(f, now_us, deliver);
      } else {
        deliver(f);
      }
    }
  }

  HeapFrameIo pool_;
};

}  // namespace mtlsgw::testing
