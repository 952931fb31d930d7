#pragma once
// An OpenSSL client and server over memory BIOs, configured as the gateway
// configures its server (tls_context.cc: TLS 1.3, SSL_OP_NO_TICKET with one
// stateful ticket, client certificates required), with the application
// traffic secrets taken from the keylog callback: the record layer's tests
// replace either side's records with ours.

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/handles.h"
#include "dataplane/tls/record_keys.h"
#include "tls_test_pki.h"

namespace mtlsgw::tls::testing {

using Bytes = std::vector<uint8_t>;

struct KeylogSecrets {
  TrafficSecret client_application;  // CLIENT_TRAFFIC_SECRET_0
  TrafficSecret server_application;  // SERVER_TRAFFIC_SECRET_0
};

inline bool parse_hex(const char* hex, size_t hex_len, TrafficSecret& out) {
  if (hex_len % 2 != 0 || hex_len / 2 > out.bytes.size()) return false;
  for (size_t i = 0; i < hex_len / 2; ++i) {
    const int hi = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[2 * i]));
    const int lo = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[2 * i + 1]));
    if (hi < 0 || lo < 0) return false;
    out.bytes[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  out.length = static_cast<uint8_t>(hex_len / 2);
  return true;
}

struct Endpoint {
  SslCtxHandle ctx;
  SslHandle ssl;
  BIO* in = nullptr;   // what this side reads (owned by ssl)
  BIO* out = nullptr;  // what this side wrote (owned by ssl)
  KeylogSecrets secrets;
  bool done = false;
  Bytes final_flight;  // what it wrote in the SSL_do_handshake call that returned 1

  // Everything written and not yet taken.
  Bytes take_output() {
    Bytes bytes(static_cast<size_t>(BIO_ctrl_pending(out)));
    if (!bytes.empty()) BIO_read(out, bytes.data(), static_cast<int>(bytes.size()));
    return bytes;
  }
  void give_input(const Bytes& bytes) {
    if (!bytes.empty()) BIO_write(in, bytes.data(), static_cast<int>(bytes.size()));
  }
  size_t input_pending() const { return static_cast<size_t>(BIO_ctrl_pending(in)); }

  bool write(const Bytes& data) {
    size_t written = 0;
    return SSL_write_ex(ssl.get(), data.data(), data.size(), &written) == 1 && written == data.size();
  }
  // Reads until OpenSSL wants more input; false on an error.
  bool read_all(Bytes& into) {
    uint8_t buf[20000];
    for (;;) {
      size_t n = 0;
      if (SSL_read_ex(ssl.get(), buf, sizeof buf, &n) == 1) {
        into.insert(into.end(), buf, buf + n);
        continue;
      }
      const int e = SSL_get_error(ssl.get(), 0);
      ERR_clear_error();
      return e == SSL_ERROR_WANT_READ;
    }
  }

 private:
  friend class PeerPair;
  static void on_keylog(const SSL* ssl, const char* line) {
    auto* self = static_cast<Endpoint*>(SSL_get_app_data(ssl));
    const char* space1 = std::strchr(line, ' ');
    const char* space2 = space1 != nullptr ? std::strchr(space1 + 1, ' ') : nullptr;
    if (space2 == nullptr) return;
    const std::string label(line, space1);
    const char* hex = space2 + 1;
    if (label == "CLIENT_TRAFFIC_SECRET_0") parse_hex(hex, std::strlen(hex), self->secrets.client_application);
    if (label == "SERVER_TRAFFIC_SECRET_0") parse_hex(hex, std::strlen(hex), self->secrets.server_application);
  }
};

class PeerPair {
 public:
  // suite: "TLS_AES_128_GCM_SHA256" or "TLS_AES_256_GCM_SHA384".
  PeerPair(const TestPki& pki, const char* suite) {
    server.ctx.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX* s = server.ctx.get();
    SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION);
    SSL_CTX_set_options(s, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(s, 1);
    SSL_CTX_set_session_id_context(s, reinterpret_cast<const unsigned char*>("record"), 6);
    SSL_CTX_set_ciphersuites(s, suite);
    SSL_CTX_use_certificate_chain_file(s, pki.path("api.pem").c_str());
    SSL_CTX_use_PrivateKey_file(s, pki.path("api.key").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_load_verify_locations(s, pki.path("devices-ca.pem").c_str(), nullptr);
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_keylog_callback(s, Endpoint::on_keylog);

    client.ctx.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* c = client.ctx.get();
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_ciphersuites(c, suite);
    SSL_CTX_load_verify_locations(c, pki.path("server-root.pem").c_str(), nullptr);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_use_certificate_file(c, pki.path("client-good.pem").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(c, pki.path("client-good.key").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_set_keylog_callback(c, Endpoint::on_keylog);

    for (Endpoint* e : {&server, &client}) {
      e->ssl.reset(SSL_new(e->ctx.get()));
      SSL_set_app_data(e->ssl.get(), e);
      e->in = BIO_new(BIO_s_mem());
      e->out = BIO_new(BIO_s_mem());
      SSL_set_bio(e->ssl.get(), e->in, e->out);
    }
    SSL_set_accept_state(server.ssl.get());
    SSL_set_connect_state(client.ssl.get());
    SSL_set_tlsext_host_name(client.ssl.get(), "api.example.test");
  }

  // Runs both handshakes to completion. The client's last flight (its
  // Finished) is left in the server's input, then the server completes;
  // what the server writes after that (its final_flight) stays in its
  // output for the test to route.
  bool handshake() {
    bool wrote_early = false;
    for (int round = 0; round < 20 && !(client.done && server.done); ++round) {
      if (!step(client)) return false;
      if (client.done && !wrote_early && !client_data_with_finished.empty()) {
        if (!client.write(client_data_with_finished)) return false;
        wrote_early = true;
      }
      server.give_input(client.take_output());
      if (!step(server)) return false;
      if (!server.done) client.give_input(server.take_output());
    }
    return client.done && server.done;
  }

  Endpoint server;
  Endpoint client;
  // Application data the client writes as soon as its handshake is done,
  // so that it reaches the server in one flight with the client's Finished.
  Bytes client_data_with_finished;

 private:
  static bool step(Endpoint& e) {
    if (e.done) return true;
    const int r = SSL_do_handshake(e.ssl.get());
    if (r == 1) {
      e.done = true;
      // A copy: the bytes stay in the output for the test to route.
      e.final_flight = e.take_output();
      if (!e.final_flight.empty()) BIO_write(e.out, e.final_flight.data(), static_cast<int>(e.final_flight.size()));
      return true;
    }
    const int error = SSL_get_error(e.ssl.get(), r);
    ERR_clear_error();
    return error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE;
  }
};

}  // namespace mtlsgw::tls::testing
