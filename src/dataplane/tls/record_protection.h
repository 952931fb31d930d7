#pragma once
// TLS 1.3 record payload protection (RFC 8446 5.1-5.5) with Intel IPsec-MB's
// AES-GCM, for connections whose handshake OpenSSL finished: one
// RecordProtection per direction, keyed from that direction's traffic
// secret (record_keys.h).
//
// Threading: the IMB_MGR is the worker's own (ImbMgrHandle in
// common/handles.h, one per thread, never shared) and is passed to each
// call; a RecordProtection holds no pointer to it, so a connection's state
// is plain data. No call allocates, throws or makes a system call.
//
// Switch-over from OpenSSL (server side, TLS 1.3, full handshake with
// SSL_CTX_set_num_tickets(1) as tls_context.cc configures it): when
// SSL_do_handshake first returns 1 on the server,
//   - the server has already written ONE record under
//     SERVER_TRAFFIC_SECRET_0: its NewSessionTicket (OpenSSL writes the
//     tickets right after reading the client's Finished, inside the same
//     SSL_do_handshake call). Our send side starts at sequence 1.
//   - it has read NO record under CLIENT_TRAFFIC_SECRET_0: the client's
//     Finished was the last record under the handshake secret. Our receive
//     side starts at sequence 0, with every byte after that Finished record
//     (which may already sit in OpenSSL's read buffer: see
//     SSL_has_pending / the transport BIO) being records under the
//     application secret.
//   Caveat: with read_ahead on (TlsContext and TlsSession set it), OpenSSL
//   may already have pulled records behind Finished into its own buffer
//   (SSL_has_pending() == 1), out of our reach. The switch-over must
//   happen with that buffer empty: the transport BIO hands OpenSSL no byte
//   past the end of the record it is reading while the handshake runs (we
//   can frame records with find_record), or read_ahead is off until then.
// With num_tickets(N) the send side starts at N (one record per ticket;
// OpenSSL does not coalesce them); a resumed handshake issues a ticket only
// if the context asks for it (TlsContext's ticket_on_resumption).
// record_interop_test.cc (SwitchOver*, ReadAheadSwallowsDataBehindFinished)
// proves these against OpenSSL as the peer.

// IPsec-MB's pre-0.53 names (SHA1, GCM, ENCRYPT...) are macros that break
// OpenSSL's headers; only the IMB_ names are used.
#ifndef NO_COMPAT_IMB_API_053
#define NO_COMPAT_IMB_API_053
#endif
#include <intel-ipsec-mb.h>

#include <cstddef>
#include <cstdint>

#include "dataplane/tls/record_keys.h"

namespace mtlsgw::tls {

// ContentType of RFC 8446 5.1.
enum class ContentType : uint8_t {
  invalid = 0,
  change_cipher_spec = 20,
  alert = 21,
  handshake = 22,
  application_data = 23,
};

enum class RecordStatus : uint8_t {
  ok,
  need_more,            // find_record: the record is not complete yet
  bad_record_mac,       // tag mismatch, or a record too short to hold a tag (5.2)
  record_overflow,      // TLSCiphertext over 2^14 + 256, or TLSInnerPlaintext over 2^14 + 1 (5.2, 5.4)
  unexpected_message,   // outer type not application_data, no non-zero byte in the inner plaintext (5.4),
                        // an inner type TLS 1.3 does not carry, or an empty handshake or alert fragment (5.1)
  sequence_exhausted,   // the sequence number would wrap (5.3): the connection must end
  key_limit,            // this key sealed the most records 5.5 allows: send a KeyUpdate first
  buffer_too_small,     // the caller's output buffer cannot hold the result
  invalid_argument,     // plaintext over 2^14, or a content type the caller may not seal
  no_keys,              // install() has not succeeded
};
const char* name_of(RecordStatus status) noexcept;

// The alert (RFC 8446 6) a status calls for on the wire; 0 for ok and
// need_more, internal_error (80) for our own failures.
constexpr uint8_t alert_for(RecordStatus status) noexcept {
  switch (status) {
    case RecordStatus::ok:
    case RecordStatus::need_more: return 0;
    case RecordStatus::bad_record_mac: return 20;
    case RecordStatus::record_overflow: return 22;
    case RecordStatus::unexpected_message: return 10;
    default: return 80;
  }
}

inline constexpr size_t kRecordHeaderLength = 5;
inline constexpr size_t kRecordTagLength = 16;
inline constexpr size_t kMaxRecordPlaintext = size_t{1} << 14;             // 5.1
inline constexpr size_t kMaxInnerPlaintext = kMaxRecordPlaintext + 1;      // 5.4
inline constexpr size_t kMaxRecordCiphertext = kMaxRecordPlaintext + 256;  // 5.2
inline constexpr size_t kMaxRecordLength = kRecordHeaderLength + kMaxRecordCiphertext;

// Bytes seal() writes for `plaintext` bytes: header, data, inner content
// type (we add no padding), tag.
constexpr size_t sealed_length(size_t plaintext) noexcept {
  return kRecordHeaderLength + plaintext + 1 + kRecordTagLength;
}

// Where the next record of a byte stream ends. The header alone decides:
// a record that cannot be valid fails as soon as its header is seen, before
// its body arrives.
struct RecordBoundary {
  RecordStatus status = RecordStatus::need_more;  // ok, need_more, record_overflow or unexpected_message
  size_t length = 0;                              // header + body; known once the header is (0 before)
};
RecordBoundary find_record(const uint8_t* data, size_t available) noexcept;

struct SealResult {
  RecordStatus status = RecordStatus::ok;
  size_t length = 0;  // bytes written to out
};

struct OpenResult {
  RecordStatus status = RecordStatus::ok;
  ContentType type = ContentType::invalid;  // the inner content type
  size_t length = 0;                        // plaintext bytes, padding and type removed
};

// One record of a batch (RecordProtection::seal_batch).
struct SealRequest {
  ContentType type = ContentType::application_data;
  const uint8_t* data = nullptr;
  size_t length = 0;
  uint8_t* out = nullptr;
  size_t capacity = 0;
  SealResult result;
};

// How seal_batch drives IPsec-MB; perf/record_bench.cc compares them.
enum class BatchMethod : uint8_t {
  gcm_calls,  // one direct GCM call per record
  job_api,    // IMB_GET_NEXT_JOB / IMB_SUBMIT_JOB / IMB_FLUSH_JOB
};

class RecordProtection {
 public:
  // RFC 8446 5.5: at most 2^24.5 full-size records per AES-GCM key.
  static constexpr uint64_t kAesGcmRecordLimit = 23726566;  // floor(2^24.5)
  // From here on key_update_due() asks the caller for a KeyUpdate, leaving
  // 7.7 million records of margin before seal() refuses.
  static constexpr uint64_t kKeyUpdateThreshold = uint64_t{1} << 24;

  RecordProtection() noexcept = default;
  ~RecordProtection() { clear(); }
  RecordProtection(const RecordProtection&) = delete;  // key material: one owner
  RecordProtection& operator=(const RecordProtection&) = delete;

  // Keys this direction from a traffic secret; `sequence` is the number of
  // records the peer or OpenSSL already protected under it (see the
  // switch-over rule above). False when derivation fails (state cleared).
  bool install(IMB_MGR& mgr, RecordCipher cipher, const TrafficSecret& secret, uint64_t sequence = 0) noexcept;
  // KeyUpdate (4.6.3): the next traffic secret (7.2), sequence 0. The
  // sender calls it right after sealing its KeyUpdate message, the
  // receiver right after opening the peer's.
  bool update_key(IMB_MGR& mgr) noexcept;
  // Wipes keys and secret.
  void clear() noexcept;

  bool installed() const noexcept { return installed_; }
  RecordCipher cipher() const noexcept { return cipher_; }
  uint64_t sequence() const noexcept { return sequence_; }
  bool key_update_due() const noexcept { return sequence_ >= kKeyUpdateThreshold; }
  const TrafficSecret& secret() const noexcept { return secret_; }

  // One TLSCiphertext of `type` carrying data[0, length) into out, which
  // needs sealed_length(length) bytes. data may be out + 5 (in place);
  // otherwise it must not overlap out.
  SealResult seal(IMB_MGR& mgr, ContentType type, const uint8_t* data, size_t length, uint8_t* out,
                  size_t capacity) noexcept;

  // Seals requests in order, each like seal(); stops at the first that
  // fails. Returns how many were sealed. With job_api each request's
  // plaintext is first placed at out + 5 (a copy unless it is there).
  size_t seal_batch(IMB_MGR& mgr, SealRequest* requests, size_t count,
                    BatchMethod method = BatchMethod::gcm_calls) noexcept;

  // The record seal() produced last, sealed again under the same sequence
  // number without advancing: for a sender whose sink took only part of it
  // and that has no room to keep the rest. The caller must pass the same
  // type and bytes (a nonce used for two different plaintexts breaks
  // AES-GCM: compare the tag with the first one before emitting anything).
  SealResult reseal_last(IMB_MGR& mgr, ContentType type, const uint8_t* data, size_t length, uint8_t* out,
                         size_t capacity) noexcept;

  // One complete record (find_record's length) into out, which needs
  // record_length - 5 - 16 bytes; the plaintext starts at out. out's
  // contents are unspecified when the status is not ok.
  OpenResult open(IMB_MGR& mgr, const uint8_t* record, size_t record_length, uint8_t* out,
                  size_t capacity) noexcept;
  // The same, decrypting in place: the plaintext starts at record + 5.
  OpenResult open_in_place(IMB_MGR& mgr, uint8_t* record, size_t record_length) noexcept {
    return open(mgr, record, record_length, record + kRecordHeaderLength, record_length);
  }
  // The record open() accepted last is to be opened again (its reader took
  // only part of the plaintext and keeps no copy): the sequence number goes
  // back by one. Opening under one nonce twice reveals nothing new.
  void unopen_last() noexcept {
    if (sequence_ > 0) --sequence_;
  }

 private:
  void nonce_for(uint64_t sequence, uint8_t* nonce) const noexcept;
  void precompute(IMB_MGR& mgr, const TrafficKeys& keys) noexcept;

  // Expanded AES round keys and GHASH powers; IPsec-MB's assembly expects
  // 64-byte alignment, which its header only requests when LINUX is defined.
  alignas(64) gcm_key_data key_{};
  TrafficSecret secret_{};
  uint8_t iv_[kRecordIvLength]{};
  uint64_t sequence_ = 0;
  RecordCipher cipher_ = RecordCipher::aes_128_gcm_sha256;
  bool installed_ = false;
};

}  // namespace mtlsgw::tls
