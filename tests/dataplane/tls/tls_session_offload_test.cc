// TlsSession with a RecordOffload: after the handshake, records run through
// our IPsec-MB record layer (record_protection.h) with an OpenSSL client as
// the peer, and the SSL goes back to the pool.

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "common/handles.h"
#include "dataplane/tls/ssl_pool.h"
#include "dataplane/tls/tls_session.h"
#include "tls_test_link.h"

namespace mtlsgw::tls {
namespace {

using testing::ClientOptions;
using testing::Link;
using testing::TestClient;
using testing::TestPki;
using testing::random_bytes;

constexpr const char* kAes128 = "TLS_AES_128_GCM_SHA256";
constexpr const char* kAes256 = "TLS_AES_256_GCM_SHA384";
constexpr const char* kChaCha = "TLS_CHACHA20_POLY1305_SHA256";

class TlsSessionOffloadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TestPki();
    if (!pki_->ok()) return;
    const TlsHostSpec api = testing::host_spec(*pki_, "api.example.test", "api", MtlsMode::required,
                                               {"h2", "http/1.1"});
    TlsHostSpec fallback =
        testing::host_spec(*pki_, "fallback.example.test", "fallback", MtlsMode::off, {"http/1.1", "h2"});
    fallback.default_host = true;
    std::string error;
    contexts_ = TlsContexts::build({api, fallback}, TlsContextOptions{}, error).release();
    if (contexts_ == nullptr) ADD_FAILURE() << error;
  }
  static void TearDownTestSuite() {
    delete contexts_;
    contexts_ = nullptr;
    delete pki_;
    pki_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(pki_->ok());
    ASSERT_NE(contexts_, nullptr);
    pool_ = std::make_unique<SslPool>(contexts_->front(), 64);
    mgr_ = make_imb_mgr();
    ASSERT_TRUE(mgr_);
    scratch_.assign(kMaxRecordLength, 0);
    offload_ = RecordOffload{mgr_.get(), scratch_.data()};
  }

  static void expect_offloaded(const Link& link, const TestClient& client) {
    ASSERT_EQ(link.server.state(), TlsState::established)
        << name_of(link.server.failure()) << " alert " << link.server.alert_sent();
    EXPECT_TRUE(client.handshake_done);
    EXPECT_FALSE(client.failed) << "client alert " << client.alert_received;
    EXPECT_EQ(link.handshakes_done, 1);
    EXPECT_TRUE(link.server.offloaded());
  }

  static TestPki* pki_;
  static TlsContexts* contexts_;
  std::unique_ptr<SslPool> pool_;
  ImbMgrHandle mgr_;
  std::vector<uint8_t> scratch_;
  RecordOffload offload_;
};

TestPki* TlsSessionOffloadTest::pki_ = nullptr;
TlsContexts* TlsSessionOffloadTest::contexts_ = nullptr;

// Both AES suites, 1 byte to 64 KiB each way, with and without a
// back-pressured sink and small reads; the client's data leaves in the
// flight of its Finished (TestClient writes right after its handshake).
TEST_F(TlsSessionOffloadTest, DataBothWaysForBothAesSuites) {
  for (const char* suite : {kAes128, kAes256}) {
    for (const size_t size : {size_t{1}, size_t{100}, size_t{16383}, size_t{16384}, size_t{16385}, size_t{65536}}) {
      for (const uint32_t budget : {UINT32_MAX, 3001u, 17u}) {
        SCOPED_TRACE(std::string(suite) + " size " + std::to_string(size) + " budget " + std::to_string(budget));
        TestClient client(*pki_, {.sni = "fallback.example.test", .ciphersuites = suite});
        client.outbox = random_bytes(size, 1);
        Link link(*pool_, client, &offload_);
        link.server_outbox = random_bytes(size, 2);
        link.budget_per_round = budget;
        link.read_cap = budget == 17u ? 777 : 16384;
        link.pump();
        expect_offloaded(link, client);
        EXPECT_STREQ(link.server.cipher_name(), suite);
        EXPECT_TRUE(link.server_received == client.outbox);
        EXPECT_TRUE(client.received == link.server_outbox);
        EXPECT_EQ(link.server_out_pos, link.server_outbox.size());
        EXPECT_TRUE(link.tcp_in.empty());
      }
    }
  }
}

// A request in the same flight as Finished, with the ring wrapping: the
// handshake call hands it back, decrypted, nothing left inside OpenSSL.
TEST_F(TlsSessionOffloadTest, RequestInTheFlightOfFinishedArrivesIntact) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  client.outbox = "GET / HTTP/1.1\r\nHost: fallback.example.test\r\n\r\n";
  Link link(*pool_, client, &offload_);
  link.pump();
  expect_offloaded(link, client);
  EXPECT_EQ(link.server_received, client.outbox);
  EXPECT_TRUE(link.tcp_in.empty());
}

// The facts stay after the SSL went back to the pool.
TEST_F(TlsSessionOffloadTest, TheSslGoesBackToThePoolAndTheFactsStay) {
  TestClient client(*pki_, {.sni = "api.example.test", .alpn = {"http/1.1"}, .cert = "client-good"});
  Link link(*pool_, client, &offload_);
  link.pump();
  expect_offloaded(link, client);
  ASSERT_NE(link.server.ssl(), nullptr);
  const uint32_t idle = pool_->idle();
  pool_->release(link.server.release_ssl());
  EXPECT_EQ(pool_->idle(), idle + 1);
  EXPECT_EQ(link.server.ssl(), nullptr);
  EXPECT_EQ(link.server.release_ssl(), nullptr);
  EXPECT_EQ(link.server.sni(), "api.example.test");
  EXPECT_EQ(link.server.alpn(), "http/1.1");
  EXPECT_STREQ(link.server.version_name(), "TLSv1.3");
  EXPECT_EQ(link.server.version(), TLS1_3_VERSION);
  EXPECT_STREQ(link.server.cipher_name(), kAes128);
  EXPECT_STREQ(link.server.signature_scheme(), "ecdsa_secp256r1_sha256");
  ASSERT_NE(link.server.group_name(), nullptr);
  EXPECT_STREQ(link.server.group_name(), "x25519");
  EXPECT_FALSE(link.server.resumed());
  EXPECT_TRUE(link.server.client_verified());
  ASSERT_NE(link.server.client_certificate(), nullptr);
  EXPECT_EQ(link.server.host(), 0u);
  // Still a working connection, and finish() has nothing more to return.
  client.outbox = "ping";
  link.server_outbox = "pong";
  link.pump();
  EXPECT_EQ(link.server_received, "ping");
  EXPECT_EQ(client.received, "pong");
  EXPECT_TRUE(link.server.release_buffers());
  EXPECT_FALSE(link.server.has_buffered_input());
}

TEST_F(TlsSessionOffloadTest, ServerClosesFirst) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  Link link(*pool_, client, &offload_);
  link.server_outbox = "last words";
  link.close_after_outbox = true;
  link.pump();
  expect_offloaded(link, client);
  EXPECT_TRUE(link.server.close_notify_sent());
  EXPECT_EQ(client.received, "last words");
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_EQ(link.server.send(reinterpret_cast<const uint8_t*>("x"), 1), 0u);
  ASSERT_EQ(SSL_shutdown(client.ssl()), 1);
  link.pump();
  EXPECT_TRUE(link.server.peer_closed());
  EXPECT_EQ(link.server.state(), TlsState::closed);
  EXPECT_EQ(link.server.failure(), TlsFailure::none);
}

TEST_F(TlsSessionOffloadTest, ClientClosesFirstAndDataAfterItIsIgnored) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  client.outbox = "bye";
  Link link(*pool_, client, &offload_);
  link.pump();
  expect_offloaded(link, client);
  ASSERT_EQ(SSL_shutdown(client.ssl()), 0);
  link.pump();
  EXPECT_TRUE(link.server.peer_closed());
  EXPECT_EQ(link.server_received, "bye");
  EXPECT_EQ(link.server.state(), TlsState::established);
  // Whatever follows close_notify is taken and dropped (RFC 8446 6.1).
  link.tcp_in.assign(40, 0x17);
  link.receive_all();
  EXPECT_TRUE(link.tcp_in.empty());
  link.server_outbox = "after yours";
  link.close_after_outbox = true;
  link.pump();
  EXPECT_EQ(client.received, "after yours");
  EXPECT_TRUE(client.got_close_notify);
  EXPECT_EQ(link.server.state(), TlsState::closed);
}

TEST_F(TlsSessionOffloadTest, KeyUpdateFromTheClientWithAndWithoutUpdateRequested) {
  for (const int type : {SSL_KEY_UPDATE_NOT_REQUESTED, SSL_KEY_UPDATE_REQUESTED}) {
    for (const char* suite : {kAes128, kAes256}) {
      SCOPED_TRACE(std::string(suite) + (type == SSL_KEY_UPDATE_REQUESTED ? " requested" : " not requested"));
      TestClient client(*pki_, {.sni = "fallback.example.test", .ciphersuites = suite});
      Link link(*pool_, client, &offload_);
      link.pump();
      expect_offloaded(link, client);
      const size_t before = link.to_client_total;
      ASSERT_EQ(SSL_key_update(client.ssl(), type), 1);
      client.outbox = "after the update";
      link.pump();
      EXPECT_EQ(link.server_received, "after the update");
      // Our KeyUpdate answers only a request (RFC 8446 4.6.3): 27 bytes.
      EXPECT_EQ(link.to_client_total - before, type == SSL_KEY_UPDATE_REQUESTED ? 27u : 0u);
      // Data both ways afterwards, the server's through a tight sink: the
      // client reads it under the key it expects.
      client.outbox += random_bytes(40000, 3);
      link.server_outbox = random_bytes(50000, 4);
      link.budget_per_round = 10;
      link.pump();
      EXPECT_TRUE(link.server_received == client.outbox);
      EXPECT_TRUE(client.received == link.server_outbox);
      EXPECT_EQ(link.server.state(), TlsState::established);
      EXPECT_FALSE(client.failed);
      // A second round of updates keeps working.
      ASSERT_EQ(SSL_key_update(client.ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
      client.outbox += "again";
      link.server_outbox += "and again";
      link.budget_per_round = UINT32_MAX;
      link.pump();
      EXPECT_TRUE(link.server_received == client.outbox);
      EXPECT_TRUE(client.received == link.server_outbox);
    }
  }
}

// One flipped bit in a record: bad_record_mac (RFC 8446 5.2) to the client.
TEST_F(TlsSessionOffloadTest, ATamperedRecordIsBadRecordMac) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  Link link(*pool_, client, &offload_);
  link.pump();
  expect_offloaded(link, client);
  // A copy taken now: the client marks its own unresumable on the alert.
  ASSERT_FALSE(client.sessions.empty());
  SslSessionHandle saved(SSL_SESSION_dup(client.sessions.back().get()));
  client.outbox = "this record is changed on the way";
  client.step();
  char buf[4096];
  const int n = BIO_read(client.to_server(), buf, sizeof buf);
  ASSERT_GT(n, 30);
  buf[10] ^= 0x01;
  link.tcp_in.insert(link.tcp_in.end(), buf, buf + n);
  link.pump();
  EXPECT_EQ(link.server.state(), TlsState::failed);
  EXPECT_EQ(link.server.failure(), TlsFailure::local_alert);
  EXPECT_EQ(link.server.alert_sent(), SSL_AD_BAD_RECORD_MAC);
  EXPECT_TRUE(client.failed);
  EXPECT_EQ(client.alert_received, SSL_AD_BAD_RECORD_MAC);
  EXPECT_TRUE(link.server_received.empty());
  // As after OpenSSL's fatal alerts, the session is no longer resumable.
  TestClient again(*pki_, {.sni = "fallback.example.test", .session = saved.get()});
  Link next(*pool_, again, &offload_);
  next.pump();
  expect_offloaded(next, again);
  EXPECT_FALSE(next.server.resumed());
}

// A record header that is not application_data after the handshake.
TEST_F(TlsSessionOffloadTest, AnUnprotectedRecordIsUnexpectedMessage) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  Link link(*pool_, client, &offload_);
  link.pump();
  expect_offloaded(link, client);
  const uint8_t plain_alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
  link.tcp_in.assign(std::begin(plain_alert), std::end(plain_alert));
  link.pump();
  EXPECT_EQ(link.server.failure(), TlsFailure::local_alert);
  EXPECT_EQ(link.server.alert_sent(), SSL_AD_UNEXPECTED_MESSAGE);
  EXPECT_EQ(client.alert_received, SSL_AD_UNEXPECTED_MESSAGE);
}

// Records the client's OpenSSL would never send, sealed with its own key
// (the first record under CLIENT_TRAFFIC_SECRET_0): each ends the
// connection with the alert RFC 8446 asks for.
TEST_F(TlsSessionOffloadTest, ForgedControlRecordsGetTheirAlerts) {
  struct Case {
    const char* name;
    ContentType type;
    std::vector<uint8_t> body;
    int alert;
  };
  const Case cases[] = {
      {"new_session_ticket", ContentType::handshake, {4, 0, 0, 1, 0}, SSL_AD_UNEXPECTED_MESSAGE},
      {"key_update_bad_request", ContentType::handshake, {24, 0, 0, 1, 2}, SSL_AD_ILLEGAL_PARAMETER},
      {"key_update_long", ContentType::handshake, {24, 0, 0, 2, 0, 0}, SSL_AD_DECODE_ERROR},
      {"key_update_not_last", ContentType::handshake, {24, 0, 0, 1, 0, 24, 0, 0, 1, 0}, SSL_AD_UNEXPECTED_MESSAGE},
      {"alert_of_three_bytes", ContentType::alert, {2, 40, 0}, SSL_AD_DECODE_ERROR},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TestClient client(*pki_, {.sni = "fallback.example.test"});
    Link link(*pool_, client, &offload_);
    link.pump();
    expect_offloaded(link, client);
    ASSERT_EQ(client.application_secret.length, 32);
    RecordProtection forger;
    ASSERT_TRUE(forger.install(*mgr_, RecordCipher::aes_128_gcm_sha256, client.application_secret, 0));
    std::vector<uint8_t> record(sealed_length(c.body.size()));
    const SealResult sealed = forger.seal(*mgr_, c.type, c.body.data(), c.body.size(), record.data(), record.size());
    ASSERT_EQ(sealed.status, RecordStatus::ok);
    link.tcp_in.assign(record.begin(), record.end());
    link.pump();
    EXPECT_EQ(link.server.state(), TlsState::failed);
    EXPECT_EQ(link.server.failure(), TlsFailure::local_alert);
    EXPECT_EQ(link.server.alert_sent(), c.alert);
    EXPECT_EQ(client.alert_received, c.alert);
  }
  // A fatal alert from the client: peer_alert, with its description.
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  Link link(*pool_, client, &offload_);
  link.pump();
  expect_offloaded(link, client);
  RecordProtection forger;
  ASSERT_TRUE(forger.install(*mgr_, RecordCipher::aes_128_gcm_sha256, client.application_secret, 0));
  const uint8_t alert[] = {2, SSL_AD_ACCESS_DENIED};
  std::vector<uint8_t> record(sealed_length(sizeof alert));
  ASSERT_EQ(forger.seal(*mgr_, ContentType::alert, alert, sizeof alert, record.data(), record.size()).status,
            RecordStatus::ok);
  link.tcp_in.assign(record.begin(), record.end());
  link.pump();
  EXPECT_EQ(link.server.state(), TlsState::failed);
  EXPECT_EQ(link.server.failure(), TlsFailure::peer_alert);
  EXPECT_EQ(link.server.alert_received(), SSL_AD_ACCESS_DENIED);
}

TEST_F(TlsSessionOffloadTest, EndOfStreamWithoutCloseNotifyIsTruncation) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  client.outbox = "partial";
  Link link(*pool_, client, &offload_);
  link.pump();
  expect_offloaded(link, client);
  EXPECT_EQ(link.server_received, "partial");
  link.tcp_in_ends = true;
  link.pump();
  EXPECT_EQ(link.server.state(), TlsState::failed);
  EXPECT_EQ(link.server.failure(), TlsFailure::truncated);
}

// A sink that promises more than it takes: the half-sent record is sealed
// again (same sequence number, same bytes) by the next send().
TEST_F(TlsSessionOffloadTest, DataIsByteExactWhenTheSinkTakesLessThanItPromised) {
  TestClient client(*pki_, {.sni = "fallback.example.test"});
  Link link(*pool_, client, &offload_);
  link.server_outbox = random_bytes(256 * 1024, 5);
  link.budget_per_round = 1000;
  link.space_over_promises = true;
  link.pump();
  expect_offloaded(link, client);
  EXPECT_TRUE(client.received == link.server_outbox);
  EXPECT_GT(link.sink_refusals, 0u);
  // Other bytes than the ones owed: refused before any of them goes out.
  TestClient other(*pki_, {.sni = "fallback.example.test"});
  Link owed(*pool_, other, &offload_);
  owed.space_over_promises = true;
  owed.pump();
  ASSERT_TRUE(owed.server.offloaded());
  const std::string data = random_bytes(4000, 6);
  owed.budget_per_round = 100;
  owed.pump_once();
  EXPECT_EQ(owed.server.send(reinterpret_cast<const uint8_t*>(data.data()), 4000), 0u);
  EXPECT_FALSE(owed.server.close());
  const size_t sent = owed.to_client_total;
  std::string changed = data;
  changed[3000] ^= 1;
  owed.budget_per_round = UINT32_MAX;
  owed.pump_once();
  EXPECT_EQ(owed.server.send(reinterpret_cast<const uint8_t*>(changed.data()), 4000), 0u);
  EXPECT_EQ(owed.server.state(), TlsState::failed);
  EXPECT_EQ(owed.server.failure(), TlsFailure::internal);
  EXPECT_EQ(owed.to_client_total, sent);
}

// Resumption: no ticket on a resumed handshake, so our send side starts at
// sequence 0.
TEST_F(TlsSessionOffloadTest, AResumedSessionIsOffloadedToo) {
  SslSessionHandle session;
  {
    TestClient first(*pki_, {.sni = "fallback.example.test"});
    Link link(*pool_, first, &offload_);
    link.pump();
    expect_offloaded(link, first);
    ASSERT_FALSE(first.sessions.empty());
    session.reset(SSL_SESSION_dup(first.sessions.back().get()));
    pool_->release(link.server.release_ssl());
  }
  TestClient second(*pki_, {.sni = "fallback.example.test", .session = session.get()});
  second.outbox = "resumed";
  Link link(*pool_, second, &offload_);
  link.server_outbox = random_bytes(30000, 7);
  link.pump();
  expect_offloaded(link, second);
  EXPECT_TRUE(link.server.resumed());
  EXPECT_EQ(link.server_received, "resumed");
  EXPECT_TRUE(second.received == link.server_outbox);
}

// TLS 1.2 and ChaCha20-Poly1305 stay on OpenSSL, and work as before.
TEST_F(TlsSessionOffloadTest, Tls12AndChaChaStayOnOpenSsl) {
  const ClientOptions tls12{.sni = "fallback.example.test", .max_version = TLS1_2_VERSION};
  const ClientOptions chacha{.sni = "fallback.example.test", .ciphersuites = kChaCha};
  for (const ClientOptions& options : {tls12, chacha}) {
    TestClient client(*pki_, options);
    client.outbox = random_bytes(40000, 8);
    Link link(*pool_, client, &offload_);
    link.server_outbox = random_bytes(40000, 9);
    link.budget_per_round = 3001;
    link.read_cap = 777;
    link.pump();
    ASSERT_EQ(link.server.state(), TlsState::established);
    EXPECT_FALSE(link.server.offloaded());
    EXPECT_EQ(link.server.release_ssl(), nullptr);
    EXPECT_NE(link.server.ssl(), nullptr);
    EXPECT_TRUE(link.server_received == client.outbox);
    EXPECT_TRUE(client.received == link.server_outbox);
    link.close_after_outbox = true;
    link.pump();
    EXPECT_TRUE(client.got_close_notify);
  }
}

}  // namespace
}  // namespace mtlsgw::tls
