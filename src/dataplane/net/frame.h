#pragma once
// A frame as the protocol layers see it, and the port queue they send through.
//
// The layers never touch rte_mbuf directly: a worker turns each received mbuf
// into a Frame (a view plus an opaque handle) and hands it down. This keeps the
// whole stack testable without EAL (tests/dataplane/net use a heap-backed
// FrameIo) while the DPDK implementation (dataplane/port_io.cc) maps handle
// back to the mbuf with no copy.

#include <cstdint>

namespace mtlsgw::net {

struct Frame {
  uint8_t* data = nullptr;  // first byte of the Ethernet header
  uint16_t len = 0;         // bytes from data
  uint16_t headroom = 0;    // writable bytes before data
  uint16_t tailroom = 0;    // writable bytes after data + len
  void* handle = nullptr;   // owner's buffer (rte_mbuf* in the dataplane)

  // Grows the frame at its end; false when the buffer has no room.
  bool append(uint16_t n) noexcept {
    if (n > tailroom) return false;
    len = static_cast<uint16_t>(len + n);
    tailroom = static_cast<uint16_t>(tailroom - n);
    return true;
  }
  // Cuts trailing bytes (Ethernet padding after an IP datagram).
  void trim_to(uint16_t new_len) noexcept {
    if (new_len >= len) return;
    tailroom = static_cast<uint16_t>(tailroom + (len - new_len));
    len = new_len;
  }
};

// One transmit queue of one port, owned by one worker. alloc/send/release are
// the only ways a layer obtains or gives up a buffer, so ownership is always
// explicit: every Frame a layer receives ends in exactly one send or release.
class FrameIo {
 public:
  virtual ~FrameIo() = default;
  // A fresh, empty frame (len 0) with headroom for later encapsulation.
  virtual bool alloc(Frame& out) noexcept = 0;
  // Queues the frame for transmission; the port flushes in bursts.
  virtual void send(const Frame& frame) noexcept = 0;
  virtual void release(const Frame& frame) noexcept = 0;
};

}  // namespace mtlsgw::net
