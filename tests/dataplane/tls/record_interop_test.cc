// Our record layer against OpenSSL as the peer. We take the server's place
// after OpenSSL's server finished the handshake (what the gateway will do):
// `rx` opens what the OpenSSL client writes with SSL_write, `tx` seals what
// it reads with SSL_read.

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <random>
#include <vector>

#include "dataplane/tls/record_protection.h"
#include "record_test_peers.h"

namespace mtlsgw::tls {
namespace {

using testing::Bytes;
using testing::PeerPair;
using testing::TestPki;

struct Suite {
  const char* name;
  RecordCipher cipher;
};
constexpr Suite kSuites[] = {
    {"TLS_AES_128_GCM_SHA256", RecordCipher::aes_128_gcm_sha256},
    {"TLS_AES_256_GCM_SHA384", RecordCipher::aes_256_gcm_sha384},
};

Bytes pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (uint8_t& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

std::vector<Bytes> split_records(const Bytes& stream) {
  std::vector<Bytes> records;
  size_t pos = 0;
  while (pos < stream.size()) {
    const RecordBoundary b = find_record(stream.data() + pos, stream.size() - pos);
    if (b.status != RecordStatus::ok) {
      ADD_FAILURE() << "framing: " << name_of(b.status);
      break;
    }
    records.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                         stream.begin() + static_cast<std::ptrdiff_t>(pos + b.length));
    pos += b.length;
  }
  return records;
}

class RecordInteropTest : public ::testing::TestWithParam<Suite> {
 protected:
  static void SetUpTestSuite() { pki_ = new TestPki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(pki_->ok());
    ASSERT_NE(mgr_, nullptr);
    pair_ = std::make_unique<PeerPair>(*pki_, GetParam().name);
  }

  // Handshake, then our layer takes over the server by the switch-over rule
  // of record_protection.h: send side at 1 (after the NewSessionTicket,
  // which goes to the client first), receive side at 0.
  void take_over() {
    ASSERT_TRUE(pair_->handshake());
    ASSERT_EQ(pair_->server.secrets.client_application.length, secret_length(GetParam().cipher));
    ASSERT_TRUE(rx_.install(*mgr_, GetParam().cipher, pair_->server.secrets.client_application, 0));
    ASSERT_TRUE(tx_.install(*mgr_, GetParam().cipher, pair_->server.secrets.server_application, 1));
    pair_->client.give_input(pair_->server.take_output());
    Bytes nothing;
    ASSERT_TRUE(pair_->client.read_all(nothing));  // the ticket
    EXPECT_TRUE(nothing.empty());
  }

  // Our records, sealed and handed to the OpenSSL client.
  void send(ContentType type, const Bytes& data) {
    Bytes out(sealed_length(data.size()));
    const SealResult r = tx_.seal(*mgr_, type, data.data(), data.size(), out.data(), out.size());
    ASSERT_EQ(r.status, RecordStatus::ok);
    out.resize(r.length);
    pair_->client.give_input(out);
  }

  // Opens every record the OpenSSL client wrote; returns the application
  // data, and the handshake and alert messages in `others`.
  Bytes receive(std::vector<std::pair<ContentType, Bytes>>* others = nullptr) {
    Bytes data;
    for (Bytes& record : split_records(pair_->client.take_output())) {
      const OpenResult r = rx_.open_in_place(*mgr_, record.data(), record.size());
      EXPECT_EQ(r.status, RecordStatus::ok) << name_of(r.status);
      if (r.status != RecordStatus::ok) break;
      const auto body = record.begin() + kRecordHeaderLength;
      if (r.type == ContentType::application_data) {
        data.insert(data.end(), body, body + static_cast<std::ptrdiff_t>(r.length));
      } else if (others != nullptr) {
        others->emplace_back(r.type, Bytes(body, body + static_cast<std::ptrdiff_t>(r.length)));
      }
    }
    return data;
  }

  static TestPki* pki_;
  ImbMgrHandle mgr_ = make_imb_mgr();
  std::unique_ptr<PeerPair> pair_;
  RecordProtection rx_;
  RecordProtection tx_;
};

TestPki* RecordInteropTest::pki_ = nullptr;

// The switch-over rule: when the OpenSSL server's SSL_do_handshake returns
// 1, it has written exactly one record under SERVER_TRAFFIC_SECRET_0 (the
// NewSessionTicket, sequence 0) and read none under CLIENT_TRAFFIC_SECRET_0.
TEST_P(RecordInteropTest, SwitchOverSequenceNumbers) {
  ASSERT_TRUE(pair_->handshake());
  const std::vector<Bytes> written = split_records(pair_->server.final_flight);
  ASSERT_EQ(written.size(), 1u);
  RecordProtection as_client;
  ASSERT_TRUE(as_client.install(*mgr_, GetParam().cipher, pair_->client.secrets.server_application, 0));
  Bytes ticket = written[0];
  const OpenResult r = as_client.open_in_place(*mgr_, ticket.data(), ticket.size());
  ASSERT_EQ(r.status, RecordStatus::ok);
  EXPECT_EQ(r.type, ContentType::handshake);
  EXPECT_EQ(ticket[kRecordHeaderLength], 4);  // HandshakeType new_session_ticket
  // Both sides logged the same secrets.
  EXPECT_EQ(pair_->client.secrets.server_application.bytes, pair_->server.secrets.server_application.bytes);
  EXPECT_EQ(pair_->client.secrets.client_application.bytes, pair_->server.secrets.client_application.bytes);

  // Nothing of the client's is left unread, in the BIO or inside OpenSSL.
  EXPECT_EQ(pair_->server.input_pending(), 0u);
  EXPECT_EQ(SSL_has_pending(pair_->server.ssl.get()), 0);

  take_over();
  ASSERT_TRUE(pair_->client.write(Bytes{'p', 'i', 'n', 'g'}));
  EXPECT_EQ(receive(), (Bytes{'p', 'i', 'n', 'g'}));
  EXPECT_EQ(rx_.sequence(), 1u);
  send(ContentType::application_data, Bytes{'p', 'o', 'n', 'g'});
  Bytes got;
  ASSERT_TRUE(pair_->client.read_all(got));
  EXPECT_EQ(got, (Bytes{'p', 'o', 'n', 'g'}));
  EXPECT_EQ(tx_.sequence(), 2u);
}

// The same with the client's first data in the flight of its Finished: the
// server's SSL_do_handshake stops after Finished and leaves the data record
// in its input, to be opened by us at sequence 0.
TEST_P(RecordInteropTest, SwitchOverWithDataBehindFinished) {
  pair_->client_data_with_finished = pattern(3000, 1);
  ASSERT_TRUE(pair_->handshake());
  ASSERT_EQ(pair_->server.input_pending(), sealed_length(3000));
  EXPECT_EQ(SSL_has_pending(pair_->server.ssl.get()), 0);
  Bytes left(pair_->server.input_pending());
  ASSERT_EQ(BIO_read(pair_->server.in, left.data(), static_cast<int>(left.size())), static_cast<int>(left.size()));
  RecordProtection rx;
  ASSERT_TRUE(rx.install(*mgr_, GetParam().cipher, pair_->server.secrets.client_application, 0));
  const OpenResult r = rx.open_in_place(*mgr_, left.data(), left.size());
  ASSERT_EQ(r.status, RecordStatus::ok);
  EXPECT_EQ(Bytes(left.begin() + 5, left.begin() + 5 + static_cast<std::ptrdiff_t>(r.length)), pattern(3000, 1));
}

// With read_ahead on (as TlsContext and TlsSession set it), OpenSSL takes
// the data record behind Finished into its own buffer during the handshake:
// its bytes are no longer ours to open. The integration must keep OpenSSL
// from reading past Finished (see record_protection.h).
TEST_P(RecordInteropTest, ReadAheadSwallowsDataBehindFinished) {
  SSL_set_read_ahead(pair_->server.ssl.get(), 1);
  pair_->client_data_with_finished = pattern(3000, 2);
  ASSERT_TRUE(pair_->handshake());
  EXPECT_EQ(pair_->server.input_pending(), 0u);
  EXPECT_EQ(SSL_has_pending(pair_->server.ssl.get()), 1);
}

// Starting our send side at 0 instead of 1 reuses the ticket's nonce: the
// client refuses the record.
TEST_P(RecordInteropTest, SendSideAtZeroIsRejected) {
  ASSERT_TRUE(pair_->handshake());
  pair_->client.give_input(pair_->server.take_output());
  Bytes nothing;
  ASSERT_TRUE(pair_->client.read_all(nothing));
  RecordProtection wrong;
  ASSERT_TRUE(wrong.install(*mgr_, GetParam().cipher, pair_->server.secrets.server_application, 0));
  Bytes out(sealed_length(4));
  const uint8_t data[] = {'p', 'o', 'n', 'g'};
  ASSERT_EQ(wrong.seal(*mgr_, ContentType::application_data, data, 4, out.data(), out.size()).status,
            RecordStatus::ok);
  pair_->client.give_input(out);
  Bytes got;
  EXPECT_FALSE(pair_->client.read_all(got));
  EXPECT_TRUE(got.empty());
}

TEST_P(RecordInteropTest, EverySizeBothWays) {
  take_over();
  const size_t sizes[] = {1, 2, 15, 16, 17, 255, 256, 1000, 1500, 4096, 8191, 16000, 16383, 16384};
  uint32_t seed = 10;
  for (size_t size : sizes) {
    SCOPED_TRACE(size);
    const Bytes up = pattern(size, ++seed);
    ASSERT_TRUE(pair_->client.write(up));
    EXPECT_EQ(receive(), up);
    const Bytes down = pattern(size, ++seed);
    send(ContentType::application_data, down);
    Bytes got;
    ASSERT_TRUE(pair_->client.read_all(got));
    EXPECT_EQ(got, down);
  }
  // A zero-length record of ours: OpenSSL skips it, the next one reads.
  send(ContentType::application_data, {});
  send(ContentType::application_data, Bytes{'x'});
  Bytes got;
  ASSERT_TRUE(pair_->client.read_all(got));
  EXPECT_EQ(got, Bytes{'x'});
  EXPECT_EQ(rx_.sequence(), std::size(sizes));
  EXPECT_EQ(tx_.sequence(), 1 + std::size(sizes) + 2);
}

// Each size, every byte: 0 (ours only; SSL_write sends no empty record)
// through 16384, on a fresh connection for a stride of sizes.
TEST_P(RecordInteropTest, SizesAcrossTheRange) {
  take_over();
  for (size_t size = 0; size <= kMaxRecordPlaintext; size += (size < 64 ? 1 : 509)) {
    const Bytes down = pattern(size, static_cast<uint32_t>(size));
    send(ContentType::application_data, down);
    Bytes got;
    ASSERT_TRUE(pair_->client.read_all(got)) << size;
    ASSERT_EQ(got, down) << size;
    if (size == 0) continue;
    ASSERT_TRUE(pair_->client.write(down));
    ASSERT_EQ(receive(), down) << size;
  }
}

// Many records, interleaved, each direction's sequence running on.
TEST_P(RecordInteropTest, SequenceNumbersContinueOverManyRecords) {
  take_over();
  std::mt19937 rng(7);
  Bytes sent_up, got_up, sent_down, got_down;
  for (int i = 0; i < 3000; ++i) {
    const Bytes chunk = pattern(1 + rng() % 700, static_cast<uint32_t>(i));
    if (rng() % 2 == 0) {
      ASSERT_TRUE(pair_->client.write(chunk));
      sent_up.insert(sent_up.end(), chunk.begin(), chunk.end());
    } else {
      send(ContentType::application_data, chunk);
      sent_down.insert(sent_down.end(), chunk.begin(), chunk.end());
    }
    if (i % 97 == 0) {
      const Bytes up = receive();
      got_up.insert(got_up.end(), up.begin(), up.end());
      ASSERT_TRUE(pair_->client.read_all(got_down));
    }
  }
  const Bytes up = receive();
  got_up.insert(got_up.end(), up.begin(), up.end());
  ASSERT_TRUE(pair_->client.read_all(got_down));
  EXPECT_EQ(got_up, sent_up);
  EXPECT_EQ(got_down, sent_down);
  EXPECT_EQ(rx_.sequence() + (tx_.sequence() - 1), 3000u);
}

// OpenSSL pads when asked (SSL_set_block_padding); we strip it (5.4).
TEST_P(RecordInteropTest, PaddedRecordsFromOpenSsl) {
  take_over();
  ASSERT_EQ(SSL_set_block_padding(pair_->client.ssl.get(), 512), 1);
  for (size_t size : {1, 100, 511, 512, 513, 16000}) {
    const Bytes up = pattern(size, static_cast<uint32_t>(size));
    ASSERT_TRUE(pair_->client.write(up));
    EXPECT_EQ(receive(), up) << size;
  }
}

// 4.6.3: the peer's KeyUpdate with update_requested. We switch our receive
// key after it, answer with our own KeyUpdate (update_not_requested) and
// switch our send key; OpenSSL reads what follows under the new key.
TEST_P(RecordInteropTest, KeyUpdateFromOpenSsl) {
  take_over();
  ASSERT_EQ(SSL_key_update(pair_->client.ssl.get(), SSL_KEY_UPDATE_REQUESTED), 1);
  ASSERT_TRUE(pair_->client.write(Bytes{'a'}));
  const std::vector<Bytes> records = split_records(pair_->client.take_output());
  ASSERT_EQ(records.size(), 2u);
  Bytes key_update = records[0];
  OpenResult r = rx_.open_in_place(*mgr_, key_update.data(), key_update.size());
  ASSERT_EQ(r.status, RecordStatus::ok);
  ASSERT_EQ(r.type, ContentType::handshake);
  EXPECT_EQ(Bytes(key_update.begin() + 5, key_update.begin() + 5 + static_cast<std::ptrdiff_t>(r.length)),
            (Bytes{24, 0, 0, 1, 1}));  // KeyUpdate, update_requested
  ASSERT_TRUE(rx_.update_key(*mgr_));
  Bytes data = records[1];
  r = rx_.open_in_place(*mgr_, data.data(), data.size());
  ASSERT_EQ(r.status, RecordStatus::ok);
  EXPECT_EQ(data[5], 'a');

  send(ContentType::handshake, Bytes{24, 0, 0, 1, 0});
  ASSERT_TRUE(tx_.update_key(*mgr_));
  EXPECT_EQ(tx_.sequence(), 0u);
  send(ContentType::application_data, Bytes{'b'});
  Bytes got;
  ASSERT_TRUE(pair_->client.read_all(got));
  EXPECT_EQ(got, Bytes{'b'});
  ASSERT_TRUE(pair_->client.write(Bytes{'c'}));
  EXPECT_EQ(receive(), Bytes{'c'});  // no further KeyUpdate
}

// Our KeyUpdate asking for one back: OpenSSL switches its receive key,
// and answers with its own KeyUpdate before its next data.
TEST_P(RecordInteropTest, KeyUpdateFromUs) {
  take_over();
  for (int generation = 0; generation < 3; ++generation) {
    send(ContentType::handshake, Bytes{24, 0, 0, 1, 1});
    ASSERT_TRUE(tx_.update_key(*mgr_));
    send(ContentType::application_data, Bytes{'d', static_cast<uint8_t>('0' + generation)});
    Bytes got;
    ASSERT_TRUE(pair_->client.read_all(got));
    EXPECT_EQ(got, (Bytes{'d', static_cast<uint8_t>('0' + generation)}));

    ASSERT_TRUE(pair_->client.write(Bytes{'u'}));
    std::vector<Bytes> records = split_records(pair_->client.take_output());
    ASSERT_EQ(records.size(), 2u);
    OpenResult r = rx_.open_in_place(*mgr_, records[0].data(), records[0].size());
    ASSERT_EQ(r.status, RecordStatus::ok);
    ASSERT_EQ(r.type, ContentType::handshake);
    EXPECT_EQ(Bytes(records[0].begin() + 5, records[0].begin() + 10), (Bytes{24, 0, 0, 1, 0}));
    ASSERT_TRUE(rx_.update_key(*mgr_));
    r = rx_.open_in_place(*mgr_, records[1].data(), records[1].size());
    ASSERT_EQ(r.status, RecordStatus::ok);
    EXPECT_EQ(records[1][5], 'u');
  }
}

// A tampered byte of the client's record is bad_record_mac; our alert in
// answer (as the integration will send it) is understood by OpenSSL.
TEST_P(RecordInteropTest, TamperedRecordAndOurAlert) {
  take_over();
  ASSERT_TRUE(pair_->client.write(pattern(200, 3)));
  Bytes record = pair_->client.take_output();
  record[100] ^= 0x80;
  const OpenResult r = rx_.open_in_place(*mgr_, record.data(), record.size());
  ASSERT_EQ(r.status, RecordStatus::bad_record_mac);
  send(ContentType::alert, Bytes{2, alert_for(r.status)});  // fatal
  uint8_t buf[64];
  size_t n = 0;
  EXPECT_EQ(SSL_read_ex(pair_->client.ssl.get(), buf, sizeof buf, &n), 0);
  EXPECT_EQ(SSL_get_error(pair_->client.ssl.get(), 0), SSL_ERROR_SSL);
  EXPECT_EQ(ERR_GET_REASON(ERR_peek_last_error()), SSL_AD_REASON_OFFSET + SSL_AD_BAD_RECORD_MAC);
  ERR_clear_error();
}

// A header announcing more than 2^14 + 256 bytes is record_overflow before
// its body arrives.
TEST_P(RecordInteropTest, OversizedRecordIsRecordOverflow) {
  take_over();
  ASSERT_TRUE(pair_->client.write(pattern(10, 4)));
  Bytes stream = pair_->client.take_output();
  const size_t first = stream.size();
  const uint8_t oversized[] = {0x17, 0x03, 0x03, 0x41, 0x01};
  stream.insert(stream.end(), oversized, oversized + 5);
  const RecordBoundary b1 = find_record(stream.data(), stream.size());
  ASSERT_EQ(b1.status, RecordStatus::ok);
  ASSERT_EQ(b1.length, first);
  ASSERT_EQ(rx_.open_in_place(*mgr_, stream.data(), first).status, RecordStatus::ok);
  const RecordBoundary b2 = find_record(stream.data() + first, stream.size() - first);
  EXPECT_EQ(b2.status, RecordStatus::record_overflow);
  EXPECT_EQ(alert_for(b2.status), 22);
}

// close_notify both ways (6.1): an alert record like any other.
TEST_P(RecordInteropTest, CloseNotifyBothWays) {
  take_over();
  ASSERT_EQ(SSL_shutdown(pair_->client.ssl.get()), 0);  // sent, not yet received
  std::vector<std::pair<ContentType, Bytes>> others;
  EXPECT_TRUE(receive(&others).empty());
  ASSERT_EQ(others.size(), 1u);
  EXPECT_EQ(others[0].first, ContentType::alert);
  EXPECT_EQ(others[0].second, (Bytes{1, 0}));  // warning, close_notify
  send(ContentType::alert, Bytes{1, 0});
  EXPECT_EQ(SSL_shutdown(pair_->client.ssl.get()), 1);
}

// Records sealed in one batch, both methods, read by OpenSSL in order.
TEST_P(RecordInteropTest, BatchReadByOpenSsl) {
  take_over();
  for (BatchMethod method : {BatchMethod::gcm_calls, BatchMethod::job_api}) {
    constexpr size_t kCount = 40;
    std::vector<Bytes> data(kCount);
    std::vector<Bytes> outs(kCount);
    std::vector<SealRequest> requests(kCount);
    Bytes expected;
    for (size_t i = 0; i < kCount; ++i) {
      data[i] = pattern(i * 397 % 16385, static_cast<uint32_t>(i));
      outs[i].resize(sealed_length(data[i].size()));
      requests[i] = {ContentType::application_data, data[i].data(), data[i].size(), outs[i].data(), outs[i].size(),
                     {}};
      expected.insert(expected.end(), data[i].begin(), data[i].end());
    }
    ASSERT_EQ(tx_.seal_batch(*mgr_, requests.data(), kCount, method), kCount);
    for (size_t i = 0; i < kCount; ++i) {
      outs[i].resize(requests[i].result.length);
      pair_->client.give_input(outs[i]);
    }
    Bytes got;
    ASSERT_TRUE(pair_->client.read_all(got));
    EXPECT_EQ(got, expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Suites, RecordInteropTest, ::testing::ValuesIn(kSuites),
                         [](const ::testing::TestParamInfo<Suite>& info) {
                           return info.param.cipher == RecordCipher::aes_128_gcm_sha256 ? std::string("Aes128Gcm")
                                                                                        : std::string("Aes256Gcm");
                         });

}  // namespace
}  // namespace mtlsgw::tls
