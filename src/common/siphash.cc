#include "common/siphash.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mtlsgw {

SipKey random_sip_key() {
  unsigned char bytes[16];
  size_t filled = 0;
  while (filled < sizeof bytes) {
    // Flags 0: the urandom source, which blocks only until it is first seeded;
    // requests this small are never cut short once it is, but a signal can
    // interrupt the wait.
    const ssize_t n = getrandom(bytes + filled, sizeof bytes - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    }
    if (n == 0) throw std::runtime_error("getrandom returned no bytes");
    filled += static_cast<size_t>(n);
  }
  const SipKey key = sip_key_from_bytes(bytes);
  // The key must not linger in a stack frame that later calls reuse.
  explicit_bzero(bytes, sizeof bytes);
  return key;
}

}  // namespace mtlsgw
