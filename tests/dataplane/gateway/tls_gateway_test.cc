// The TLS gateway service between two real stacks over a fake link, without
// EAL: side a (198.18.0.2) runs TlsGateway on port 443, side b (198.18.0.1)
// plays the TLS clients (an OpenSSL client whose ciphertext crosses b's TCP
// connection) and the origins the hosts forward to. Time is simulated; the
// gateway's own timers run from its poll(), as the worker loop calls it.
// Every case checks what each end received, how each connection ended, and
// what the gateway counted and logged.

#include "dataplane/gateway/tls_gateway.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <strings.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/forward/proxy_v2.h"
#include "dataplane/gateway/access_log_queue.h"
#include "dataplane/gateway/gateway_tables.h"
#include "dataplane/gateway/policy.h"
#include "dataplane/tls/revocation_set.h"
#include "dataplane/tls/trust_store.h"
#include "rules/rule_table.h"
#include "tcp_pair.h"
#include "test_pki.h"

namespace mtlsgw::testing {
namespace {

using gateway::ConnectionEnd;
using gateway::ForwardMode;
using net::tcp::CloseReason;
using net::tcp::ConnHandle;
using net::tcp::TcpStack;
using tls::VerifyReason;

constexpr uint16_t kGatewayPort = 443;
constexpr uint16_t kOriginPort = 9000;
constexpr uint16_t kClosedPort = 9999;  // nobody listens there
const uint32_t kGatewayIp = ip(198, 18, 0, 2);
const uint32_t kPeerIp = ip(198, 18, 0, 1);

constexpr size_t kMiB = 1024 * 1024;

// TLS AlertDescription values the client is expected to hear (RFC 8446 6.2).
constexpr int kAlertUnrecognizedName = 112;

// A stream no two connections share and in which a misplaced block shows.
std::string pattern(uint32_t stream, size_t len) {
  std::string s(len, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL * (stream + 1);
  for (size_t i = 0; i < len; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

std::string der_of(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  std::string out(reinterpret_cast<const char*>(der), len > 0 ? static_cast<size_t>(len) : 0);
  OPENSSL_free(der);
  return out;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Every value of header `name` (case-insensitive) in one request head.
std::vector<std::string> header_values(const std::string& head, const std::string& name) {
  std::vector<std::string> out;
  size_t at = head.find("\r\n");
  while (at != std::string::npos && at + 2 < head.size()) {
    const size_t start = at + 2;
    const size_t end = head.find("\r\n", start);
    if (end == std::string::npos || end == start) break;
    const std::string line = head.substr(start, end - start);
    const size_t colon = line.find(':');
    if (colon != std::string::npos && colon == name.size() &&
        strncasecmp(line.data(), name.data(), name.size()) == 0) {
      size_t v = colon + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      out.push_back(line.substr(v));
    }
    at = end;
  }
  return out;
}

size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// ---- The TLS client: an OpenSSL client SSL over memory BIOs whose ciphertext
// goes through one of side b's TCP connections. ----

struct ClientSpec {
  std::string sni = "api.example.test";
  std::string chain;  // PKI file sent as the certificate chain ("" : no certificate)
  std::string key;
  SSL_SESSION* session = nullptr;  // offered for resumption
  int version = TLS1_3_VERSION;    // the only version offered
  std::string ciphersuites;        // TLS 1.3 suites offered ("": OpenSSL's default)
};

class TlsClient final : public net::tcp::TcpApp {
 public:
  enum class Ending { none, close_notify_and_fin, fin_only };

  explicit TlsClient(const ClientSpec& spec) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* ctx = ctx_.get();
    SSL_CTX_set_min_proto_version(ctx, spec.version);
    SSL_CTX_set_max_proto_version(ctx, spec.version);
    if (!spec.ciphersuites.empty()) SSL_CTX_set_ciphersuites(ctx, spec.ciphersuites.c_str());
    EXPECT_EQ(SSL_CTX_load_verify_locations(ctx, test_pki_path("server-ca.pem").c_str(), nullptr), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    if (!spec.chain.empty()) {
      EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx, test_pki_path(spec.chain).c_str()), 1) << spec.chain;
      EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, test_pki_path(spec.key).c_str(), SSL_FILETYPE_PEM), 1) << spec.key;
    }
    ssl_.reset(SSL_new(ctx));
    SSL* ssl = ssl_.get();
    SSL_set_app_data(ssl, this);
    SSL_set_info_callback(ssl, on_info);
    from_gateway_ = BIO_new(BIO_s_mem());
    to_gateway_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, from_gateway_, to_gateway_);
    SSL_set_connect_state(ssl);
    if (!spec.sni.empty()) {
      SSL_set_tlsext_host_name(ssl, spec.sni.c_str());
      SSL_set1_host(ssl, spec.sni.c_str());
    }
    if (spec.session != nullptr) SSL_set_session(ssl, spec.session);
    ERR_clear_error();
  }
  // Freeing an SSL that did not finish with close_notify would mark its
  // session unresumable; the tests check the gateway, not this client.
  ~TlsClient() override { SSL_set_shutdown(ssl_.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  void connect(TcpStack& stack, net::Interface& iface) {
    stack_ = &stack;
    handle = stack.connect(iface, kGatewayIp, kGatewayPort, this, stack.now_us());
    ASSERT_TRUE(handle.valid());
    local_port = stack.tuple(handle)->local_port;
  }

  // Plaintext to send once the handshake is done, and how to end after it.
  void send(const std::string& bytes) {
    to_send += bytes;
    if (stack_ != nullptr) pump();
  }
  void end_with(Ending e) {
    ending = e;
    if (stack_ != nullptr) pump();
  }
  void abort() {
    if (closed) return;
    stack_->abort(handle);
  }

  // -- TcpApp --
  void on_accepted(TcpStack&, ConnHandle, const net::tcp::FourTuple&) noexcept override {}
  void on_connected(TcpStack&, ConnHandle) noexcept override {
    connected = true;
    pump();
  }
  void on_readable(TcpStack& stack, ConnHandle h) noexcept override {
    uint8_t buf[16384];
    while (const uint32_t n = stack.read(h, buf, sizeof buf)) BIO_write(from_gateway_, buf, static_cast<int>(n));
    pump();
  }
  void on_writable(TcpStack&, ConnHandle) noexcept override { pump(); }
  void on_peer_closed(TcpStack& stack, ConnHandle h) noexcept override {
    on_readable(stack, h);
    peer_fin = true;
    close_notify_before_fin = got_close_notify;
    pump();
  }
  void on_closed(TcpStack&, ConnHandle, CloseReason why) noexcept override {
    closed = true;
    reason = why;
  }

  // Handshake, then everything readable, then what is queued to send, then
  // the ending; ciphertext goes out as TCP takes it.
  void pump() {
    if (closed || stack_ == nullptr || !connected || silent) return;
    ERR_clear_error();
    SSL* ssl = ssl_.get();
    if (!handshake_done && !failed) {
      const int r = SSL_do_handshake(ssl);
      if (r == 1) {
        handshake_done = true;
      } else {
        const int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) failed = true;
      }
    }
    if (handshake_done && !failed) {
      char buf[16384];
      for (;;) {
        size_t n = 0;
        const int r = SSL_read_ex(ssl, buf, sizeof buf, &n);
        if (r == 1) {
          received.append(buf, n);
          continue;
        }
        const int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) {
          got_close_notify = true;
        } else if (e != SSL_ERROR_WANT_READ) {
          failed = true;
        }
        break;
      }
    }
    if (handshake_done && !failed && !close_notify_sent && !shut) {
      // Back-pressure: no more than a window's worth waits for TCP.
      while (written < to_send.size() && pending_.size() < 64 * 1024) {
        const size_t chunk = std::min<size_t>(to_send.size() - written, 16384);
        size_t n = 0;
        if (SSL_write_ex(ssl, to_send.data() + written, chunk, &n) != 1) {
          failed = true;
          break;
        }
        written += n;
      }
      const bool all_written = written == to_send.size();
      const bool answer = answer_close && (got_close_notify || peer_fin);
      if (all_written && (ending == Ending::close_notify_and_fin || answer)) {
        SSL_shutdown(ssl);
        close_notify_sent = true;
      } else if (all_written && ending == Ending::fin_only) {
        fin_wanted = true;
      }
    }
    if (failed && peer_fin) fin_wanted = true;  // the gateway ended it: let TCP end too
    flush();
    if ((close_notify_sent || fin_wanted) && pending_.empty() && !shut) {
      shut = true;
      stack_->shutdown(handle);
    }
    ERR_clear_error();
  }

  SSL_SESSION* last_session() const { return sessions_.empty() ? nullptr : sessions_.back().get(); }

  ConnHandle handle;
  uint16_t local_port = 0;
  bool silent = false;       // never starts the handshake
  bool answer_close = true;  // close_notify and FIN in answer to the gateway's
  Ending ending = Ending::none;
  std::string to_send;
  size_t written = 0;
  std::string received;
  bool connected = false;
  bool handshake_done = false;
  bool failed = false;
  int alert_received = -1;  // last alert other than close_notify
  bool got_close_notify = false;
  bool close_notify_sent = false;
  bool fin_wanted = false;
  bool shut = false;
  bool peer_fin = false;
  bool close_notify_before_fin = false;
  bool closed = false;
  CloseReason reason = CloseReason::closed;

 private:
  using SessionHandle = CHandle<SSL_SESSION, SSL_SESSION_free>;

  void flush() {
    char buf[16384];
    for (;;) {
      const int n = BIO_read(to_gateway_, buf, sizeof buf);
      if (n <= 0) break;
      pending_.append(buf, static_cast<size_t>(n));
    }
    while (!pending_.empty()) {
      const uint32_t n = stack_->send(handle, reinterpret_cast<const uint8_t*>(pending_.data()),
                                      static_cast<uint32_t>(std::min<size_t>(pending_.size(), UINT32_MAX)));
      if (n == 0) break;
      pending_.erase(0, n);
    }
  }

  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    static_cast<TlsClient*>(SSL_get_app_data(ssl))->sessions_.emplace_back(session);
    return 1;  // the client keeps the reference
  }
  static void on_info(const SSL* ssl, int where, int ret) {
    if ((where & SSL_CB_READ_ALERT) == 0 || (ret & 0xff) == SSL_AD_CLOSE_NOTIFY) return;
    static_cast<TlsClient*>(SSL_get_app_data(ssl))->alert_received = ret & 0xff;
  }

  TcpStack* stack_ = nullptr;
  SslCtxHandle ctx_;
  SslHandle ssl_;
  BIO* from_gateway_ = nullptr;  // owned by ssl_
  BIO* to_gateway_ = nullptr;
  std::string pending_;  // ciphertext TCP has not taken yet
  std::vector<SessionHandle> sessions_;
};

// ---- The origin: a listener on side b. ----

class Origin final : public net::tcp::TcpApp {
 public:
  enum class Mode {
    stream,  // sends its own stream of stream_bytes, reads everything, ends after the peer
    http,    // answers each request head (no bodies) with a 200 and a numbered body
  };
  struct Conn {
    ConnHandle handle;
    uint32_t index = 0;
    std::string to_send;
    size_t sent = 0;
    std::string received;
    size_t parsed = 0;  // http: received bytes already answered
    std::vector<std::string> request_heads;
    std::vector<std::string> request_bodies;
    bool peer_fin = false;
    bool shut = false;
    bool closed = false;
    CloseReason reason = CloseReason::closed;
  };

  Origin(Mode mode, size_t stream_bytes) : mode_(mode), stream_bytes_(stream_bytes) {}

  void on_accepted(TcpStack& stack, ConnHandle h, const net::tcp::FourTuple&) noexcept override {
    conns.push_back(std::make_unique<Conn>());
    Conn& c = *conns.back();
    c.handle = h;
    c.index = static_cast<uint32_t>(conns.size() - 1);
    if (mode_ == Mode::stream) c.to_send = pattern(1000 + c.index, stream_bytes_);
    stack.set_user(h, &c);
    pump(stack, c);
  }
  void on_readable(TcpStack& stack, ConnHandle h) noexcept override {
    Conn& c = *static_cast<Conn*>(stack.user(h));
    uint8_t buf[16384];
    while (const uint32_t n = stack.read(h, buf, sizeof buf)) c.received.append(reinterpret_cast<char*>(buf), n);
    if (mode_ == Mode::http) answer_requests(c);
    pump(stack, c);
  }
  void on_writable(TcpStack& stack, ConnHandle h) noexcept override { pump(stack, *static_cast<Conn*>(stack.user(h))); }
  void on_peer_closed(TcpStack& stack, ConnHandle h) noexcept override {
    // Taken first: when this side closed first, reading the last bytes can
    // end the connection (and clear its user pointer) inside on_readable.
    Conn* c = static_cast<Conn*>(stack.user(h));
    on_readable(stack, h);
    c->peer_fin = true;
    pump(stack, *c);
  }
  void on_closed(TcpStack&, ConnHandle h, CloseReason why) noexcept override {
    for (auto& c : conns) {
      if (c->handle == h) {
        c->closed = true;
        c->reason = why;
      }
    }
  }

  std::vector<std::unique_ptr<Conn>> conns;

 private:
  // Requests carry no body or a Content-Length one; each gets a 200 whose
  // body is "response #N", or with stream_bytes set, that many bytes of
  // pattern(2000 + N).
  void answer_requests(Conn& c) {
    for (;;) {
      const size_t end = c.received.find("\r\n\r\n", c.parsed);
      if (end == std::string::npos) return;
      const std::string head = c.received.substr(c.parsed, end + 4 - c.parsed);
      const auto length = header_values(head, "Content-Length");
      const size_t body_len = length.empty() ? 0 : std::stoul(length[0]);
      if (c.received.size() < end + 4 + body_len) return;
      c.request_heads.push_back(head);
      c.request_bodies.push_back(c.received.substr(end + 4, body_len));
      c.parsed = end + 4 + body_len;
      const uint32_t n = static_cast<uint32_t>(c.request_heads.size());
      const std::string body = stream_bytes_ > 0 ? pattern(2000 + n, stream_bytes_) : "response #" + std::to_string(n);
      c.to_send += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }
  }
  void pump(TcpStack& stack, Conn& c) {
    if (c.closed) return;
    while (c.sent < c.to_send.size()) {
      const uint32_t n = stack.send(c.handle, reinterpret_cast<const uint8_t*>(c.to_send.data()) + c.sent,
                                    static_cast<uint32_t>(c.to_send.size() - c.sent));
      if (n == 0) return;
      c.sent += n;
    }
    if (c.peer_fin && !c.shut) {
      c.shut = true;
      stack.shutdown(c.handle);
    }
  }

  Mode mode_;
  size_t stream_bytes_;
};

// ---- The rig: both stacks, the gateway's tables, its origins. ----

struct CaFiles {
  std::string cert;
  std::string crl;
};

struct HostDef {
  std::string name;
  std::string server_stem;  // PKI stem of the host's own certificate
  tls::MtlsMode mtls = tls::MtlsMode::required;
  std::vector<CaFiles> cas;
  int max_intermediates = 2;
  bool default_host = false;
  gateway::HostRoute route;
};

HostDef api_host(ForwardMode forward = ForwardMode::tcp, tls::MtlsMode mtls = tls::MtlsMode::required) {
  HostDef h;
  h.name = "api.example.test";
  h.server_stem = "server-api-ecdsa";
  h.mtls = mtls;
  h.cas = {{"devices-ca.pem", "devices.crl.pem"}};
  h.route.upstream_ip = kPeerIp;
  h.route.upstream_port = kOriginPort;
  h.route.forward = forward;
  h.route.handshake_timeout_ms = 2'000;
  h.route.idle_timeout_ms = 30'000;
  // Above the SYN's first retransmission (RFC 6298 2.1: 1 s), so that a
  // lossy link does not time the connect out.
  h.route.connect_timeout_ms = 3'000;
  return h;
}

net::tcp::TcpConfig rig_config() {
  net::tcp::TcpConfig c = TcpPair::small_config();
  // The real 2*MSL: a peer whose last ACK was lost retransmits its FIN after
  // its own backed-off RTO, which may outlast a short TIME-WAIT.
  c.time_wait_us = 60'000'000;
  return c;
}

class Rig {
 public:
  Rig(std::vector<HostDef> hosts, gateway::GatewayLimits limits = {}) : pair(rig_config()) {
    auto tables = build_tables(hosts, 1);
    if (tables == nullptr) return;
    std::vector<net::Interface*> egress(hosts.size(), pair.a.iface.get());
    gateway = std::make_unique<gateway::TlsGateway>(*pair.a.tcp, std::move(egress), std::move(tables), limits,
                                                    kGatewayPort);
    gateway->set_access_log(&log);
    EXPECT_TRUE(pair.a.tcp->listen(kGatewayPort, gateway.get()));
  }

  // Tables as the control side makes them: counter slots by name from the
  // rig's one HostSlots, so that publications keep counting per host.
  std::unique_ptr<gateway::GatewayTables> build_tables(const std::vector<HostDef>& hosts, uint64_t generation) {
    gateway::GatewaySpec spec;
    spec.generation = generation;
    spec.host_slots = host_slots;
    std::vector<std::string> live;
    for (const HostDef& h : hosts) live.push_back(h.name);
    for (const HostDef& h : hosts) {
      gateway::GatewayHost host;
      host.tls.name = h.name;
      host.tls.cert_chain_pem = read_test_pki(h.server_stem + ".pem");
      host.tls.key_pem = read_test_pki(h.server_stem + ".key");
      host.tls.mtls = h.mtls;
      host.tls.default_host = h.default_host;
      if (h.mtls != tls::MtlsMode::off) {
        std::vector<tls::CaSource> sources;
        for (const CaFiles& ca : h.cas) {
          tls::CaSource source;
          std::string error;
          EXPECT_TRUE(tls::load_ca_source(ca.cert, test_pki_path(ca.cert), ca.crl.empty() ? "" : test_pki_path(ca.crl),
                                          &source, &error))
              << error;
          sources.push_back(std::move(source));
        }
        std::string error;
        host.trust = tls::TrustStore::build(sources, tls::TrustOptions{h.max_intermediates}, &error);
        EXPECT_NE(host.trust, nullptr) << error;
      }
      host.route = h.route;
      host.counter_slot = host_slots->assign(h.name, live);
      spec.hosts.push_back(std::move(host));
    }
    std::string error;
    auto tables = gateway::GatewayTables::build(spec, error);
    EXPECT_NE(tables, nullptr) << error;
    return tables;
  }

  bool ok() const { return gateway != nullptr; }

  Origin& add_origin(uint16_t port, Origin::Mode mode, size_t stream_bytes = 0) {
    origins.push_back(std::make_unique<Origin>(mode, stream_bytes));
    EXPECT_TRUE(pair.b.tcp->listen(port, origins.back().get()));
    return *origins.back();
  }

  TlsClient& add_client(const ClientSpec& spec) {
    clients.push_back(std::make_unique<TlsClient>(spec));
    clients.back()->connect(*pair.b.tcp, *pair.b.iface);
    return *clients.back();
  }

  // One step of the worker loop on both sides: frames, TCP timers, then the
  // gateway's timers.
  void step(uint64_t dt_us = 50) {
    pair.step(dt_us);
    gateway->poll(*pair.a.tcp, pair.now_us);
  }
  template <typename Pred>
  bool run_until(Pred&& done, uint64_t max_us = 120'000'000, uint64_t dt_us = 50) {
    const uint64_t end = pair.now_us + max_us;
    while (pair.now_us < end) {
      if (done()) return true;
      step(dt_us);
    }
    return done();
  }
  void run_for(uint64_t us, uint64_t dt_us = 50) {
    const uint64_t end = pair.now_us + us;
    while (pair.now_us < end) step(dt_us);
  }

  const gateway::GatewayCounters& counters() const { return gateway->counters(); }
  const gateway::HostCounters& host(size_t h) const { return gateway->host_counters()[h]; }

  std::vector<gateway::AccessRecord> records() {
    std::vector<gateway::AccessRecord> out;
    gateway::AccessRecord r;
    while (log.try_pop(r)) out.push_back(r);
    return out;
  }

  // Loss and reordering at `rate` each way; seeds base, base + 1.
  void set_faults(double rate, uint64_t seed_base) {
    dataplane::FaultSpec spec;
    spec.drop = rate;
    spec.reorder = rate;
    pair.set_faults(pair.a, spec, seed_base);
    pair.set_faults(pair.b, spec, seed_base + 1);
  }

  // What every counter says, for failure messages.
  std::string describe() const {
    std::string out = "gateway counters:";
    gateway->counters().visit([&](const char* name, uint64_t v) {
      if (v != 0) out += " " + std::string(name) + "=" + std::to_string(v);
    });
    out += " active=" + std::to_string(gateway->counters().active.get()) + "\n";
    pair.a.tcp->for_each_connection([&](ConnHandle h) { out += "  gateway: " + pair.a.tcp->describe(h) + "\n"; });
    pair.b.tcp->for_each_connection([&](ConnHandle h) { out += "  peer:    " + pair.b.tcp->describe(h) + "\n"; });
    for (const auto& c : clients) {
      out += "  client port " + std::to_string(c->local_port) + ": hs=" + std::to_string(c->handshake_done) +
             " failed=" + std::to_string(c->failed) + " alert=" + std::to_string(c->alert_received) +
             " written=" + std::to_string(c->written) + "/" + std::to_string(c->to_send.size()) +
             " received=" + std::to_string(c->received.size()) + " close_notify=" + std::to_string(c->got_close_notify) +
             " fin=" + std::to_string(c->peer_fin) + " closed=" + std::to_string(c->closed) + "\n";
    }
    for (const auto& o : origins) {
      for (const auto& c : o->conns) {
        out += "  origin conn " + std::to_string(c->index) + ": sent=" + std::to_string(c->sent) + "/" +
               std::to_string(c->to_send.size()) + " received=" + std::to_string(c->received.size()) +
               " fin=" + std::to_string(c->peer_fin) + " closed=" + std::to_string(c->closed) + "\n";
      }
    }
    return out;
  }

  size_t origin_connections() const {
    size_t n = 0;
    for (const auto& o : origins) n += o->conns.size();
    return n;
  }

  TcpPair pair;
  std::shared_ptr<gateway::HostSlots> host_slots = std::make_shared<gateway::HostSlots>(64);
  gateway::AccessLogQueue log{64};
  std::vector<std::unique_ptr<Origin>> origins;
  std::vector<std::unique_ptr<TlsClient>> clients;
  std::unique_ptr<gateway::TlsGateway> gateway;  // last: goes first
};

ClientSpec devices_client(const std::string& sni = "api.example.test") {
  return ClientSpec{sni, "client-devices.chain.pem", "client-devices.key", nullptr};
}

// An access record's ending, named in the failure message.
void expect_end(const gateway::AccessRecord& record, ConnectionEnd end) {
  EXPECT_EQ(record.end, static_cast<uint8_t>(end)) << name_of(static_cast<ConnectionEnd>(record.end));
}

// ---- tcp forwarding: both directions whole, endings carried ----

struct StreamCase {
  const char* name;
  double fault_rate;
  uint64_t seed;
};
void PrintTo(const StreamCase& c, std::ostream* os) { *os << c.name; }

class GatewayStreams : public ::testing::TestWithParam<StreamCase> {};

TEST_P(GatewayStreams, OneMebibyteEachWayArrivesWholeAndTheCloseIsCarried) {
  Rig rig({api_host()});
  ASSERT_TRUE(rig.ok());
  if (GetParam().fault_rate > 0) rig.set_faults(GetParam().fault_rate, GetParam().seed);
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, kMiB);
  TlsClient& client = rig.add_client(devices_client());
  const std::string upload = pattern(1, kMiB);
  client.send(upload);
  client.end_with(TlsClient::Ending::close_notify_and_fin);

  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; }, 600'000'000))
      << rig.describe();
  ASSERT_EQ(origin.conns.size(), 1u);
  const Origin::Conn& up = *origin.conns[0];
  EXPECT_EQ(up.received.size(), kMiB);
  EXPECT_TRUE(up.received == upload) << "the client's stream arrived altered";
  EXPECT_TRUE(up.peer_fin);
  EXPECT_TRUE(up.closed);
  EXPECT_EQ(up.reason, CloseReason::closed) << name_of(up.reason);
  EXPECT_EQ(client.received.size(), kMiB);
  EXPECT_TRUE(client.received == up.to_send) << "the origin's stream arrived altered";
  EXPECT_FALSE(client.failed);
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_TRUE(client.close_notify_before_fin);
  EXPECT_EQ(client.reason, CloseReason::closed) << name_of(client.reason);

  const auto& c = rig.counters();
  EXPECT_EQ(c.accepted.get(), 1u);
  EXPECT_EQ(c.handshakes_ok.get(), 1u);
  EXPECT_EQ(c.handshakes_failed.get(), 0u);
  EXPECT_EQ(c.upstream_connects.get(), 1u);
  EXPECT_EQ(c.bytes_from_client.get(), kMiB);
  EXPECT_EQ(c.bytes_to_client.get(), kMiB);
  EXPECT_EQ(c.client_truncated.get(), 0u);
  EXPECT_EQ(c.client_resets.get(), 0u);
  EXPECT_EQ(c.upstream_reset.get(), 0u);
  EXPECT_EQ(c.active.get(), 0u);
  EXPECT_EQ(rig.host(0).handshakes_ok.get(), 1u);
  EXPECT_EQ(rig.host(0).verify[static_cast<size_t>(VerifyReason::ok)].get(), 1u);
  if (GetParam().fault_rate > 0) {
    // The link did lose segments both ways, and TCP repaired them.
    EXPECT_GT(rig.pair.a.tcp->counters().retransmitted_segments.get(), 0u);
    EXPECT_GT(rig.pair.b.tcp->counters().retransmitted_segments.get(), 0u);
  }

  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  const gateway::AccessRecord& r = records[0];
  expect_end(r, ConnectionEnd::closed);
  EXPECT_EQ(r.bytes_from_client, kMiB);
  EXPECT_EQ(r.bytes_to_upstream, kMiB);
  EXPECT_EQ(r.bytes_from_upstream, kMiB);
  EXPECT_EQ(r.bytes_to_client, kMiB);
  EXPECT_EQ(r.client_ip, kPeerIp);
  EXPECT_EQ(r.client_port, client.local_port);
  EXPECT_EQ(r.listener_port, kGatewayPort);
  EXPECT_EQ(r.upstream_ip, kPeerIp);
  EXPECT_EQ(r.upstream_port, kOriginPort);
  EXPECT_TRUE(r.cert_presented);
  EXPECT_TRUE(r.verified);
  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(r.verify_reason, static_cast<uint8_t>(VerifyReason::ok));
  EXPECT_EQ(gateway::text_of(r.sni), "api.example.test");
  EXPECT_EQ(gateway::text_of(r.host), "api.example.test");
  EXPECT_EQ(gateway::text_of(r.tls_version), "TLSv1.3");
  EXPECT_EQ(r.alert_sent, gateway::kNoAlert);
  EXPECT_EQ(r.alert_received, gateway::kNoAlert);
}

INSTANTIATE_TEST_SUITE_P(Links, GatewayStreams,
                         ::testing::Values(StreamCase{"clean", 0.0, 0}, StreamCase{"loss5_reorder5", 0.05, 4431}),
                         [](const ::testing::TestParamInfo<StreamCase>& info) { return std::string(info.param.name); });

// TLS 1.3 with an AES-GCM suite runs on our record layer after the
// handshake, and its SSL goes back to the free list while the connection
// lives; TLS 1.2 and ChaCha20 stay on OpenSSL. Both carry the streams whole.
TEST(TlsGateway, AesGcmTls13ConnectionsAreOffloadedAndTheOthersStayOnOpenSsl) {
  struct Case {
    const char* name;
    int version;
    const char* suites;
    bool offloaded;
  };
  for (const Case& c : {Case{"aes128", TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", true},
                        Case{"aes256", TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", true},
                        Case{"chacha20", TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", false},
                        Case{"tls12", TLS1_2_VERSION, "", false}}) {
    SCOPED_TRACE(c.name);
    Rig rig({api_host()});
    ASSERT_TRUE(rig.ok());
    Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, 300'000);
    ClientSpec spec = devices_client();
    spec.version = c.version;
    spec.ciphersuites = c.suites;
    TlsClient& client = rig.add_client(spec);
    const std::string upload = pattern(7, 300'000);
    client.send(upload);
    ASSERT_TRUE(rig.run_until([&] { return origin.conns.size() == 1 && origin.conns[0]->received.size() == 300'000 &&
                                           client.received.size() == 300'000; }))
        << rig.describe();
    EXPECT_EQ(rig.counters().records_offloaded.get(), c.offloaded ? 1u : 0u);
    // While the connection lives, its SSL is back in the free list or not.
    EXPECT_EQ(rig.counters().ssl_pool_idle.get(), c.offloaded ? 64u : 63u);
    client.end_with(TlsClient::Ending::close_notify_and_fin);
    ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
    EXPECT_TRUE(origin.conns[0]->received == upload);
    EXPECT_TRUE(client.received == origin.conns[0]->to_send);
    EXPECT_FALSE(client.failed);
    EXPECT_TRUE(client.got_close_notify);
    const auto records = rig.records();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].end, static_cast<uint8_t>(ConnectionEnd::closed));
    EXPECT_TRUE(records[0].verified);
    EXPECT_EQ(gateway::text_of(records[0].tls_version), c.version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
  }
}

TEST(TlsGateway, AClientEndingWithFinOnlyIsCountedTruncatedAndTheOriginStillGetsEveryByte) {
  Rig rig({api_host()});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& client = rig.add_client(devices_client());
  const std::string upload = pattern(2, 256 * 1024);
  client.send(upload);
  client.end_with(TlsClient::Ending::fin_only);

  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  ASSERT_EQ(origin.conns.size(), 1u);
  EXPECT_TRUE(origin.conns[0]->received == upload);
  EXPECT_TRUE(origin.conns[0]->peer_fin);
  EXPECT_EQ(origin.conns[0]->reason, CloseReason::closed) << name_of(origin.conns[0]->reason);
  EXPECT_FALSE(client.close_notify_sent);
  EXPECT_EQ(rig.counters().client_truncated.get(), 1u);
  EXPECT_EQ(rig.counters().client_resets.get(), 0u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  expect_end(records[0], ConnectionEnd::client_truncated);
  EXPECT_EQ(records[0].bytes_to_upstream, upload.size());
}

TEST(TlsGateway, AnOriginResetMidStreamResetsTheClient) {
  Rig rig({api_host()});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& client = rig.add_client(devices_client());
  client.send(pattern(3, kMiB));
  ASSERT_TRUE(rig.run_until([&] { return !origin.conns.empty() && origin.conns[0]->received.size() >= 100 * 1024; }))
      << rig.describe();
  rig.pair.b.tcp->abort(origin.conns[0]->handle);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(client.reason, CloseReason::reset_by_peer) << name_of(client.reason);
  EXPECT_FALSE(client.got_close_notify);
  EXPECT_EQ(rig.counters().upstream_reset.get(), 1u);
  EXPECT_EQ(rig.counters().client_resets.get(), 0u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  expect_end(records[0], ConnectionEnd::upstream_reset);
}

TEST(TlsGateway, AClientResetMidStreamResetsTheOrigin) {
  Rig rig({api_host()});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, kMiB);
  TlsClient& client = rig.add_client(devices_client());
  ASSERT_TRUE(rig.run_until([&] { return client.received.size() >= 100 * 1024; })) << rig.describe();
  client.abort();
  ASSERT_TRUE(rig.run_until([&] { return origin.conns[0]->closed && rig.counters().active.get() == 0; }))
      << rig.describe();
  EXPECT_EQ(origin.conns[0]->reason, CloseReason::reset_by_peer) << name_of(origin.conns[0]->reason);
  EXPECT_FALSE(origin.conns[0]->peer_fin);
  EXPECT_EQ(rig.counters().client_resets.get(), 1u);
  EXPECT_EQ(rig.counters().upstream_reset.get(), 0u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  expect_end(records[0], ConnectionEnd::client_reset);
}

// ---- client certificates: refused when required, marked when optional ----

struct CertCase {
  const char* name;
  const char* chain;  // "" : no certificate
  const char* key;
  VerifyReason reason;
};
void PrintTo(const CertCase& c, std::ostream* os) { *os << c.name; }

const CertCase kBadCertificates[] = {
    {"no_certificate", "", "", VerifyReason::no_certificate},
    {"revoked", "client-revoked.chain.pem", "client-revoked.key", VerifyReason::revoked},
    {"expired", "client-expired.chain.pem", "client-expired.key", VerifyReason::expired},
    {"unknown_ca", "client-unknown-ca.pem", "client-unknown-ca.key", VerifyReason::unknown_ca},
    {"wrong_usage", "client-server-eku.chain.pem", "client-server-eku.key", VerifyReason::wrong_usage},
    {"chain_too_deep", "client-deep.chain.pem", "client-deep.key", VerifyReason::chain_too_deep},
};

class GatewayBadCertificates : public ::testing::TestWithParam<CertCase> {};

TEST_P(GatewayBadCertificates, ARequiredHostRefusesWithTheReasonsAlertAndNeverCallsTheOrigin) {
  const CertCase& cc = GetParam();
  Rig rig({api_host()});
  ASSERT_TRUE(rig.ok());
  rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& client = rig.add_client(ClientSpec{"api.example.test", cc.chain, cc.key, nullptr});
  client.send("never forwarded");

  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_TRUE(client.failed);
  EXPECT_EQ(client.alert_received, static_cast<int>(tls::alert_for(cc.reason, true)));
  EXPECT_EQ(rig.origin_connections(), 0u);
  const auto& c = rig.counters();
  EXPECT_EQ(c.handshakes_failed.get(), 1u);
  EXPECT_EQ(c.handshakes_ok.get(), 0u);
  EXPECT_EQ(c.upstream_connects.get(), 0u);
  EXPECT_EQ(c.bytes_from_client.get(), 0u);
  EXPECT_EQ(rig.host(0).handshakes_failed.get(), 1u);
  for (size_t r = 0; r < tls::kVerifyReasonCount; ++r) {
    EXPECT_EQ(rig.host(0).verify[r].get(), r == static_cast<size_t>(cc.reason) ? 1u : 0u)
        << tls::kVerifyReasonNames[r];
  }
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  expect_end(records[0], ConnectionEnd::handshake_failed);
  EXPECT_EQ(records[0].verify_reason, static_cast<uint8_t>(cc.reason));
  EXPECT_EQ(records[0].alert_sent, static_cast<int16_t>(tls::alert_for(cc.reason, true)));
  EXPECT_EQ(records[0].upstream_port, 0u);
}

TEST_P(GatewayBadCertificates, AnOptionalHostPassesTheClientMarkedUnverified) {
  const CertCase& cc = GetParam();
  Rig rig({api_host(ForwardMode::http, tls::MtlsMode::optional)});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::http);
  TlsClient& client = rig.add_client(ClientSpec{"api.example.test", cc.chain, cc.key, nullptr});
  client.send("GET /optional HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
  ASSERT_TRUE(rig.run_until([&] { return count_of(client.received, "response #1") == 1; })) << rig.describe();
  client.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();

  EXPECT_FALSE(client.failed);
  EXPECT_EQ(client.alert_received, -1);
  ASSERT_EQ(origin.conns.size(), 1u);
  ASSERT_EQ(origin.conns[0]->request_heads.size(), 1u);
  const std::string& head = origin.conns[0]->request_heads[0];
  EXPECT_EQ(header_values(head, "X-Client-Verified"), std::vector<std::string>{"false"}) << head;
  EXPECT_EQ(header_values(head, "X-Client-Verify-Reason"), std::vector<std::string>{std::string(name_of(cc.reason))})
      << head;
  // An unverified certificate is not passed on as RFC 9440 Client-Cert.
  EXPECT_TRUE(header_values(head, "Client-Cert").empty()) << head;
  EXPECT_EQ(rig.counters().handshakes_ok.get(), 1u);
  EXPECT_EQ(rig.host(0).passed_unverified.get(), 1u);
  EXPECT_EQ(rig.host(0).verify[static_cast<size_t>(cc.reason)].get(), 1u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_FALSE(records[0].verified);
  EXPECT_EQ(records[0].cert_presented, cc.reason != VerifyReason::no_certificate);
  EXPECT_EQ(records[0].verify_reason, static_cast<uint8_t>(cc.reason));
  EXPECT_EQ(records[0].requests, 1u);
}

INSTANTIATE_TEST_SUITE_P(Reasons, GatewayBadCertificates, ::testing::ValuesIn(kBadCertificates),
                         [](const ::testing::TestParamInfo<CertCase>& info) { return std::string(info.param.name); });

// ---- SNI: three hosts with different CAs ----

struct SniCase {
  const char* name;
  const char* sni;
  const char* chain;
  const char* key;
  int host;        // expected host index, -1: none
  int origin;      // expected origin index, -1: refused
  int alert;       // expected alert, -1: none
  VerifyReason reason;
};
void PrintTo(const SniCase& c, std::ostream* os) { *os << c.name; }

const SniCase kSniCases[] = {
    {"api_devices", "api.example.test", "client-devices.chain.pem", "client-devices.key", 0, 0, -1, VerifyReason::ok},
    {"grpc_partners", "grpc.example.test", "client-partners.pem", "client-partners.key", 1, 1, -1, VerifyReason::ok},
    {"wild_other", "x.wild.example.test", "client-other.pem", "client-other.key", 2, 2, -1, VerifyReason::ok},
    {"api_partners", "api.example.test", "client-partners.pem", "client-partners.key", 0, -1, 48,
     VerifyReason::unknown_ca},
    {"grpc_devices", "grpc.example.test", "client-devices.chain.pem", "client-devices.key", 1, -1, 48,
     VerifyReason::unknown_ca},
    {"unknown_name", "nobody.example.test", "client-devices.chain.pem", "client-devices.key", -1, -1,
     kAlertUnrecognizedName, VerifyReason::ok},
};

class GatewaySni : public ::testing::TestWithParam<SniCase> {};

TEST_P(GatewaySni, TheServerNamePicksTheHostItsCaAndItsOrigin) {
  const SniCase& sc = GetParam();
  HostDef api = api_host();
  api.route.upstream_port = kOriginPort;
  HostDef grpc = api_host();
  grpc.name = "grpc.example.test";
  grpc.server_stem = "server-grpc-ecdsa";
  grpc.cas = {{"partners-ca.pem", "partners.crl.pem"}};
  grpc.route.upstream_port = kOriginPort + 1;
  HostDef wild = api_host();
  wild.name = "*.wild.example.test";
  wild.server_stem = "server-wild-ecdsa";
  wild.cas = {{"other-ca.pem", "other.crl.pem"}};
  wild.route.upstream_port = kOriginPort + 2;
  Rig rig({api, grpc, wild});
  ASSERT_TRUE(rig.ok());
  for (uint16_t i = 0; i < 3; ++i) rig.add_origin(kOriginPort + i, Origin::Mode::stream, 0);
  TlsClient& client = rig.add_client(ClientSpec{sc.sni, sc.chain, sc.key, nullptr});
  const std::string hello = std::string("hello from ") + sc.name;
  client.send(hello);
  if (sc.origin >= 0) {
    ASSERT_TRUE(rig.run_until([&] { return rig.origins[sc.origin]->conns.size() == 1 &&
                                           rig.origins[sc.origin]->conns[0]->received == hello; }))
        << rig.describe();
    client.end_with(TlsClient::Ending::close_notify_and_fin);
  }
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(client.alert_received, sc.alert);
  for (int o = 0; o < 3; ++o) {
    EXPECT_EQ(rig.origins[o]->conns.size(), o == sc.origin ? 1u : 0u) << "origin " << o;
  }
  for (int h = 0; h < 3; ++h) {
    SCOPED_TRACE("host " + std::to_string(h));
    const bool chosen = h == sc.host;
    EXPECT_EQ(rig.host(h).handshakes_ok.get(), chosen && sc.origin >= 0 ? 1u : 0u);
    EXPECT_EQ(rig.host(h).handshakes_failed.get(), chosen && sc.origin < 0 ? 1u : 0u);
    EXPECT_EQ(rig.host(h).verify[static_cast<size_t>(sc.reason)].get(), chosen ? 1u : 0u);
  }
  EXPECT_EQ(rig.counters().no_host.get(), sc.host < 0 ? 1u : 0u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  if (sc.host >= 0) {
    EXPECT_EQ(gateway::text_of(records[0].sni), sc.sni);
    EXPECT_EQ(gateway::text_of(records[0].host), rig.gateway->tables().host_name(sc.host));
  } else {
    expect_end(records[0], ConnectionEnd::no_host);
    EXPECT_EQ(records[0].alert_sent, kAlertUnrecognizedName);
    EXPECT_EQ(gateway::text_of(records[0].host), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Names, GatewaySni, ::testing::ValuesIn(kSniCases),
                         [](const ::testing::TestParamInfo<SniCase>& info) { return std::string(info.param.name); });

// ---- Publication: new tables from the control side ----

// A control-socket commit replaces the worker's tables while connections
// run: new connections get the new hosts, open ones finish on the tables
// they started with, and those go back to the control thread only when
// their last connection has ended.
TEST(TlsGateway, PublishedTablesServeNewConnectionsWhileOpenOnesKeepTheirs) {
  HostDef api = api_host();
  Rig rig({api});
  ASSERT_TRUE(rig.ok());
  rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  rig.add_origin(kOriginPort + 1, Origin::Mode::stream, 0);
  TlsClient& early = rig.add_client(devices_client());
  early.send("one");
  ASSERT_TRUE(rig.run_until([&] { return rig.origins[0]->conns.size() == 1 && rig.origins[0]->conns[0]->received == "one"; }))
      << rig.describe();

  HostDef grpc = api_host();
  grpc.name = "grpc.example.test";
  grpc.server_stem = "server-grpc-ecdsa";
  grpc.cas = {{"partners-ca.pem", "partners.crl.pem"}};
  grpc.route.upstream_port = kOriginPort + 1;
  ASSERT_TRUE(rig.gateway->publish(rig.build_tables({grpc}, 2)));
  EXPECT_EQ(rig.gateway->tables_generation(), 1u);
  rig.step();
  EXPECT_EQ(rig.gateway->tables_generation(), 2u);
  EXPECT_EQ(rig.counters().tables_adopted.get(), 1u);
  EXPECT_EQ(rig.gateway->free_retired(), 0u) << "the early connection still uses the first tables";

  early.send("two");
  TlsClient& partner = rig.add_client(ClientSpec{"grpc.example.test", "client-partners.pem", "client-partners.key", nullptr});
  partner.send("three");
  TlsClient& late_api = rig.add_client(devices_client());
  ASSERT_TRUE(rig.run_until([&] {
    return rig.origins[0]->conns[0]->received == "onetwo" && rig.origins[1]->conns.size() == 1 &&
           rig.origins[1]->conns[0]->received == "three" && late_api.closed;
  })) << rig.describe();
  EXPECT_EQ(late_api.alert_received, kAlertUnrecognizedName) << "api.example.test is gone from the new tables";
  EXPECT_EQ(rig.origins[0]->conns.size(), 1u);

  early.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return early.closed && rig.counters().active.get() == 1; })) << rig.describe();
  EXPECT_EQ(rig.gateway->free_retired(), 1u) << "the first tables' last connection has ended";
  EXPECT_EQ(rig.gateway->free_retired(), 0u);

  // Counters stay with their host's name across publications.
  const std::vector<std::string> names = rig.gateway->host_slot_names();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], "api.example.test");
  EXPECT_EQ(names[1], "grpc.example.test");
  EXPECT_EQ(rig.host(0).handshakes_ok.get(), 1u);
  EXPECT_EQ(rig.host(1).handshakes_ok.get(), 1u);
  partner.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return partner.closed && rig.counters().active.get() == 0; })) << rig.describe();
}

// Tables published twice before the worker looks: the first are never
// seen by it, and the worker adopts the second.
TEST(TlsGateway, TablesPublishedTwiceBeforeThePollAreReplacedNotLeaked) {
  Rig rig({api_host()});
  ASSERT_TRUE(rig.ok());
  ASSERT_TRUE(rig.gateway->publish(rig.build_tables({api_host()}, 2)));
  ASSERT_TRUE(rig.gateway->publish(rig.build_tables({api_host()}, 3)));
  rig.step();
  EXPECT_EQ(rig.gateway->tables_generation(), 3u);
  EXPECT_EQ(rig.counters().tables_adopted.get(), 1u);
  EXPECT_EQ(rig.gateway->free_retired(), 1u) << "generation 1 had no connection";
  rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& client = rig.add_client(devices_client());
  client.send("after");
  ASSERT_TRUE(rig.run_until([&] { return rig.origins[0]->conns.size() == 1 && rig.origins[0]->conns[0]->received == "after"; }))
      << rig.describe();
  client.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
}

// ---- Policy: the operator's revocations and rules ----

std::shared_ptr<const rules::RuleTable> rule_table(
    std::initializer_list<std::tuple<const char*, rules::Action, const char*>> entries) {
  rules::RuleTableBuilder builder;
  for (const auto& [name, action, expression] : entries) {
    rules::RuleError error;
    EXPECT_TRUE(builder.add(name, action, expression, error)) << error.to_string();
  }
  return std::make_shared<const rules::RuleTable>(std::move(builder).build());
}

// A connection-phase block ends the connection after the handshake, before
// the origin is even connected; a request-phase block answers 403 and the
// origin never sees that request.
TEST(TlsGateway, RulesBlockConnectionsAndRequestsBeforeTheOriginSeesThem) {
  Rig rig({api_host(ForwardMode::http)});
  ASSERT_TRUE(rig.ok());
  gateway::PolicyCell cell(1);
  rig.gateway->set_policy(&cell);
  rig.add_origin(kOriginPort, Origin::Mode::http, 0);
  auto policy = std::make_unique<gateway::Policy>();
  policy->generation = 2;
  policy->rules = rule_table({{"audit", rules::Action::log, "client.cert.presented"},
                              {"no-dev-2", rules::Action::block, "client.cert.common_name == \"nobody\""},
                              {"no-admin", rules::Action::block, "http.request.uri.path starts_with \"/admin\""}});
  auto names = std::make_shared<gateway::HostSlots>(8);
  rig.gateway->set_rule_slots(names);
  for (const char* name : {"audit", "no-dev-2", "no-admin"}) policy->rule_slots.push_back(names->assign(name, {}));
  ASSERT_TRUE(cell.publish(std::move(policy), std::chrono::milliseconds(0)));

  TlsClient& client = rig.add_client(devices_client());
  client.send("GET /admin/users HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
  ASSERT_TRUE(rig.run_until([&] { return client.received.find("\r\n\r\n") != std::string::npos; })) << rig.describe();
  EXPECT_EQ(client.received.substr(0, 12), "HTTP/1.1 403") << client.received;
  EXPECT_EQ(rig.counters().rules_blocked_requests.get(), 1u);
  EXPECT_EQ(rig.counters().rules_logged.get(), 1u) << "the log rule ran once, in the connection phase";
  EXPECT_EQ(rig.counters().policies_adopted.get(), 1u);
  EXPECT_EQ(rig.gateway->rule_hits(0), 1u) << "audit logged";
  EXPECT_EQ(rig.gateway->rule_hits(1), 0u) << "no-dev-2 did not match";
  EXPECT_EQ(rig.gateway->rule_hits(2), 1u) << "no-admin decided";
  EXPECT_EQ(rig.gateway->rule_slot_names(), (std::vector<std::string>{"audit", "no-dev-2", "no-admin"}));
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  for (const auto& c : rig.origins[0]->conns) EXPECT_EQ(c->received.find("/admin"), std::string::npos);

  auto blocking = std::make_unique<gateway::Policy>();
  blocking->generation = 3;
  blocking->rules = rule_table({{"devices-out", rules::Action::block, "client.cert.issuer_dn contains \"Devices\""}});
  ASSERT_TRUE(cell.publish(std::move(blocking), std::chrono::milliseconds(0)));
  const size_t origin_connections = rig.origin_connections();
  TlsClient& blocked = rig.add_client(devices_client());
  blocked.send("GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
  ASSERT_TRUE(rig.run_until([&] { return blocked.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_TRUE(blocked.handshake_done);
  EXPECT_EQ(blocked.received, "") << "no answer: the connection was closed after its handshake";
  EXPECT_EQ(rig.counters().rules_blocked_connections.get(), 1u);
  EXPECT_EQ(rig.origin_connections(), origin_connections) << "the origin was never connected";
  const auto records = rig.records();
  ASSERT_FALSE(records.empty());
  expect_end(records.back(), ConnectionEnd::blocked);
}

// An operator revocation applies to the next full handshake, resumed or not.
TEST(TlsGateway, ARevokedCertificateIsRefusedOnTheNextHandshake) {
  Rig rig({api_host()});
  ASSERT_TRUE(rig.ok());
  gateway::PolicyCell cell(1);
  rig.gateway->set_policy(&cell);
  rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& before = rig.add_client(devices_client());
  before.send("x");
  ASSERT_TRUE(rig.run_until([&] { return rig.origins[0]->conns.size() == 1 && rig.origins[0]->conns[0]->received == "x"; }))
      << rig.describe();

  std::vector<X509Handle> leaf = load_certificates("client-devices.pem");
  ASSERT_FALSE(leaf.empty());
  unsigned char digest[32];
  unsigned length = 0;
  ASSERT_EQ(X509_digest(leaf[0].get(), EVP_sha256(), digest, &length), 1);
  tls::RevocationEntry entry;
  entry.kind = tls::RevocationEntry::Kind::fingerprint;
  std::copy(digest, digest + 32, entry.fingerprint.bytes.begin());
  std::string error;
  auto policy = std::make_unique<gateway::Policy>();
  policy->generation = 2;
  policy->revocations = tls::RevocationSet::build({entry}, {}, &error);
  ASSERT_NE(policy->revocations, nullptr) << error;
  policy->close_revoked = true;
  ASSERT_TRUE(cell.publish(std::move(policy), std::chrono::milliseconds(0)));

  TlsClient& after = rig.add_client(devices_client());
  after.send("y");
  ASSERT_TRUE(rig.run_until([&] { return after.closed && before.closed && rig.counters().active.get() == 0; }))
      << rig.describe();
  EXPECT_EQ(after.alert_received, 44) << "certificate_revoked";
  EXPECT_EQ(rig.counters().revoked_closed.get(), 1u) << "the open connection was closed (--close)";
  EXPECT_EQ(rig.origins[0]->conns.size(), 1u) << "the refused client never reached the origin";
}

// ---- proxy_v2: the origin learns who the client is ----

TEST(TlsGateway, ProxyV2TellsTheOriginTheClientsAddressNameAndCertificate) {
  Rig rig({api_host(ForwardMode::proxy_v2)});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& client = rig.add_client(devices_client());
  const std::string payload = pattern(7, 5000);
  client.send(payload);
  client.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();

  ASSERT_EQ(origin.conns.size(), 1u);
  const std::string& got = origin.conns[0]->received;
  forward::proxy_v2::Decoded header;
  const auto result = forward::proxy_v2::decode(reinterpret_cast<const uint8_t*>(got.data()), got.size(), header);
  ASSERT_EQ(result.error, forward::proxy_v2::DecodeError::kNone) << forward::proxy_v2::decode_error_name(result.error);
  EXPECT_EQ(header.command, forward::proxy_v2::kCommandProxy);
  EXPECT_EQ(header.family, forward::proxy_v2::kFamilyTcp4);
  EXPECT_EQ(header.source_address, kPeerIp);
  EXPECT_EQ(header.source_port, client.local_port);
  EXPECT_EQ(header.destination_address, kGatewayIp);
  EXPECT_EQ(header.destination_port, kGatewayPort);
  EXPECT_EQ(header.authority, "api.example.test");
  ASSERT_TRUE(header.has_ssl);
  EXPECT_EQ(header.ssl_verify, forward::proxy_v2::kVerifyOk);
  EXPECT_EQ(header.ssl_client & forward::proxy_v2::kClientSsl, forward::proxy_v2::kClientSsl);
  EXPECT_EQ(header.ssl_client & forward::proxy_v2::kClientCertConn, forward::proxy_v2::kClientCertConn);
  EXPECT_EQ(header.ssl_version, "TLSv1.3");
  EXPECT_EQ(header.ssl_cn, "device-001");
  EXPECT_EQ(header.verify_reason, "ok");
  X509Handle leaf = load_certificate("client-devices.pem");
  ASSERT_NE(leaf, nullptr);
  EXPECT_TRUE(header.ssl_client_cert == der_of(leaf.get())) << "CLIENT_CERT is not the client's leaf";
  EXPECT_TRUE(got.substr(header.header_length) == payload) << "the data after the header arrived altered";
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].bytes_to_upstream, payload.size()) << "the header is not client data";
}

// ---- http ----

TEST(TlsGateway, HttpAddsTheIdentityRemovesSpoofedFieldsAndKeepsTheConnectionAlive) {
  Rig rig({api_host(ForwardMode::http)});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::http);
  TlsClient& client = rig.add_client(devices_client());
  for (int i = 1; i <= 3; ++i) {
    client.send("GET /r" + std::to_string(i) +
                " HTTP/1.1\r\nHost: api.example.test\r\nX-Client-Verified: spoofed\r\n"
                "x-client-subject: CN=evil\r\nClient-Cert: :ZXZpbA==:\r\n\r\n");
    ASSERT_TRUE(rig.run_until([&] { return count_of(client.received, "response #" + std::to_string(i)) == 1; }))
        << rig.describe();
  }
  client.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();

  ASSERT_EQ(origin.conns.size(), 1u) << "keep-alive: one origin connection for the three requests";
  const auto& heads = origin.conns[0]->request_heads;
  ASSERT_EQ(heads.size(), 3u);
  X509Handle leaf = load_certificate("client-devices.pem");
  ASSERT_NE(leaf, nullptr);
  const std::string der = der_of(leaf.get());
  for (size_t i = 0; i < heads.size(); ++i) {
    SCOPED_TRACE(heads[i]);
    EXPECT_EQ(heads[i].rfind("GET /r" + std::to_string(i + 1) + " HTTP/1.1\r\n", 0), 0u);
    EXPECT_EQ(header_values(heads[i], "Host"), std::vector<std::string>{"api.example.test"});
    EXPECT_EQ(header_values(heads[i], "X-Client-Verified"), std::vector<std::string>{"true"});
    EXPECT_EQ(header_values(heads[i], "X-Client-Verify-Reason"), std::vector<std::string>{"ok"});
    const auto subject = header_values(heads[i], "X-Client-Subject");
    ASSERT_EQ(subject.size(), 1u);
    EXPECT_NE(subject[0].find("CN=device-001"), std::string::npos);
    EXPECT_EQ(header_values(heads[i], "X-Client-Fingerprint"), std::vector<std::string>{sha256_hex(der)});
    EXPECT_EQ(header_values(heads[i], "Client-Cert"), std::vector<std::string>{":" + base64(der) + ":"});
    EXPECT_EQ(heads[i].find("evil"), std::string::npos);
    EXPECT_EQ(heads[i].find("spoofed"), std::string::npos);
  }
  std::string expected;
  for (int i = 1; i <= 3; ++i) {
    const std::string body = "response #" + std::to_string(i);
    expected += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  EXPECT_EQ(client.received, expected);
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_EQ(rig.counters().http_local_responses.get(), 0u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].requests, 3u);
  EXPECT_EQ(records[0].http_status, 0u);
  expect_end(records[0], ConnectionEnd::closed);
}

std::string get_request(int n) {
  return "GET /r" + std::to_string(n) + " HTTP/1.1\r\nHost: api.example.test\r\n\r\n";
}

// A keep-alive connection quiet for a second gives back what only moving
// bytes need (issue 5: an idle connection costs at most 8 KiB): its http
// slot, its TCP buffers and OpenSSL's record buffers. The next request takes
// them again and is answered as if nothing had happened.
TEST(TlsGateway, AnIdleHttpConnectionRestsAndItsNextRequestTakesASlotAgain) {
  Rig rig({api_host(ForwardMode::http)});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::http);
  TlsClient& client = rig.add_client(devices_client());
  client.send(get_request(1));
  ASSERT_TRUE(rig.run_until([&] { return count_of(client.received, "response #1") == 1; })) << rig.describe();
  EXPECT_EQ(rig.counters().http_slots.get(), 1u);

  rig.run_for(1'500'000);
  EXPECT_EQ(rig.counters().http_slots.get(), 0u);
  EXPECT_EQ(rig.counters().active.get(), 1u);
  EXPECT_EQ(rig.pair.a.tcp->counters().buffers_held.get(), 0u);

  client.send(get_request(2));
  ASSERT_TRUE(rig.run_until([&] { return count_of(client.received, "response #2") == 1; })) << rig.describe();
  EXPECT_EQ(rig.counters().http_slots.get(), 1u);
  client.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(rig.counters().http_slots.get(), 0u);
  ASSERT_EQ(origin.conns.size(), 1u);
  EXPECT_EQ(origin.conns[0]->request_heads.size(), 2u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].requests, 2u);
  expect_end(records[0], ConnectionEnd::closed);
}

// The origin ending a resting keep-alive connection: the exchange comes back
// to say that nothing was owed, and the client gets a clean close.
TEST(TlsGateway, AnOriginClosingARestingConnectionClosesTheClientCleanly) {
  Rig rig({api_host(ForwardMode::http)});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::http);
  TlsClient& client = rig.add_client(devices_client());
  client.send(get_request(1));
  ASSERT_TRUE(rig.run_until([&] { return count_of(client.received, "response #1") == 1; })) << rig.describe();
  rig.run_for(1'500'000);
  ASSERT_EQ(rig.counters().http_slots.get(), 0u);
  rig.pair.b.tcp->shutdown(origin.conns[0]->handle);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_TRUE(client.close_notify_before_fin);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].requests, 1u);
  expect_end(records[0], ConnectionEnd::closed);
}

// Resting connections can outnumber http slots; one that wakes when every
// slot is busy is closed cleanly (an idle keep-alive close, which HTTP
// clients retry: RFC 9112 9.3.1) and counted as overload. The busy one is
// unaffected.
TEST(TlsGateway, ARestingConnectionWakingWithNoSlotFreeIsClosedCleanly) {
  gateway::GatewayLimits limits;
  limits.http_exchanges = 1;
  Rig rig({api_host(ForwardMode::http)}, limits);
  ASSERT_TRUE(rig.ok());
  rig.add_origin(kOriginPort, Origin::Mode::http);
  TlsClient& sleeper = rig.add_client(devices_client());
  sleeper.send(get_request(1));
  ASSERT_TRUE(rig.run_until([&] { return count_of(sleeper.received, "response #1") == 1; })) << rig.describe();
  rig.run_for(1'500'000);
  ASSERT_EQ(rig.counters().http_slots.get(), 0u);

  TlsClient& busy = rig.add_client(devices_client());
  busy.send(get_request(1));
  ASSERT_TRUE(rig.run_until([&] { return count_of(busy.received, "response #1") == 1; })) << rig.describe();
  ASSERT_EQ(rig.counters().http_slots.get(), 1u);

  sleeper.send(get_request(2));
  ASSERT_TRUE(rig.run_until([&] { return sleeper.closed; })) << rig.describe();
  EXPECT_TRUE(sleeper.got_close_notify);
  EXPECT_EQ(count_of(sleeper.received, "response #2"), 0u);
  EXPECT_EQ(rig.counters().overload.get(), 1u);

  busy.send(get_request(2));
  ASSERT_TRUE(rig.run_until([&] { return count_of(busy.received, "response #2") == 1; })) << rig.describe();
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  expect_end(records[0], ConnectionEnd::overload);
}

// Bodies through the exchange both ways, larger than every buffer on the
// way: back-pressure on both sinks, nothing lost. (The clean run is the one
// that stalled once: the client's send buffer left with less room than a
// record's overhead.)
class GatewayHttpBodies : public ::testing::TestWithParam<StreamCase> {};

TEST_P(GatewayHttpBodies, LargeBodiesCrossBothWaysWhole) {
  Rig rig({api_host(ForwardMode::http)});
  ASSERT_TRUE(rig.ok());
  if (GetParam().fault_rate > 0) rig.set_faults(GetParam().fault_rate, GetParam().seed);
  constexpr size_t kBody = 512 * 1024;
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::http, kBody);
  TlsClient& client = rig.add_client(devices_client());
  std::string expected;
  for (uint32_t i = 1; i <= 2; ++i) {
    const std::string upload = pattern(300 + i, kBody);
    client.send("POST /upload HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: " + std::to_string(kBody) +
                "\r\n\r\n" + upload);
    const std::string body = pattern(2000 + i, kBody);
    expected += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n" + body;
  }
  ASSERT_TRUE(rig.run_until([&] { return client.received.size() >= expected.size(); }, 600'000'000)) << rig.describe();
  client.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; }, 600'000'000))
      << rig.describe();
  ASSERT_EQ(origin.conns.size(), 1u);
  ASSERT_EQ(origin.conns[0]->request_bodies.size(), 2u);
  for (uint32_t i = 1; i <= 2; ++i) {
    EXPECT_TRUE(origin.conns[0]->request_bodies[i - 1] == pattern(300 + i, kBody)) << "request body " << i;
  }
  EXPECT_EQ(client.received.size(), expected.size());
  EXPECT_TRUE(client.received == expected) << "the responses arrived altered";
  EXPECT_EQ(client.reason, CloseReason::closed) << name_of(client.reason);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].requests, 2u);
  EXPECT_EQ(records[0].bytes_to_client, expected.size());
}

INSTANTIATE_TEST_SUITE_P(Links, GatewayHttpBodies,
                         ::testing::Values(StreamCase{"clean", 0.0, 0}, StreamCase{"loss5_reorder5", 0.05, 913}),
                         [](const ::testing::TestParamInfo<StreamCase>& info) { return std::string(info.param.name); });

// Most HTTP clients end with FIN alone after their last request; the
// response they are owed still comes, then the close.
TEST(TlsGateway, HttpAnswersAClientThatSentFinWithoutCloseNotify) {
  Rig rig({api_host(ForwardMode::http)});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::http);
  TlsClient& client = rig.add_client(devices_client());
  client.send("GET /last HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
  client.end_with(TlsClient::Ending::fin_only);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(client.received, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nresponse #1");
  EXPECT_EQ(client.reason, CloseReason::closed) << name_of(client.reason);
  ASSERT_EQ(origin.conns.size(), 1u);
  EXPECT_EQ(origin.conns[0]->request_heads.size(), 1u);
  EXPECT_TRUE(origin.conns[0]->peer_fin);
  EXPECT_EQ(rig.counters().client_truncated.get(), 1u);
}

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

TEST(TlsGateway, HttpAnswersAHostMismatchWith421AndTheOriginSeesNoRequest) {
  Rig rig({api_host(ForwardMode::http)});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::http);
  TlsClient& client = rig.add_client(devices_client());
  client.send("GET / HTTP/1.1\r\nHost: grpc.example.test\r\n\r\n");
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(status_line(client.received), "HTTP/1.1 421 Misdirected Request");
  EXPECT_TRUE(client.got_close_notify);
  for (const auto& c : origin.conns) EXPECT_TRUE(c->request_heads.empty());
  EXPECT_EQ(rig.counters().http_local_responses.get(), 1u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].http_status, 421u);
}

TEST(TlsGateway, HttpAnswersARefusedOriginWith502) {
  HostDef host = api_host(ForwardMode::http);
  host.route.upstream_port = kClosedPort;
  Rig rig({host});
  ASSERT_TRUE(rig.ok());
  TlsClient& client = rig.add_client(devices_client());
  client.send("GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(status_line(client.received), "HTTP/1.1 502 Bad Gateway");
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_EQ(rig.counters().upstream_refused.get(), 1u);
  EXPECT_EQ(rig.counters().http_local_responses.get(), 1u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].http_status, 502u);
  expect_end(records[0], ConnectionEnd::upstream_refused);
}

TEST(TlsGateway, HttpAnswersASilentOriginWith504AfterTheConnectTimeout) {
  HostDef host = api_host(ForwardMode::http);
  host.route.connect_timeout_ms = 1'000;
  Rig rig({host});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::http);
  // The origin's SYN-ACKs never reach the gateway.
  rig.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    if (&from != &rig.pair.b) return true;
    const auto c = parse_tcp_frame(f);
    return !(c && c->seg.src_port == kOriginPort && c->has(net::tcp::kFlagSyn));
  });
  TlsClient& client = rig.add_client(devices_client());
  client.send("GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
  ASSERT_TRUE(rig.run_until([&] { return rig.counters().upstream_connects.get() == 1; })) << rig.describe();
  const uint64_t connect_started = rig.pair.now_us;
  // connect_timeout_ms is 1000: nothing before it.
  rig.run_until([&] { return !client.received.empty(); }, 900'000);
  EXPECT_TRUE(client.received.empty()) << "answered before the connect timeout, after "
                                       << (rig.pair.now_us - connect_started) << " us";
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(status_line(client.received), "HTTP/1.1 504 Gateway Timeout");
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_EQ(rig.counters().upstream_timed_out.get(), 1u);
  EXPECT_EQ(rig.counters().http_local_responses.get(), 1u);
  EXPECT_TRUE(origin.conns.empty());
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].http_status, 504u);
  expect_end(records[0], ConnectionEnd::upstream_timeout);
}

// ---- tcp forwarding to an origin that refuses or never answers ----

struct OriginDownCase {
  const char* name;
  bool silent;  // the origin's SYN-ACKs are lost (else nobody listens: RST)
};
void PrintTo(const OriginDownCase& c, std::ostream* os) { *os << c.name; }

class GatewayOriginDown : public ::testing::TestWithParam<OriginDownCase> {};

// The client's first bytes wait in the gateway while the upstream connects;
// when it fails, the client gets close_notify and FIN, not a reset.
TEST_P(GatewayOriginDown, TheClientGetsACleanClose) {
  HostDef host = api_host();
  if (!GetParam().silent) host.route.upstream_port = kClosedPort;
  Rig rig({host});
  ASSERT_TRUE(rig.ok());
  if (GetParam().silent) {
    rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
    rig.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
      if (&from != &rig.pair.b) return true;
      const auto c = parse_tcp_frame(f);
      return !(c && c->seg.src_port == kOriginPort && c->has(net::tcp::kFlagSyn));
    });
  }
  TlsClient& client = rig.add_client(devices_client());
  client.send("sent before the origin answered");
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_TRUE(client.close_notify_before_fin);
  EXPECT_EQ(client.reason, CloseReason::closed) << name_of(client.reason);
  EXPECT_TRUE(client.received.empty());
  EXPECT_EQ(rig.counters().upstream_refused.get(), GetParam().silent ? 0u : 1u);
  EXPECT_EQ(rig.counters().upstream_timed_out.get(), GetParam().silent ? 1u : 0u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  const ConnectionEnd end = GetParam().silent ? ConnectionEnd::upstream_timeout : ConnectionEnd::upstream_refused;
  expect_end(records[0], end);
  EXPECT_EQ(records[0].bytes_to_upstream, 0u);
}

INSTANTIATE_TEST_SUITE_P(Failures, GatewayOriginDown,
                         ::testing::Values(OriginDownCase{"refused", false}, OriginDownCase{"silent", true}),
                         [](const ::testing::TestParamInfo<OriginDownCase>& info) {
                           return std::string(info.param.name);
                         });

// ---- timeouts ----

TEST(TlsGateway, AClientThatNeverSpeaksIsResetAtTheHandshakeTimeout) {
  Rig rig({api_host()});
  ASSERT_TRUE(rig.ok());
  rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  auto spec = devices_client();
  rig.clients.push_back(std::make_unique<TlsClient>(spec));
  TlsClient& client = *rig.clients.back();
  client.silent = true;
  client.connect(*rig.pair.b.tcp, *rig.pair.b.iface);
  ASSERT_TRUE(rig.run_until([&] { return client.connected; })) << rig.describe();
  rig.run_for(1'900'000);  // handshake_timeout_ms is 2000
  EXPECT_FALSE(client.closed);
  EXPECT_EQ(rig.counters().handshake_timeouts.get(), 0u);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(client.reason, CloseReason::reset_by_peer) << name_of(client.reason);
  EXPECT_EQ(rig.counters().handshake_timeouts.get(), 1u);
  EXPECT_EQ(rig.origin_connections(), 0u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  expect_end(records[0], ConnectionEnd::handshake_timeout);
}

TEST(TlsGateway, AnIdleConnectionIsClosedOnBothSides) {
  HostDef host = api_host();
  host.route.idle_timeout_ms = 3'000;
  Rig rig({host});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& client = rig.add_client(devices_client());
  client.send("one message, then silence");
  ASSERT_TRUE(rig.run_until([&] { return origin.conns.size() == 1 && !origin.conns[0]->received.empty(); }))
      << rig.describe();
  rig.run_for(2'500'000);
  EXPECT_FALSE(origin.conns[0]->peer_fin);
  EXPECT_FALSE(client.peer_fin);
  ASSERT_TRUE(rig.run_until([&] { return client.closed && origin.conns[0]->closed && rig.counters().active.get() == 0; }))
      << rig.describe();
  EXPECT_TRUE(origin.conns[0]->peer_fin);
  EXPECT_EQ(origin.conns[0]->reason, CloseReason::closed) << name_of(origin.conns[0]->reason);
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_TRUE(client.close_notify_before_fin);
  EXPECT_EQ(client.reason, CloseReason::closed) << name_of(client.reason);
  EXPECT_EQ(rig.counters().idle_timeouts.get(), 1u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  expect_end(records[0], ConnectionEnd::idle_timeout);
}

// A client that does not answer the idle close is reset after the closing
// grace (GatewayLimits::closing_grace_ms); the origin, which did answer,
// ended cleanly.
TEST(TlsGateway, AClientSilentAfterTheIdleCloseIsResetAfterTheGrace) {
  HostDef host = api_host();
  host.route.idle_timeout_ms = 3'000;
  gateway::GatewayLimits limits;
  limits.closing_grace_ms = 2'000;
  Rig rig({host}, limits);
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& client = rig.add_client(devices_client());
  client.answer_close = false;
  client.send("then silence");
  ASSERT_TRUE(rig.run_until([&] { return client.peer_fin; })) << rig.describe();
  EXPECT_TRUE(client.close_notify_before_fin);
  rig.run_for(1'500'000);
  EXPECT_FALSE(client.closed) << "reset before the grace ended";
  ASSERT_TRUE(rig.run_until([&] { return client.closed && rig.counters().active.get() == 0; })) << rig.describe();
  EXPECT_EQ(client.reason, CloseReason::reset_by_peer) << name_of(client.reason);
  ASSERT_EQ(origin.conns.size(), 1u);
  EXPECT_TRUE(origin.conns[0]->closed);
  EXPECT_EQ(origin.conns[0]->reason, CloseReason::closed) << name_of(origin.conns[0]->reason);
  EXPECT_EQ(rig.counters().idle_timeouts.get(), 1u);
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 1u);
  expect_end(records[0], ConnectionEnd::idle_timeout);
}

// ---- resumption ----

TEST(TlsGateway, AResumedSessionStillCarriesTheClientsIdentity) {
  Rig rig({api_host(ForwardMode::proxy_v2)});
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, 0);
  TlsClient& first = rig.add_client(devices_client());
  first.send("first");
  first.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return first.closed && rig.counters().active.get() == 0; })) << rig.describe();
  ASSERT_NE(first.last_session(), nullptr) << "the gateway issued no ticket";

  ClientSpec again = devices_client();
  again.session = first.last_session();
  TlsClient& second = rig.add_client(again);
  second.send("second");
  second.end_with(TlsClient::Ending::close_notify_and_fin);
  ASSERT_TRUE(rig.run_until([&] { return second.closed && rig.counters().active.get() == 0; })) << rig.describe();

  EXPECT_EQ(rig.counters().handshakes_ok.get(), 2u);
  EXPECT_EQ(rig.counters().resumed.get(), 1u);
  // A resumption is not verified again, so it is not counted again.
  EXPECT_EQ(rig.host(0).verify[static_cast<size_t>(VerifyReason::ok)].get(), 1u);
  ASSERT_EQ(origin.conns.size(), 2u);
  X509Handle leaf = load_certificate("client-devices.pem");
  ASSERT_NE(leaf, nullptr);
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i));
    const std::string& got = origin.conns[i]->received;
    forward::proxy_v2::Decoded header;
    const auto result = forward::proxy_v2::decode(reinterpret_cast<const uint8_t*>(got.data()), got.size(), header);
    ASSERT_EQ(result.error, forward::proxy_v2::DecodeError::kNone);
    EXPECT_EQ(header.ssl_verify, forward::proxy_v2::kVerifyOk);
    EXPECT_EQ(header.ssl_cn, "device-001");
    EXPECT_TRUE(header.ssl_client_cert == der_of(leaf.get()));
    EXPECT_EQ(header.ssl_client & forward::proxy_v2::kClientCertSess, forward::proxy_v2::kClientCertSess);
    // CERT_CONN: the certificate was sent on this very connection.
    EXPECT_EQ((header.ssl_client & forward::proxy_v2::kClientCertConn) != 0, i == 0);
    EXPECT_EQ(got.substr(header.header_length), i == 0 ? "first" : "second");
  }
  const auto records = rig.records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_FALSE(records[0].resumed);
  EXPECT_TRUE(records[1].resumed);
  EXPECT_TRUE(records[1].verified);
  EXPECT_EQ(gateway::text_of(records[1].fingerprint_sha256), sha256_hex(der_of(leaf.get())));
}

// ---- overload ----

TEST(TlsGateway, ClientsBeyondTheSessionPoolAreRefusedAndTheOthersAreUnaffected) {
  gateway::GatewayLimits limits;
  limits.max_sessions = 2;
  Rig rig({api_host()}, limits);
  ASSERT_TRUE(rig.ok());
  Origin& origin = rig.add_origin(kOriginPort, Origin::Mode::stream, 64 * 1024);
  for (uint32_t i = 0; i < 3; ++i) {
    TlsClient& client = rig.add_client(devices_client());
    client.send(pattern(100 + i, 64 * 1024));
    client.end_with(TlsClient::Ending::close_notify_and_fin);
  }
  ASSERT_TRUE(rig.run_until([&] {
    for (const auto& c : rig.clients) {
      if (!c->closed) return false;
    }
    return rig.counters().active.get() == 0;
  })) << rig.describe();

  EXPECT_EQ(rig.counters().overload.get(), 1u);
  EXPECT_EQ(rig.counters().accepted.get(), 2u);
  size_t refused = 0;
  size_t served = 0;
  for (const auto& c : rig.clients) {
    if (!c->handshake_done) {
      ++refused;
      EXPECT_EQ(c->reason, CloseReason::reset_by_peer) << name_of(c->reason);
      continue;
    }
    ++served;
    EXPECT_EQ(c->reason, CloseReason::closed) << name_of(c->reason);
    EXPECT_EQ(c->received.size(), 64u * 1024);
    bool matched = false;
    for (const auto& o : origin.conns) {
      if (o->received == c->to_send) {
        matched = true;
        EXPECT_TRUE(c->received == o->to_send);
      }
    }
    EXPECT_TRUE(matched) << "no origin connection received this client's stream whole";
  }
  EXPECT_EQ(refused, 1u);
  EXPECT_EQ(served, 2u);
  EXPECT_EQ(origin.conns.size(), 2u);
  EXPECT_EQ(rig.records().size(), 2u);
}

}  // namespace
}  // namespace mtlsgw::testing
