#pragma once
// The run's one io_uring: connect, recv, send and cancel on kernel sockets.
// Each submission is tagged with its connection's slot and its kind; a
// connection has at most one of each kind in flight (connection.cc), so the
// tag alone says which completion is which.

#include <liburing.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>

namespace mtlsgw::loadgen {

enum class Op : uint8_t { kConnect = 1, kRecv = 2, kSend = 3, kCancel = 4 };

class Ring {
 public:
  // Throws std::runtime_error when the kernel refuses the ring.
  explicit Ring(unsigned connections);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  void connect(int fd, const sockaddr_in& address, uint32_t slot);
  void recv(int fd, void* buffer, size_t len, uint32_t slot);
  void send(int fd, const void* data, size_t len, uint32_t slot);
  // Cancels the slot's operation of that kind; its completion then arrives
  // (with -ECANCELED, or its result if it had finished), and so does the
  // cancel's own (Op::kCancel).
  void cancel(Op op, uint32_t slot);

  // Submits what is queued and waits up to timeout_ns for a completion;
  // calls on_completion(slot, op, result) for each one that arrived.
  template <typename F>
  unsigned wait(uint64_t timeout_ns, F&& on_completion);

 private:
  static uint64_t tag(uint32_t slot, Op op) { return uint64_t{slot} << 8 | uint8_t(op); }
  io_uring_sqe* next_sqe();
  void submit_and_wait(uint64_t timeout_ns);

  io_uring ring_{};
};

template <typename F>
unsigned Ring::wait(uint64_t timeout_ns, F&& on_completion) {
  submit_and_wait(timeout_ns);
  unsigned seen = 0;
  unsigned head;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++seen;
    on_completion(static_cast<uint32_t>(cqe->user_data >> 8), static_cast<Op>(cqe->user_data & 0xff),
                  cqe->res);
  }
  io_uring_cq_advance(&ring_, seen);
  return seen;
}

}  // namespace mtlsgw::loadgen
