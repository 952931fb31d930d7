#include "dataplane/tls/transport_bio.h"

#include <algorithm>
#include <climits>
#include <cstring>

namespace mtlsgw::tls {

namespace {

TransportIo* io_of(BIO* bio) noexcept { return static_cast<TransportIo*>(BIO_get_data(bio)); }

int transport_read(BIO* bio, char* out, size_t len, size_t* read_bytes) {
  BIO_clear_retry_flags(bio);
  *read_bytes = 0;
  TransportIo* io = io_of(bio);
  if (io == nullptr) return 0;
  size_t skip = io->taken;
  size_t copied = 0;
  for (int i = 0; i < 2 && copied < len; ++i) {
    const uint32_t span = io->input.len[i];
    if (skip >= span) {
      skip -= span;
      continue;
    }
    const size_t n = std::min<size_t>(span - skip, len - copied);
    std::memcpy(out + copied, io->input.data[i] + skip, n);
    copied += n;
    skip = 0;
  }
  if (copied > 0) {
    io->taken += static_cast<uint32_t>(copied);
    *read_bytes = copied;
    return 1;
  }
  if (io->input_ends) {
    // End of stream: no retry flag, so OpenSSL sees EOF (and, without a
    // close_notify first, reports the truncation).
    io->end_reached = true;
    return 0;
  }
  BIO_set_retry_read(bio);
  return 0;
}

int transport_write(BIO* bio, const char* data, size_t len, size_t* written) {
  BIO_clear_retry_flags(bio);
  *written = 0;
  TransportIo* io = io_of(bio);
  if (io == nullptr || io->sink.send == nullptr) return 0;
  const auto offer = static_cast<uint32_t>(std::min<size_t>(len, UINT32_MAX));
  const uint32_t sent = io->sink.send(io->sink.context, reinterpret_cast<const uint8_t*>(data), offer);
  if (sent == 0) {
    BIO_set_retry_write(bio);
    return 0;
  }
  *written = sent;
  return 1;
}

long transport_ctrl(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      // Every byte went to the sink already; OpenSSL flushes after each
      // flight and would take 0 for "retry".
      return 1;
    case BIO_CTRL_EOF: {
      const TransportIo* io = io_of(bio);
      return io != nullptr && io->end_reached ? 1 : 0;
    }
    default:
      return 0;
  }
}

int transport_create(BIO* bio) {
  BIO_set_data(bio, nullptr);
  BIO_set_init(bio, 1);
  return 1;
}

int transport_destroy(BIO* bio) {
  BIO_set_data(bio, nullptr);
  return 1;
}

BIO_METHOD* make_method() noexcept {
  BIO_METHOD* method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mtlsgw transport");
  if (method == nullptr) return nullptr;
  if (BIO_meth_set_read_ex(method, transport_read) != 1 || BIO_meth_set_write_ex(method, transport_write) != 1 ||
      BIO_meth_set_ctrl(method, transport_ctrl) != 1 || BIO_meth_set_create(method, transport_create) != 1 ||
      BIO_meth_set_destroy(method, transport_destroy) != 1) {
    BIO_meth_free(method);
    return nullptr;
  }
  return method;
}

}  // namespace

BIO* new_transport_bio() noexcept {
  // One method for the process: a table of function pointers that every
  // worker only reads. Built on first use (thread-safe static).
  static BIO_METHOD* const method = make_method();
  return method != nullptr ? BIO_new(method) : nullptr;
}

void bind_transport(BIO* bio, TransportIo* io) noexcept { BIO_set_data(bio, io); }

}  // namespace mtlsgw::tls
