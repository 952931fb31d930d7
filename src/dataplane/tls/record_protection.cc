#include "dataplane/tls/record_protection.h"

#include <openssl/crypto.h>

#include <cstring>

namespace mtlsgw::tls {

namespace {

constexpr uint8_t kOuterType = static_cast<uint8_t>(ContentType::application_data);
// legacy_record_version of every TLS 1.3 protected record (5.1, 5.2).
constexpr uint8_t kLegacyVersionMajor = 0x03;
constexpr uint8_t kLegacyVersionMinor = 0x03;

void write_header(uint8_t* out, size_t ciphertext_length) noexcept {
  out[0] = kOuterType;
  out[1] = kLegacyVersionMajor;
  out[2] = kLegacyVersionMinor;
  out[3] = static_cast<uint8_t>(ciphertext_length >> 8);
  out[4] = static_cast<uint8_t>(ciphertext_length);
}

bool sealable(ContentType type, size_t length) noexcept {
  switch (type) {
    case ContentType::application_data: return true;  // zero-length allowed (5.4)
    case ContentType::handshake:
    case ContentType::alert: return length != 0;  // 5.1: no zero-length fragments of these
    default: return false;
  }
}

}  // namespace

const char* name_of(RecordStatus status) noexcept {
  switch (status) {
    case RecordStatus::ok: return "ok";
    case RecordStatus::need_more: return "need_more";
    case RecordStatus::bad_record_mac: return "bad_record_mac";
    case RecordStatus::record_overflow: return "record_overflow";
    case RecordStatus::unexpected_message: return "unexpected_message";
    case RecordStatus::sequence_exhausted: return "sequence_exhausted";
    case RecordStatus::key_limit: return "key_limit";
    case RecordStatus::buffer_too_small: return "buffer_too_small";
    case RecordStatus::invalid_argument: return "invalid_argument";
    case RecordStatus::no_keys: return "no_keys";
  }
  return "?";
}

RecordBoundary find_record(const uint8_t* data, size_t available) noexcept {
  if (available < kRecordHeaderLength) return {RecordStatus::need_more, 0};
  // After the handshake every record is protected and says
  // application_data outside (5.2); a change_cipher_spec is tolerated only
  // before the peer's Finished (5), which OpenSSL has read by switch-over.
  // legacy_record_version is ignored (5.1).
  if (data[0] != kOuterType) return {RecordStatus::unexpected_message, 0};
  const size_t body = (size_t{data[3]} << 8) | data[4];
  if (body > kMaxRecordCiphertext) return {RecordStatus::record_overflow, 0};
  const size_t length = kRecordHeaderLength + body;
  return {available >= length ? RecordStatus::ok : RecordStatus::need_more, length};
}

bool RecordProtection::install(IMB_MGR& mgr, RecordCipher cipher, const TrafficSecret& secret,
                               uint64_t sequence) noexcept {
  clear();
  TrafficKeys keys;
  if (!derive_traffic_keys(cipher, secret, keys)) return false;
  cipher_ = cipher;
  secret_ = secret;
  precompute(mgr, keys);
  wipe(keys);
  sequence_ = sequence;
  installed_ = true;
  return true;
}

bool RecordProtection::update_key(IMB_MGR& mgr) noexcept {
  if (!installed_) return false;
  TrafficSecret next;
  const bool ok = next_traffic_secret(cipher_, secret_, next) && install(mgr, cipher_, next, 0);
  wipe(next);
  if (!ok) clear();
  return ok;
}

void RecordProtection::clear() noexcept {
  OPENSSL_cleanse(&key_, sizeof key_);
  OPENSSL_cleanse(iv_, sizeof iv_);
  wipe(secret_);
  sequence_ = 0;
  installed_ = false;
}

void RecordProtection::precompute(IMB_MGR& mgr, const TrafficKeys& keys) noexcept {
  std::memcpy(iv_, keys.iv.data(), sizeof iv_);
  if (cipher_ == RecordCipher::aes_128_gcm_sha256) {
    IMB_AES128_GCM_PRE(&mgr, keys.key.data(), &key_);
  } else {
    IMB_AES256_GCM_PRE(&mgr, keys.key.data(), &key_);
  }
}

// 5.3: the 64-bit sequence number in network order, left-padded with zeros
// to the IV's length, XORed with the static IV.
void RecordProtection::nonce_for(uint64_t sequence, uint8_t* nonce) const noexcept {
  std::memcpy(nonce, iv_, kRecordIvLength);
  for (size_t i = 0; i < 8; ++i) {
    nonce[kRecordIvLength - 1 - i] ^= static_cast<uint8_t>(sequence >> (8 * i));
  }
}

SealResult RecordProtection::seal(IMB_MGR& mgr, ContentType type, const uint8_t* data, size_t length,
                                  uint8_t* out, size_t capacity) noexcept {
  if (!installed_) return {RecordStatus::no_keys, 0};
  if (length > kMaxRecordPlaintext || !sealable(type, length)) return {RecordStatus::invalid_argument, 0};
  const size_t total = sealed_length(length);
  if (capacity < total) return {RecordStatus::buffer_too_small, 0};
  // The last sequence number is never used, so that none wraps (5.3).
  if (sequence_ == UINT64_MAX) return {RecordStatus::sequence_exhausted, 0};
  if (sequence_ >= kAesGcmRecordLimit) return {RecordStatus::key_limit, 0};

  uint8_t nonce[kRecordIvLength];
  nonce_for(sequence_, nonce);
  const size_t inner = length + 1;
  write_header(out, inner + kRecordTagLength);
  uint8_t* body = out + kRecordHeaderLength;
  uint8_t* tag = body + inner;
  const uint8_t type_byte = static_cast<uint8_t>(type);
  const bool aes128 = cipher_ == RecordCipher::aes_128_gcm_sha256;
  if (data == body) {
    // In place: the inner plaintext is contiguous, one call.
    body[length] = type_byte;
    gcm_context_data context;
    if (aes128) {
      IMB_AES128_GCM_ENC(&mgr, &key_, &context, body, body, inner, nonce, out, kRecordHeaderLength, tag,
                         kRecordTagLength);
    } else {
      IMB_AES256_GCM_ENC(&mgr, &key_, &context, body, body, inner, nonce, out, kRecordHeaderLength, tag,
                         kRecordTagLength);
    }
  } else {
    // data ‖ type from two places without copying data: the streaming form.
    gcm_context_data context;
    if (aes128) {
      IMB_AES128_GCM_INIT(&mgr, &key_, &context, nonce, out, kRecordHeaderLength);
      if (length != 0) IMB_AES128_GCM_ENC_UPDATE(&mgr, &key_, &context, body, data, length);
      IMB_AES128_GCM_ENC_UPDATE(&mgr, &key_, &context, body + length, &type_byte, 1);
      IMB_AES128_GCM_ENC_FINALIZE(&mgr, &key_, &context, tag, kRecordTagLength);
    } else {
      IMB_AES256_GCM_INIT(&mgr, &key_, &context, nonce, out, kRecordHeaderLength);
      if (length != 0) IMB_AES256_GCM_ENC_UPDATE(&mgr, &key_, &context, body, data, length);
      IMB_AES256_GCM_ENC_UPDATE(&mgr, &key_, &context, body + length, &type_byte, 1);
      IMB_AES256_GCM_ENC_FINALIZE(&mgr, &key_, &context, tag, kRecordTagLength);
    }
  }
  ++sequence_;
  return {RecordStatus::ok, total};
}

SealResult RecordProtection::reseal_last(IMB_MGR& mgr, ContentType type, const uint8_t* data, size_t length,
                                         uint8_t* out, size_t capacity) noexcept {
  if (!installed_) return {RecordStatus::no_keys, 0};
  if (sequence_ == 0) return {RecordStatus::invalid_argument, 0};
  --sequence_;
  const SealResult result = seal(mgr, type, data, length, out, capacity);
  if (result.status != RecordStatus::ok) ++sequence_;
  return result;
}

size_t RecordProtection::seal_batch(IMB_MGR& mgr, SealRequest* requests, size_t count,
                                    BatchMethod method) noexcept {
  if (method == BatchMethod::gcm_calls) {
    for (size_t i = 0; i < count; ++i) {
      SealRequest& r = requests[i];
      r.result = seal(mgr, r.type, r.data, r.length, r.out, r.capacity);
      if (r.result.status != RecordStatus::ok) return i;
    }
    return count;
  }

  // The job API wants each inner plaintext contiguous: data ‖ type at
  // out + 5. Jobs are submitted in chunks whose nonces live on the stack.
  constexpr size_t kChunk = 32;
  uint8_t nonces[kChunk][kRecordIvLength];
  size_t done = 0;
  while (done < count) {
    size_t prepared = 0;
    RecordStatus refusal = RecordStatus::ok;
    for (; prepared < kChunk && done + prepared < count; ++prepared) {
      SealRequest& r = requests[done + prepared];
      const uint64_t sequence = sequence_ + prepared;
      if (!installed_) refusal = RecordStatus::no_keys;
      else if (r.length > kMaxRecordPlaintext || !sealable(r.type, r.length)) refusal = RecordStatus::invalid_argument;
      else if (r.capacity < sealed_length(r.length)) refusal = RecordStatus::buffer_too_small;
      else if (sequence == UINT64_MAX) refusal = RecordStatus::sequence_exhausted;
      else if (sequence >= kAesGcmRecordLimit) refusal = RecordStatus::key_limit;
      if (refusal != RecordStatus::ok) {
        r.result = {refusal, 0};
        break;
      }
      uint8_t* body = r.out + kRecordHeaderLength;
      if (r.data != body && r.length != 0) std::memmove(body, r.data, r.length);
      body[r.length] = static_cast<uint8_t>(r.type);
      write_header(r.out, r.length + 1 + kRecordTagLength);
      nonce_for(sequence, nonces[prepared]);

      IMB_JOB* job = IMB_GET_NEXT_JOB(&mgr);
      job->cipher_mode = IMB_CIPHER_GCM;
      job->hash_alg = IMB_AUTH_AES_GMAC;
      job->chain_order = IMB_ORDER_CIPHER_HASH;
      job->cipher_direction = IMB_DIR_ENCRYPT;
      job->enc_keys = &key_;
      job->dec_keys = &key_;
      job->key_len_in_bytes = cipher_ == RecordCipher::aes_128_gcm_sha256 ? IMB_KEY_128_BYTES : IMB_KEY_256_BYTES;
      job->src = body;
      job->dst = body;
      job->cipher_start_src_offset_in_bytes = 0;
      job->msg_len_to_cipher_in_bytes = r.length + 1;
      job->hash_start_src_offset_in_bytes = 0;
      job->msg_len_to_hash_in_bytes = r.length + 1;
      job->iv = nonces[prepared];
      job->iv_len_in_bytes = kRecordIvLength;
      job->u.GCM.aad = r.out;
      job->u.GCM.aad_len_in_bytes = kRecordHeaderLength;
      job->auth_tag_output = body + r.length + 1;
      job->auth_tag_output_len_in_bytes = kRecordTagLength;
      job->user_data = &r;
      IMB_JOB* completed = IMB_SUBMIT_JOB(&mgr);
      while (completed != nullptr) {
        auto* finished = static_cast<SealRequest*>(completed->user_data);
        finished->result.status =
            completed->status == IMB_STATUS_COMPLETED ? RecordStatus::ok : RecordStatus::invalid_argument;
        finished->result.length = sealed_length(finished->length);
        completed = IMB_GET_COMPLETED_JOB(&mgr);
      }
    }
    for (IMB_JOB* completed; (completed = IMB_FLUSH_JOB(&mgr)) != nullptr;) {
      auto* finished = static_cast<SealRequest*>(completed->user_data);
      finished->result.status =
          completed->status == IMB_STATUS_COMPLETED ? RecordStatus::ok : RecordStatus::invalid_argument;
      finished->result.length = sealed_length(finished->length);
    }
    sequence_ += prepared;
    for (size_t i = 0; i < prepared; ++i) {
      if (requests[done + i].result.status != RecordStatus::ok) return done + i;
    }
    done += prepared;
    if (refusal != RecordStatus::ok) return done;
  }
  return done;
}

OpenResult RecordProtection::open(IMB_MGR& mgr, const uint8_t* record, size_t record_length, uint8_t* out,
                                  size_t capacity) noexcept {
  if (!installed_) return {RecordStatus::no_keys, ContentType::invalid, 0};
  const RecordBoundary boundary = find_record(record, record_length);
  if (boundary.status == RecordStatus::need_more || boundary.length != record_length) {
    // Not exactly one record: the caller's framing is wrong.
    return {RecordStatus::invalid_argument, ContentType::invalid, 0};
  }
  if (boundary.status != RecordStatus::ok) return {boundary.status, ContentType::invalid, 0};
  const size_t body = record_length - kRecordHeaderLength;
  if (body < kRecordTagLength) return {RecordStatus::bad_record_mac, ContentType::invalid, 0};
  const size_t inner = body - kRecordTagLength;
  if (inner > kMaxInnerPlaintext) return {RecordStatus::record_overflow, ContentType::invalid, 0};
  if (capacity < inner) return {RecordStatus::buffer_too_small, ContentType::invalid, 0};
  if (sequence_ == UINT64_MAX) return {RecordStatus::sequence_exhausted, ContentType::invalid, 0};

  uint8_t nonce[kRecordIvLength];
  nonce_for(sequence_, nonce);
  const uint8_t* ciphertext = record + kRecordHeaderLength;
  uint8_t computed[kRecordTagLength];
  gcm_context_data context;
  // In place, out is record + 5: the header (the AAD) is never overwritten.
  if (cipher_ == RecordCipher::aes_128_gcm_sha256) {
    IMB_AES128_GCM_DEC(&mgr, &key_, &context, out, ciphertext, inner, nonce, record, kRecordHeaderLength,
                       computed, kRecordTagLength);
  } else {
    IMB_AES256_GCM_DEC(&mgr, &key_, &context, out, ciphertext, inner, nonce, record, kRecordHeaderLength,
                       computed, kRecordTagLength);
  }
  if (CRYPTO_memcmp(computed, ciphertext + inner, kRecordTagLength) != 0) {
    return {RecordStatus::bad_record_mac, ContentType::invalid, 0};
  }
  ++sequence_;

  // 5.4: the content type is the last non-zero byte; the zeros after it are
  // padding.
  size_t end = inner;
  while (end != 0 && out[end - 1] == 0) --end;
  if (end == 0) return {RecordStatus::unexpected_message, ContentType::invalid, 0};
  const auto type = static_cast<ContentType>(out[end - 1]);
  const size_t length = end - 1;
  switch (type) {
    case ContentType::application_data: break;
    case ContentType::handshake:
    case ContentType::alert:
      if (length == 0) return {RecordStatus::unexpected_message, type, 0};
      break;
    default: return {RecordStatus::unexpected_message, type, 0};
  }
  return {RecordStatus::ok, type, length};
}

}  // namespace mtlsgw::tls
