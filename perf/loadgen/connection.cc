#include "connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace mtlsgw::loadgen {
namespace {

// 32 KiB: two full TLS records per recv in bulk transfers.
constexpr size_t kRecvBuffer = 32 * 1024;
// Request bodies are written in records of at most 16 KiB (RFC 8446 5.1)
// and only while less than this much ciphertext waits to be sent, so a
// large upload never sits in memory whole.
constexpr size_t kBodyChunk = 16 * 1024;
constexpr size_t kMaxQueued = 256 * 1024;

const std::array<uint8_t, kBodyChunk>& body_pattern() {
  static const std::array<uint8_t, kBodyChunk> pattern = [] {
    std::array<uint8_t, kBodyChunk> p{};
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>('a' + i % 26);
    return p;
  }();
  return pattern;
}

std::string errno_name(int error) {
  const char* name = strerrorname_np(error);
  return name != nullptr ? name : "errno_" + std::to_string(error);
}

std::string connect_failure(int error) {
  switch (error) {
    case ECONNREFUSED: return "connect_refused";
    case ETIMEDOUT: return "connect_timeout";
    case ECONNRESET: return "reset";
    case ENETUNREACH:
    case EHOSTUNREACH: return "connect_unreachable";
    default: return "connect_error:" + errno_name(error);
  }
}

}  // namespace

Connection::Connection(LoadContext& context, uint32_t slot)
    : ctx_(context), slot_(slot), recv_buffer_(kRecvBuffer) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::start(Kind kind, uint64_t now) {
  kind_ = kind;
  started_ns_ = last_progress_ns_ = now;
  handshake_ns_ = 0;
  requests_done_ = 0;
  last_request_ = false;
  close_notify_sent_ = peer_fin_ = false;
  next_bulk_up_ = ctx_.options.bulk_direction != BulkDirection::kDown;
  sending_.clear();
  queued_.clear();
  sent_ = 0;
  body_left_ = 0;

  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    ctx_.stats.failure("socket_error:" + errno_name(errno), std::strerror(errno));
    return false;
  }
  // Requests are written whole; Nagle would hold a short record back
  // behind an unacknowledged one.
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  SSL_SESSION* session = kind == Kind::kResume ? ctx_.tls.sessions().take() : nullptr;
  offered_session_ = session != nullptr;
  if (!tls_.open(ctx_.tls, session, kind == Kind::kResume)) {
    ctx_.stats.failure("tls_setup", tls_.detail());
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  response_.start_connection();
  phase_ = Phase::kConnecting;
  connect_pending_ = true;
  ctx_.ring.connect(fd_, ctx_.options.target, slot_);
  return true;
}

void Connection::on_completion(Op op, int result, uint64_t now) {
  switch (op) {
    case Op::kConnect:
      connect_pending_ = false;
      if (phase_ == Phase::kClosing) return release_when_quiet();
      return on_connect(result, now);
    case Op::kRecv:
      recv_pending_ = false;
      if (phase_ == Phase::kClosing) return release_when_quiet();
      return on_recv(result, now);
    case Op::kSend:
      send_pending_ = false;
      if (phase_ == Phase::kClosing) return release_when_quiet();
      return on_send(result, now);
    case Op::kCancel:
      --cancels_pending_;
      return release_when_quiet();
  }
}

void Connection::on_connect(int result, uint64_t now) {
  if (result < 0) return fail(connect_failure(-result), std::strerror(-result));
  ctx_.stats.connected();
  last_progress_ns_ = now;
  phase_ = Phase::kHandshaking;
  advance(now);  // writes the ClientHello
  if (phase_ == Phase::kHandshaking) submit_recv();
}

void Connection::on_recv(int result, uint64_t now) {
  if (result < 0) {
    if (phase_ == Phase::kDraining && result == -ECONNRESET) return on_stream_end(now, true);
    if (result == -ECONNRESET) return fail("reset", std::strerror(-result));
    return fail("socket_error:" + errno_name(-result), std::strerror(-result));
  }
  if (result == 0) return on_stream_end(now, true);
  if (phase_ == Phase::kHolding) {
    // Post-handshake messages (a late NewSessionTicket) are read and
    // dropped; application data is checked by read_responses.
    tls_.feed(recv_buffer_.data(), static_cast<size_t>(result));
    read_responses(now);
    if (phase_ == Phase::kHolding && !recv_pending_) submit_recv();
    return;
  }
  last_progress_ns_ = now;
  tls_.feed(recv_buffer_.data(), static_cast<size_t>(result));
  advance(now);
  if (phase_ != Phase::kClosing && phase_ != Phase::kIdle && !recv_pending_) submit_recv();
}

void Connection::on_send(int result, uint64_t now) {
  if (result < 0) {
    if (result == -ECONNRESET || result == -EPIPE) {
      return phase_ == Phase::kDraining ? on_stream_end(now, true)
                                        : fail("reset", std::strerror(-result));
    }
    return fail("socket_error:" + errno_name(-result), std::strerror(-result));
  }
  last_progress_ns_ = now;
  sent_ += static_cast<size_t>(result);
  if (sent_ < sending_.size()) {
    send_pending_ = true;
    ctx_.ring.send(fd_, sending_.data() + sent_, sending_.size() - sent_, slot_);
    return;
  }
  sending_.clear();
  sent_ = 0;
  pump_body();
  flush();
  if (phase_ == Phase::kDraining && peer_fin_ && !send_pending_) end_cleanly(now);
}

void Connection::submit_recv() {
  recv_pending_ = true;
  ctx_.ring.recv(fd_, recv_buffer_.data(), recv_buffer_.size(), slot_);
}

void Connection::flush() {
  if (phase_ == Phase::kClosing || phase_ == Phase::kIdle) return;
  tls_.take_ciphertext(queued_);
  if (send_pending_ || queued_.empty()) return;
  std::swap(sending_, queued_);
  queued_.clear();
  sent_ = 0;
  send_pending_ = true;
  ctx_.ring.send(fd_, sending_.data(), sending_.size(), slot_);
}

void Connection::pump_body() {
  const auto& pattern = body_pattern();
  while (body_left_ > 0 && queued_.size() + (sending_.size() - sent_) < kMaxQueued) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(body_left_, pattern.size()));
    if (tls_.write(pattern.data(), n) != TlsStream::Status::kDone) {
      return fail("tls_error", tls_.detail());
    }
    body_left_ -= n;
    tls_.take_ciphertext(queued_);
  }
}

void Connection::advance(uint64_t now) {
  if (phase_ == Phase::kHandshaking) {
    switch (tls_.handshake()) {
      case TlsStream::Status::kWantMore:
        return flush();
      case TlsStream::Status::kError:
        return fail(tls_.alert_kind().empty() ? "handshake_error" : tls_.alert_kind(),
                    tls_.detail());
      case TlsStream::Status::kClosed:
        return fail("handshake_error", "close_notify during the handshake");
      case TlsStream::Status::kDone:
        break;
    }
    handshake_ns_ = now - started_ns_;
    phase_ = Phase::kExchanging;
    // The connection's first request was claimed when it started.
    if (!begin_request(now)) return;
  }
  if (phase_ == Phase::kExchanging || phase_ == Phase::kDraining) read_responses(now);
  if (phase_ != Phase::kClosing && phase_ != Phase::kIdle) flush();
}

void Connection::read_responses(uint64_t now) {
  std::vector<uint8_t>& buffer = ctx_.plaintext;
  for (;;) {
    size_t got = 0;
    switch (tls_.read(buffer.data(), buffer.size(), got)) {
      case TlsStream::Status::kWantMore:
        return;
      case TlsStream::Status::kClosed:
        return on_stream_end(now, false);
      case TlsStream::Status::kError:
        return fail(tls_.alert_kind().empty() ? "tls_error" : tls_.alert_kind(), tls_.detail());
      case TlsStream::Status::kDone:
        break;
    }
    if (phase_ == Phase::kDraining || phase_ == Phase::kHolding) {
      return fail("http_unsolicited_bytes", "data after the last response");
    }
    switch (response_.feed({buffer.data(), got})) {
      case ResponseReader::Progress::kMore:
        break;
      case ResponseReader::Progress::kError:
        return fail(response_.error_name());
      case ResponseReader::Progress::kDone:
        on_response(now);
        if (phase_ != Phase::kExchanging && phase_ != Phase::kDraining) return;
        break;
    }
  }
}

void Connection::on_response(uint64_t now) {
  ++requests_done_;
  const uint16_t status = response_.status();
  if (status < 200 || status > 299) {
    return fail("http_status:" + std::to_string(status));
  }
  // Counted only now: in TLS 1.3 the client finishes its handshake before
  // the server has checked the client's certificate, so a
  // refusal shows as an alert after "the handshake" (RFC 8446 2, 4.4.2.4).
  if (requests_done_ == 1) {
    ctx_.stats.handshake_done(handshake_ns_, offered_session_, tls_.resumed());
  }
  ctx_.stats.request_done(now - request_ns_, body_bytes_, response_.body_bytes());
  if (kind_ == Kind::kIdle && response_.keep_alive()) {
    phase_ = Phase::kHolding;
    return;
  }
  if (last_request_ || !response_.keep_alive()) {
    phase_ = Phase::kDraining;
    return;
  }
  if (!ctx_.host.claim_request()) return close();  // --count reached
  begin_request(now);
}

// tcp_end: the FIN (or a reset); else the server's close_notify, which is
// answered with ours (RFC 8446 6.1: each side sends one before closing its
// write side) before the server's FIN is awaited. That FIN ends the
// connection: the server closed first and keeps the TIME-WAIT.
void Connection::on_stream_end(uint64_t now, bool tcp_end) {
  if (phase_ == Phase::kHolding) {
    return fail("idle_closed_by_server", tcp_end ? "FIN on a held idle connection"
                                                 : "close_notify on a held idle connection");
  }
  if (phase_ == Phase::kHandshaking) {
    return fail("handshake_error", tcp_end ? "the server closed during the handshake"
                                           : "close_notify during the handshake");
  }
  if (phase_ == Phase::kExchanging) {
    if (!response_.at_close()) {
      return fail(response_.started() ? "short_body" : "closed_before_response");
    }
    on_response(now);  // a body delimited by the close
    if (phase_ != Phase::kDraining) return;
  }
  if (phase_ != Phase::kDraining) return;
  if (!tcp_end) {
    if (!close_notify_sent_) {
      close_notify_sent_ = true;
      tls_.shutdown();
      flush();
    }
    return;
  }
  peer_fin_ = true;
  if (!send_pending_) end_cleanly(now);  // else when our close_notify is sent
}

void Connection::end_cleanly(uint64_t now) {
  ctx_.stats.connection_done(now - started_ns_);
  tls_.mark_clean_end();
  close();
}

bool Connection::begin_request(uint64_t now) {
  const unsigned limit = ctx_.requests_per_connection[static_cast<size_t>(kind_)];
  last_request_ = kind_ == Kind::kHandshake || kind_ == Kind::kResume ||
                  (limit != 0 && requests_done_ + 1 >= limit);
  const int close_index = last_request_ ? 1 : 0;
  const RequestSpec* spec = &ctx_.requests.get[close_index];
  if (kind_ == Kind::kBulk) {
    const bool up = next_bulk_up_;
    spec = up ? &ctx_.requests.bulk_up[close_index] : &ctx_.requests.bulk_down[close_index];
    if (ctx_.options.bulk_direction == BulkDirection::kBoth) next_bulk_up_ = !up;
  }
  request_ns_ = now;
  body_bytes_ = body_left_ = spec->body_bytes;
  response_.expect_response();
  if (tls_.write(spec->head.data(), spec->head.size()) != TlsStream::Status::kDone) {
    fail("tls_error", tls_.detail());
    return false;
  }
  tls_.take_ciphertext(queued_);
  pump_body();
  return phase_ != Phase::kClosing;
}

void Connection::check_timeout(uint64_t now, uint64_t timeout_ns) {
  // A held connection is silent on purpose.
  if (phase_ == Phase::kIdle || phase_ == Phase::kClosing || phase_ == Phase::kHolding) return;
  if (now - last_progress_ns_ < timeout_ns) return;
  switch (phase_) {
    case Phase::kConnecting: return fail("connect_timeout", "no SYN-ACK within --timeout");
    case Phase::kHandshaking: return fail("handshake_timeout", "no progress within --timeout");
    case Phase::kExchanging: return fail("response_timeout", "no progress within --timeout");
    case Phase::kDraining: return fail("close_timeout", "the server did not close");
    default: return;
  }
}

void Connection::abandon() {
  if (phase_ != Phase::kIdle && phase_ != Phase::kClosing) close();
}

void Connection::fail(const std::string& kind, const std::string& detail) {
  ctx_.stats.failure(kind, detail);
  close();
}

void Connection::close() {
  phase_ = Phase::kClosing;
  const auto cancel = [this](Op op) {
    ++cancels_pending_;
    ctx_.ring.cancel(op, slot_);
  };
  if (connect_pending_) cancel(Op::kConnect);
  if (recv_pending_) cancel(Op::kRecv);
  if (send_pending_) cancel(Op::kSend);
  release_when_quiet();
}

// The socket is closed only when the kernel holds none of our operations
// (an operation in flight keeps its file, and its buffers, in use).
void Connection::release_when_quiet() {
  if (phase_ != Phase::kClosing || connect_pending_ || recv_pending_ || send_pending_ ||
      cancels_pending_ != 0) {
    return;
  }
  ::close(fd_);
  fd_ = -1;
  tls_.close();
  phase_ = Phase::kIdle;
  ctx_.host.slot_free(slot_);
}

}  // namespace mtlsgw::loadgen
