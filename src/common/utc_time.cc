#include "common/utc_time.h"

#include <chrono>

namespace mtlsgw {
namespace {

void digits(char* out, unsigned value, int width) noexcept {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

bool utc_from_epoch(int64_t epoch, UtcTime& out) noexcept {
  using namespace std::chrono;
  // Years 0 and 9999 bound the epoch to about +-2.5e11 s, far inside the
  // range where the day arithmetic below is exact.
  constexpr int64_t kMin = -62167219200;  // 0000-01-01T00:00:00Z
  constexpr int64_t kMax = 253402300799;  // 9999-12-31T23:59:59Z
  if (epoch < kMin || epoch > kMax) return false;
  const sys_seconds t{seconds{epoch}};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> hms{t - day};
  out.year = static_cast<int>(ymd.year());
  out.month = static_cast<unsigned>(ymd.month());
  out.day = static_cast<unsigned>(ymd.day());
  out.hour = static_cast<unsigned>(hms.hours().count());
  out.minute = static_cast<unsigned>(hms.minutes().count());
  out.second = static_cast<unsigned>(hms.seconds().count());
  out.weekday = weekday{day}.c_encoding();
  return true;
}

size_t write_rfc3339(int64_t epoch, char* out) noexcept {
  UtcTime t;
  if (!utc_from_epoch(epoch, t)) return 0;
  digits(out, static_cast<unsigned>(t.year), 4);
  out[4] = '-';
  digits(out + 5, t.month, 2);
  out[7] = '-';
  digits(out + 8, t.day, 2);
  out[10] = 'T';
  digits(out + 11, t.hour, 2);
  out[13] = ':';
  digits(out + 14, t.minute, 2);
  out[16] = ':';
  digits(out + 17, t.second, 2);
  out[19] = 'Z';
  return 20;
}

size_t write_imf_fixdate(int64_t epoch, char* out) noexcept {
  static constexpr char kDays[] = "SunMonTueWedThuFriSat";
  static constexpr char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  UtcTime t;
  if (!utc_from_epoch(epoch, t)) return 0;
  for (int i = 0; i < 3; ++i) out[i] = kDays[t.weekday * 3 + i];
  out[3] = ',';
  out[4] = ' ';
  digits(out + 5, t.day, 2);
  out[7] = ' ';
  for (int i = 0; i < 3; ++i) out[8 + i] = kMonths[(t.month - 1) * 3 + i];
  out[11] = ' ';
  digits(out + 12, static_cast<unsigned>(t.year), 4);
  out[16] = ' ';
  digits(out + 17, t.hour, 2);
  out[19] = ':';
  digits(out + 20, t.minute, 2);
  out[22] = ':';
  digits(out + 23, t.second, 2);
  for (int i = 0; i < 4; ++i) out[25 + i] = " GMT"[i];
  return 29;
}

}  // namespace mtlsgw
