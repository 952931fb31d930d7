#pragma once
// A TLS client and server in one thread, joined by an OpenSSL BIO pair (no
// sockets), for tests of what the handshake path does: which alert a client
// hears, what a finished handshake reports. Each side is driven with
// SSL_do_handshake until both finish or one fails.

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string>

#include "common/handles.h"

namespace mtlsgw::testing {

// One SSL_do_handshake: done on success, failed on anything but a wait for
// the peer.
inline void handshake_step(SSL* ssl, bool* done, bool* failed) {
  const int result = SSL_do_handshake(ssl);
  if (result == 1) {
    *done = true;
    return;
  }
  const int error = SSL_get_error(ssl, result);
  if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) *failed = true;
}

class TlsPair {
 public:
  TlsPair(SSL_CTX* client_ctx, SSL_CTX* server_ctx)
      : client_(SSL_new(client_ctx)), server_(SSL_new(server_ctx)) {
    BIO* client_bio = nullptr;
    BIO* server_bio = nullptr;
    EXPECT_EQ(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0), 1);
    SSL_set_bio(client_.get(), client_bio, client_bio);
    SSL_set_bio(server_.get(), server_bio, server_bio);
    SSL_set_connect_state(client_.get());
    SSL_set_accept_state(server_.get());
    SSL_set_app_data(client_.get(), this);
    SSL_set_info_callback(client_.get(), &TlsPair::on_client_info);
  }

  SSL* client() const { return client_.get(); }
  SSL* server() const { return server_.get(); }

  // Drives both sides. When the server fails, the client is made to read once
  // more, which is when it hears the alert (in TLS 1.3 the client has already
  // finished its handshake by the time the server reads its certificate).
  void handshake() {
    for (int round = 0; round < 64 && !(client_done_ && server_done_); ++round) {
      if (!client_done_ && !client_failed_) step(client_.get(), &client_done_, &client_failed_);
      if (!server_done_ && !server_failed_) step(server_.get(), &server_done_, &server_failed_);
      if (client_failed_ || server_failed_) break;
    }
    if (server_failed_ && !client_failed_) {
      if (client_done_) {
        char byte;
        if (SSL_read(client_.get(), &byte, 1) <= 0) client_failed_ = true;
      } else {
        step(client_.get(), &client_done_, &client_failed_);
      }
    }
    ERR_clear_error();
  }

  bool client_done() const { return client_done_ && !client_failed_; }
  bool server_done() const { return server_done_; }
  bool server_failed() const { return server_failed_; }
  // The description byte of the last alert the client received, -1 if none.
  int client_alert() const { return client_alert_; }

 private:
  static void step(SSL* ssl, bool* done, bool* failed) { handshake_step(ssl, done, failed); }

  static void on_client_info(const SSL* ssl, int where, int value) {
    if ((where & SSL_CB_READ_ALERT) == 0) return;
    static_cast<TlsPair*>(SSL_get_app_data(ssl))->client_alert_ = value & 0xff;
  }

  SslHandle client_;
  SslHandle server_;
  bool client_done_ = false;
  bool client_failed_ = false;
  bool server_done_ = false;
  bool server_failed_ = false;
  int client_alert_ = -1;
};

}  // namespace mtlsgw::testing
