#pragma once
// Calendar fields and text forms of a UTC epoch time, by arithmetic only.
// gmtime_r is not used on the worker path: glibc's takes the process-wide
// tzset lock (__tz_convert), which every worker would contend on.

#include <cstddef>
#include <cstdint>

namespace mtlsgw {

struct UtcTime {
  int year = 1970;
  unsigned month = 1;    // 1-12
  unsigned day = 1;      // 1-31
  unsigned hour = 0;
  unsigned minute = 0;
  unsigned second = 0;
  unsigned weekday = 4;  // 0 = Sunday
};

// False outside years 0-9999, which none of the text forms can hold.
bool utc_from_epoch(int64_t epoch, UtcTime& out) noexcept;

// RFC 3339 5.6 "2025-01-31T23:59:59Z": 20 characters at out, or 0.
size_t write_rfc3339(int64_t epoch, char* out) noexcept;

// RFC 9110 5.6.7 IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT": 29 characters
// at out, or 0.
size_t write_imf_fixdate(int64_t epoch, char* out) noexcept;

}  // namespace mtlsgw
