#pragma once
// A plain TCP relay: every accepted client gets its own connection to the
// upstream, and bytes are spliced both ways with back-pressure (a side reads
// only what the other side's send buffer takes). A FIN is carried across
// once the data before it has been handed over; a reset, a timeout or a
// refused upstream resets the other side.

#include <vector>

#include "dataplane/net/tcp_stack.h"

namespace mtlsgw::net {
class Interface;
}

namespace mtlsgw::services {

class Relay final : public net::tcp::TcpApp {
 public:
  Relay(net::Interface& interface, net::Ipv4Address upstream_ip, uint16_t upstream_port,
        uint32_t max_pairs);

  void on_accepted(net::tcp::TcpStack& stack, net::tcp::ConnHandle h, const net::tcp::FourTuple&) noexcept override;
  void on_connected(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_readable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_writable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_peer_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h, net::tcp::CloseReason reason) noexcept override;

  uint32_t active_pairs() const noexcept { return active_; }

 private:
  struct Side {
    net::tcp::ConnHandle handle;
    bool eof = false;       // peer sent FIN
    bool shut = false;      // we sent FIN towards this side
    bool closed = false;    // connection gone
  };
  struct Pair {
    Side client;
    Side upstream;
    bool in_use = false;
  };

  Pair* pair_of(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept;
  // Moves what `from` has received into `to`'s send buffer.
  void splice(net::tcp::TcpStack& stack, Side& from, Side& to) noexcept;
  void release(Pair& pair) noexcept;

  net::Interface& interface_;
  net::Ipv4Address upstream_ip_;
  uint16_t upstream_port_;
  std::vector<Pair> pairs_;
  std::vector<uint32_t> free_;
  uint32_t active_ = 0;
};

}  // namespace mtlsgw::services
