#include "uring.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mtlsgw::loadgen {

Ring::Ring(unsigned connections) {
  // Up to four operations per connection in flight (a recv, a send and two
  // cancels while closing); the CQ is sized so that they never overflow it.
  const unsigned entries = std::clamp(connections * 2u, 64u, 4096u);
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = std::max(connections * 4u, entries * 2u);
  // One thread submits, and completions are reaped only when it waits:
  // then the kernel runs completion work in our io_uring_enter instead of
  // interrupting the thread (kernel 6.1+; older kernels refuse the flags).
  io_uring_params fast = params;
  fast.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int r = io_uring_queue_init_params(entries, &ring_, &fast);
  if (r == -EINVAL) r = io_uring_queue_init_params(entries, &ring_, &params);
  if (r < 0) throw std::runtime_error(std::string("io_uring_queue_init: ") + std::strerror(-r));
}

Ring::~Ring() { io_uring_queue_exit(&ring_); }

io_uring_sqe* Ring::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    io_uring_submit(&ring_);  // the SQ is full: hand it to the kernel
    sqe = io_uring_get_sqe(&ring_);
  }
  if (sqe == nullptr) throw std::runtime_error("io_uring: no submission entry after a submit");
  return sqe;
}

void Ring::connect(int fd, const sockaddr_in& address, uint32_t slot) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  io_uring_sqe_set_data64(sqe, tag(slot, Op::kConnect));
}

void Ring::recv(int fd, void* buffer, size_t len, uint32_t slot) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_recv(sqe, fd, buffer, len, 0);
  io_uring_sqe_set_data64(sqe, tag(slot, Op::kRecv));
}

void Ring::send(int fd, const void* data, size_t len, uint32_t slot) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_send(sqe, fd, data, len, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, tag(slot, Op::kSend));
}

void Ring::cancel(Op op, uint32_t slot) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_cancel64(sqe, tag(slot, op), 0);
  io_uring_sqe_set_data64(sqe, tag(slot, Op::kCancel));
}

void Ring::submit_and_wait(uint64_t timeout_ns) {
  __kernel_timespec ts{};
  ts.tv_sec = static_cast<long long>(timeout_ns / 1'000'000'000u);
  ts.tv_nsec = static_cast<long long>(timeout_ns % 1'000'000'000u);
  io_uring_cqe* cqe = nullptr;
  const int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
    throw std::runtime_error(std::string("io_uring_submit_and_wait_timeout: ") +
                             std::strerror(-r));
  }
}

}  // namespace mtlsgw::loadgen
