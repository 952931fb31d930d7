"""Shared by the TCP helpers that run inside the test namespace (stdlib only).

A Stream is a reproducible pseudo-random byte stream (seeded): the sender
sends it, the receiver regenerates it and compares as bytes arrive, so a
corruption is reported with the offset of its first wrong byte, and both sides
hash what they handled (SHA-256) for the summary.
"""
import hashlib
import json
import random
import socket
import struct
import subprocess
import sys
import time

GATEWAY_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"
BLOCK = 1 << 16


class Stream:
    """The bytes depend only on the seed, never on how they are taken: the
    generator always makes whole BLOCKs (randbytes(n) drops the unused bits
    of its last 32-bit word, so generating odd sizes would make the stream
    depend on the sizes asked for)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.buf = bytearray()
        self.pos = 0  # bytes taken so far

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self.rng.randbytes(BLOCK)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.pos += n
        return out


class Verifier:
    """Compares received bytes with the expected stream as they arrive."""

    def __init__(self, expected_len: int, next_expected):
        self.expected_len = expected_len
        self.next_expected = next_expected  # n -> the next n expected bytes
        self.received = 0
        self.sha = hashlib.sha256()
        self.first_mismatch = None  # offset of the first wrong byte
        self.mismatch_got = None  # hex of the 64 bytes received from there
        self.wrong_bytes = 0  # how many bytes differ in all
        self.wrong_runs = []  # (offset, length, got hex, expected hex), the first 16 runs
        self.wrong_chunks_after = 0  # received chunks with wrong bytes after those 16 runs
        self.excess = 0  # bytes beyond expected_len

    def feed(self, data: bytes):
        self.sha.update(data)
        room = max(0, self.expected_len - self.received)
        if len(data) > room:
            self.excess += len(data) - room
        want = data[:room]
        if want:
            exp = self.next_expected(len(want))
            if exp != want:
                self._record(want, exp)
        self.received += len(data)

    def _record(self, want, exp):
        """Runs of wrong bytes, so that a report shows the pattern; after 16
        runs only chunks are counted (a shifted stream is wrong throughout)."""
        if len(self.wrong_runs) >= 16:
            self.wrong_chunks_after += 1
            return
        k, n = 0, len(want)
        while k < n:
            if want[k] == exp[k]:
                k += 1
                continue
            start = k
            while k < n and (want[k] != exp[k] or (k + 1 < n and want[k + 1] != exp[k + 1])):
                k += 1
            self.wrong_bytes += sum(1 for j in range(start, k) if want[j] != exp[j])
            if self.first_mismatch is None:
                self.first_mismatch = self.received + start
                self.mismatch_got = want[start:start + 64].hex()
            if len(self.wrong_runs) < 16:
                self.wrong_runs.append((self.received + start, k - start,
                                        want[start:min(k, start + 16)].hex(),
                                        exp[start:min(k, start + 16)].hex()))

    def report(self):
        """The mismatch fields for a result (empty when all is well)."""
        if self.first_mismatch is None:
            return {}
        return {"first_mismatch": self.first_mismatch, "mismatch_got": self.mismatch_got,
                "wrong_bytes": self.wrong_bytes, "wrong_runs": self.wrong_runs,
                "wrong_chunks_after": self.wrong_chunks_after}

    def ok(self):
        return (self.first_mismatch is None and self.excess == 0 and
                self.received == self.expected_len)


def locate(snippet: bytes, candidates):
    """Where received bytes came from: candidates are (label, seed, length)
    of the streams that were in flight; returns "label@offset" for every
    stream that holds the snippet (a shift within the connection's own
    stream means lost or repeated bytes; another stream means data of one
    connection delivered on another)."""
    found = []
    for label, seed, length in candidates:
        data = Stream(seed).take(length)
        at = data.find(snippet)
        while at != -1 and len(found) < 8:
            found.append(f"{label}@{at}")
            at = data.find(snippet, at + 1)
    return found


def stream_verifier(seed: int, expected_len: int) -> Verifier:
    return Verifier(expected_len, Stream(seed).take)


def send_stream(sock, seed: int, size: int, deadline: float, chunk: int = 1 << 18):
    """Sends `size` bytes of Stream(seed); returns (bytes sent, sha256 hex)."""
    gen = Stream(seed)
    sha = hashlib.sha256()
    sent = 0
    while sent < size:
        if time.monotonic() > deadline:
            raise TimeoutError(f"deadline passed after sending {sent} of {size} bytes")
        data = gen.take(min(chunk, size - sent))
        sock.sendall(data)
        sha.update(data)
        sent += len(data)
    return sent, sha.hexdigest()


def stream_sha(seed: int, size: int) -> str:
    gen = Stream(seed)
    sha = hashlib.sha256()
    left = size
    while left:
        n = min(1 << 18, left)
        sha.update(gen.take(n))
        left -= n
    return sha.hexdigest()


def recv_until_eof(sock, verifier: Verifier, deadline: float, limit: int):
    """Reads into verifier until EOF; returns 'eof', or raises. Stops (returns
    'limit') once `limit` bytes have arrived without an EOF."""
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"deadline passed after receiving {verifier.received} bytes")
        data = sock.recv(1 << 18)
        if not data:
            return "eof"
        verifier.feed(data)
        if verifier.received >= limit:
            return "limit"


def kernel_view(dst: str = GATEWAY_IP) -> str:
    """The kernel's view of our TCP connections (ss), for failure reports."""
    try:
        return subprocess.run(["ss", "-tinoem", "dst", dst], capture_output=True, text=True,
                              timeout=10).stdout[-6000:]
    except (OSError, subprocess.SubprocessError) as e:
        return f"ss failed: {e}"


def socket_view(sock) -> str:
    """The kernel's view of one connected socket (ss -tinoem), taken before
    it is closed: send/receive queues, window limits, retransmissions."""
    try:
        lip, lport = sock.getsockname()[:2]
        rip, rport = sock.getpeername()[:2]
    except OSError as e:
        return f"not connected: {e}"
    try:
        out = subprocess.run(["ss", "-tinoemH", "src", f"{lip}:{lport}", "dst", f"{rip}:{rport}"],
                             capture_output=True, text=True, timeout=10).stdout
        return " ".join(out.split())[:1500]
    except (OSError, subprocess.SubprocessError) as e:
        return f"ss failed: {e}"


def emit(obj):
    print(json.dumps(obj), flush=True)


# Relay header: what an upstream connection is to do, sent first by the client.
HEADER = struct.Struct("!4sIIQQ")
MAGIC = b"MTGR"
MODES = {"client_first": 1, "server_first": 2, "concurrent": 3, "upstream_reset": 4,
         "client_reset": 5}
MODE_NAMES = {v: k for k, v in MODES.items()}


def client_seed(ident: int) -> int:
    return 2 * ident + 1


def server_seed(ident: int) -> int:
    return 2 * ident + 2


def recv_exact(sock, n: int, deadline: float) -> bytes:
    out = bytearray()
    while len(out) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"deadline passed after {len(out)} of {n} bytes")
        data = sock.recv(n - len(out))
        if not data:
            raise EOFError(f"EOF after {len(out)} of {n} bytes")
        out += data
    return bytes(out)


def set_linger_reset(sock):
    """close() then sends RST instead of FIN (SO_LINGER on, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def fail_exit(message: str):
    print(message, file=sys.stderr)
    sys.exit(2)
