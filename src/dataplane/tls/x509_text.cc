#include "dataplane/tls/x509_text.h"

#include <openssl/bio.h>

#include <ctime>

#include "common/handles.h"

namespace mtlsgw::tls {
namespace {

constexpr char kLowerDigits[] = "0123456789abcdef";
constexpr char kUpperDigits[] = "0123456789ABCDEF";

bool append_hex(std::span<const unsigned char> bytes, const char* digits, std::size_t cap,
                std::string* out) {
  for (unsigned char b : bytes) {
    if (out->size() + 2 > cap) return false;
    out->push_back(digits[b >> 4]);
    out->push_back(digits[b & 0x0f]);
  }
  return true;
}

}  // namespace

bool rfc2253_name(const X509_NAME* name, std::size_t cap, std::string* out) {
  out->clear();
  if (name == nullptr) return true;
  BioHandle bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return false;
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  if (length <= 0) return true;
  const std::size_t n = static_cast<std::size_t>(length);
  out->assign(data, n < cap ? n : cap);
  return n <= cap;
}

bool hex_lower(std::span<const unsigned char> bytes, std::size_t cap, std::string* out) {
  out->clear();
  return append_hex(bytes, kLowerDigits, cap, out);
}

bool serial_hex(const ASN1_INTEGER* serial, std::size_t cap, std::string* out) {
  out->clear();
  if (serial == nullptr) return true;
  if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER) out->push_back('-');
  const int length = ASN1_STRING_length(serial);
  if (length <= 0) {
    out->append("00");
    return true;
  }
  return append_hex({ASN1_STRING_get0_data(serial), static_cast<std::size_t>(length)}, kUpperDigits,
                    cap, out);
}

bool append_escaped(std::span<const unsigned char> bytes, bool allow_utf8, std::size_t cap,
                    std::string* out) {
  for (unsigned char b : bytes) {
    const bool escape = b < 0x20 || b == 0x7f || b == '\\' || (b >= 0x80 && !allow_utf8);
    if (out->size() + (escape ? 3 : 1) > cap) return false;
    if (escape) {
      out->push_back('\\');
      out->push_back(kUpperDigits[b >> 4]);
      out->push_back(kUpperDigits[b & 0x0f]);
    } else {
      out->push_back(static_cast<char>(b));
    }
  }
  return true;
}

std::optional<int64_t> epoch_of(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return std::nullopt;
  // timegm reads no time zone: the fields are UTC, as ASN1_TIME_to_tm gives them.
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace mtlsgw::tls
