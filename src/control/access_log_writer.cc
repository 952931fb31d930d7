#include "control/access_log_writer.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/utc_time.h"
#include "dataplane/tls/alert_name.h"
#include "dataplane/tls/verify_reason.h"

namespace mtlsgw::control {
namespace {

using ordered_json = nlohmann::ordered_json;
using gateway::AccessRecord;
using gateway::text_of;

// Lines are gathered up to this size before a write(2); a drain's last
// partial buffer is written when the drain ends.
constexpr std::size_t kWriteChunk = 64 * 1024;

// RFC 3339 5.6 with milliseconds, "2026-11-28T13:00:00.123Z", or null when
// the year is outside 0-9999.
ordered_json rfc3339_millis(int64_t unix_us) {
  // Floor division, so that a time before 1970 still gets 0-999 ms.
  int64_t seconds = unix_us / 1'000'000;
  int64_t micros = unix_us % 1'000'000;
  if (micros < 0) {
    --seconds;
    micros += 1'000'000;
  }
  char text[32];
  const std::size_t length = write_rfc3339(seconds, text);
  if (length == 0) return nullptr;
  // "...:SSZ" becomes "...:SS.mmmZ".
  return fmt::format("{}.{:03}Z", std::string_view(text, length - 1), micros / 1000);
}

std::string format_ipv4(uint32_t address) {
  return fmt::format("{}.{}.{}.{}", address >> 24, (address >> 16) & 0xff, (address >> 8) & 0xff,
                     address & 0xff);
}

template <std::size_t N>
ordered_json text_or_null(const char (&field)[N]) {
  const std::string_view text = text_of(field);
  if (text.empty()) return nullptr;
  return std::string(text);
}

// A number outside every alert registry still shows what was on the wire.
ordered_json alert_or_null(int16_t alert) {
  if (alert < 0) return nullptr;
  if (alert > 255) return fmt::format("alert_{}", alert);
  const std::string_view name = tls::alert_name(static_cast<uint8_t>(alert));
  if (name.empty()) return fmt::format("alert_{}", alert);
  return std::string(name);
}

ordered_json verify_reason_or_null(uint8_t reason) {
  if (reason == gateway::kVerifyNotRun) return nullptr;
  if (reason >= tls::kVerifyReasonCount) return "unknown";
  return std::string(tls::name_of(static_cast<tls::VerifyReason>(reason)));
}

}  // namespace

std::string format_access_record(const AccessRecord& record) {
  ordered_json line;
  line["time"] = rfc3339_millis(record.start_unix_us);
  line["client"] = format_ipv4(record.client_ip);
  line["client_port"] = record.client_port;
  line["listener_port"] = record.listener_port;
  line["sni"] = text_or_null(record.sni);
  line["host"] = text_or_null(record.host);
  line["tls_version"] = text_or_null(record.tls_version);
  line["cipher"] = text_or_null(record.cipher);
  line["alpn"] = text_or_null(record.alpn);
  line["resumed"] = record.resumed;
  line["cert_presented"] = record.cert_presented;
  line["verified"] = record.verified;
  line["verify_reason"] = verify_reason_or_null(record.verify_reason);
  line["subject"] = text_or_null(record.subject_dn);
  line["issuer"] = text_or_null(record.issuer_dn);
  line["serial"] = text_or_null(record.serial_hex);
  line["fingerprint_sha256"] = text_or_null(record.fingerprint_sha256);
  line["alert_sent"] = alert_or_null(record.alert_sent);
  line["alert_received"] = alert_or_null(record.alert_received);
  if (record.upstream_port == 0) {
    line["upstream"] = nullptr;
  } else {
    line["upstream"] = fmt::format("{}:{}", format_ipv4(record.upstream_ip), record.upstream_port);
  }
  line["bytes_from_client"] = record.bytes_from_client;
  line["bytes_to_client"] = record.bytes_to_client;
  line["bytes_to_upstream"] = record.bytes_to_upstream;
  line["bytes_from_upstream"] = record.bytes_from_upstream;
  line["requests"] = record.requests;
  if (record.http_status == 0) {
    line["http_status"] = nullptr;
  } else {
    line["http_status"] = record.http_status;
  }
  // An integer number of microseconds over 1000 is the double nearest the
  // three-decimal value, which the shortest round-trip form prints with at
  // most three decimals.
  line["duration_ms"] = static_cast<double>(record.duration_us) / 1000.0;
  line["end"] = gateway::name_of(static_cast<gateway::ConnectionEnd>(record.end));
  line["truncated"] = record.truncated;
  // set_text never splits a UTF-8 sequence, but a client's bytes can still
  // be invalid UTF-8; replacing them keeps the line valid JSON instead of
  // throwing.
  return line.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

AccessLogWriter::AccessLogWriter(std::string path, std::vector<gateway::AccessLogQueue*> queues)
    : path_(std::move(path)), queues_(std::move(queues)) {
  fd_ = open_path();
  if (fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "access log " + path_);
  }
  buffer_.reserve(kWriteChunk + 4096);
}

AccessLogWriter::~AccessLogWriter() {
  stop();
  if (fd_ >= 0 && fd_ != STDOUT_FILENO) ::close(fd_);
}

int AccessLogWriter::open_path() const {
  if (path_ == "-") return STDOUT_FILENO;
  return ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

uint64_t AccessLogWriter::dropped() const noexcept {
  uint64_t total = 0;
  for (const gateway::AccessLogQueue* queue : queues_) total += queue->dropped();
  return total;
}

void AccessLogWriter::start() {
  const std::lock_guard lock(wake_mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void AccessLogWriter::stop() {
  {
    const std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The thread's last drain ran before its join; this one takes what a
  // writer that never started, or a late push, left.
  drain_now();
}

void AccessLogWriter::run() {
  // Process-directed signals (SIGINT, SIGTERM, SIGHUP) go to the threads
  // that wait for them, not here. SIGPIPE from writing to a closed stdout
  // pipe is directed at this thread: blocked, it stays pending and write
  // returns EPIPE, which counts as write_errors instead of ending the process.
  sigset_t blocked;
  sigfillset(&blocked);
  for (int synchronous : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP}) {
    sigdelset(&blocked, synchronous);
  }
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);

  std::unique_lock lock(wake_mutex_);
  while (!stopping_) {
    lock.unlock();
    bool busy = false;
    drain_cycle(busy);
    lock.lock();
    // A queue a quarter full at 50 ms intervals is heading for drops:
    // drain again at once instead of sleeping.
    if (!busy) wake_.wait_for(lock, kDrainInterval, [this] { return stopping_; });
  }
  lock.unlock();
  bool busy = false;
  drain_cycle(busy);
}

std::size_t AccessLogWriter::drain_now() {
  bool busy = false;
  return drain_cycle(busy);
}

std::size_t AccessLogWriter::drain_cycle(bool& busy) {
  const std::lock_guard lock(io_mutex_);
  if (reopen_requested_.exchange(false, std::memory_order_relaxed)) reopen_locked();
  const std::size_t count = drain_locked(busy);
  flush_locked();
  return count;
}

std::size_t AccessLogWriter::drain_locked(bool& busy) {
  std::size_t total = 0;
  for (gateway::AccessLogQueue* queue : queues_) {
    const std::size_t count = queue->drain([this](const AccessRecord& record) {
      buffer_ += format_access_record(record);
      buffer_ += '\n';
      ++buffered_lines_;
      if (buffer_.size() >= kWriteChunk) flush_locked();
    });
    if (count > 0 && count >= queue->capacity() / 4) busy = true;
    total += count;
  }
  return total;
}

void AccessLogWriter::flush_locked() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The buffer's lines are lost; the next drain starts a fresh buffer.
      // A line the failed write cut is left unfinished in the file.
      write_errors_.fetch_add(buffered_lines_, std::memory_order_relaxed);
      buffer_.clear();
      buffered_lines_ = 0;
      return;
    }
    done += static_cast<std::size_t>(n);
  }
  written_.fetch_add(buffered_lines_, std::memory_order_relaxed);
  buffer_.clear();
  buffered_lines_ = 0;
}

bool AccessLogWriter::reopen() {
  const std::lock_guard lock(io_mutex_);
  return reopen_locked();
}

bool AccessLogWriter::reopen_locked() {
  bool busy = false;
  drain_locked(busy);
  flush_locked();
  if (path_ == "-") return true;
  const int fd = open_path();
  if (fd < 0) {
    reopen_failures_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  ::close(fd_);
  fd_ = fd;
  return true;
}

}  // namespace mtlsgw::control
