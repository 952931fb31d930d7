#include "dataplane/tls/client_identity_extract.h"

#include <openssl/objects.h>

#include <span>
#include <string>

#include "dataplane/tls/x509_text.h"

namespace mtlsgw::tls {
namespace {

constexpr std::size_t kTextCap = ClientIdentity::kMaxTextBytes;

std::span<const unsigned char> bytes_of(const ASN1_STRING* s) {
  if (s == nullptr || ASN1_STRING_length(s) <= 0) return {};
  return {ASN1_STRING_get0_data(s), static_cast<std::size_t>(ASN1_STRING_length(s))};
}

// The last (most specific) CN of the subject, converted to UTF-8.
bool common_name(const X509_NAME* subject, std::string* out) {
  out->clear();
  int index = -1;
  for (int next = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); next >= 0;
       next = X509_NAME_get_index_by_NID(subject, NID_commonName, next)) {
    index = next;
  }
  if (index < 0) return true;
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
  if (length < 0) return false;
  const bool whole = append_escaped({utf8, static_cast<std::size_t>(length)}, true, kTextCap, out);
  OPENSSL_free(utf8);
  return whole;
}

// DNS and URI entries of subjectAltName. IA5String: bytes >= 0x80 are not
// valid there and get escaped like control characters.
bool subject_alt_names(X509* leaf, ClientIdentity* identity) {
  GeneralNamesHandle names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return true;
  bool whole = true;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    std::vector<std::string>* list = nullptr;
    const ASN1_STRING* value = nullptr;
    if (name->type == GEN_DNS) {
      list = &identity->san_dns;
      value = name->d.dNSName;
    } else if (name->type == GEN_URI) {
      list = &identity->san_uri;
      value = name->d.uniformResourceIdentifier;
    } else {
      continue;
    }
    if (list->size() >= ClientIdentity::kMaxSanEntries) {
      whole = false;
      continue;
    }
    std::string text;
    if (!append_escaped(bytes_of(value), false, kTextCap, &text)) {
      whole = false;
      continue;  // a cut name could match a rule the whole one does not
    }
    list->push_back(std::move(text));
  }
  return whole;
}

}  // namespace

bool extract_certificate_identity(X509* leaf, ClientIdentity* identity, const EVP_MD* sha256) {
  OpenSslErrorScope errors;
  identity->presented = true;
  bool whole = true;
  whole &= rfc2253_name(X509_get_subject_name(leaf), kTextCap, &identity->subject_dn);
  whole &= rfc2253_name(X509_get_issuer_name(leaf), kTextCap, &identity->issuer_dn);
  whole &= common_name(X509_get_subject_name(leaf), &identity->common_name);
  whole &= serial_hex(X509_get0_serialNumber(leaf), kTextCap, &identity->serial_hex);
  identity->not_before_epoch = epoch_of(X509_get0_notBefore(leaf)).value_or(0);
  identity->not_after_epoch = epoch_of(X509_get0_notAfter(leaf)).value_or(0);
  identity->san_dns.clear();
  identity->san_uri.clear();
  whole &= subject_alt_names(leaf, identity);
  whole &= hex_lower(bytes_of(X509_get0_subject_key_id(leaf)), kTextCap, &identity->ski_hex);
  whole &= hex_lower(bytes_of(X509_get0_authority_key_id(leaf)), kTextCap, &identity->issuer_ski_hex);

  // The DER as received (X509 keeps the encoding it was decoded from), and
  // its SHA-256, which identifies the certificate for pinning rules and is
  // the verdict cache's key.
  identity->der.clear();
  identity->fingerprint_sha256_hex.clear();
  const int length = i2d_X509(leaf, nullptr);
  if (length <= 0) {
    identity->truncated = true;
    return false;
  }
  const auto size = static_cast<std::size_t>(length);
  unsigned char* heap = nullptr;
  const unsigned char* der = nullptr;
  if (size <= ClientIdentity::kMaxDerBytes) {
    identity->der.resize(size);
    auto* out = reinterpret_cast<unsigned char*>(identity->der.data());
    i2d_X509(leaf, &out);
    der = reinterpret_cast<const unsigned char*>(identity->der.data());
  } else {
    whole = false;  // fingerprint still computed, DER left out
    if (i2d_X509(leaf, &heap) != length) {
      OPENSSL_free(heap);
      identity->truncated = true;
      return false;
    }
    der = heap;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  const bool hashed =
      EVP_Digest(der, size, digest, &digest_length, sha256 != nullptr ? sha256 : EVP_sha256(), nullptr) == 1;
  OPENSSL_free(heap);
  if (hashed) hex_lower({digest, digest_length}, kTextCap, &identity->fingerprint_sha256_hex);
  identity->truncated = identity->truncated || !whole;
  return hashed;
}

void apply_verdict(const ClientVerdict& verdict, ClientIdentity* identity) {
  identity->verified = verdict.ok();
  identity->verify_reason.assign(name_of(verdict.reason));
}

void extract_session_identity(const SSL* ssl, ClientIdentity* identity) {
  OpenSslErrorScope errors;
  identity->tls_version.assign(SSL_get_version(ssl));
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  identity->cipher.assign(cipher != nullptr ? SSL_CIPHER_get_name(cipher) : "");
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  identity->sni.clear();
  // A host_name is at most 255 bytes (RFC 6066 3); libssl has checked it.
  if (sni != nullptr) {
    append_escaped({reinterpret_cast<const unsigned char*>(sni), std::char_traits<char>::length(sni)}, false,
                   kTextCap, &identity->sni);
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_length);
  identity->alpn.clear();
  if (alpn != nullptr) append_escaped({alpn, alpn_length}, false, kTextCap, &identity->alpn);

  identity->sig_alg.clear();
  identity->key_alg.clear();
  X509* own = SSL_get_certificate(ssl);
  if (own == nullptr) return;
  int digest_nid = NID_undef;
  if (X509_get_signature_info(own, &digest_nid, nullptr, nullptr, nullptr) == 1 && digest_nid != NID_undef) {
    identity->sig_alg.assign(OBJ_nid2sn(digest_nid));
  }
  const EVP_PKEY* key = X509_get0_pubkey(own);
  if (key != nullptr) {
    const int type = EVP_PKEY_get_base_id(key);
    const char* name = type == EVP_PKEY_RSA ? "RSA" : type == EVP_PKEY_EC ? "EC" : OBJ_nid2sn(type);
    identity->key_alg.assign(name != nullptr ? name : "unknown");
    if (type == EVP_PKEY_RSA || type == EVP_PKEY_EC) identity->key_alg += std::to_string(EVP_PKEY_get_bits(key));
  }
}

bool extract_client_identity(const SSL* ssl, const ClientVerdict& verdict, ClientIdentity* identity,
                             const EVP_MD* sha256) {
  identity->clear();
  extract_session_identity(ssl, identity);
  bool ok = true;
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf != nullptr) ok = extract_certificate_identity(leaf, identity, sha256);
  apply_verdict(verdict, identity);
  return ok;
}

}  // namespace mtlsgw::tls
