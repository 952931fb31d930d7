#pragma once
// A TlsSession (the server, as a worker runs it) wired to an in-process
// OpenSSL client over memory BIOs. Between them sits what TCP would be: the
// bytes the client sent wait in `tcp_in` (the TCP receive buffer; the session
// reads them as two spans, as a wrapped ring shows them) until the session
// takes them, and the session's sink is a send buffer that takes at most
// `budget_per_round` bytes per round (back-pressure).

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/handles.h"
#include "dataplane/tls/ssl_pool.h"
#include "dataplane/tls/tls_session.h"
#include "tls_test_pki.h"

namespace mtlsgw::tls::testing {

using SslSessionHandle = CHandle<SSL_SESSION, SSL_SESSION_free>;

struct ClientOptions {
  std::string sni;          // empty: the ClientHello has no server_name
  std::string verify_name;  // the name the server certificate must carry (default: sni)
  std::vector<std::string> alpn;
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string cert;  // PKI file stem ("client-good"): NAME.pem + NAME.key
  std::string groups;
  SSL_SESSION* session = nullptr;  // offered for resumption
  std::string ciphersuites;        // TLS 1.3 suites offered (empty: OpenSSL's default)
};

class TestClient {
 public:
  TestClient(const TestPki& pki, const ClientOptions& options) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* ctx = ctx_.get();
    SSL_CTX_set_min_proto_version(ctx, options.min_version);
    SSL_CTX_set_max_proto_version(ctx, options.max_version);
    SSL_CTX_load_verify_locations(ctx, pki.path("server-root.pem").c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_set_keylog_callback(ctx, on_keylog);
    if (!options.groups.empty()) SSL_CTX_set1_groups_list(ctx, options.groups.c_str());
    if (!options.ciphersuites.empty()) SSL_CTX_set_ciphersuites(ctx, options.ciphersuites.c_str());
    if (!options.cert.empty()) {
      SSL_CTX_use_certificate_file(ctx, pki.path(options.cert + ".pem").c_str(), SSL_FILETYPE_PEM);
      SSL_CTX_use_PrivateKey_file(ctx, pki.path(options.cert + ".key").c_str(), SSL_FILETYPE_PEM);
    }
    ssl_.reset(SSL_new(ctx));
    SSL* ssl = ssl_.get();
    SSL_set_app_data(ssl, this);
    SSL_set_info_callback(ssl, on_info);
    from_server_ = BIO_new(BIO_s_mem());
    to_server_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, from_server_, to_server_);
    SSL_set_connect_state(ssl);
    if (!options.sni.empty()) SSL_set_tlsext_host_name(ssl, options.sni.c_str());
    const std::string& name = options.verify_name.empty() ? options.sni : options.verify_name;
    if (!name.empty()) SSL_set1_host(ssl, name.c_str());
    if (!options.alpn.empty()) {
      std::string wire;
      for (const std::string& p : options.alpn) wire += static_cast<char>(p.size()) + p;
      SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                          static_cast<unsigned>(wire.size()));
    }
    if (options.session != nullptr) {
      // A copy: OpenSSL's client marks a TLS 1.3 session it resumed as used
      // up, and the tests offer one session several times.
      SslSessionHandle copy(SSL_SESSION_dup(options.session));
      SSL_set_session(ssl, copy.get());
    }
    ERR_clear_error();
  }

  // Freeing an SSL that sent no close_notify marks its session unresumable
  // (OpenSSL keeps TLS 1.0's rule), which would stop the next client from
  // offering it; the tests check the server, not this client's manners.
  ~TestClient() { SSL_set_shutdown(ssl_.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); }
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  SSL* ssl() const { return ssl_.get(); }
  BIO* from_server() const { return from_server_; }
  BIO* to_server() const { return to_server_; }

  // One turn: handshake, then read all there is, then write what is queued
  // (in records of varying sizes).
  void step() {
    if (failed) return;
    ERR_clear_error();
    SSL* ssl = ssl_.get();
    if (!handshake_done) {
      const int r = SSL_do_handshake(ssl);
      if (r == 1) {
        handshake_done = true;
      } else {
        const int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) fail();
        return;
      }
    }
    char buf[5000];
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
        fail();
        return;
      }
      break;
    }
    static constexpr size_t kChunks[] = {1, 700, 16384, 3, 20000, 1500, 16383, 9000};
    while (out_pos < outbox.size()) {
      const size_t chunk = std::min(kChunks[write_turn++ % std::size(kChunks)], outbox.size() - out_pos);
      size_t n = 0;
      if (SSL_write_ex(ssl, outbox.data() + out_pos, chunk, &n) != 1) {
        fail();
        return;
      }
      out_pos += n;
    }
  }

  void fail() {
    failed = true;
    ERR_clear_error();
  }

  bool handshake_done = false;
  bool failed = false;
  bool got_close_notify = false;
  int alert_received = -1;  // last alert other than close_notify
  int alert_sent = -1;
  std::string received;
  std::string outbox;
  size_t out_pos = 0;
  size_t write_turn = 0;
  std::vector<SslSessionHandle> sessions;  // every session the server issued
  TrafficSecret application_secret;        // CLIENT_TRAFFIC_SECRET_0, for forging records

 private:
  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    static_cast<TestClient*>(SSL_get_app_data(ssl))->sessions.emplace_back(session);
    return 1;  // the client keeps the reference
  }
  static void on_keylog(const SSL* ssl, const char* line) {
    const std::string text(line);
    const std::string label = "CLIENT_TRAFFIC_SECRET_0 ";
    if (text.rfind(label, 0) != 0) return;
    const std::string hex = text.substr(text.rfind(' ') + 1);
    auto* self = static_cast<TestClient*>(SSL_get_app_data(ssl));
    TrafficSecret& secret = self->application_secret;
    secret.length = static_cast<uint8_t>(std::min(hex.size() / 2, secret.bytes.size()));
    for (size_t i = 0; i < secret.length; ++i) {
      secret.bytes[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    }
  }
  static void on_info(const SSL* ssl, int where, int ret) {
    if ((where & SSL_CB_ALERT) == 0 || (ret & 0xff) == SSL_AD_CLOSE_NOTIFY) return;
    auto* self = static_cast<TestClient*>(SSL_get_app_data(ssl));
    ((where & SSL_CB_WRITE) != 0 ? self->alert_sent : self->alert_received) = ret & 0xff;
  }

  SslCtxHandle ctx_;
  SslHandle ssl_;
  BIO* from_server_ = nullptr;  // owned by ssl_
  BIO* to_server_ = nullptr;
};

class Link {
 public:
  // With `offload`, the session switches to our record layer when it can.
  Link(SslPool& pool, TestClient& client, const RecordOffload* offload = nullptr) : pool_(pool), client_(client) {
    CiphertextSink sink;
    sink.send = [](void* self, const uint8_t* data, uint32_t len) noexcept -> uint32_t {
      return static_cast<Link*>(self)->sink_send(data, len);
    };
    sink.space = [](void* self) noexcept -> uint32_t { return static_cast<Link*>(self)->sink_space(); };
    sink.context = this;
    started_ = server.start(pool.acquire(), sink, offload);
  }
  ~Link() { pool_.release(server.finish()); }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  bool started() const { return started_; }

  // What moves; a round that changes none of it ends pump().
  auto fingerprint() const {
    return std::make_tuple(to_server_total, to_client_total, server_received.size(), client_.received.size(),
                           server_out_pos, client_.out_pos, server.state(), server.close_notify_sent(),
                           server.peer_closed(), client_.handshake_done, client_.failed, client_.got_close_notify,
                           tcp_in.size());
  }

  // Runs rounds until nothing moves any more.
  void pump(int max_rounds = 100000) {
    auto before = fingerprint();
    for (int round = 0; round < max_rounds; ++round) {
      pump_once();
      const auto after = fingerprint();
      if (after == before) return;
      before = after;
    }
  }

  void pump_once() {
    if (!wire_out.empty()) {
      BIO_write(client_.from_server(), wire_out.data(), static_cast<int>(wire_out.size()));
      wire_out.clear();
    }
    client_.step();
    char buf[16384];
    for (int n; (n = BIO_read(client_.to_server(), buf, sizeof buf)) > 0;) {
      tcp_in.insert(tcp_in.end(), buf, buf + n);
      to_server_total += static_cast<size_t>(n);
    }
    budget_ = budget_per_round;
    if (server.wants_sink() && server.on_sink_writable()) ++handshakes_done;
    receive_all();
    if (server.state() == TlsState::established && server_out_pos < server_outbox.size()) {
      const uint32_t n = server.send(reinterpret_cast<const uint8_t*>(server_outbox.data()) + server_out_pos,
                                     static_cast<uint32_t>(server_outbox.size() - server_out_pos));
      server_out_pos += n;
    }
    if (close_after_outbox && server_out_pos == server_outbox.size() &&
        server.state() == TlsState::established && !server.close_notify_sent()) {
      server.close();
    }
  }

  void receive_all() {
    std::vector<uint8_t> out(read_cap);
    for (;;) {
      // The receive buffer as a wrapped ring shows it: two spans.
      const uint32_t size = static_cast<uint32_t>(tcp_in.size());
      const uint32_t first = size / 3;
      const net::tcp::ByteSpans spans{{tcp_in.data(), tcp_in.data() + first}, {first, size - first}};
      const auto p = server.receive(spans, tcp_in_ends, out.data(), read_cap);
      tcp_in.erase(tcp_in.begin(), tcp_in.begin() + p.ciphertext_taken);
      server_received.append(reinterpret_cast<const char*>(out.data()), p.plaintext);
      if (p.handshake_done) ++handshakes_done;
      if (p.ciphertext_taken == 0 && p.plaintext == 0) break;
    }
  }

  TlsSession server;
  std::vector<uint8_t> tcp_in;
  bool tcp_in_ends = false;  // the client's FIN came after tcp_in
  std::vector<uint8_t> wire_out;
  uint32_t budget_per_round = UINT32_MAX;
  bool space_over_promises = false;  // space() says 1 MiB whatever send takes
  uint32_t read_cap = 4096;
  std::string server_received;
  std::string server_outbox;
  size_t server_out_pos = 0;
  bool close_after_outbox = false;
  int handshakes_done = 0;
  size_t to_server_total = 0;
  size_t to_client_total = 0;
  uint64_t sink_refusals = 0;

 private:
  uint32_t sink_send(const uint8_t* data, uint32_t len) {
    const uint32_t n = std::min(len, budget_);
    if (n < len) ++sink_refusals;
    wire_out.insert(wire_out.end(), data, data + n);
    budget_ -= n;
    to_client_total += n;
    return n;
  }
  uint32_t sink_space() const { return space_over_promises ? (1u << 20) : budget_; }

  SslPool& pool_;
  TestClient& client_;
  bool started_ = false;
  uint32_t budget_ = UINT32_MAX;
};

// Seeded bytes, so that a failing size or cut can be replayed.
inline std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// A host of the test PKI (tls_test_pki.h): its certificate and key are
// STEM.pem and STEM.key; an mTLS host trusts the devices CA with its CRL.
inline TlsHostSpec host_spec(const TestPki& pki, const std::string& name, const std::string& stem, MtlsMode mtls,
                             std::vector<std::string> alpn) {
  TlsHostSpec s;
  s.name = name;
  s.cert_chain_pem = pki.read(stem + ".pem");
  s.key_pem = pki.read(stem + ".key");
  s.mtls = mtls;
  if (mtls != MtlsMode::off) {
    s.client_ca_pems = {pki.path("devices-ca.pem")};
    s.client_crl_pems = {pki.path("devices.crl.pem")};
  }
  s.alpn = std::move(alpn);
  return s;
}

}  // namespace mtlsgw::tls::testing
