#include "ctl/ctl_output.h"

#include <gtest/gtest.h>

namespace mtlsgw::ctl {
namespace {

TEST(CtlOutput, AListOfObjectsIsATable) {
  const auto rows = ordered_json::parse(R"([
    {"name": "api.example.test", "mtls": "required", "client_cas": ["devices", "partners"], "upstream": "198.18.0.1:8080"},
    {"name": "*.wild.example.test", "mtls": "off", "client_cas": [], "upstream": null, "default": true}
  ])");
  EXPECT_EQ(format_human(rows),
            "NAME                 MTLS      CLIENT_CAS        UPSTREAM         DEFAULT\n"
            "api.example.test     required  devices,partners  198.18.0.1:8080  -\n"
            "*.wild.example.test  off       -                 -                true\n");
}

TEST(CtlOutput, AnEmptyListSaysSo) {
  EXPECT_EQ(format_human(ordered_json::array()), "(none)\n");
}

TEST(CtlOutput, AnObjectIsAlignedKeyValueLines) {
  const auto host = ordered_json::parse(R"({
    "name": "api.example.test", "alpn": ["h2", "http/1.1"], "timeouts": {"idle_ms": 300000, "connect_ms": 5000},
    "cas": [{"name": "devices", "max_depth": 4}], "cert_pem": "-----BEGIN X-----\nAAAA\n-----END X-----\n"
  })");
  EXPECT_EQ(format_human(host),
            "name:     api.example.test\n"
            "alpn:     h2, http/1.1\n"
            "timeouts:\n"
            "  idle_ms:    300000\n"
            "  connect_ms: 5000\n"
            "cas:\n"
            "  NAME     MAX_DEPTH\n"
            "  devices  4\n"
            "cert_pem:\n"
            "  -----BEGIN X-----\n"
            "  AAAA\n"
            "  -----END X-----\n");
}

TEST(CtlOutput, NameLeadsWhateverTheKeyOrder) {
  // What a handler building with nlohmann::json (sorted keys) sends.
  const ordered_json sorted = nlohmann::json{{"zeta", 1}, {"name", "a"}, {"alpha", true}};
  EXPECT_EQ(format_human(sorted), "name:  a\nalpha: true\nzeta:  1\n");
  EXPECT_EQ(format_human(ordered_json::array({sorted})),
            "NAME  ALPHA  ZETA\n"
            "a     true   1\n");
}

TEST(CtlOutput, BareSuccessesPrintNothingAndScalarsThemselves) {
  EXPECT_EQ(format_human(nullptr), "");
  EXPECT_EQ(format_human(ordered_json::object()), "");
  EXPECT_EQ(format_human(true), "");
  EXPECT_EQ(format_human(false), "false\n");
  EXPECT_EQ(format_human("pong"), "pong\n");
  EXPECT_EQ(format_human(42), "42\n");
  EXPECT_EQ(format_human(ordered_json::parse(R"(["a", 1, [2]])")), "a\n1\n2\n");
}

}  // namespace
}  // namespace mtlsgw::ctl
