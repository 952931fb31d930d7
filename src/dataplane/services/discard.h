#pragma once
// RFC 863 discard, and RFC 864 chargen, over the worker's TCP.

#include "dataplane/net/tcp_stack.h"

namespace mtlsgw::services {

class Discard final : public net::tcp::TcpApp {
 public:
  void on_accepted(net::tcp::TcpStack&, net::tcp::ConnHandle, const net::tcp::FourTuple&) noexcept override {}
  void on_readable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override {
    stack.consume(h, stack.readable(h));
  }
  void on_peer_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override {
    stack.shutdown(h);
  }
  void on_closed(net::tcp::TcpStack&, net::tcp::ConnHandle, net::tcp::CloseReason) noexcept override {}
};

class Chargen final : public net::tcp::TcpApp {
 public:
  Chargen();
  void on_accepted(net::tcp::TcpStack& stack, net::tcp::ConnHandle h, const net::tcp::FourTuple&) noexcept override;
  void on_readable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_writable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_peer_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_closed(net::tcp::TcpStack&, net::tcp::ConnHandle, net::tcp::CloseReason) noexcept override {}

 private:
  void fill(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept;
  // RFC 864's 72-character lines over the 95 printable characters, laid
  // out once: line k starts at character k of the ring.
  static constexpr uint32_t kLine = 74;  // 72 characters + CR LF
  static constexpr uint32_t kLines = 95;
  uint8_t pattern_[kLine * kLines];
};

}  // namespace mtlsgw::services
