#pragma once
// Values of RFC 8448 section 3 ("Simple 1-RTT Handshake",
// TLS_AES_128_GCM_SHA256): traffic secrets, the keys and IVs derived from
// them, and protected records (ciphertext after the 5-byte header; the
// inner plaintext with its content type last).

#include <cstdint>
#include <string_view>
#include <vector>

#include "dataplane/tls/record_keys.h"

namespace mtlsgw::tls::testing {

inline std::vector<uint8_t> from_hex(std::string_view hex) {
  std::vector<uint8_t> out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int high = -1;
  for (char c : hex) {
    const int v = nibble(c);
    if (v < 0) continue;  // spaces as the RFC prints them
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>((high << 4) | v));
      high = -1;
    }
  }
  return out;
}

inline TrafficSecret secret_from_hex(std::string_view hex) {
  TrafficSecret secret;
  const std::vector<uint8_t> bytes = from_hex(hex);
  for (size_t i = 0; i < bytes.size() && i < secret.bytes.size(); ++i) secret.bytes[i] = bytes[i];
  secret.length = static_cast<uint8_t>(bytes.size());
  return secret;
}

namespace rfc8448 {

struct SecretVector {
  const char* name;
  std::string_view secret;
  std::string_view key;
  std::string_view iv;
};

inline constexpr SecretVector kClientHandshake{
    "c hs traffic", "e2e23207bd93fb7fe4fc2e297afeab160e522b5ab75d64a86e75bcac3f3e5103",
    "2679a43e1d76784034ea1797d5ad2649", "5482405290dd0d2f81c0d942"};
inline constexpr SecretVector kServerHandshake{
    "s hs traffic", "3b7a839c239ef2bf0b7305a0e0c4e5a8c6c69330a753b308f5e3a83aa2ef6979",
    "c66cb1aec519df44c91e10995511ac8b", "f7f6884c4981716c2d0d29a4"};
inline constexpr SecretVector kClientApplication{
    "c ap traffic", "e2f0db6a82e88280fc26f73c89854ee8615e25df28b2207962fa782226b23626",
    "88b96ad686c84be55ace18a59cce5c87", "b99dc58cd5ff5ab082fdad19"};
inline constexpr SecretVector kServerApplication{
    "s ap traffic", "5b73b108d9ac1b9b0c8248ca3926ec6e7bc47e411706963987ec11435d305719",
    "a688ebb5ac826d6f42d45c0cc44b9b7d", "c1cad4425a438b5de714830a"};

struct RecordVector {
  const char* name;
  const SecretVector* secret;
  uint64_t sequence;
  std::string_view inner_plaintext;  // content ‖ type
  std::string_view ciphertext;       // encrypted inner plaintext ‖ tag
};

inline constexpr std::string_view kFiftyBytes =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031";

inline const RecordVector kRecords[] = {
    {"client Finished", &kClientHandshake, 0,
     "14000020b9027a0204b972b52cdefa58950fa1580d68c9cb124dbe691a7178f25c554b23 16",
     "9539b4ae2f87fd8e616b295628ea953d9e3858db274970d19813ec136cae7d96"
     "e0417775fcabd3d8858fdc60240912d218f5afb21c"},
    {"server NewSessionTicket", &kServerApplication, 0,
     "040000c90000001e2fd3992f02000000b2ff099f9676cdff8b0bf8825d000000"
     "007905a9d28efeef4a47c6f9b06a0cecdb0070d920b898997c75b79636943ed4"
     "2046a96142bd084a04acfa0c490f452d756dea02c0f927259f1f3231ac0d541a"
     "769129b740ce38090842b828c27fd729f59737ba98aa7b42e043c5da28f8dca8"
     "590b2df410d5134fd6c4cacad8b30370602afa35d265bf4d127976bb36dbda6a"
     "626f0270e20eebc73d6fcae2b1a0da122ee9042f76be56ebf41aa469c3d2c9da"
     "9197d80008002a000400000400 16",
     "3680c2b2109d25caa26c3b06eea9fdc5cb31613ba702176596da2e886bf6af93"
     "507bd68161ad9cb4780653842e1041ecbf0088a65ac4ef438419dd1d95ddd9bd"
     "2ad4484e7e167d0e6c008448ae58a0418713b6fc6c51e4bb23a537fb75a74f73"
     "de31fe6aa0bc522515f8b25f8955428b5de5ac06762cec22b0aa78c94385ef8e"
     "70fa24945b7c1f268510871689bbbbfaf2e7f4a19277024f95f1143ab12a31ec"
     "63adb128cb390711fd6d06a498df3e98615d8eb102e23353b480efcca5e8e026"
     "7a6d0fe2441f14c8c9664aefb2cfff6ae9e0442728b6a0940c1e824fda06"},
    {"client application data", &kClientApplication, 0, "", 
     "8c3497da00ae023e53c01b4324b665404c1b49e78fe2bf4d17f6348ae8340551"
     "e363a0cd05f2179c4fef5ad689b5cae0bae94adc63632e571fb79aa91544c639"
     "4d28a1"},
    {"server application data", &kServerApplication, 1, "",
     "f65f49fd2df6cd2347c3d30166e3cfddb6308a5906c076112c6a37ff1dbd406b"
     "5813c0abd734883017a6b2833186b13c14da5d75f33d8760789994e27d82043a"
     "b88d65"},
    {"client close_notify", &kClientApplication, 1, "0100 15", "2c2148163d7938a35f6acf2a6606f8cbd1d9f2"},
    {"server close_notify", &kServerApplication, 2, "0100 15", "f8141ebdb5eda511e0bce639a56ff9ea825a21"},
};

// The application data records carry bytes 0..49 (empty inner_plaintext
// above stands for kFiftyBytes ‖ 17).
inline std::vector<uint8_t> inner_plaintext(const RecordVector& v) {
  if (!v.inner_plaintext.empty()) return from_hex(v.inner_plaintext);
  std::vector<uint8_t> bytes = from_hex(kFiftyBytes);
  bytes.push_back(0x17);
  return bytes;
}

}  // namespace rfc8448
}  // namespace mtlsgw::tls::testing
