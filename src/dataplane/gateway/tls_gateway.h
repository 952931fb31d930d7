#pragma once
// The "tls" listener service: the product's data path on one worker.
//
//   client --TCP--> TlsSession (handshake, client certificate verified per
//   host) --> upstream connection (our TCP, active open) --> origin
//
// Each accepted client gets a Session from a fixed array: its TlsSession, the
// verdict on its certificate, its identity, and later its upstream
// connection. The upstream is opened only after the handshake succeeded (a
// refused client costs the origin nothing) to the route of the host its SNI
// chose. Bytes then move both ways with back-pressure and no buffer of ours
// in `tcp` and `proxy_v2` modes: client ciphertext is decrypted only as far
// as the upstream's send buffer has room (TcpStack::reserve_send), and origin
// bytes are encrypted straight from the upstream's receive buffer into the
// client's send buffer (TlsSession::send), consumed as they are taken.
// `http` mode runs every byte through an HttpExchange (forward/http_exchange.h),
// which rewrites request heads and may answer locally.
//
// Endings are carried across (issue 4): close_notify or FIN from the client
// half-closes the upstream; the origin's FIN becomes close_notify + FIN to the
// client once its data is through; a reset on either side resets the other,
// so that a truncated stream never looks complete. An upstream that refuses
// or does not answer gives the client a clean close (http: 502 / 504).
// Timeouts: handshake, upstream connect and idle, per host.
//
// Everything here is run to completion on the worker; no allocation on the
// packet path (sessions, timers and buffers are made at construction; OpenSSL
// allocates inside handshakes whatever we do, see tls_session.h).

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/forward/http_exchange.h"
#include "dataplane/gateway/access_record.h"
#include "dataplane/gateway/gateway_counters.h"
#include "dataplane/gateway/gateway_tables.h"
#include "dataplane/gateway/policy.h"
#include "dataplane/net/tcp_stack.h"
#include "dataplane/timer_wheel.h"
#include "dataplane/tls/client_identity.h"
#include "dataplane/tls/client_verify.h"
#include "dataplane/tls/revocation_set.h"
#include "dataplane/tls/verdict_cache.h"
#include "rules/rule_input.h"
#include "rules/rule_eval.h"
#include "rules/rule_table.h"
#include "dataplane/tls/ssl_pool.h"
#include "dataplane/tls/tls_session.h"

namespace mtlsgw::net {
class Interface;
}

namespace mtlsgw::gateway {

class AccessLogQueue;
struct HttpSlot;

struct GatewayLimits {
  uint32_t max_sessions = 4096;  // each holds a client and an upstream TCB
  uint32_t ssl_pool_idle = 256;  // SSL objects kept for reuse
  uint32_t http_exchanges = 1024;  // concurrent `http` connections (each ~48 KiB, touched on use)
  // After an idle timeout's close_notify and FIN, how long the peers get to
  // finish before both are reset.
  uint32_t closing_grace_ms = 5'000;
  // Per-host counter slots (host_slots.h): hosts the gateway can count
  // separately over its life, including hosts added later.
  uint32_t host_slots = 1024;
};

class TlsGateway final : public net::tcp::TcpApp {
 public:
  // interfaces: the worker's; an upstream connection leaves from the one
  // that has the origin on-link, else from the first (through its gateway).
  TlsGateway(net::tcp::TcpStack& stack, std::vector<net::Interface*> interfaces,
             std::unique_ptr<GatewayTables> tables, const GatewayLimits& limits, uint16_t listener_port);
  ~TlsGateway() override;
  TlsGateway(const TlsGateway&) = delete;
  TlsGateway& operator=(const TlsGateway&) = delete;

  void on_accepted(net::tcp::TcpStack& stack, net::tcp::ConnHandle h, const net::tcp::FourTuple& tuple) noexcept override;
  void on_connected(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_readable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_writable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_peer_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override;
  void on_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h, net::tcp::CloseReason reason) noexcept override;
  uint32_t poll(net::tcp::TcpStack& stack, uint64_t now_us) noexcept override;

  // Where finished connections' records go (null: no access log). Set
  // before the worker runs.
  void set_access_log(AccessLogQueue* queue) noexcept { access_log_ = queue; }
  // The operator's revocations and rules (policy.h); null: none. Set before
  // the worker runs; the worker reports its quiescent states.
  void set_policy(const PolicyCell* policy) noexcept { policy_ = policy; }
  // Names of the rule-hit counter slots (the control side assigns them to
  // Policy::rule_slots); null: rule hits are not counted per rule.
  void set_rule_slots(std::shared_ptr<const HostSlots> slots) noexcept;
  // Hits per rule slot (a `log` match, or the rule that decided), and the
  // slots' names; any thread may ask.
  uint64_t rule_hits(uint32_t slot) const noexcept {
    return slot < rule_slot_count_ ? rule_hits_[slot].get() : 0;
  }
  std::vector<std::string> rule_slot_names() const { return rule_names_ ? rule_names_->names() : std::vector<std::string>{}; }
  // The verdict cache all workers share (verdict_cache.h); null: none.
  void set_verdict_cache(tls::VerdictCache* cache) noexcept { verdict_cache_ = cache; }

  const GatewayCounters& counters() const noexcept { return counters_; }
  // Per host, by counter slot; the names of the slots come from
  // host_slot_names() (any thread may ask both).
  const HostCounterTable& host_counters() const noexcept { return host_counters_; }
  std::vector<std::string> host_slot_names() const { return host_slots_->names(); }

  // Control thread: hands new tables to the worker, which adopts them at
  // its next poll; connections already open keep theirs. Tables published
  // twice before the worker looked are never seen by it and freed here.
  // False when they need more counter slots than the gateway has (the
  // caller sized HostSlots to GatewayLimits::host_slots, so: a bug).
  bool publish(std::unique_ptr<GatewayTables> tables) noexcept;
  // Control thread: frees the tables the worker no longer uses (superseded,
  // and their last connection gone); returns how many.
  uint32_t free_retired() noexcept;
  // Any thread: the generation of the tables new connections get, once the
  // worker has adopted them (0 before it runs).
  uint64_t tables_generation() const noexcept { return adopted_generation_.load(std::memory_order_acquire); }
  // Worker thread: the tables new connections start on.
  const GatewayTables& tables() const noexcept { return *tables_; }
  uint16_t listener_port() const noexcept { return listener_port_; }

  // Memory, for /mtlsgw/memory: a session slot and an `http` slot in bytes,
  // and what the gateway reserved at construction (slots, scratch), which
  // is backed by pages only as slots are first used.
  static size_t session_bytes() noexcept;
  static size_t http_slot_bytes() noexcept;
  size_t reserved_bytes() const noexcept;
  // OpenSSL heap held by the SSL free list (idle objects at their size as
  // made), which is not a connection's: any thread may ask.
  uint64_t pooled_ssl_bytes() const noexcept;

 private:
  // refused: the handshake failed; its alert and FIN are on their way out.
  enum class Phase : uint8_t { free, handshaking, refused, connecting, forwarding };
  enum class UpstreamFailure : uint8_t { refused, unreachable, reset, timed_out };
  enum class Deadline : uint8_t { none, handshake, connect, idle, closing };

  struct Session {
    TlsGateway* owner = nullptr;
    net::tcp::ConnHandle client;
    net::tcp::ConnHandle upstream;
    net::tcp::FourTuple tuple;  // the client's connection
    Phase phase = Phase::free;
    Deadline deadline = Deadline::none;
    uint32_t host = tls::TlsContexts::kNoHost;  // in tables
    GatewayTables* tables = nullptr;  // the worker's current ones at accept
    bool client_gone = false;    // no client TCB any more
    bool upstream_opened = false;
    bool upstream_gone = false;  // opened and no TCB any more
    bool client_fin = false;     // the client's TCP FIN arrived
    bool client_eof = false;     // no more plaintext will come from the client
    bool upstream_fin = false;   // the origin's TCP FIN arrived
    bool upstream_shut = false;  // our FIN towards the origin is queued
    bool closing_client = false; // close_notify (then FIN) owed to the client
    bool client_shut = false;    // our FIN towards the client is queued
    bool reaping = false;
    bool verdict_known = false;  // verify.verdict is this connection's (for the log)
    // Rules (tls_gateway_policy.cc): where the request phase goes on from,
    // for the policy that ran the connection phase.
    uint32_t rules_resume = 0;
    uint64_t rules_generation = 0;
    ConnectionEnd end = ConnectionEnd::closed;
    uint64_t start_us = 0;
    uint64_t last_active_us = 0;
    uint64_t bytes_from_client = 0;  // plaintext, after decryption
    uint64_t bytes_to_client = 0;    // plaintext, before encryption
    uint64_t bytes_to_upstream = 0;
    uint64_t bytes_from_upstream = 0;
    HttpSlot* http = nullptr;
    // Quiet for a while: record buffers and the http slot given back
    // (rest_idle_sessions); the exchange's counts wait in http_tally.
    bool resting = false;
    bool http_parked = false;
    forward::http::HttpExchange::Tally http_tally;
    dataplane::TimerNode timer;
    tls::TlsSession tls;
    tls::HandshakeVerify verify;
    tls::ClientIdentity identity;
  };

  // Sessions are released only when the outermost callback returns: a call
  // into the stack (consume, close) may report on_closed from inside.
  struct Reentry;

  Session* session_of(net::tcp::ConnHandle h) noexcept;
  bool is_client(const Session& s, net::tcp::ConnHandle h) const noexcept { return h == s.client; }

  void pump_client(Session& s) noexcept;    // client ciphertext: handshake, then towards the origin
  void pump_upstream(Session& s) noexcept;  // origin bytes towards the client
  void drive_handshake(Session& s) noexcept;
  void forward_from_client(Session& s) noexcept;
  void client_input_ended(Session& s) noexcept;
  void handshake_done(Session& s) noexcept;
  void handshake_failed(Session& s) noexcept;
  void open_upstream(Session& s) noexcept;
  void upstream_ready(Session& s) noexcept;
  void upstream_failed(Session& s, UpstreamFailure why) noexcept;
  void close_client(Session& s) noexcept;  // close_notify, then FIN once it is out
  // The gateway ends a connection on its own (idle, revoked, blocked): the
  // origin's side shut (when `upstream_too`), close_notify and FIN to the
  // client, and both reset if they have not finished after the grace.
  void end_by_gateway(Session& s, ConnectionEnd end, bool upstream_too) noexcept;
  void return_ssl(const Session& s, SSL* ssl) noexcept;
  void continue_client_close(Session& s) noexcept;
  void shut_upstream(Session& s) noexcept;
  void reset_both(Session& s) noexcept;
  void set_deadline(Session& s, Deadline kind, uint64_t at_us) noexcept;
  void on_deadline(Session& s, uint64_t now_us) noexcept;
  void mark_done_if_over(Session& s) noexcept;
  void release(Session& s) noexcept;
  void write_access_record(const Session& s) noexcept;
  struct HttpSinks;
  void apply_http(Session& s) noexcept;
  void http_client_writable(Session& s) noexcept;
  void http_origin_writable(Session& s) noexcept;
  void http_origin_failed(Session& s, UpstreamFailure why, bool before_data) noexcept;
  HttpSlot* take_http_slot(Session& s) noexcept;
  bool unpark_http(Session& s) noexcept;
  uint32_t rest_idle_sessions(uint64_t now_us) noexcept;
  void adopt_pending_tables() noexcept;
  net::Interface& egress_for(net::Ipv4Address origin) const noexcept;
  void drop_table_user(GatewayTables* tables) noexcept;
  void retire_to_control(GatewayTables* tables) noexcept;
  void provide_http_slots() noexcept;
  // Policy (tls_gateway_policy.cc).
  void adopt_policy(const Policy& policy) noexcept;
  bool client_revoked(const Session& s, const tls::RevocationSet& revocations) noexcept;
  void close_revoked_sessions(const tls::RevocationSet& revocations) noexcept;
  const tls::RevocationSet* revocations() const noexcept;
  void fill_rule_input(const Session& s, rules::RuleInput& input) noexcept;
  bool admit_connection(Session& s) noexcept;  // false: a rule blocked it, and it is being closed
  static bool admit_request(void* session, const forward::http::RequestHead& head) noexcept;
  void count_rule_verdict(const Policy& policy, const rules::Verdict& verdict) noexcept;
  // Wall-clock time from the stack's monotonic clock: no clock call per
  // segment (logs and the HTTP Date field need seconds; the TSC the stack
  // runs on drifts from the wall clock by ppm, well under that).
  int64_t unix_us(uint64_t stack_us) const noexcept { return static_cast<int64_t>(stack_us) + unix_offset_us_; }
  int64_t now_epoch() const noexcept { return unix_us(stack_.now_us()) / 1'000'000; }

  static uint32_t client_sink_send(void* context, const uint8_t* data, uint32_t len) noexcept;
  static uint32_t client_sink_space(void* context) noexcept;

  net::tcp::TcpStack& stack_;
  std::vector<net::Interface*> egress_;
  std::unique_ptr<GatewayTables> tables_;
  GatewayLimits limits_;
  uint16_t listener_port_;
  uint32_t max_handshake_timeout_us_ = 0;
  // Publication (publish()): the control thread's next tables; the worker's
  // superseded ones that connections still use (linked through
  // GatewayTables::retired_next); and those whose last user left, for the
  // control thread to free (a lock-free stack: pushed here, taken whole
  // there).
  std::atomic<GatewayTables*> pending_{nullptr};
  GatewayTables* superseded_ = nullptr;
  std::atomic<GatewayTables*> retired_{nullptr};
  std::atomic<uint64_t> adopted_generation_{0};
  std::shared_ptr<const HostSlots> host_slots_;
  int64_t unix_offset_us_ = 0;  // wall clock minus the stack's clock
  std::unique_ptr<tls::SslPool> ssl_pool_;
  std::unique_ptr<Session[]> sessions_;
  std::vector<uint32_t> free_;
  std::vector<Session*> reap_;
  std::unique_ptr<HttpSlot[]> http_slots_;
  std::vector<HttpSlot*> free_http_;
  dataplane::TimerWheel timers_;
  uint64_t next_rest_sweep_us_ = 0;
  std::unique_ptr<uint8_t[]> scratch_;  // decrypted plaintext; PROXY v2 headers
  // The worker's record layer for offloaded sessions (tls_session.h): its
  // own IPsec-MB manager and one record of scratch. No manager (allocation
  // or CPU feature failure): every connection stays on OpenSSL.
  ImbMgrHandle imb_mgr_;
  std::unique_ptr<uint8_t[]> record_scratch_;
  tls::RecordOffload record_offload_;
  uint32_t depth_ = 0;
  AccessLogQueue* access_log_ = nullptr;
  const PolicyCell* policy_ = nullptr;
  uint64_t policy_seen_ = 0;               // generation of the last policy acted on
  uint64_t revocations_seen_ = 0;          // RevocationSet::generation() of it, 0: none
  tls::VerdictCache* verdict_cache_ = nullptr;
  std::unique_ptr<tls::CertificateHasher> hasher_;
  X509StoreCtxHandle issuer_lookup_;  // reused: init and cleanup per lookup
  std::unique_ptr<rules::EvalScratch> rule_scratch_;
  std::shared_ptr<const HostSlots> rule_names_;
  std::unique_ptr<Counter[]> rule_hits_;
  uint32_t rule_slot_count_ = 0;
  std::array<std::string_view, tls::ClientIdentity::kMaxSanEntries> san_dns_view_{};
  std::array<std::string_view, tls::ClientIdentity::kMaxSanEntries> san_uri_view_{};
  GatewayCounters counters_;
  HostCounterTable host_counters_;
};

}  // namespace mtlsgw::gateway
