#include "dataplane/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/tls1.h>

#include <algorithm>
#include <cstring>

namespace mtlsgw::tls {

namespace {

// TLS 1.2: ECDHE only (forward secrecy), AEAD only, both certificate types.
// AES-128-GCM first: with AES-NI it costs less per byte than AES-256-GCM and
// the server's preference decides (SSL_OP_CIPHER_SERVER_PREFERENCE).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
// X25519 first: P-256 key shares cost 3-13% more server CPU per handshake
// (research/openssl-3.0-levers.md, tables 1 and 2).
constexpr const char* kGroups = "X25519:P-256";
constexpr size_t kMaxHostName = sizeof(HandshakeNotes::sni);

// Everything OpenSSL has queued, as one line, and the queue emptied.
std::string take_openssl_errors() {
  std::string text;
  char line[256];
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    ERR_error_string_n(e, line, sizeof line);
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text.empty() ? std::string("no OpenSSL detail") : text;
}

bool fail(std::string& error, std::string what) {
  error = std::move(what) + " (" + take_openssl_errors() + ")";
  return false;
}

char lower_ascii(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower_ascii);
  return out;
}

enum class SniParse : uint8_t { ok, malformed, bad_name };

// RFC 6066 3: ServerNameList = opaque<1..2^16-1> of {NameType, HostName<1..2^16-1>}.
// Accepts what OpenSSL's own parser accepts (exactly one host_name entry) so
// that both agree on the name; rejects what OpenSSL would answer with
// unrecognized_name (over 255 bytes, a NUL inside). The name comes out
// lower-cased: DNS names compare case-insensitively (RFC 4343).
SniParse parse_server_name(const unsigned char* ext, size_t len, char (&out)[kMaxHostName],
                           uint8_t& out_len) noexcept {
  if (len < 2) return SniParse::malformed;
  const size_t list_len = static_cast<size_t>(ext[0]) << 8 | ext[1];
  if (list_len != len - 2 || list_len < 3) return SniParse::malformed;
  const unsigned char* p = ext + 2;
  if (p[0] != TLSEXT_NAMETYPE_host_name) return SniParse::malformed;
  const size_t name_len = static_cast<size_t>(p[1]) << 8 | p[2];
  if (name_len + 3 != list_len || name_len == 0) return SniParse::malformed;
  if (name_len > kMaxHostName) return SniParse::bad_name;
  const char* name = reinterpret_cast<const char*>(p + 3);
  if (std::memchr(name, 0, name_len) != nullptr) return SniParse::bad_name;
  for (size_t i = 0; i < name_len; ++i) out[i] = lower_ascii(name[i]);
  out_len = static_cast<uint8_t>(name_len);
  return SniParse::ok;
}

int verify_mode_for(MtlsMode mode) noexcept {
  switch (mode) {
    case MtlsMode::off:
      return SSL_VERIFY_NONE;
    case MtlsMode::optional:
      return SSL_VERIFY_PEER;
    case MtlsMode::required:
      return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
}

// Alerts are recorded as they go out or come in: OpenSSL reports a failed
// handshake as an error code, and the alert is what the client saw.
void on_info(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_ALERT) == 0) return;
  HandshakeNotes* notes = TlsContexts::notes_of(ssl);
  const int description = ret & 0xff;
  if (notes == nullptr || description == SSL_AD_CLOSE_NOTIFY) return;
  const bool fatal = (ret >> 8) == SSL3_AL_FATAL;
  if ((where & SSL_CB_WRITE) != 0) {
    notes->alert_sent = description;
    notes->alert_sent_fatal = fatal;
  } else {
    notes->alert_received = description;
    notes->alert_received_fatal = fatal;
  }
}

// Installed with SSL_CTX_set_cert_verify_callback on every host context: runs
// the host's verifier (or X509_verify_cert), records why a certificate failed,
// and in optional mode lets the handshake go on. Done here rather than in a
// per-certificate verify callback so that a replacement verifier gets the same
// optional semantics, and so that verification stops at the first failure
// instead of checking (and CRL-verifying) the rest of a chain already refused.
// The failure stays in the store context's error, which OpenSSL keeps as the
// session's verify result: a resumed session reports it again.
int verify_client_chain(X509_STORE_CTX* store_ctx, void* arg) {
  const auto& host = *static_cast<const TlsContexts::Host*>(arg);
  ERR_set_mark();
  const int ok = host.verifier.verify != nullptr ? host.verifier.verify(store_ctx, host.verifier.arg)
                                                 : X509_verify_cert(store_ctx);
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  HandshakeNotes* notes = ssl != nullptr ? TlsContexts::notes_of(ssl) : nullptr;
  if (notes != nullptr) notes->verify_ran = true;
  if (ok > 0) {
    ERR_pop_to_mark();
    return 1;
  }
  int error = X509_STORE_CTX_get_error(store_ctx);
  if (error == X509_V_OK) {
    error = X509_V_ERR_UNSPECIFIED;
    X509_STORE_CTX_set_error(store_ctx, error);
  }
  if (notes != nullptr) {
    notes->verify_error = error;
    notes->verify_error_depth = X509_STORE_CTX_get_error_depth(store_ctx);
  }
  if (host.mtls == MtlsMode::optional) {
    // Whatever the verifier queued must not reach SSL_get_error later, where
    // it would turn the next WANT_READ into a failure.
    ERR_pop_to_mark();
    return 1;
  }
  ERR_clear_last_mark();
  return 0;
}

// RFC 7301 3.2: the server picks by its own preference among what the client
// offers; no overlap is a fatal no_application_protocol alert (OpenSSL sends
// it for SSL_TLSEXT_ERR_ALERT_FATAL). A host without ALPN ignores the
// extension.
int select_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void* arg) {
  const auto& host = *static_cast<const TlsContexts::Host*>(arg);
  const std::string& ours = host.alpn_wire;
  if (ours.empty()) return SSL_TLSEXT_ERR_NOACK;
  for (size_t i = 0; i < ours.size(); i += 1 + static_cast<uint8_t>(ours[i])) {
    const auto n = static_cast<uint8_t>(ours[i]);
    const auto* name = reinterpret_cast<const unsigned char*>(ours.data() + i + 1);
    for (unsigned j = 0; j < in_len; j += 1u + in[j]) {
      const unsigned m = in[j];
      if (j + 1 + m > in_len) break;
      if (m == n && std::memcmp(in + j + 1, name, n) == 0) {
        *out = name;
        *out_len = n;
        if (HandshakeNotes* notes = TlsContexts::notes_of(ssl); notes != nullptr) {
          notes->alpn = ours.data() + i + 1;
          notes->alpn_len = n;
        }
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// "LABEL <client_random hex> <secret hex>" (the NSS key log format). Only
// the two application secrets, and only for a session that asked: they key
// our record layer (record_protection.h), and nothing else keeps them.
void on_keylog(const SSL* ssl, const char* line) {
  HandshakeNotes* notes = TlsContexts::notes_of(ssl);
  if (notes == nullptr || !notes->capture_secrets) return;
  const std::string_view text(line);
  const size_t first = text.find(' ');
  const size_t second = first == std::string_view::npos ? first : text.find(' ', first + 1);
  if (second == std::string_view::npos) return;
  const std::string_view label = text.substr(0, first);
  TrafficSecret* target = label == "CLIENT_TRAFFIC_SECRET_0"   ? &notes->client_application
                          : label == "SERVER_TRAFFIC_SECRET_0" ? &notes->server_application
                                                               : nullptr;
  if (target == nullptr) return;
  // The secret is the line's last field: its hex runs to the terminating NUL.
  // A failure's error entry is dropped: libssl would read it in
  // SSL_get_error as this connection's failure.
  size_t length = 0;
  ERR_set_mark();
  const bool decoded =
      OPENSSL_hexstr2buf_ex(target->bytes.data(), target->bytes.size(), &length, line + second + 1, '\0') == 1;
  ERR_pop_to_mark();
  if (!decoded) {
    wipe(*target);
    return;
  }
  target->length = static_cast<uint8_t>(length);
}


// What every context of the set shares. The front context's values are the
// ones a connection gets (SSL_new copies them); host contexts get the same so
// that each is also complete on its own.
bool apply_protocol_settings(SSL_CTX* ctx, std::string& error) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    return fail(error, "cannot set the TLS versions");
  }
  // SSL_OP_NO_TICKET: TLS 1.2 resumes by session id and TLS 1.3 issues
  // stateful tickets; both resume from the worker's cache without decoding a
  // certificate again (stateless tickets cost one d2i_SSL_SESSION each).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_clear_options(ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
  // Partial writes: SSL_write returns after each record, so the session can
  // size every record to the room in the TCP send buffer. Moving buffer: a
  // write retried after the send buffer was full may come from another
  // address of the same bytes (the TCP ring's span may start elsewhere).
  // No auto-chain: the chain is built once below, never per handshake.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_NO_AUTO_CHAIN);
  // One ticket: the second (OpenSSL's default) is one more session to cache
  // for clients that use one (research/openssl-3.0-levers.md table 1).
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_max_early_data(ctx, 0);
  // Read ahead: OpenSSL pulls what the TCP receive buffer holds in one BIO
  // call instead of a header then a body per record.
  SSL_CTX_set_read_ahead(ctx, 1);
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) return fail(error, "cannot set the key share groups");
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 || SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1) {
    return fail(error, "cannot set the cipher suites");
  }
  SSL_CTX_set_info_callback(ctx, on_info);
  // On every context: after SNI the host's context is the one OpenSSL asks.
  SSL_CTX_set_keylog_callback(ctx, on_keylog);
  return true;
}

std::string key_description(EVP_PKEY* key) {
  const int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
      return "EC" + std::to_string(bits);
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      return "RSA" + std::to_string(bits);
    case EVP_PKEY_ED25519:
      return "ED25519";
    case EVP_PKEY_ED448:
      return "ED448";
    default:
      return "UNKNOWN";
  }
}

std::string signature_digest(X509* cert) {
  int digest_nid = NID_undef;
  if (X509_get_signature_info(cert, &digest_nid, nullptr, nullptr, nullptr) != 1 || digest_nid == NID_undef) {
    return "UNKNOWN";
  }
  const char* name = OBJ_nid2sn(digest_nid);
  return name != nullptr ? name : "UNKNOWN";
}

// The chain sent to clients, built once: the certificates of the chain file
// are the only anchors (partial chains allowed, so a file without its root
// works), the leaf must chain through them, and a self-signed root is left
// out (NO_ROOT): clients have it, and each certificate sent is one more for
// them to decode (-26% client CPU, research/openssl-3.0-levers.md).
// From PEM text rather than files: the control socket hands certificates
// and keys over as text, and the file loader reads them the same way.
BioHandle memory_bio(std::string_view pem) {
  return BioHandle(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

bool use_certificate_chain_pem(SSL_CTX* ctx, std::string_view pem, std::string& error) {
  BioHandle bio = memory_bio(pem);
  if (!bio) return fail(error, "out of memory");
  X509Handle leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf || SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
    return fail(error, "the certificate chain holds no readable certificate");
  }
  if (SSL_CTX_clear_chain_certs(ctx) != 1) return fail(error, "cannot reset the chain");
  while (X509* next = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, next) != 1) {
      X509_free(next);
      return fail(error, "cannot add a chain certificate");
    }
  }
  // The loop ends on "no start line" at the end of the text; anything else
  // is a damaged block.
  const unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    return true;
  }
  return fail(error, "the certificate chain holds a damaged certificate");
}

bool use_private_key_pem(SSL_CTX* ctx, std::string_view pem, std::string& error) {
  BioHandle bio = memory_bio(pem);
  if (!bio) return fail(error, "out of memory");
  EvpPkeyHandle key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return fail(error, "the key text holds no readable unencrypted private key");
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) return fail(error, "the key does not match the certificate");
  return true;
}

bool build_server_chain(SSL_CTX* ctx, std::string& error) {
  STACK_OF(X509)* extra = nullptr;
  if (SSL_CTX_get0_chain_certs(ctx, &extra) != 1) return fail(error, "cannot read the chain");
  if (extra == nullptr || sk_X509_num(extra) == 0) return true;  // leaf only: nothing to order
  X509StoreHandle anchors(X509_STORE_new());
  if (!anchors) return fail(error, "out of memory");
  for (int i = 0; i < sk_X509_num(extra); ++i) {
    if (X509_STORE_add_cert(anchors.get(), sk_X509_value(extra, i)) != 1) {
      return fail(error, "cannot use the chain's certificates");
    }
  }
  X509_STORE_set_flags(anchors.get(), X509_V_FLAG_PARTIAL_CHAIN);
  if (SSL_CTX_set1_chain_cert_store(ctx, anchors.get()) != 1) return fail(error, "cannot set the chain store");
  const int built = SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT);
  SSL_CTX_set1_chain_cert_store(ctx, nullptr);
  if (built != 1) return fail(error, "the certificate chain does not verify");
  return true;
}

bool load_client_trust(const TlsHostSpec& spec, SSL_CTX* ctx, std::string& error) {
  X509StoreHandle store;
  if (spec.client_store != nullptr) {
    if (X509_STORE_up_ref(spec.client_store) != 1) return fail(error, "cannot reference the client store");
    store.reset(spec.client_store);
  } else {
    store.reset(X509_STORE_new());
    if (!store) return fail(error, "out of memory");
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store.get(), X509_LOOKUP_file());
    if (lookup == nullptr) return fail(error, "out of memory");
    for (const std::string& path : spec.client_ca_pems) {
      if (X509_load_cert_crl_file(lookup, path.c_str(), X509_FILETYPE_PEM) <= 0) {
        return fail(error, "cannot read client CA file " + path);
      }
    }
    for (const std::string& path : spec.client_crl_pems) {
      if (X509_load_cert_crl_file(lookup, path.c_str(), X509_FILETYPE_PEM) <= 0) {
        return fail(error, "cannot read CRL file " + path);
      }
    }
    // With CRLs, every CA of a chain must have a current one: a CA without
    // its CRL fails as "unable to get certificate CRL" rather than pass
    // unchecked.
    if (!spec.client_crl_pems.empty()) {
      X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
  }
  if (SSL_CTX_set1_verify_cert_store(ctx, store.get()) != 1) return fail(error, "cannot set the client store");

  // CertificateRequest certificate_authorities (RFC 8446 4.2.4; RFC 5246
  // 7.4.4): the names of the host's CAs, so that a client with several
  // certificates picks one these CAs issued.
  X509NameStackHandle names(sk_X509_NAME_new_null());
  if (!names) return fail(error, "out of memory");
  if (!spec.client_ca_pems.empty()) {
    for (const std::string& path : spec.client_ca_pems) {
      if (SSL_add_file_cert_subjects_to_stack(names.get(), path.c_str()) != 1) {
        return fail(error, "cannot read CA names from " + path);
      }
    }
  } else {
    STACK_OF(X509)* certs = X509_STORE_get1_all_certs(store.get());
    if (certs == nullptr) return fail(error, "cannot list the client store");
    bool ok = true;
    for (int i = 0; i < sk_X509_num(certs) && ok; ++i) {
      X509_NAME* name = X509_NAME_dup(X509_get_subject_name(sk_X509_value(certs, i)));
      ok = name != nullptr && sk_X509_NAME_push(names.get(), name) > 0;
      if (!ok) X509_NAME_free(name);
    }
    sk_X509_pop_free(certs, X509_free);
    if (!ok) return fail(error, "out of memory");
  }
  SSL_CTX_set_client_CA_list(ctx, names.release());
  return true;
}

bool encode_alpn(const std::vector<std::string>& names, std::string& wire, std::string& error) {
  for (const std::string& name : names) {
    if (name.empty() || name.size() > 255) {
      error = "ALPN names must be 1 to 255 bytes (RFC 7301 3.1)";
      return false;
    }
    wire.push_back(static_cast<char>(name.size()));
    wire += name;
  }
  return true;
}

bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostName) return false;
  if (name.starts_with("*.")) name.remove_prefix(2);
  return !name.empty() && name.find('*') == std::string_view::npos && !name.starts_with('.') &&
         !name.ends_with('.');
}

bool build_host(const TlsHostSpec& spec, TlsContexts::Host& host, std::string& error) {
  host.name = lower(spec.name);
  host.mtls = spec.mtls;
  host.verify_depth = spec.verify_depth;
  host.min_version = spec.min_version == MinTlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  host.verifier = spec.verifier;
  if (!valid_host_name(host.name)) {
    error = "not a host name or a \"*.\" wildcard";
    return false;
  }
  if (spec.early_data) {
    error = "early_data (0-RTT) is not supported";
    return false;
  }
  if (!encode_alpn(spec.alpn, host.alpn_wire, error)) return false;

  host.ctx.reset(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* ctx = host.ctx.get();
  if (ctx == nullptr) return fail(error, "cannot create an SSL_CTX");
  if (!apply_protocol_settings(ctx, error)) return false;
  if (!use_certificate_chain_pem(ctx, spec.cert_chain_pem, error)) return false;
  if (!use_private_key_pem(ctx, spec.key_pem, error)) return false;
  if (SSL_CTX_check_private_key(ctx) != 1) return fail(error, "the key does not match the certificate");
  if (!build_server_chain(ctx, error)) return false;
  host.cert_key_alg = key_description(SSL_CTX_get0_privatekey(ctx));
  host.cert_sig_alg = signature_digest(SSL_CTX_get0_certificate(ctx));

  // A session belongs to the host that made it: a session id context per
  // host means a session from one host is never resumed on another, whose
  // client-certificate policy it never passed. By name, not by position:
  // tables published later number their hosts differently (RFC 5246 7.4.1.2
  // leaves the context to the server; OpenSSL caps it at 32 bytes).
  // The SHA-256 of the name fills those 32 bytes whatever the name's length.
  const std::string sid_input = "mtlsgw/host/" + host.name;
  unsigned char sid[SHA256_DIGEST_LENGTH];
  static_assert(sizeof sid <= SSL_MAX_SID_CTX_LENGTH);
  unsigned sid_len = 0;
  if (EVP_Digest(sid_input.data(), sid_input.size(), sid, &sid_len, EVP_sha256(), nullptr) != 1 ||
      SSL_CTX_set_session_id_context(ctx, sid, sid_len) != 1) {
    return fail(error, "cannot set the session id context");
  }

  if (spec.mtls != MtlsMode::off) {
    if (spec.client_store == nullptr && spec.client_ca_pems.empty()) {
      error = std::string("mtls ") + name_of(spec.mtls) + " needs client CAs";
      return false;
    }
    if (!load_client_trust(spec, ctx, error)) return false;
  }
  SSL_CTX_set_verify(ctx, verify_mode_for(spec.mtls), nullptr);
  SSL_CTX_set_verify_depth(ctx, spec.verify_depth);
  return true;
}

}  // namespace

const char* name_of(MtlsMode mode) noexcept {
  switch (mode) {
    case MtlsMode::off:
      return "off";
    case MtlsMode::optional:
      return "optional";
    case MtlsMode::required:
      return "required";
  }
  return "?";
}

void TlsContexts::count_tickets(int write_p, int, int content_type, const void* buf, size_t len, SSL* ssl,
                                void*) {
  if (write_p == 0 || content_type != SSL3_RT_HANDSHAKE || len == 0) return;
  if (static_cast<const uint8_t*>(buf)[0] != SSL3_MT_NEWSESSION_TICKET) return;
  HandshakeNotes* notes = notes_of(ssl);
  if (notes != nullptr && notes->tickets_sent < UINT8_MAX) ++notes->tickets_sent;
}

void HandshakeNotes::clear() noexcept {
  host = kNoHost;
  verify_error = X509_V_OK;
  verify_error_depth = -1;
  verify_ran = false;
  alert_sent = alert_received = kNoAlert;
  alert_sent_fatal = alert_received_fatal = false;
  ticket_on_resumption = false;
  sni_len = 0;
  alpn = nullptr;
  alpn_len = 0;
  capture_secrets = false;
  tickets_sent = 0;
  wipe_secrets();
}

void HandshakeNotes::wipe_secrets() noexcept {
  wipe(client_application);
  wipe(server_application);
}

TlsContexts::~TlsContexts() = default;

void TlsContexts::attach(SSL* ssl, HandshakeNotes* notes) noexcept { SSL_set_app_data(ssl, notes); }

HandshakeNotes* TlsContexts::notes_of(const SSL* ssl) noexcept {
  return static_cast<HandshakeNotes*>(SSL_get_app_data(ssl));
}

uint32_t TlsContexts::find_host(std::string_view name) const noexcept {
  if (!name.empty()) {
    if (const auto it = exact_.find(name); it != exact_.end()) return it->second;
    const size_t dot = name.find('.');
    if (dot != std::string_view::npos && dot > 0 && dot + 1 < name.size()) {
      if (const auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
    }
  }
  return default_host_;
}

// Runs before OpenSSL has parsed any extension or picked a version, so the
// host's certificate, CA list, ALPN choice, verify mode and minimum version
// all apply to this handshake. SNI is read from the raw extension because
// SSL_get_servername has nothing yet at this point.
int TlsContexts::on_client_hello(SSL* ssl, int* alert, void* arg) noexcept {
  const auto& self = *static_cast<const TlsContexts*>(arg);
  char name[kMaxHostName];
  uint8_t name_len = 0;
  const unsigned char* ext = nullptr;
  size_t ext_len = 0;
  const bool has_sni = SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_len) == 1;
  if (has_sni) {
    switch (parse_server_name(ext, ext_len, name, name_len)) {
      case SniParse::ok:
        break;
      case SniParse::malformed:
        *alert = SSL_AD_DECODE_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
      case SniParse::bad_name:
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
  }
  const uint32_t index = self.find_host({name, name_len});
  HandshakeNotes* notes = notes_of(ssl);
  if (notes != nullptr && notes->host == kNoHost) {
    // Kept also for a name no host serves: the access log says what was
    // asked for.
    std::memcpy(notes->sni, name, name_len);
    notes->sni_len = name_len;
  }
  if (index == kNoHost) {
    // RFC 6066 3: a name the server does not recognise is unrecognized_name.
    // Without SNI, RFC 8446 9.2 asks for missing_extension, but this
    // callback runs before the version is chosen, where OpenSSL 3.0 turns
    // that alert into handshake_failure (tls1_alert_code); ask for that
    // directly, the alert TLS 1.2 has for it anyway.
    *alert = has_sni ? SSL_AD_UNRECOGNIZED_NAME : SSL_AD_HANDSHAKE_FAILURE;
    return SSL_CLIENT_HELLO_ERROR;
  }
  if (notes != nullptr) {
    // A second ClientHello (after HelloRetryRequest) must name the same host
    // (RFC 8446 4.1.2: it repeats the first but for key_share, cookie,
    // early_data and padding).
    if (notes->host != kNoHost && notes->host != index) {
      *alert = SSL_AD_ILLEGAL_PARAMETER;
      return SSL_CLIENT_HELLO_ERROR;
    }
    notes->host = index;
    notes->ticket_on_resumption = self.ticket_on_resumption_;
  }
  const Host& host = *self.hosts_[index];
  if (SSL_set_SSL_CTX(ssl, host.ctx.get()) == nullptr) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  SSL_set_verify(ssl, verify_mode_for(host.mtls), nullptr);
  SSL_set_verify_depth(ssl, host.verify_depth);
  if (SSL_set_min_proto_version(ssl, host.min_version) != 1) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

std::unique_ptr<TlsContexts> TlsContexts::build(const std::vector<TlsHostSpec>& hosts,
                                                const TlsContextOptions& options, std::string& error) {
  ERR_clear_error();
  if (hosts.empty()) {
    error = "no TLS hosts";
    return nullptr;
  }
  std::unique_ptr<TlsContexts> self(new TlsContexts());
  self->front_.reset(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* front = self->front_.get();
  if (front == nullptr) {
    fail(error, "cannot create an SSL_CTX");
    return nullptr;
  }
  if (!apply_protocol_settings(front, error)) return nullptr;
  // The session cache lives in the context a connection was made from (its
  // session_ctx, which SSL_set_SSL_CTX keeps): the front one, per worker, so
  // no other worker takes its lock. The per-host session id contexts keep
  // the hosts' sessions apart inside it.
  SSL_CTX_set_session_cache_mode(front, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(front, options.session_cache_entries);
  SSL_CTX_set_timeout(front, options.session_timeout_s);
  static constexpr unsigned char kFrontSid[] = "mtlsgw/front";
  SSL_CTX_set_session_id_context(front, kFrontSid, sizeof kFrontSid - 1);
  SSL_CTX_set_client_hello_cb(front, on_client_hello, self.get());
  self->ticket_on_resumption_ = options.ticket_on_resumption;

  for (size_t i = 0; i < hosts.size(); ++i) {
    const TlsHostSpec& spec = hosts[i];
    const auto index = static_cast<uint32_t>(i);
    auto host = std::make_unique<Host>();
    if (!build_host(spec, *host, error)) {
      error = "host " + spec.name + ": " + error;
      return nullptr;
    }
    SSL_CTX* ctx = host->ctx.get();
    // Also on host contexts: an SSL reused with SSL_clear starts its next
    // connection on the host context its previous one switched to.
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, self.get());
    SSL_CTX_set_cert_verify_callback(ctx, verify_client_chain, host.get());
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, host.get());

    const std::string& name = host->name;
    const bool wildcard = name.starts_with("*.");
    NameIndex& names = wildcard ? self->wildcard_ : self->exact_;
    if (!names.emplace(wildcard ? name.substr(2) : name, index).second) {
      error = "host " + spec.name + ": configured twice";
      return nullptr;
    }
    if (spec.default_host) {
      if (self->default_host_ != kNoHost) {
        error = "host " + spec.name + ": a second default host";
        return nullptr;
      }
      self->default_host_ = index;
    }
    self->hosts_.push_back(std::move(host));
  }
  return self;
}

}  // namespace mtlsgw::tls
