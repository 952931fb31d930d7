// The gateway's own TLS costs (issue 5), through our code: TlsContexts and
// the per-worker trust as GatewayTables builds them for a host of the
// gateway's configuration (api.example.test, ECDSA P-256, mtls required,
// devices CA with its CRLs, stateful TLS 1.3 tickets, one ticket per full
// handshake, none on resumption), SslPool, TlsSession with its transport BIO
// and the HandshakeVerify the gateway attaches (ClientVerifier through the
// verify hook). The client is an OpenSSL client with default settings (as
// curl or perf/loadgen would be) and the test PKI's client-devices
// certificate, in the same thread over memory BIOs; TCP is two byte vectors.
//
// - BM_Handshake_Full: one iteration is one connection's life on the
//   server: SslPool::acquire, TlsSession::start, the full TLS 1.3 mTLS
//   handshake (client chain verified with CRLs), the NewSessionTicket, our
//   close_notify, finish() and SslPool::release (SSL_clear). Counters per
//   handshake: server_us (CPU time, CLOCK_THREAD_CPUTIME_ID, read around the
//   server's calls only), client_us (the same for the client, including its
//   SSL_new and verifying our certificate), crypto_us (the ceiling of
//   perf/support/handshake_crypto.h, measured at start-up in this process)
//   and non_crypto_us = server_us - crypto_us: what the handshake costs
//   beyond its public-key cryptography. server_us splits into hello_us (the
//   receive() that takes the ClientHello and writes our flight up to
//   Finished: the key share and our signature), finish_us (the receive()
//   calls after it: the client's Certificate, CertificateVerify and
//   Finished, chain verification, the ticket) and lifecycle_us (acquire,
//   start, close_notify, release).
// - BM_Handshake_Resumed: the same connection resuming a stateful ticket
//   (psk_dhe_ke with X25519: a resumption still pays one key share); the
//   counters against the resumed ceiling.
// - BM_RecordEncrypt/<bytes>: TlsSession::send of that many bytes on an
//   established connection: one record, encrypted by OpenSSL with the suite
//   the gateway negotiates with this client (the label names it), into the
//   sink; the "client" drops the bytes unread.
// - BM_RecordDecrypt/<bytes>: TlsSession::receive of one record the client
//   sealed (made in batches outside the timed part) into a buffer of that
//   size.
// bytes_per_second is computed on CPU time, as everywhere in Google
// Benchmark unless UseRealTime.

#include <benchmark/benchmark.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "common/handles.h"
#include "dataplane/gateway/gateway_tables.h"
#include "dataplane/tls/client_verify.h"
#include "dataplane/tls/ssl_pool.h"
#include "dataplane/tls/tls_session.h"
#include "support/bench_pki.h"
#include "support/handshake_crypto.h"

namespace {

namespace tls = mtlsgw::tls;
namespace gateway = mtlsgw::gateway;
using mtlsgw::SslCtxHandle;
using mtlsgw::SslHandle;
using mtlsgw::SslSessionHandle;

constexpr const char* kHost = "api.example.test";

bool g_failed = false;
std::string g_pki;
mtlsgw::perf::CryptoCeiling g_ceiling;

void fail(benchmark::State& state, const std::string& message) {
  g_failed = true;
  state.SkipWithError(message.c_str());
}

uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Adds the thread CPU time of its scope to a total.
class CpuScope {
 public:
  explicit CpuScope(uint64_t& total) : total_(total), start_(thread_cpu_ns()) {}
  ~CpuScope() { total_ += thread_cpu_ns() - start_; }
  CpuScope(const CpuScope&) = delete;
  CpuScope& operator=(const CpuScope&) = delete;

 private:
  uint64_t& total_;
  uint64_t start_;
};

// One worker's TLS objects for the single host, as GatewayTables builds them
// from the control side's GatewaySpec (control/gateway_spec.cc).
struct Worker {
  std::unique_ptr<gateway::GatewayTables> tables;
  std::unique_ptr<tls::SslPool> pool;

  bool build(const std::string& pki, std::string& error) {
    tls::CaSource devices;
    if (!tls::load_ca_source("devices", pki + "/devices-ca.pem", pki + "/devices.crl.pem", &devices, &error)) {
      return false;
    }
    tls::TrustOptions trust_options;
    trust_options.max_intermediates = 3;  // docs/config.md's default max_depth 4
    std::shared_ptr<const tls::TrustStore> trust = tls::TrustStore::build({devices}, trust_options, &error);
    if (!trust) return false;
    gateway::GatewaySpec spec;
    gateway::GatewayHost host;
    host.tls.name = kHost;
    if (!tls::read_pem_file(pki + "/server-api-ecdsa.pem", &host.tls.cert_chain_pem, &error) ||
        !tls::read_pem_file(pki + "/server-api-ecdsa.key", &host.tls.key_pem, &error)) {
      return false;
    }
    host.tls.mtls = tls::MtlsMode::required;
    host.tls.default_host = true;
    host.trust = trust;
    spec.hosts.push_back(std::move(host));
    tables = gateway::GatewayTables::build(spec, error);
    if (!tables) return false;
    pool = std::make_unique<tls::SslPool>(tables->contexts().front(), 64);
    pool->prefill(4);
    return true;
  }
};

// The client's configuration: defaults plus our server's CA, the device
// certificate (leaf + intermediate, as a device sends it) and a session
// callback that keeps the first ticket when asked to.
struct ClientConfig {
  SslCtxHandle ctx;
  SslSessionHandle kept;
  bool keep_ticket = false;
  uint64_t tickets = 0;

  bool build(const std::string& pki) {
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* c = ctx.get();
    if (c == nullptr || SSL_CTX_load_verify_locations(c, (pki + "/server-ca.pem").c_str(), nullptr) != 1 ||
        SSL_CTX_use_certificate_chain_file(c, (pki + "/client-devices.chain.pem").c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(c, (pki + "/client-devices.key").c_str(), SSL_FILETYPE_PEM) != 1) {
      return false;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_app_data(c, this);
    SSL_CTX_sess_set_new_cb(c, [](SSL* ssl, SSL_SESSION* session) -> int {
      auto* self = static_cast<ClientConfig*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
      ++self->tickets;
      if (!self->keep_ticket || self->kept) return 0;
      self->kept.reset(session);
      return 1;  // the reference is ours
    });
    return true;
  }
};

// One connection: our TlsSession on one side, an OpenSSL client on the
// other, two byte vectors between them.
class Connection {
 public:
  Connection(Worker& worker, ClientConfig& client_config) : worker_(worker), client_config_(client_config) {
    to_client_.reserve(1 << 16);
    to_server_.reserve(1 << 16);
  }
  ~Connection() {
    if (session_.ssl() != nullptr) worker_.pool->release(session_.finish());
    forget_client();
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Both sides' handshakes, the ticket if one comes. `offer`: a session to
  // resume (a copy is offered: OpenSSL's client uses a TLS 1.3 ticket once).
  // "" on success, else what went wrong.
  std::string open(SSL_SESSION* offer) {
    {
      CpuScope server(server_ns);
      SSL* ssl = worker_.pool->acquire();
      verify_ = tls::HandshakeVerify{};
      const tls::CiphertextSink sink{sink_send, sink_space, this};
      if (!session_.start(ssl, sink) || !tls::attach_handshake_verify(ssl, &verify_)) return "server start failed";
    }
    {
      CpuScope client(client_ns);
      client_.reset(SSL_new(client_config_.ctx.get()));
      SSL* c = client_.get();
      client_in_ = BIO_new(BIO_s_mem());
      client_out_ = BIO_new(BIO_s_mem());
      SSL_set_bio(c, client_in_, client_out_);
      SSL_set_connect_state(c);
      SSL_set_tlsext_host_name(c, kHost);
      SSL_set1_host(c, kHost);
      if (offer != nullptr) {
        SslSessionHandle copy(SSL_SESSION_dup(offer));
        SSL_set_session(c, copy.get());
      }
    }
    bool client_done = false;
    for (int round = 0; round < 8; ++round) {
      {
        CpuScope client(client_ns);
        ERR_clear_error();
        if (!client_done) {
          const int r = SSL_do_handshake(client_.get());
          if (r == 1) {
            client_done = true;
          } else if (SSL_get_error(client_.get(), r) != SSL_ERROR_WANT_READ) {
            return "client handshake failed: " + openssl_error();
          }
        }
        if (client_done && !client_read()) return "client read failed: " + openssl_error();
        client_to_server();
      }
      {
        uint64_t& phase = round == 0 ? hello_ns : finish_ns;
        const uint64_t before = server_ns;
        server_receive(nullptr, 0);
        phase += server_ns - before;
      }
      if (session_.state() != tls::TlsState::handshaking && session_.state() != tls::TlsState::established) {
        return std::string("server failed: ") + (session_.error_reason() ? session_.error_reason() : "?");
      }
      server_to_client();
      if (client_done && session_.state() == tls::TlsState::established && to_client_.empty() &&
          BIO_ctrl_pending(client_in_) == 0) {
        // Let the client take the ticket that came with the last flight.
        CpuScope client(client_ns);
        if (!client_read()) return "client read failed: " + openssl_error();
        return "";
      }
    }
    return "handshake did not finish";
  }

  // close_notify from us, the client reads it, the SSL goes back to the pool.
  std::string close() {
    {
      CpuScope server(server_ns);
      if (!session_.close() || !session_.close_notify_sent()) return "close_notify not sent";
    }
    server_to_client();
    {
      CpuScope client(client_ns);
      char buf[64];
      size_t n = 0;
      const int r = SSL_read_ex(client_.get(), buf, sizeof buf, &n);
      if (r == 1 || SSL_get_error(client_.get(), r) != SSL_ERROR_ZERO_RETURN) return "client saw no close_notify";
      forget_client();
    }
    CpuScope server(server_ns);
    worker_.pool->release(session_.finish());
    return "";
  }

  // The server takes what the client sent; plaintext (if any) into out.
  uint32_t server_receive(uint8_t* out, uint32_t cap) {
    CpuScope server(server_ns);
    return receive_untimed(out, cap);
  }
  uint32_t receive_untimed(uint8_t* out, uint32_t cap) {
    const uint32_t size = static_cast<uint32_t>(to_server_.size() - to_server_pos_);
    const mtlsgw::net::tcp::ByteSpans spans{{to_server_.data() + to_server_pos_, nullptr}, {size, 0}};
    const tls::TlsSession::Progress p = session_.receive(spans, false, out, cap);
    to_server_pos_ += p.ciphertext_taken;
    if (to_server_pos_ == to_server_.size()) {
      to_server_.clear();
      to_server_pos_ = 0;
    }
    return p.plaintext;
  }

  // What the client wrote moves to the server's "TCP receive buffer".
  void client_to_server() {
    char buf[16384];
    for (int n; (n = BIO_read(client_out_, buf, sizeof buf)) > 0;) to_server_.insert(to_server_.end(), buf, buf + n);
  }
  void server_to_client() {
    if (!to_client_.empty()) BIO_write(client_in_, to_client_.data(), static_cast<int>(to_client_.size()));
    to_client_.clear();
  }

  tls::TlsSession& session() { return session_; }
  SSL* client() { return client_.get(); }
  std::vector<uint8_t>& to_client() { return to_client_; }
  bool verified() const { return verify_.verdict.ok() || (session_.resumed() && session_.client_verified()); }

  uint64_t server_ns = 0;
  uint64_t client_ns = 0;
  uint64_t hello_ns = 0;   // part of server_ns
  uint64_t finish_ns = 0;  // part of server_ns

 private:
  // A client that sent no close_notify: freeing it as it is would mark its
  // session unresumable (OpenSSL keeps TLS 1.0's rule), and that session is
  // the ticket the resumption benchmark offers. Its manners are not measured.
  void forget_client() {
    if (client_) SSL_set_shutdown(client_.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    client_.reset();
  }

  // Application data and tickets; false on an error.
  bool client_read() {
    char buf[16384];
    for (;;) {
      size_t n = 0;
      const int r = SSL_read_ex(client_.get(), buf, sizeof buf, &n);
      if (r == 1) continue;
      return SSL_get_error(client_.get(), r) == SSL_ERROR_WANT_READ;
    }
  }
  static std::string openssl_error() {
    char line[256];
    ERR_error_string_n(ERR_peek_last_error(), line, sizeof line);
    return line;
  }
  static uint32_t sink_send(void* self, const uint8_t* data, uint32_t len) noexcept {
    auto& out = static_cast<Connection*>(self)->to_client_;
    out.insert(out.end(), data, data + len);
    return len;
  }
  static uint32_t sink_space(void*) noexcept { return 1u << 20; }

  Worker& worker_;
  ClientConfig& client_config_;
  tls::TlsSession session_;
  tls::HandshakeVerify verify_;
  SslHandle client_;
  BIO* client_in_ = nullptr;  // owned by client_
  BIO* client_out_ = nullptr;
  std::vector<uint8_t> to_client_;
  std::vector<uint8_t> to_server_;
  size_t to_server_pos_ = 0;
};

Worker* g_worker = nullptr;

struct Totals {
  uint64_t server_ns = 0;
  uint64_t client_ns = 0;
  uint64_t hello_ns = 0;
  uint64_t finish_ns = 0;
};

void report(benchmark::State& state, const Totals& t, double crypto_us) {
  const double n = static_cast<double>(state.iterations());
  const double server_us = t.server_ns / 1000.0 / n;
  state.counters["server_us"] = server_us;
  state.counters["hello_us"] = t.hello_ns / 1000.0 / n;
  state.counters["finish_us"] = t.finish_ns / 1000.0 / n;
  state.counters["lifecycle_us"] = (t.server_ns - t.hello_ns - t.finish_ns) / 1000.0 / n;
  state.counters["client_us"] = t.client_ns / 1000.0 / n;
  state.counters["crypto_us"] = crypto_us;
  state.counters["non_crypto_us"] = server_us - crypto_us;
}

void run_handshakes(benchmark::State& state, bool resume) {
  ClientConfig client;
  if (!client.build(g_pki)) return fail(state, "client context");
  SslSessionHandle ticket;
  if (resume) {
    client.keep_ticket = true;
    Connection first(*g_worker, client);
    std::string error = first.open(nullptr);
    if (error.empty()) error = first.close();
    if (!error.empty()) return fail(state, "first handshake: " + error);
    if (!client.kept) return fail(state, "no ticket from the full handshake");
    ticket = std::move(client.kept);
  }
  const uint64_t tickets_before = client.tickets;
  Totals totals;
  for (auto _ : state) {
    Connection c(*g_worker, client);
    std::string error = c.open(ticket.get());
    if (error.empty() && c.session().resumed() != resume) error = resume ? "not resumed" : "resumed";
    if (error.empty() && !c.verified()) error = "client certificate not verified";
    if (error.empty()) error = c.close();
    if (!error.empty()) return fail(state, error);
    totals.server_ns += c.server_ns;
    totals.client_ns += c.client_ns;
    totals.hello_ns += c.hello_ns;
    totals.finish_ns += c.finish_ns;
  }
  // One ticket per full handshake, none on resumption (TlsContextOptions).
  const uint64_t tickets = client.tickets - tickets_before;
  if (tickets != (resume ? 0 : static_cast<uint64_t>(state.iterations()))) {
    return fail(state, "unexpected ticket count " + std::to_string(tickets));
  }
  report(state, totals, resume ? g_ceiling.resumed_us() : g_ceiling.full_us());
}

void BM_Handshake_Full(benchmark::State& state) { run_handshakes(state, false); }
void BM_Handshake_Resumed(benchmark::State& state) { run_handshakes(state, true); }

// An established connection for the record benchmarks.
struct Established {
  ClientConfig client;
  std::unique_ptr<Connection> c;

  std::string open() {
    if (!client.build(g_pki)) return "client context";
    c = std::make_unique<Connection>(*g_worker, client);
    return c->open(nullptr);
  }
};

void BM_RecordEncrypt(benchmark::State& state) {
  const uint32_t len = static_cast<uint32_t>(state.range(0));
  Established e;
  if (const std::string error = e.open(); !error.empty()) return fail(state, error);
  tls::TlsSession& session = e.c->session();
  std::vector<uint8_t>& wire = e.c->to_client();
  const std::vector<uint8_t> data(len, 0x61);
  // One record first, checked: header, plaintext, inner type and tag (RFC
  // 8446 5.2), and the client reads it back. The timed ones are dropped
  // unread (the client's record numbers then fall behind, which is fine).
  if (session.send(data.data(), len) != len || wire.size() != len + tls::TlsSession::kRecordOverhead - 8) {
    return fail(state, "record of " + std::to_string(wire.size()) + " bytes");
  }
  e.c->server_to_client();
  std::vector<char> back(len);
  size_t n = 0;
  if (SSL_read_ex(e.c->client(), back.data(), len, &n) != 1 || n != len) return fail(state, "client cannot read it");
  for (auto _ : state) {
    if (session.send(data.data(), len) != len) return fail(state, "send took less");
    wire.clear();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * len);
  state.SetLabel(session.cipher_name());
}

void BM_RecordDecrypt(benchmark::State& state) {
  const uint32_t len = static_cast<uint32_t>(state.range(0));
  constexpr int kBatch = 128;
  Established e;
  if (const std::string error = e.open(); !error.empty()) return fail(state, error);
  const std::vector<uint8_t> data(len, 0x62);
  std::vector<uint8_t> out(len);
  int left = 0;
  for (auto _ : state) {
    if (left == 0) {
      state.PauseTiming();
      for (int i = 0; i < kBatch; ++i) {
        size_t n = 0;
        if (SSL_write_ex(e.c->client(), data.data(), len, &n) != 1 || n != len) return fail(state, "client write");
      }
      e.c->client_to_server();
      left = kBatch;
      state.ResumeTiming();
    }
    if (e.c->receive_untimed(out.data(), len) != len) return fail(state, "record not decrypted whole");
    --left;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * len);
  state.SetLabel(e.c->session().cipher_name());
}

}  // namespace

BENCHMARK(BM_Handshake_Full)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Handshake_Resumed)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RecordEncrypt)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(16384);
BENCHMARK(BM_RecordDecrypt)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(16384);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string error;
  g_pki = mtlsgw::perf::find_test_pki(error);
  std::unique_ptr<mtlsgw::perf::HandshakeCrypto> crypto =
      g_pki.empty() ? nullptr : mtlsgw::perf::HandshakeCrypto::load(g_pki, error);
  Worker worker;
  if (!crypto || !worker.build(g_pki, error)) {
    std::fprintf(stderr, "tls_bench: %s\n", error.c_str());
    return 1;
  }
  g_worker = &worker;
  // The ceilings non_crypto_us subtracts, measured now in this process.
  g_ceiling = crypto->measure(7, 40);
  if (g_ceiling.full_us() <= 0) {
    std::fprintf(stderr, "tls_bench: the crypto ceiling could not be measured\n");
    return 1;
  }
  char line[160];
  std::snprintf(line, sizeof line, "x25519 %.1f + sign %.1f + verify %.1f + chain %.1f = %.1f us (resumed %.1f)",
                g_ceiling.x25519_us, g_ceiling.sign_us, g_ceiling.verify_us, g_ceiling.chain_us, g_ceiling.full_us(),
                g_ceiling.resumed_us());
  benchmark::AddCustomContext("crypto_ceiling", line);
  benchmark::AddCustomContext("openssl", OpenSSL_version(OPENSSL_VERSION));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
