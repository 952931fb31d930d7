#include "dataplane/forward/http_canned_response.h"

#include <cstring>

#include "common/utc_time.h"

namespace mtlsgw::forward::http {
namespace {

class Appender {
 public:
  Appender(char* out, size_t capacity) noexcept : out_(out), capacity_(capacity) {}
  void put(std::string_view s) noexcept {
    if (size_ + s.size() > capacity_) {
      overflow_ = true;
      return;
    }
    std::memcpy(out_ + size_, s.data(), s.size());
    size_ += s.size();
  }
  void put_number(unsigned v) noexcept {
    char digits[10];
    size_t n = 0;
    do {
      digits[sizeof digits - 1 - n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    put(std::string_view(digits + sizeof digits - n, n));
  }
  size_t result() const noexcept { return overflow_ ? 0 : size_; }

 private:
  char* out_;
  size_t capacity_;
  size_t size_ = 0;
  bool overflow_ = false;
};

}  // namespace

std::string_view canned_reason(uint16_t status) noexcept {
  switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return {};
  }
}

size_t write_canned_response(uint16_t status, int64_t now_epoch, char* out,
                             size_t capacity) noexcept {
  const std::string_view reason = canned_reason(status);
  if (reason.empty()) return 0;
  Appender a(out, capacity);
  a.put("HTTP/1.1 ");
  a.put_number(status);
  a.put(" ");
  a.put(reason);
  a.put("\r\n");
  char date[29];
  const size_t date_len = now_epoch >= 0 ? write_imf_fixdate(now_epoch, date) : 0;
  if (date_len != 0) {
    a.put("Date: ");
    a.put(std::string_view(date, date_len));
    a.put("\r\n");
  }
  a.put("Content-Type: text/plain\r\nContent-Length: ");
  a.put_number(static_cast<unsigned>(reason.size() + 5));  // "421 " reason "\n"
  a.put("\r\nConnection: close\r\n\r\n");
  a.put_number(status);
  a.put(" ");
  a.put(reason);
  a.put("\n");
  return a.result();
}

}  // namespace mtlsgw::forward::http
