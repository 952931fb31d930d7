#include "dataplane/forward/http_exchange.h"

#include <algorithm>

#include "dataplane/forward/http_authority.h"

namespace mtlsgw::forward::http {
namespace {

// What the rewriter adds for a connection the gateway gave no identity: the
// origin still learns that the client is not verified.
const tls::ClientIdentity kNoIdentity = [] {
  tls::ClientIdentity id;
  id.verify_reason = "no_certificate";
  return id;
}();

size_t write_to(ByteSink& sink, const void* data, size_t len) noexcept {
  if (len == 0) return 0;
  const auto n = static_cast<uint32_t>(std::min<size_t>(len, UINT32_MAX));
  const uint32_t taken = sink.write(sink.context, static_cast<const uint8_t*>(data), n);
  return std::min(taken, n);
}

size_t space_of(ByteSink& sink) noexcept { return sink.space(sink.context); }

}  // namespace

HttpExchange::HttpExchange(const ExchangeBuffers& buffers, const RequestLimits& req,
                           const ResponseLimits& resp, const IdentityConfig& identity) noexcept
    : buffers_(buffers),
      request_limits_(req),
      response_limits_(resp),
      identity_config_(identity),
      request_parser_(buffers.request_head, req),
      response_parser_(buffers.response_head, resp),
      identity_(&kNoIdentity) {
  // A chunked request's trailer must not carry an identity field past the
  // rewriter (see BodyFramer::set_forbidden_trailer_names).
  request_parser_.body_framer().set_forbidden_trailer_names(identity.strip_names);
}

void HttpExchange::start(const tls::ClientIdentity* identity,
                         std::string_view expected_authority) noexcept {
  *this = HttpExchange(buffers_, request_limits_, response_limits_, identity_config_);
  identity_ = identity != nullptr ? identity : &kNoIdentity;
  expected_authority_ = expected_authority;
  gate_ = RequestGate{};
}

bool HttpExchange::at_rest() const noexcept {
  const bool requests_quiet = request_parser_.idle() && request_in_head_ && !request_head_owed_ &&
                              origin_carry_ == 0 && !awaiting_upgrade_ && !closing_ && !client_ended_;
  const bool responses_quiet = response_parser_.idle() && response_parser_.pending() == 0 &&
                               response_in_head_ && !response_head_owed_ && client_carry_ == 0 &&
                               !mid_response_ && !response_closed_ && !tunnel_;
  const bool origin_usable = origin_ == Origin::kOpen && !origin_eof_ && !reset_origin_;
  const bool nothing_of_ours = local_status_ == 0 && !local_waits_ && deferred_status_ == 0 && !reset_client_;
  return requests_quiet && responses_quiet && origin_usable && nothing_of_ours;
}

void HttpExchange::resume(const Tally& tally) noexcept {
  requests_ = tally.requests;
  responses_ = tally.responses;
  forwarded_ = tally.forwarded;
}

// ---- client -> origin -----------------------------------------------------

size_t HttpExchange::from_client(std::span<const uint8_t> in, ByteSink& origin, ByteSink& client,
                                 int64_t now_epoch) noexcept {
  const size_t taken = pump_requests(in, origin);
  pump_canned(client, now_epoch);
  return taken;
}

void HttpExchange::on_origin_writable(ByteSink& origin, ByteSink& client,
                                      int64_t now_epoch) noexcept {
  pump_requests({}, origin);
  pump_canned(client, now_epoch);
}

bool HttpExchange::discarding_client() const noexcept {
  if (reset_client_ || reset_origin_) return true;
  // A dead origin takes nothing, but a request still gets its 502 or 504.
  if (origin_ == Origin::kFailed && deferred_status_ == 0) return true;
  return !tunnel_ && (closing_ || local_status_ != 0);
}

size_t HttpExchange::pump_requests(std::span<const uint8_t> in, ByteSink& origin) noexcept {
  if (reset_client_ || reset_origin_) return in.size();
  // A head just finished must be followed by one more feed, with no data if
  // need be, so that a request without body ends (RequestParser: "After kHead
  // the next feed() may be called with no data").
  bool after_head = request_head_owed_;
  if (!flush_request_head(origin)) return 0;
  size_t taken = 0;
  if (origin_carry_ > 0) {
    const size_t w = write_to(origin, in.data(), std::min(origin_carry_, in.size()));
    origin_carry_ -= w;
    taken += w;
    if (origin_carry_ > 0) return taken;
  }
  if (discarding_client()) return in.size();

  while (taken < in.size() || after_head) {
    after_head = false;
    if (request_in_head_ &&
        (awaiting_upgrade_ || response_parser_.pending() >= ResponseParser::kMaxPending)) {
      break;
    }
    std::span<const uint8_t> rest = in.subspan(taken);
    if (!request_in_head_) {
      const size_t room = space_of(origin);
      if (room == 0 && !rest.empty()) break;
      rest = rest.first(std::min(room, rest.size()));
    }
    const Step s = request_parser_.feed(rest);
    switch (s.event) {
      case Event::kNeedMore:
        taken += s.consumed;
        if (s.consumed == 0) return taken;
        break;
      case Event::kHead:
        taken += s.consumed;
        ++requests_;
        request_in_head_ = false;
        if (!handle_request_head(origin)) return in.size();  // answered locally
        if (request_head_owed_) return taken;
        after_head = true;
        break;
      case Event::kBody:
      case Event::kMessageEnd: {
        const size_t w = write_to(origin, rest.data(), s.consumed);
        taken += w;
        origin_carry_ = s.consumed - w;
        if (s.event == Event::kMessageEnd) request_ended();
        if (origin_carry_ > 0) return taken;
        if (discarding_client()) return in.size();
        break;
      }
      case Event::kClosed:
        return in.size();  // RFC 9112 9.6: nothing after a "close" request is read
      case Event::kError:
        request_error();
        return in.size();
    }
  }
  return taken;
}

bool HttpExchange::handle_request_head(ByteSink& origin) noexcept {
  const RequestHead& head = request_parser_.head();
  if (check_request_authority(head, expected_authority_) == AuthorityCheck::kMisdirected) {
    answer_locally(421, true);
    return false;
  }
  if (gate_.admit != nullptr && !gate_.admit(gate_.context, head)) {
    answer_locally(403, true);
    return false;
  }
  const RewriteResult r = rewrite_request_head(head, *identity_, identity_config_,
                                               buffers_.rewritten.data(), buffers_.rewritten.size());
  if (r.error == RewriteError::kConnectionNamesIdentityField) {
    answer_locally(400, true);
    return false;
  }
  if (r.error == RewriteError::kBufferTooSmall) {
    // The head fitted the parser's buffer but not with the identity added:
    // to the client it is a head too large (RFC 6585 5).
    answer_locally(431, true);
    return false;
  }
  if (deferred_status_ != 0) {
    answer_locally(deferred_status_, false);
    return false;
  }
  // Cannot refuse: reading stops at kMaxPending before a head starts.
  if (!response_parser_.push_request(head.is_head)) {
    reset_client();
    reset_origin_ = true;
    return false;
  }
  ++forwarded_;
  if (head.upgrade) awaiting_upgrade_ = true;
  request_head_len_ = r.length;
  request_head_sent_ = 0;
  request_head_owed_ = true;
  flush_request_head(origin);
  return true;
}

bool HttpExchange::flush_request_head(ByteSink& origin) noexcept {
  if (!request_head_owed_) return true;
  if (request_head_sent_ == 0 && space_of(origin) < request_head_len_) return false;
  request_head_sent_ += write_to(origin, buffers_.rewritten.data() + request_head_sent_,
                                 request_head_len_ - request_head_sent_);
  if (request_head_sent_ < request_head_len_) return false;
  request_head_owed_ = false;
  return true;
}

void HttpExchange::request_ended() noexcept {
  request_in_head_ = true;
  if (!request_parser_.head().keep_alive) closing_ = true;
}

void HttpExchange::request_error() noexcept {
  const uint16_t status = request_error_status(request_parser_.error());
  if (request_in_head_) {
    ++requests_;
    answer_locally(status, true);
    return;
  }
  // The body of a request whose head the origin already has: the origin
  // cannot be told where it ends, so its connection is unusable.
  reset_origin_ = true;
  closing_ = true;
  const unsigned pending = response_parser_.pending();
  if (pending == 1 && client_at_boundary() && response_parser_.idle()) {
    answer_locally(status, false);
  } else if (pending > 0) {
    reset_client();  // earlier responses, or this one, are lost with the origin
  }
}

void HttpExchange::client_ended() noexcept {
  client_ended_ = true;
  if (!tunnel_) closing_ = true;
}

// ---- origin -> client -----------------------------------------------------

size_t HttpExchange::from_origin(std::span<const uint8_t> in, ByteSink& client,
                                 int64_t now_epoch) noexcept {
  const size_t taken = pump_responses(in, client);
  pump_canned(client, now_epoch);
  return taken;
}

void HttpExchange::on_client_writable(ByteSink& client, int64_t now_epoch) noexcept {
  pump_responses({}, client);
  settle_origin_eof();
  pump_canned(client, now_epoch);
}

bool HttpExchange::discarding_origin() const noexcept {
  if (reset_client_ || reset_origin_) return true;
  if (local_status_ != 0 && !local_waits_) return true;  // the origin is done with
  return response_closed_;
}

size_t HttpExchange::pump_responses(std::span<const uint8_t> in, ByteSink& client) noexcept {
  if (reset_client_) return in.size();
  bool after_head = response_head_owed_;
  if (!flush_response_head(client)) return 0;
  size_t taken = 0;
  if (client_carry_ > 0) {
    const size_t w = write_to(client, in.data(), std::min(client_carry_, in.size()));
    client_carry_ -= w;
    taken += w;
    if (client_carry_ > 0) return taken;
  }
  if (discarding_origin()) return in.size();

  while (taken < in.size() || after_head) {
    after_head = false;
    std::span<const uint8_t> rest = in.subspan(taken);
    if (!response_in_head_) {
      const size_t room = space_of(client);
      if (room == 0 && !rest.empty()) break;
      rest = rest.first(std::min(room, rest.size()));
    }
    const Step s = response_parser_.feed(rest);
    switch (s.event) {
      case Event::kNeedMore:
        taken += s.consumed;
        if (s.consumed == 0) return taken;
        break;
      case Event::kHead:
        taken += s.consumed;
        response_in_head_ = false;
        response_head_owed_ = true;
        response_head_sent_ = 0;
        if (!flush_response_head(client)) return taken;
        after_head = true;
        break;
      case Event::kBody:
      case Event::kMessageEnd: {
        const size_t w = write_to(client, rest.data(), s.consumed);
        taken += w;
        client_carry_ = s.consumed - w;
        if (s.event == Event::kMessageEnd) response_ended();
        if (client_carry_ > 0) return taken;
        if (discarding_origin()) return in.size();
        break;
      }
      case Event::kClosed:
        return in.size();  // after a response that closes the connection
      case Event::kError:
        response_error();
        return in.size();
    }
  }
  return taken;
}

bool HttpExchange::flush_response_head(ByteSink& client) noexcept {
  if (!response_head_owed_) return true;
  const std::string_view raw = response_parser_.head().raw;
  const size_t w = write_to(client, raw.data() + response_head_sent_,
                            raw.size() - response_head_sent_);
  if (w > 0) mid_response_ = true;
  response_head_sent_ += w;
  if (response_head_sent_ < raw.size()) return false;
  response_head_owed_ = false;
  return true;
}

void HttpExchange::response_ended() noexcept {
  response_in_head_ = true;
  mid_response_ = false;
  const ResponseHead& head = response_parser_.head();
  if (head.interim) return;  // its request still waits for the final response
  ++responses_;
  if (head.status == 101) {
    // RFC 9110 15.2.2: after the empty line both directions speak the
    // protocol the client asked for; every byte now passes as it is.
    tunnel_ = true;
    response_in_head_ = false;
    request_in_head_ = false;
    awaiting_upgrade_ = false;
    request_parser_.enter_tunnel();
    return;
  }
  if (response_parser_.pending() == 0) awaiting_upgrade_ = false;
  if (!head.keep_alive) {
    response_closed_ = true;
    closing_ = true;
  }
}

void HttpExchange::response_error() noexcept {
  reset_origin_ = true;
  closing_ = true;
  if (mid_response_) {
    reset_client();
  } else if (response_parser_.pending() > 0 && !canned_built_) {
    // RFC 9110 15.6.3: an invalid response from the upstream.
    local_status_ = 502;
    local_waits_ = false;
  }
}

void HttpExchange::origin_ended(ByteSink& client, int64_t now_epoch) noexcept {
  if (origin_ == Origin::kOpen) origin_eof_ = true;
  settle_origin_eof();
  pump_canned(client, now_epoch);
}

// Runs once the origin's FIN is known and every response head before it has
// reached the client (at_close() may end a response the client must get whole).
void HttpExchange::settle_origin_eof() noexcept {
  if (!origin_eof_ || response_head_owed_) return;
  origin_eof_ = false;
  origin_ = Origin::kEnded;
  if (tunnel_ || reset_client_ || reset_origin_ || response_closed_) return;
  const unsigned before = response_parser_.pending();
  const bool clean = response_parser_.at_close();
  if (response_parser_.pending() < before) {
    // The end of a close-delimited body (RFC 9112 6.3 rule 8).
    mid_response_ = false;
    response_in_head_ = true;
    ++responses_;
    response_closed_ = true;
    closing_ = true;
    return;
  }
  if (!clean && mid_response_) {
    reset_client();  // cut short: a clean close would make it look complete
    return;
  }
  origin_gone(502);
}

void HttpExchange::origin_failed(OriginFailure why, ByteSink& client, int64_t now_epoch) noexcept {
  origin_ = Origin::kFailed;
  origin_eof_ = false;
  request_head_owed_ = false;  // nowhere to write it any more
  origin_carry_ = 0;
  if (tunnel_ || mid_response_) {
    reset_client();
  } else if (!reset_client_ && !response_closed_) {
    // RFC 9110 15.6.5: 504 when the upstream did not answer in time.
    origin_gone(why == OriginFailure::timed_out ? 504 : 502);
  }
  pump_canned(client, now_epoch);
}

// The origin will send nothing more and nothing of a response is partly
// passed.
void HttpExchange::origin_gone(uint16_t status) noexcept {
  if (response_parser_.pending() > 0) {
    if (canned_built_) return;
    // The oldest outstanding request gets the answer; later ones go unanswered
    // and the client retries them on a new connection (RFC 9112 9.3.1).
    local_status_ = status;
    local_waits_ = false;
    response_head_owed_ = false;
    closing_ = true;
    return;
  }
  if (local_status_ != 0) return;  // already due, in order
  const bool request_arriving = !request_parser_.idle() && request_in_head_;
  if (!client_ended_ && (forwarded_ == 0 || request_arriving)) {
    deferred_status_ = status;  // see the header: answered when the request comes
  } else {
    closing_ = true;
  }
}

void HttpExchange::reset_client() noexcept {
  reset_client_ = true;
  closing_ = true;
}

// ---- answers the gateway writes --------------------------------------------

void HttpExchange::answer_locally(uint16_t status, bool after_pending_responses) noexcept {
  closing_ = true;
  if (local_status_ != 0 || reset_client_) return;
  local_status_ = status;
  local_waits_ = after_pending_responses;
}

bool HttpExchange::client_at_boundary() const noexcept {
  return !response_head_owed_ && client_carry_ == 0 && !mid_response_;
}

bool HttpExchange::responses_expected() const noexcept {
  return response_parser_.pending() > 0 && origin_ == Origin::kOpen && !origin_eof_ &&
         !reset_origin_ && !response_closed_ && !tunnel_;
}

void HttpExchange::pump_canned(ByteSink& client, int64_t now_epoch) noexcept {
  if (local_status_ == 0 || reset_client_) return;
  if (!canned_built_) {
    if (local_waits_ && response_closed_ && response_parser_.pending() > 0) {
      // The origin closed with earlier requests unanswered: answering this
      // one now would answer theirs. The client retries them all.
      local_status_ = 0;
      return;
    }
    if (!client_at_boundary() || (local_waits_ && responses_expected())) return;
    canned_len_ = write_canned_response(local_status_, now_epoch, canned_, sizeof canned_);
    if (canned_len_ == 0) {  // every status answered here has a canned form
      reset_client();
      return;
    }
    canned_built_ = true;
    canned_sent_ = 0;
    ++responses_;
  }
  canned_sent_ += write_to(client, canned_ + canned_sent_, canned_len_ - canned_sent_);
}

// ---- what the gateway does next ---------------------------------------------

bool HttpExchange::wants_origin_shutdown() const noexcept {
  if (reset_origin_ || origin_ == Origin::kFailed) return false;
  if (request_head_owed_ || origin_carry_ > 0) return false;
  if (tunnel_) return client_ended_ || reset_client_;
  return closing_;
}

bool HttpExchange::must_reset_origin() const noexcept {
  return reset_origin_ && origin_ != Origin::kFailed;
}

bool HttpExchange::wants_client_close() const noexcept {
  if (reset_client_) return false;
  if (canned_built_) return canned_sent_ == canned_len_;
  if (tunnel_) return origin_ == Origin::kEnded && client_carry_ == 0;
  if (!closing_ || local_status_ != 0 || origin_eof_) return false;
  return client_at_boundary() && !responses_expected();
}

bool HttpExchange::must_reset_client() const noexcept { return reset_client_; }

bool HttpExchange::client_paused() const noexcept {
  if (reset_client_) return true;
  if (local_status_ != 0) return !(canned_built_ && canned_sent_ == canned_len_);
  if (request_head_owed_) return true;
  if (tunnel_ || discarding_client()) return false;
  return request_in_head_ &&
         (awaiting_upgrade_ || response_parser_.pending() >= ResponseParser::kMaxPending);
}

bool HttpExchange::has_owed_output() const noexcept {
  if (reset_client_) return false;
  return (canned_built_ && canned_sent_ < canned_len_) || response_head_owed_;
}

bool HttpExchange::has_owed_origin_output() const noexcept {
  return request_head_owed_ && !reset_origin_ && origin_ != Origin::kFailed;
}

}  // namespace mtlsgw::forward::http
