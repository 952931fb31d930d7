#include "dataplane/forward/http_canned_response.h"

#include <cstdio>
#include <ctime>

namespace mtlsgw::forward::http {

std::string_view canned_reason(uint16_t status) noexcept {
  switch (status) {
    case 400: return "Bad Request";
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

size_t format_imf_fixdate(int64_t epoch, char (&out)[30]) noexcept {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t t = static_cast<time_t>(epoch);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) return 0;
  // Day and month names by table: strftime's %a and %b follow the locale.
  const int n = std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                              kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon],
                              tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return n == 29 ? 29 : 0;
}

size_t write_canned_response(uint16_t status, int64_t now_epoch, char* out,
                             size_t capacity) noexcept {
  const std::string_view reason = canned_reason(status);
  if (reason.empty()) return 0;
  char date[30] = {};
  const size_t date_len = now_epoch >= 0 ? format_imf_fixdate(now_epoch, date) : 0;
  char buffer[kMaxCannedResponseLen];
  const int body_len = static_cast<int>(reason.size()) + 5;  // "421 " reason "\n"
  const int n = std::snprintf(
      buffer, sizeof buffer,
      "HTTP/1.1 %u %.*s\r\n%s%.*s%s"
      "Content-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
      "%u %.*s\n",
      unsigned{status}, static_cast<int>(reason.size()), reason.data(),
      date_len != 0 ? "Date: " : "", static_cast<int>(date_len), date, date_len != 0 ? "\r\n" : "",
      body_len, unsigned{status}, static_cast<int>(reason.size()), reason.data());
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buffer || static_cast<size_t>(n) > capacity) {
    return 0;
  }
  for (int i = 0; i < n; ++i) out[i] = buffer[i];
  return static_cast<size_t>(n);
}

}  // namespace mtlsgw::forward::http
