#include "rules/rule_fields.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "rules/rule_lexer.h"

namespace mtlsgw::rules {
namespace {

TEST(RuleFields, RegistryIsCompleteAndConsistent) {
  EXPECT_EQ(all_fields().size(), kFieldCount);
  std::set<std::string_view> names;
  for (const FieldInfo& field : all_fields()) {
    EXPECT_TRUE(names.insert(field.name).second) << field.name;
    EXPECT_EQ(find_field(field.name), &field);
    EXPECT_EQ(&field_info(field.id), &field);
    EXPECT_FALSE(field.meaning.empty()) << field.name;
    EXPECT_FALSE(is_keyword(field.name)) << field.name;
    // Exactly the member of the field's type.
    const int members = (field.text != nullptr) + (field.list != nullptr) +
                        (field.integer != nullptr) + (field.flag != nullptr) +
                        (field.address != nullptr);
    EXPECT_EQ(members, 1) << field.name;
    switch (field.type) {
      case FieldType::string: EXPECT_NE(field.text, nullptr) << field.name; break;
      case FieldType::string_array: EXPECT_NE(field.list, nullptr) << field.name; break;
      case FieldType::integer: EXPECT_NE(field.integer, nullptr) << field.name; break;
      case FieldType::boolean: EXPECT_NE(field.flag, nullptr) << field.name; break;
      case FieldType::address: EXPECT_NE(field.address, nullptr) << field.name; break;
    }
    // The HTTP fields and only they wait for a request.
    EXPECT_EQ(field.presence == Presence::http, field.name.starts_with("http.")) << field.name;
  }
  EXPECT_EQ(find_field("tls"), nullptr);
  EXPECT_EQ(find_field("TLS.SNI"), nullptr);
}

TEST(RuleFields, PresenceFollowsTheInput) {
  RuleInput in;
  EXPECT_TRUE(is_present(field_info(FieldId::tls_sni), in));
  EXPECT_TRUE(is_present(field_info(FieldId::cert_verified), in));
  EXPECT_FALSE(is_present(field_info(FieldId::cert_common_name), in));
  EXPECT_FALSE(is_present(field_info(FieldId::http_host), in));
  in.cert_presented = true;
  in.http_present = true;
  EXPECT_TRUE(is_present(field_info(FieldId::cert_common_name), in));
  EXPECT_TRUE(is_present(field_info(FieldId::http_host), in));
}

TEST(RuleFields, SuggestionsForTyposCaseAndCloudflareNames) {
  EXPECT_EQ(suggest_field("tls.sin"), "tls.sni");
  EXPECT_EQ(suggest_field("Tls.Sni"), "tls.sni");
  EXPECT_EQ(suggest_field("client.cert.verifed"), "client.cert.verified");
  EXPECT_EQ(suggest_field("client.cert.san.dsn"), "client.cert.san.dns");
  EXPECT_EQ(suggest_field("http.request.uri.pth"), "http.request.uri.path");
  EXPECT_EQ(suggest_field("cf.tls_client_auth.cert_fingerprint_sha256"),
            "client.cert.fingerprint_sha256");
  EXPECT_EQ(suggest_field("ip.src.addr"), "ip.src");
  EXPECT_FALSE(suggest_field("frobnicate"));
  EXPECT_FALSE(suggest_field("x"));
  EXPECT_FALSE(suggest_field(std::string(100, 'a')));
}

}  // namespace
}  // namespace mtlsgw::rules
