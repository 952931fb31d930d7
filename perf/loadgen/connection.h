#pragma once
// One client connection's life, driven by io_uring completions: connect,
// TLS handshake, requests one at a time, then the close. What it counts
// goes to RunStats; when it is over and none of its operations is still in
// the kernel, it tells its host that the slot is free.
//
//   kConnecting -> kHandshaking -> kExchanging -> kDraining -> kClosing -> kIdle
//                     (any failure, or the run's end: -> kClosing)
//   idle kind:  kExchanging -> kHolding (after its one keep-alive response;
//                     it sends nothing more, and the server closing it is a failure)
//
// The server closes first: the last request carries Connection: close, and
// kDraining answers the server's close_notify with ours and waits for the
// server's FIN. A client that closes first keeps
// each connection's port in TIME-WAIT for 60 s (Linux), which caps a client
// address at about 28,000 / 60 = 470 connections per second with the
// default ephemeral port range; the server's TIME-WAIT costs no port.

#include <cstdint>
#include <string>
#include <vector>

#include "http_exchange.h"
#include "options.h"
#include "run_stats.h"
#include "tls_client.h"
#include "uring.h"

namespace mtlsgw::loadgen {

class ConnectionHost {
 public:
  // May one more request start? (false once --count requests are claimed.)
  virtual bool claim_request() = 0;
  virtual void slot_free(uint32_t slot) = 0;

 protected:
  ~ConnectionHost() = default;
};

// What all connections share.
struct LoadContext {
  const Options& options;
  const RequestSet& requests;
  Ring& ring;
  ClientTlsContext& tls;
  RunStats& stats;
  ConnectionHost& host;
  std::vector<uint8_t>& plaintext;  // scratch for SSL_read (one thread)
  unsigned requests_per_connection[kKinds];  // 0: no limit
};

class Connection {
 public:
  enum class Phase : uint8_t {
    kIdle,
    kConnecting,
    kHandshaking,
    kExchanging,
    kDraining,
    kClosing,
    kHolding,
  };

  Connection(LoadContext& context, uint32_t slot);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // false: the connection could not even be set up (counted as a failure).
  bool start(Kind kind, uint64_t now_ns);
  void on_completion(Op op, int result, uint64_t now_ns);
  // A failure when nothing moved for timeout_ns.
  void check_timeout(uint64_t now_ns, uint64_t timeout_ns);
  // The run is over: close without counting anything more.
  void abandon();

  Phase phase() const { return phase_; }

 private:
  void on_connect(int result, uint64_t now);
  void on_recv(int result, uint64_t now);
  void on_send(int result, uint64_t now);
  void advance(uint64_t now);
  void read_responses(uint64_t now);
  void on_response(uint64_t now);
  void on_stream_end(uint64_t now, bool tcp_end);
  void end_cleanly(uint64_t now);
  bool begin_request(uint64_t now);
  void pump_body();
  void flush();
  void submit_recv();
  void fail(const std::string& kind, const std::string& detail = {});
  void close();
  void release_when_quiet();

  LoadContext& ctx_;
  const uint32_t slot_;
  Phase phase_ = Phase::kIdle;
  Kind kind_ = Kind::kHandshake;
  int fd_ = -1;
  bool connect_pending_ = false;
  bool recv_pending_ = false;
  bool send_pending_ = false;
  unsigned cancels_pending_ = 0;

  TlsStream tls_;
  ResponseReader response_;
  std::vector<uint8_t> recv_buffer_;
  std::vector<uint8_t> sending_;  // in the kernel's hands while send_pending_
  std::vector<uint8_t> queued_;   // ciphertext waiting for the send in flight
  size_t sent_ = 0;

  uint64_t started_ns_ = 0;
  uint64_t handshake_ns_ = 0;
  uint64_t request_ns_ = 0;
  uint64_t last_progress_ns_ = 0;
  bool offered_session_ = false;
  unsigned requests_done_ = 0;
  bool last_request_ = false;  // the request in flight says Connection: close
  uint64_t body_left_ = 0;
  uint64_t body_bytes_ = 0;    // of the request in flight
  bool next_bulk_up_ = false;  // bulk both ways: alternate POST and GET
  bool close_notify_sent_ = false;
  bool peer_fin_ = false;
};

}  // namespace mtlsgw::loadgen
