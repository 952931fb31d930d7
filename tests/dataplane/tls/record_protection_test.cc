#include "dataplane/tls/record_protection.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/handles.h"
#include "record_reference_seal.h"
#include "rfc8448_vectors.h"

namespace mtlsgw::tls {
namespace {

using Bytes = std::vector<uint8_t>;
using testing::from_hex;
using testing::reference_seal;
using testing::secret_from_hex;
namespace rfc8448 = testing::rfc8448;

constexpr RecordCipher kAes128 = RecordCipher::aes_128_gcm_sha256;
constexpr RecordCipher kAes256 = RecordCipher::aes_256_gcm_sha384;

TrafficSecret test_secret(RecordCipher cipher, uint8_t seed) {
  TrafficSecret secret;
  secret.length = static_cast<uint8_t>(secret_length(cipher));
  for (size_t i = 0; i < secret.length; ++i) secret.bytes[i] = static_cast<uint8_t>(seed + i * 13);
  return secret;
}

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 31 + (i >> 8));
  return b;
}

class RecordProtectionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(mgr_, nullptr); }

  Bytes seal(RecordProtection& state, ContentType type, const Bytes& data) {
    Bytes out(sealed_length(data.size()));
    const SealResult r = state.seal(*mgr_, type, data.data(), data.size(), out.data(), out.size());
    EXPECT_EQ(r.status, RecordStatus::ok);
    out.resize(r.length);
    return out;
  }

  ImbMgrHandle mgr_ = make_imb_mgr();
  IMB_MGR& mgr() { return *mgr_; }
};

// RFC 8448 section 3, byte for byte: each record sealed from its traffic
// secret at its sequence number, then opened back (copying and in place).
TEST_F(RecordProtectionTest, Rfc8448Records) {
  for (const rfc8448::RecordVector& v : rfc8448::kRecords) {
    SCOPED_TRACE(v.name);
    const Bytes inner = rfc8448::inner_plaintext(v);
    const Bytes content(inner.begin(), inner.end() - 1);
    const auto type = static_cast<ContentType>(inner.back());
    const Bytes ciphertext = from_hex(v.ciphertext);
    Bytes expected{0x17, 0x03, 0x03, static_cast<uint8_t>(ciphertext.size() >> 8),
                   static_cast<uint8_t>(ciphertext.size())};
    expected.insert(expected.end(), ciphertext.begin(), ciphertext.end());

    RecordProtection sender;
    ASSERT_TRUE(sender.install(mgr(), kAes128, secret_from_hex(v.secret->secret), v.sequence));
    EXPECT_EQ(seal(sender, type, content), expected);
    EXPECT_EQ(sender.sequence(), v.sequence + 1);

    // In place: the plaintext already at out + 5.
    RecordProtection in_place;
    ASSERT_TRUE(in_place.install(mgr(), kAes128, secret_from_hex(v.secret->secret), v.sequence));
    Bytes buffer(sealed_length(content.size()));
    std::copy(content.begin(), content.end(), buffer.begin() + 5);
    const SealResult sealed = in_place.seal(mgr(), type, buffer.data() + 5, content.size(), buffer.data(),
                                            buffer.size());
    ASSERT_EQ(sealed.status, RecordStatus::ok);
    EXPECT_EQ(buffer, expected);

    RecordProtection receiver;
    ASSERT_TRUE(receiver.install(mgr(), kAes128, secret_from_hex(v.secret->secret), v.sequence));
    Bytes plain(expected.size());
    const OpenResult opened = receiver.open(mgr(), expected.data(), expected.size(), plain.data(), plain.size());
    ASSERT_EQ(opened.status, RecordStatus::ok);
    EXPECT_EQ(opened.type, type);
    EXPECT_EQ(Bytes(plain.begin(), plain.begin() + opened.length), content);

    RecordProtection receiver_in_place;
    ASSERT_TRUE(receiver_in_place.install(mgr(), kAes128, secret_from_hex(v.secret->secret), v.sequence));
    Bytes record = expected;
    const OpenResult again = receiver_in_place.open_in_place(mgr(), record.data(), record.size());
    ASSERT_EQ(again.status, RecordStatus::ok);
    EXPECT_EQ(Bytes(record.begin() + 5, record.begin() + 5 + again.length), content);
  }
}

TEST_F(RecordProtectionTest, FindRecordFramesAByteStream) {
  RecordProtection sender;
  ASSERT_TRUE(sender.install(mgr(), kAes128, test_secret(kAes128, 1)));
  Bytes stream = seal(sender, ContentType::application_data, pattern(300, 1));
  const Bytes second = seal(sender, ContentType::application_data, pattern(5, 2));
  stream.insert(stream.end(), second.begin(), second.end());

  EXPECT_EQ(find_record(stream.data(), 0).status, RecordStatus::need_more);
  EXPECT_EQ(find_record(stream.data(), 4).status, RecordStatus::need_more);
  EXPECT_EQ(find_record(stream.data(), 4).length, 0u);
  const RecordBoundary partial = find_record(stream.data(), 5);
  EXPECT_EQ(partial.status, RecordStatus::need_more);
  EXPECT_EQ(partial.length, sealed_length(300));
  const RecordBoundary first = find_record(stream.data(), stream.size());
  EXPECT_EQ(first.status, RecordStatus::ok);
  EXPECT_EQ(first.length, sealed_length(300));
  const RecordBoundary next = find_record(stream.data() + first.length, stream.size() - first.length);
  EXPECT_EQ(next.status, RecordStatus::ok);
  EXPECT_EQ(next.length, sealed_length(5));

  // The header alone condemns a record: outer type, then length (5.1, 5.2).
  const uint8_t handshake_outer[] = {0x16, 0x03, 0x03, 0x00, 0x20};
  EXPECT_EQ(find_record(handshake_outer, 5).status, RecordStatus::unexpected_message);
  const uint8_t largest[] = {0x17, 0x03, 0x03, 0x41, 0x00};  // 2^14 + 256
  EXPECT_EQ(find_record(largest, 5).status, RecordStatus::need_more);
  EXPECT_EQ(find_record(largest, 5).length, kMaxRecordLength);
  const uint8_t too_large[] = {0x17, 0x03, 0x03, 0x41, 0x01};  // 2^14 + 257
  EXPECT_EQ(find_record(too_large, 5).status, RecordStatus::record_overflow);
  EXPECT_EQ(alert_for(RecordStatus::record_overflow), 22);
}

TEST_F(RecordProtectionTest, TamperingAnyByteIsBadRecordMac) {
  for (RecordCipher cipher : {kAes128, kAes256}) {
    RecordProtection sender;
    ASSERT_TRUE(sender.install(mgr(), cipher, test_secret(cipher, 3)));
    const Bytes record = seal(sender, ContentType::application_data, pattern(100, 3));
    // Every byte after the outer type and length: legacy_version (the AAD
    // covers it), ciphertext, tag.
    for (size_t i = 1; i < record.size(); ++i) {
      if (i == 3 || i == 4) continue;  // the length: a framing error instead
      Bytes tampered = record;
      tampered[i] ^= 0x01;
      RecordProtection receiver;
      ASSERT_TRUE(receiver.install(mgr(), cipher, test_secret(cipher, 3)));
      Bytes out(record.size());
      const OpenResult r = receiver.open(mgr(), tampered.data(), tampered.size(), out.data(), out.size());
      ASSERT_EQ(r.status, RecordStatus::bad_record_mac) << "byte " << i;
      EXPECT_EQ(alert_for(r.status), 20);
      EXPECT_EQ(receiver.sequence(), 0u);
    }
  }
}

TEST_F(RecordProtectionTest, WrongSequenceIsBadRecordMac) {
  RecordProtection sender;
  ASSERT_TRUE(sender.install(mgr(), kAes128, test_secret(kAes128, 4)));
  Bytes record = seal(sender, ContentType::application_data, pattern(10, 4));
  RecordProtection receiver;
  ASSERT_TRUE(receiver.install(mgr(), kAes128, test_secret(kAes128, 4), 1));
  EXPECT_EQ(receiver.open_in_place(mgr(), record.data(), record.size()).status, RecordStatus::bad_record_mac);
}

TEST_F(RecordProtectionTest, TooShortForATagIsBadRecordMac) {
  RecordProtection receiver;
  ASSERT_TRUE(receiver.install(mgr(), kAes128, test_secret(kAes128, 5)));
  Bytes record{0x17, 0x03, 0x03, 0x00, 0x0f};
  record.resize(5 + 15, 0xaa);
  EXPECT_EQ(receiver.open_in_place(mgr(), record.data(), record.size()).status, RecordStatus::bad_record_mac);
}

// 5.4: zero padding is stripped; the type is the last non-zero byte.
TEST_F(RecordProtectionTest, PaddingIsStripped) {
  const TrafficSecret secret = test_secret(kAes256, 6);
  Bytes inner = pattern(40, 6);
  inner.push_back(0x17);
  inner.resize(inner.size() + 300, 0);
  Bytes record = reference_seal(kAes256, secret, 0, inner);
  RecordProtection receiver;
  ASSERT_TRUE(receiver.install(mgr(), kAes256, secret));
  const OpenResult r = receiver.open_in_place(mgr(), record.data(), record.size());
  ASSERT_EQ(r.status, RecordStatus::ok);
  EXPECT_EQ(r.type, ContentType::application_data);
  EXPECT_EQ(Bytes(record.begin() + 5, record.begin() + 5 + r.length), pattern(40, 6));
}

TEST_F(RecordProtectionTest, AllZeroInnerPlaintextIsUnexpectedMessage) {
  const TrafficSecret secret = test_secret(kAes128, 7);
  for (size_t zeros : {size_t{0}, size_t{1}, size_t{64}}) {
    Bytes record = reference_seal(kAes128, secret, 0, Bytes(zeros, 0));
    RecordProtection receiver;
    ASSERT_TRUE(receiver.install(mgr(), kAes128, secret));
    const OpenResult r = receiver.open_in_place(mgr(), record.data(), record.size());
    EXPECT_EQ(r.status, RecordStatus::unexpected_message) << zeros;
    EXPECT_EQ(alert_for(r.status), 10);
  }
}

TEST_F(RecordProtectionTest, InnerTypesTls13DoesNotCarryAreUnexpectedMessage) {
  const TrafficSecret secret = test_secret(kAes128, 8);
  for (uint8_t type : {uint8_t{20}, uint8_t{24}, uint8_t{0x99}}) {
    Bytes record = reference_seal(kAes128, secret, 0, Bytes{1, 2, 3, type});
    RecordProtection receiver;
    ASSERT_TRUE(receiver.install(mgr(), kAes128, secret));
    EXPECT_EQ(receiver.open_in_place(mgr(), record.data(), record.size()).status, RecordStatus::unexpected_message);
  }
  // An empty handshake or alert fragment (5.1).
  Bytes empty_alert = reference_seal(kAes128, secret, 0, Bytes{21});
  RecordProtection receiver;
  ASSERT_TRUE(receiver.install(mgr(), kAes128, secret));
  EXPECT_EQ(receiver.open_in_place(mgr(), empty_alert.data(), empty_alert.size()).status,
            RecordStatus::unexpected_message);
}

// 5.4: a TLSInnerPlaintext over 2^14 + 1 bytes (here 2^14 + 2 with valid
// tag, inside the 2^14 + 256 a TLSCiphertext may have) is record_overflow;
// exactly 2^14 + 1 is fine.
TEST_F(RecordProtectionTest, InnerPlaintextOverLimitIsRecordOverflow) {
  const TrafficSecret secret = test_secret(kAes128, 9);
  Bytes inner = pattern(kMaxRecordPlaintext, 9);
  inner.push_back(0x17);
  inner.push_back(0);
  Bytes record = reference_seal(kAes128, secret, 0, inner);
  ASSERT_EQ(find_record(record.data(), record.size()).status, RecordStatus::ok);
  RecordProtection receiver;
  ASSERT_TRUE(receiver.install(mgr(), kAes128, secret));
  EXPECT_EQ(receiver.open_in_place(mgr(), record.data(), record.size()).status, RecordStatus::record_overflow);

  inner.pop_back();  // 2^14 + 1: data and type
  Bytes at_limit = reference_seal(kAes128, secret, 0, inner);
  RecordProtection receiver2;
  ASSERT_TRUE(receiver2.install(mgr(), kAes128, secret));
  const OpenResult r = receiver2.open_in_place(mgr(), at_limit.data(), at_limit.size());
  ASSERT_EQ(r.status, RecordStatus::ok);
  EXPECT_EQ(r.length, kMaxRecordPlaintext);
}

TEST_F(RecordProtectionTest, SealRefusesWhatItMayNotSend) {
  RecordProtection unkeyed;
  Bytes out(100);
  EXPECT_EQ(unkeyed.seal(mgr(), ContentType::application_data, out.data(), 1, out.data(), out.size()).status,
            RecordStatus::no_keys);
  RecordProtection sender;
  ASSERT_TRUE(sender.install(mgr(), kAes128, test_secret(kAes128, 10)));
  Bytes big(kMaxRecordPlaintext + 1);
  Bytes big_out(sealed_length(big.size()));
  EXPECT_EQ(sender.seal(mgr(), ContentType::application_data, big.data(), big.size(), big_out.data(),
                        big_out.size()).status,
            RecordStatus::invalid_argument);
  EXPECT_EQ(sender.seal(mgr(), ContentType::alert, nullptr, 0, out.data(), out.size()).status,
            RecordStatus::invalid_argument);
  EXPECT_EQ(sender.seal(mgr(), ContentType::change_cipher_spec, out.data(), 1, out.data(), out.size()).status,
            RecordStatus::invalid_argument);
  const Bytes data = pattern(50, 10);
  EXPECT_EQ(sender.seal(mgr(), ContentType::application_data, data.data(), data.size(), out.data(),
                        sealed_length(50) - 1).status,
            RecordStatus::buffer_too_small);
  EXPECT_EQ(sender.sequence(), 0u);  // nothing was sent
  // A zero-length application_data record is allowed (5.4).
  EXPECT_EQ(seal(sender, ContentType::application_data, {}).size(), sealed_length(0));
}

TEST_F(RecordProtectionTest, OpenRefusesWrongFramingAndSmallBuffers) {
  RecordProtection sender;
  ASSERT_TRUE(sender.install(mgr(), kAes128, test_secret(kAes128, 11)));
  Bytes record = seal(sender, ContentType::application_data, pattern(64, 11));
  RecordProtection receiver;
  ASSERT_TRUE(receiver.install(mgr(), kAes128, test_secret(kAes128, 11)));
  Bytes out(record.size());
  EXPECT_EQ(receiver.open(mgr(), record.data(), record.size() - 1, out.data(), out.size()).status,
            RecordStatus::invalid_argument);
  EXPECT_EQ(receiver.open(mgr(), record.data(), record.size(), out.data(), 64).status,
            RecordStatus::buffer_too_small);  // needs 64 + 1 for the type
  EXPECT_EQ(receiver.open(mgr(), record.data(), record.size(), out.data(), 65).status, RecordStatus::ok);
}

// 5.3: the sequence number never wraps. The last value is never used.
TEST_F(RecordProtectionTest, SequenceNumberNeverWraps) {
  const TrafficSecret secret = test_secret(kAes128, 12);
  Bytes record = reference_seal(kAes128, secret, UINT64_MAX - 1, Bytes{'h', 'i', 0x17});
  RecordProtection receiver;
  ASSERT_TRUE(receiver.install(mgr(), kAes128, secret, UINT64_MAX - 1));
  ASSERT_EQ(receiver.open_in_place(mgr(), record.data(), record.size()).status, RecordStatus::ok);
  EXPECT_EQ(receiver.sequence(), UINT64_MAX);
  Bytes next = reference_seal(kAes128, secret, UINT64_MAX, Bytes{'h', 'i', 0x17});
  EXPECT_EQ(receiver.open_in_place(mgr(), next.data(), next.size()).status, RecordStatus::sequence_exhausted);

  RecordProtection sender;
  ASSERT_TRUE(sender.install(mgr(), kAes128, secret, UINT64_MAX));
  Bytes out(64);
  EXPECT_EQ(sender.seal(mgr(), ContentType::application_data, out.data(), 1, out.data(), out.size()).status,
            RecordStatus::sequence_exhausted);
}

// 5.5: AES-GCM keys protect at most 2^24.5 records; a KeyUpdate resets.
TEST_F(RecordProtectionTest, KeyLimitAsksForKeyUpdate) {
  RecordProtection sender;
  ASSERT_TRUE(sender.install(mgr(), kAes256, test_secret(kAes256, 13), RecordProtection::kKeyUpdateThreshold - 1));
  EXPECT_FALSE(sender.key_update_due());
  seal(sender, ContentType::application_data, pattern(10, 13));
  EXPECT_TRUE(sender.key_update_due());

  ASSERT_TRUE(sender.install(mgr(), kAes256, test_secret(kAes256, 13), RecordProtection::kAesGcmRecordLimit - 1));
  seal(sender, ContentType::application_data, pattern(10, 13));
  Bytes out(64);
  EXPECT_EQ(sender.seal(mgr(), ContentType::application_data, out.data(), 1, out.data(), out.size()).status,
            RecordStatus::key_limit);
  ASSERT_TRUE(sender.update_key(mgr()));
  EXPECT_EQ(sender.sequence(), 0u);
  EXPECT_FALSE(sender.key_update_due());
  seal(sender, ContentType::application_data, pattern(10, 13));
}

TEST_F(RecordProtectionTest, KeyUpdateOnBothSidesKeepsThemInStep) {
  for (RecordCipher cipher : {kAes128, kAes256}) {
    RecordProtection sender;
    RecordProtection receiver;
    ASSERT_TRUE(sender.install(mgr(), cipher, test_secret(cipher, 14), 5));
    ASSERT_TRUE(receiver.install(mgr(), cipher, test_secret(cipher, 14), 5));
    for (int generation = 0; generation < 4; ++generation) {
      for (int i = 0; i < 3; ++i) {
        Bytes record = seal(sender, ContentType::application_data, pattern(100 + i, static_cast<uint8_t>(i)));
        ASSERT_EQ(receiver.open_in_place(mgr(), record.data(), record.size()).status, RecordStatus::ok);
      }
      ASSERT_TRUE(sender.update_key(mgr()));
      Bytes stale = seal(sender, ContentType::application_data, pattern(10, 1));
      Bytes copy = stale;
      RecordProtection old_receiver;
      ASSERT_TRUE(old_receiver.install(mgr(), cipher, receiver.secret(), 0));
      EXPECT_EQ(old_receiver.open_in_place(mgr(), copy.data(), copy.size()).status, RecordStatus::bad_record_mac);
      ASSERT_TRUE(receiver.update_key(mgr()));
      ASSERT_EQ(receiver.open_in_place(mgr(), stale.data(), stale.size()).status, RecordStatus::ok);
    }
  }
}

// Both batch methods write exactly what single seals write, and stop at
// the first request they must refuse.
TEST_F(RecordProtectionTest, BatchMatchesSingleSeals) {
  for (RecordCipher cipher : {kAes128, kAes256}) {
    for (BatchMethod method : {BatchMethod::gcm_calls, BatchMethod::job_api}) {
      const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1000, 4096, 16383, 16384, 7, 64, 3000, 1, 2, 9000, 5000,
                              33, 65, 129, 257, 513, 1025, 2049, 4097, 8193, 12000, 3, 4, 5, 6, 7, 8, 9, 10};
      constexpr size_t kCount = std::size(sizes);
      RecordProtection single;
      RecordProtection batched;
      ASSERT_TRUE(single.install(mgr(), cipher, test_secret(cipher, 15), 40));
      ASSERT_TRUE(batched.install(mgr(), cipher, test_secret(cipher, 15), 40));
      std::vector<Bytes> data(kCount);
      std::vector<Bytes> outs(kCount);
      std::vector<SealRequest> requests(kCount);
      for (size_t i = 0; i < kCount; ++i) {
        data[i] = pattern(sizes[i], static_cast<uint8_t>(i));
        outs[i].resize(sealed_length(sizes[i]));
        requests[i] = {ContentType::application_data, data[i].data(), data[i].size(), outs[i].data(), outs[i].size(),
                       {}};
      }
      requests[5].type = ContentType::handshake;
      ASSERT_EQ(batched.seal_batch(mgr(), requests.data(), kCount, method), kCount);
      for (size_t i = 0; i < kCount; ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(requests[i].result.status, RecordStatus::ok);
        EXPECT_EQ(requests[i].result.length, sealed_length(sizes[i]));
        EXPECT_EQ(outs[i], seal(single, requests[i].type, data[i]));
      }
      EXPECT_EQ(batched.sequence(), single.sequence());

      // A refusal in the middle: the ones before are sealed, none after.
      requests[3].capacity = 1;
      const size_t sealed = batched.seal_batch(mgr(), requests.data(), kCount, method);
      EXPECT_EQ(sealed, 3u);
      EXPECT_EQ(requests[3].result.status, RecordStatus::buffer_too_small);
      EXPECT_EQ(batched.sequence(), single.sequence() + 3);
    }
  }
}

}  // namespace
}  // namespace mtlsgw::tls
