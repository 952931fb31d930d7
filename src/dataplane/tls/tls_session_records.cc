// TlsSession on our record layer (record_protection.h), after the switch
// from OpenSSL: framing records in the TCP receive spans, opening them into
// the caller's buffer, the records the peer may send after its Finished
// (RFC 8446 4.6.3 KeyUpdate, 6 alerts), and sealing into the sink with the
// back-pressure contract of tls_session.h.

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

#include "dataplane/tls/tls_session.h"

namespace mtlsgw::tls {

namespace {

// TLS 1.3 record overhead with our sealing: header, inner type, tag (no padding).
constexpr uint32_t kSealOverhead = sealed_length(0);

constexpr uint8_t kAlertWarning = 1;
constexpr uint8_t kAlertFatal = 2;
constexpr uint8_t kCloseNotify = 0;
constexpr uint8_t kUserCanceled = 90;
constexpr uint8_t kDecodeError = 50;
constexpr uint8_t kIllegalParameter = 47;
constexpr uint8_t kUnexpectedMessage = 10;
constexpr uint8_t kInternalError = 80;
constexpr uint8_t kKeyUpdate = 24;  // HandshakeType key_update (4)

// Copies len bytes starting `at` bytes into the two spans.
void copy_from(const net::tcp::ByteSpans& spans, uint32_t at, uint8_t* out, uint32_t len) noexcept {
  for (int i = 0; i < 2 && len > 0; ++i) {
    if (at >= spans.len[i]) {
      at -= spans.len[i];
      continue;
    }
    const uint32_t n = std::min(spans.len[i] - at, len);
    std::memcpy(out, spans.data[i] + at, n);
    out += n;
    len -= n;
    at = 0;
  }
}

// The record at `at`, if it lies within one span.
const uint8_t* contiguous_at(const net::tcp::ByteSpans& spans, uint32_t at, size_t length) noexcept {
  if (at < spans.len[0]) return at + length <= spans.len[0] ? spans.data[0] + at : nullptr;
  return spans.data[1] + (at - spans.len[0]);
}

}  // namespace

void TlsSession::read_records(const net::tcp::ByteSpans& ciphertext, uint32_t offset, bool ends, uint8_t* out,
                              uint32_t cap, Progress& progress) noexcept {
  const uint32_t offered = ciphertext.len[0] + ciphertext.len[1];
  IMB_MGR& mgr = *offload_->mgr;
  uint8_t* scratch = offload_->scratch;
  uint32_t at = offset;
  rx_more_ = false;
  while (state_ == TlsState::established && !peer_closed_ && cap > 0) {
    const uint32_t available = offered - at;
    uint8_t header[kRecordHeaderLength];
    copy_from(ciphertext, at, header, std::min<uint32_t>(available, kRecordHeaderLength));
    const RecordBoundary boundary = find_record(header, available);
    if (boundary.status == RecordStatus::need_more) {
      // The stream ends inside a record or between records, without
      // close_notify (RFC 8446 6.1); what came before is returned first.
      if (ends && progress.plaintext == 0) {
        state_ = TlsState::failed;
        failure_ = TlsFailure::truncated;
        forget_session();
      }
      break;
    }
    if (boundary.status != RecordStatus::ok) {
      fail_with_alert(alert_for(boundary.status));
      break;
    }
    const size_t length = boundary.length;
    const size_t body = length - kRecordHeaderLength;
    const size_t inner_max = body > kRecordTagLength ? body - kRecordTagLength : 0;
    const uint32_t room = cap - progress.plaintext;
    // A record that might not fit behind what this call returned waits for
    // the next call, so that it is opened once.
    if (room == 0 || (progress.plaintext > 0 && inner_max > size_t{room} + 1)) {
      rx_more_ = true;
      break;
    }
    const uint8_t* record = contiguous_at(ciphertext, at, length);
    const bool direct = record != nullptr && rx_delivered_ == 0 && inner_max <= room;
    OpenResult opened;
    const uint8_t* plain = nullptr;
    if (direct) {
      plain = out + progress.plaintext;
      opened = rx_.open(mgr, record, length, out + progress.plaintext, room);
    } else if (record == nullptr) {
      // The ring wraps inside this record: one contiguous copy, opened in place.
      copy_from(ciphertext, at, scratch, static_cast<uint32_t>(length));
      plain = scratch + kRecordHeaderLength;
      opened = rx_.open_in_place(mgr, scratch, length);
    } else {
      plain = scratch;
      opened = rx_.open(mgr, record, length, scratch, kMaxRecordLength);
    }
    if (opened.status != RecordStatus::ok) {
      fail_with_alert(alert_for(opened.status));
      break;
    }
    if (opened.type == ContentType::application_data) {
      const uint32_t pending = static_cast<uint32_t>(opened.length) - rx_delivered_;
      const uint32_t n = std::min(pending, room);
      if (!direct && n > 0) std::memcpy(out + progress.plaintext, plain + rx_delivered_, n);
      progress.plaintext += n;
      if (n < pending) {
        // The rest of this record's plaintext is opened again next call
        // (no copy of it is kept: the record stays in TCP).
        rx_.unopen_last();
        rx_delivered_ += n;
        rx_more_ = true;
        break;
      }
      rx_delivered_ = 0;
      at += static_cast<uint32_t>(length);
      continue;
    }
    at += static_cast<uint32_t>(length);
    if (!on_control_record(opened.type, plain, opened.length)) break;
  }
  // RFC 8446 6.1: data after close_notify is ignored.
  progress.ciphertext_taken = peer_closed_ ? offered : at;
}

bool TlsSession::on_control_record(ContentType type, const uint8_t* body, size_t length) noexcept {
  if (type == ContentType::alert) {
    // RFC 8446 6: struct { AlertLevel level; AlertDescription description; }.
    if (length != 2) {
      fail_with_alert(kDecodeError);
      return false;
    }
    const uint8_t description = body[1];
    if (description == kCloseNotify) {
      peer_closed_ = true;
      if (close_sent_) state_ = TlsState::closed;
      return false;
    }
    notes_.alert_received = description;
    // 6.1: user_canceled is followed by close_notify; as OpenSSL does, it
    // does not end the connection by itself. Every other alert does (6.2).
    if (description == kUserCanceled) {
      notes_.alert_received_fatal = body[0] == kAlertFatal;
      return true;
    }
    notes_.alert_received_fatal = true;
    state_ = TlsState::failed;
    failure_ = TlsFailure::peer_alert;
    forget_session();
    return false;
  }
  // Handshake: after the handshake a client may send only KeyUpdate (no
  // post-handshake authentication was asked for; 4.6). Messages are not
  // reassembled across records: a KeyUpdate is 5 bytes.
  if (length < 4 || body[0] != kKeyUpdate) {
    fail_with_alert(kUnexpectedMessage);
    return false;
  }
  const size_t message = size_t{body[1]} << 16 | size_t{body[2]} << 8 | body[3];
  if (message != 1) {
    fail_with_alert(kDecodeError);
    return false;
  }
  // 5.1: a message that changes keys ends its record.
  if (length != 5) {
    fail_with_alert(kUnexpectedMessage);
    return false;
  }
  const uint8_t request_update = body[4];
  if (request_update > 1) {
    fail_with_alert(kIllegalParameter);
    return false;
  }
  if (!rx_.update_key(*offload_->mgr)) {
    fail_with_alert(kInternalError);
    return false;
  }
  // 4.6.3: update_requested asks for our KeyUpdate before our next record.
  if (request_update == 1 && !key_update_owed_) {
    key_update_owed_ = true;
    flush_control();
  }
  return true;
}

void TlsSession::forget_session() noexcept {
  if (facts_.session != nullptr && session_cache_ != nullptr) SSL_CTX_remove_session(session_cache_, facts_.session);
}

void TlsSession::fail_with_alert(uint8_t alert) noexcept {
  state_ = TlsState::failed;
  failure_ = TlsFailure::local_alert;
  forget_session();
  notes_.alert_sent = alert;
  notes_.alert_sent_fatal = true;
  // Not inside a record the sink holds half of.
  if (owed_record_ == 0) {
    const uint8_t message[2] = {kAlertFatal, alert};
    write_control(ContentType::alert, message, sizeof message);
  }
}

bool TlsSession::write_control(ContentType type, const uint8_t* body, size_t length) noexcept {
  uint8_t record[kTailBytes];
  const SealResult sealed = tx_.seal(*offload_->mgr, type, body, length, record, sizeof record);
  if (sealed.status != RecordStatus::ok) return false;
  const auto len = static_cast<uint32_t>(sealed.length);
  if (tail_len_ > 0) {
    // Behind what already waits, in order.
    if (tail_len_ + len > kTailBytes) return false;
    std::memcpy(tail_ + tail_len_, record, len);
    tail_len_ = static_cast<uint8_t>(tail_len_ + len);
    blocked_on_sink_ = true;
    return true;
  }
  const CiphertextSink& sink = io_.sink;
  const uint32_t sent = sink.send != nullptr ? sink.send(sink.context, record, len) : 0;
  if (sent < len) {
    std::memcpy(tail_, record + sent, len - sent);
    tail_len_ = static_cast<uint8_t>(len - sent);
    blocked_on_sink_ = true;
  }
  return true;
}

bool TlsSession::flush_control() noexcept {
  if (tail_len_ > 0) {
    const CiphertextSink& sink = io_.sink;
    const uint32_t sent = sink.send != nullptr ? sink.send(sink.context, tail_, tail_len_) : 0;
    std::memmove(tail_, tail_ + sent, tail_len_ - sent);
    tail_len_ = static_cast<uint8_t>(tail_len_ - sent);
    if (tail_len_ > 0) {
      blocked_on_sink_ = true;
      return false;
    }
    if (tail_closes_) {
      tail_closes_ = false;
      close_sent_ = true;
      if (peer_closed_) state_ = TlsState::closed;
    }
  }
  // A data record half in the sink is finished by send() first.
  if (owed_record_ > 0 || state_ != TlsState::established) return owed_record_ == 0;
  if (key_update_owed_) {
    // RFC 8446 4.6.3: KeyUpdate(update_not_requested), then the new key.
    const uint8_t message[5] = {kKeyUpdate, 0, 0, 1, 0};
    if (!write_control(ContentType::handshake, message, sizeof message) || !tx_.update_key(*offload_->mgr)) {
      state_ = TlsState::failed;
      failure_ = TlsFailure::internal;
      return false;
    }
    key_update_owed_ = false;
    if (tail_len_ > 0) return false;
  }
  if (close_requested_ && !close_sent_ && !tail_closes_) {
    const uint8_t message[2] = {kAlertWarning, kCloseNotify};
    if (!write_control(ContentType::alert, message, sizeof message)) {
      state_ = TlsState::failed;
      failure_ = TlsFailure::internal;
      return false;
    }
    if (tail_len_ > 0) {
      tail_closes_ = true;
      return false;
    }
    close_sent_ = true;
    if (peer_closed_) state_ = TlsState::closed;
  }
  return true;
}

uint32_t TlsSession::send_records(const uint8_t* data, uint32_t len) noexcept {
  IMB_MGR& mgr = *offload_->mgr;
  uint8_t* scratch = offload_->scratch;
  const CiphertextSink& sink = io_.sink;
  uint32_t taken = 0;
  if (owed_record_ > 0) {
    // send() checked that this call repeats the owed record's bytes. Nothing
    // of the record was kept: it is sealed again under its sequence number,
    // and must come out identical (same tag) before any more of it goes out.
    const SealResult again =
        tx_.reseal_last(mgr, ContentType::application_data, data, owed_record_, scratch, kMaxRecordLength);
    if (again.status != RecordStatus::ok ||
        CRYPTO_memcmp(scratch + again.length - kRecordTagLength, owed_tag_, kRecordTagLength) != 0) {
      state_ = TlsState::failed;
      failure_ = TlsFailure::internal;
      return 0;
    }
    const auto rest = static_cast<uint32_t>(again.length) - owed_sent_;
    const uint32_t sent = sink.send != nullptr ? sink.send(sink.context, scratch + owed_sent_, rest) : 0;
    owed_sent_ += sent;
    if (sent < rest) {
      blocked_on_sink_ = true;
      return 0;
    }
    taken = owed_record_;
    owed_record_ = 0;
    owed_sent_ = 0;
  }
  if (!flush_control()) return taken;
  while (taken < len && state_ == TlsState::established) {
    if (tx_.key_update_due()) {
      // RFC 8446 5.5: a new key well before this one's limit.
      key_update_owed_ = true;
      if (!flush_control()) break;
    }
    const uint32_t room = sink.space != nullptr ? sink.space(sink.context) : UINT32_MAX;
    if (room == 0) {
      blocked_on_sink_ = true;
      break;
    }
    // Sized to the room, so the record goes whole into the sink. Room for
    // less than the overhead: a record goes anyway and the sink's refusal
    // of its tail is what arms on_sink_writable (tls_session.h).
    const uint32_t fit = room > kSealOverhead ? room - kSealOverhead : kMaxRecordPlaintext;
    const uint32_t chunk = std::min({len - taken, kMaxRecordPlaintext, fit});
    const SealResult sealed = tx_.seal(mgr, ContentType::application_data, data + taken, chunk, scratch,
                                       kMaxRecordLength);
    if (sealed.status != RecordStatus::ok) {
      state_ = TlsState::failed;
      failure_ = TlsFailure::internal;
      break;
    }
    const auto record = static_cast<uint32_t>(sealed.length);
    const uint32_t sent = sink.send != nullptr ? sink.send(sink.context, scratch, record) : 0;
    if (sent < record) {
      owed_record_ = chunk;
      owed_sent_ = sent;
      std::memcpy(owed_tag_, scratch + record - kRecordTagLength, kRecordTagLength);
      blocked_on_sink_ = true;
      break;
    }
    taken += chunk;
  }
  return taken;
}

}  // namespace mtlsgw::tls
