#include "dataplane/gateway/access_record.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

namespace mtlsgw::gateway {
namespace {

TEST(AccessRecord, DefaultsSayNothingHappened) {
  const AccessRecord record;
  EXPECT_EQ(record.alert_sent, kNoAlert);
  EXPECT_EQ(record.alert_received, kNoAlert);
  EXPECT_EQ(record.verify_reason, kVerifyNotRun);
  EXPECT_EQ(record.end, static_cast<uint8_t>(ConnectionEnd::internal));
  EXPECT_FALSE(record.truncated);
  EXPECT_EQ(text_of(record.sni), "");
  EXPECT_EQ(text_of(record.subject_dn), "");
}

TEST(AccessRecord, TextThatFitsIsKeptWhole) {
  AccessRecord record;
  record.set_text(record.tls_version, "TLSv1.3");
  EXPECT_EQ(text_of(record.tls_version), "TLSv1.3");
  // Exactly the capacity (15 characters and the NUL).
  record.set_text(record.tls_version, "123456789012345");
  EXPECT_EQ(text_of(record.tls_version), "123456789012345");
  EXPECT_FALSE(record.truncated);
  // A shorter value over a longer one leaves nothing of the old behind.
  record.set_text(record.tls_version, "ab");
  EXPECT_EQ(text_of(record.tls_version), "ab");
}

TEST(AccessRecord, LongTextIsCutAndMarked) {
  AccessRecord record;
  const std::string sni(300, 'a');
  record.set_text(record.sni, sni);
  EXPECT_EQ(text_of(record.sni), std::string(255, 'a'));
  EXPECT_TRUE(record.truncated);
}

// A cut through a UTF-8 sequence would leave an invalid byte at the end of
// a CN or SNI: the cut moves back to the sequence's first byte.
TEST(AccessRecord, CutNeverSplitsAUtf8Sequence) {
  AccessRecord record;
  // 14 ASCII bytes and a 2-byte "é": 16 bytes for a 15-byte field.
  record.set_text(record.tls_version, "abcdefghijklmn\xc3\xa9");
  EXPECT_EQ(text_of(record.tls_version), "abcdefghijklmn");
  EXPECT_TRUE(record.truncated);
  // A 4-byte sequence straddling the cut goes whole.
  record.set_text(record.tls_version, "abcdefghijklm\xf0\x9f\x94\x92");
  EXPECT_EQ(text_of(record.tls_version), "abcdefghijklm");
}

TEST(AccessRecord, TextOfStopsAtTheFieldEndWithoutANul) {
  AccessRecord record;
  std::memset(record.alpn, 'x', sizeof record.alpn);
  EXPECT_EQ(text_of(record.alpn), std::string(sizeof record.alpn, 'x'));
}

TEST(AccessRecord, EveryConnectionEndHasItsOwnName) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kConnectionEndCount; ++i) {
    names.insert(name_of(static_cast<ConnectionEnd>(i)));
  }
  EXPECT_EQ(names.size(), kConnectionEndCount);
  EXPECT_STREQ(name_of(ConnectionEnd::closed), "closed");
  EXPECT_STREQ(name_of(ConnectionEnd::client_truncated), "client_truncated");
  EXPECT_STREQ(name_of(ConnectionEnd::upstream_unreachable), "upstream_unreachable");
  EXPECT_STREQ(name_of(ConnectionEnd::internal), "internal");
  EXPECT_STREQ(name_of(static_cast<ConnectionEnd>(200)), "unknown");
}

TEST(AccessRecord, SettersStoreTheEnumValues) {
  AccessRecord record;
  record.set_end(ConnectionEnd::no_host);
  record.set_verify_reason(tls::VerifyReason::revoked);
  record.set_alert_sent(tls::TlsAlert::certificate_revoked);
  EXPECT_EQ(record.end, static_cast<uint8_t>(ConnectionEnd::no_host));
  EXPECT_EQ(record.verify_reason, static_cast<uint8_t>(tls::VerifyReason::revoked));
  EXPECT_EQ(record.alert_sent, 44);
}

}  // namespace
}  // namespace mtlsgw::gateway
