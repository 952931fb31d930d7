#include "http_exchange.h"

#include <fmt/format.h>

namespace mtlsgw::loadgen {
namespace {

using forward::http::Event;

std::string replace_bytes(std::string path, uint64_t bytes) {
  const std::string token = "{bytes}";
  for (size_t at = path.find(token); at != std::string::npos; at = path.find(token)) {
    path.replace(at, token.size(), std::to_string(bytes));
  }
  return path;
}

std::string head(const char* method, const std::string& target, const std::string& host,
                 std::optional<uint64_t> content_length, bool close) {
  std::string h = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mtlsgw-loadgen\r\n",
                              method, target, host);
  if (content_length) {
    h += fmt::format("Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
                     *content_length);
  }
  if (close) h += "Connection: close\r\n";
  h += "\r\n";
  return h;
}

}  // namespace

RequestSet build_requests(const Options& o) {
  std::string host = o.host;
  if (host.empty()) host = !o.sni.empty() ? o.sni : o.target_text;
  RequestSet set;
  const std::string down = replace_bytes(o.bulk_down_path, o.bulk_bytes);
  for (int close = 0; close < 2; ++close) {
    set.get[close] = {head("GET", o.path, host, std::nullopt, close == 1), 0};
    set.bulk_down[close] = {head("GET", down, host, std::nullopt, close == 1), 0};
    set.bulk_up[close] = {head("POST", o.path, host, o.bulk_bytes, close == 1), o.bulk_bytes};
  }
  return set;
}

void ResponseReader::start_connection() {
  parser_.emplace(std::span<char>(head_buffer_));
}

void ResponseReader::expect_response() {
  parser_->push_request(false);
  started_ = in_body_ = trailing_bytes_ = false;
  status_ = 0;
  keep_alive_ = true;
  body_bytes_ = 0;
}

ResponseReader::Progress ResponseReader::feed(std::span<const uint8_t> data) {
  if (!data.empty()) started_ = true;
  for (;;) {
    const forward::http::Step step = parser_->feed(data);
    data = data.subspan(step.consumed);
    switch (step.event) {
      case Event::kNeedMore:
        return Progress::kMore;
      case Event::kHead:
        in_body_ = !parser_->head().interim;
        break;
      case Event::kBody:
        if (in_body_) body_bytes_ += step.consumed;
        if (data.empty()) return Progress::kMore;
        break;
      case Event::kMessageEnd:
        if (!in_body_) break;  // an interim (1xx) response: the final one follows
        body_bytes_ += step.consumed;
        status_ = parser_->head().status;
        keep_alive_ = parser_->head().keep_alive;
        // One request at a time: nothing may follow its response.
        if (!data.empty()) {
          trailing_bytes_ = true;
          return Progress::kError;
        }
        return Progress::kDone;
      case Event::kClosed:
      case Event::kError:
        return Progress::kError;
    }
  }
}

bool ResponseReader::at_close() {
  if (!parser_->at_close()) return false;
  if (parser_->pending() != 0 || !in_body_) return false;  // no final response yet
  status_ = parser_->head().status;
  keep_alive_ = false;
  return true;
}

const char* ResponseReader::error_name() const {
  if (trailing_bytes_) return "http_unsolicited_bytes";
  return "http_malformed";
}

}  // namespace mtlsgw::loadgen
