#pragma once
// RFC 862 echo over the worker's TCP.

#include "dataplane/net/tcp_stack.h"

namespace mtlsgw::services {

class Echo final : public net::tcp::TcpApp {
 public:
  void on_accepted(net::tcp::TcpStack&, net::tcp::ConnHandle, const net::tcp::FourTuple&) noexcept override;
  void on_readable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_writable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_peer_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_closed(net::tcp::TcpStack&, net::tcp::ConnHandle, net::tcp::CloseReason) noexcept override;

 private:
  // The connection's user pointer marks "peer closed": shut down once the
  // last byte is echoed.
  void pump(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept;
};

}  // namespace mtlsgw::services
