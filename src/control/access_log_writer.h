#pragma once
// The access log: one JSON line per gateway connection (keys in
// docs/config.md "Access log"). Workers push fixed-size records into their
// own AccessLogQueue; this writer drains every queue on its own thread,
// formats the lines and appends them to the file.
//
// Its own thread rather than the control thread's loop: a write can block for
// as long as the file's disk or the reader of a stdout pipe likes, and the
// control thread must keep answering signals, the control socket and stats
// meanwhile. While the writer is blocked the workers are not: their queues
// fill and the overflow is counted in dropped().

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/gateway/access_log_queue.h"
#include "dataplane/gateway/access_record.h"

namespace mtlsgw::control {

// One record's JSON object as a line without its newline.
std::string format_access_record(const gateway::AccessRecord& record);

class AccessLogWriter {
 public:
  // Longest time a record waits in its queue while the writer keeps up.
  static constexpr std::chrono::milliseconds kDrainInterval{50};

  // Opens path ("-": standard output) with O_APPEND|O_CREAT, mode 0640;
  // throws std::system_error when it cannot. queues: one per worker; they
  // must outlive the writer. Nothing is written before start() or
  // drain_now().
  AccessLogWriter(std::string path, std::vector<gateway::AccessLogQueue*> queues);
  ~AccessLogWriter();  // stop()
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Starts the thread that drains every kDrainInterval, and at once again
  // while a drain finds a queue a quarter full.
  void start();
  // Drains what is left, flushes and joins. Call it after the workers have
  // stopped pushing, or their last records may stay behind. Idempotent.
  void stop();

  // Drains every queue, writes the lines and flushes; returns how many
  // records it took out. Safe beside the thread (one drain at a time).
  std::size_t drain_now();

  // For log rotation: drains to the current file, then opens path again, so
  // that after `mv access.log access.log.1` the next lines go to a new
  // access.log. False (and the old file kept) when path cannot be opened.
  // A no-op for standard output.
  bool reopen();
  // The same from a signal handler (async-signal-safe: one lock-free
  // atomic store); the next drain (the thread's or drain_now) does what
  // reopen() does.
  void request_reopen() noexcept { reopen_requested_.store(true, std::memory_order_relaxed); }

  // Telemetry. written: lines the file accepted. dropped: records the
  // workers could not queue (sum over the queues). write_errors: lines lost
  // because a write failed (disk full, closed pipe). reopen_failures: reopen
  // attempts that kept the old file.
  uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const noexcept;
  uint64_t write_errors() const noexcept { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t reopen_failures() const noexcept {
    return reopen_failures_.load(std::memory_order_relaxed);
  }

  const std::string& path() const noexcept { return path_; }

 private:
  static_assert(std::atomic<bool>::is_always_lock_free);

  int open_path() const;  // the new fd, or -1 with errno set
  // busy: some queue was a quarter full.
  std::size_t drain_cycle(bool& busy);
  std::size_t drain_locked(bool& busy);
  bool reopen_locked();
  void flush_locked();
  void run();

  const std::string path_;
  const std::vector<gateway::AccessLogQueue*> queues_;

  // io_mutex_ makes one drain (the queues' single consumer) at a time and
  // guards the fd and the buffer.
  std::mutex io_mutex_;
  int fd_ = -1;
  std::string buffer_;
  uint64_t buffered_lines_ = 0;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;

  std::atomic<bool> reopen_requested_{false};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> reopen_failures_{0};
};

}  // namespace mtlsgw::control
