#!/usr/bin/env python3
"""TCP clients of the gateway's built-in services; run inside the test
namespace (ip netns exec), by test_tcp.py. Stdlib only.

    tcp_clients.py echo --size BYTES [--seed N] [--port 7] [--deadline S]
    tcp_clients.py short --count N [--parallel P] [--deadline S]
    tcp_clients.py chargen --size BYTES [--deadline S]
    tcp_clients.py discard --size BYTES [--deadline S]
    tcp_clients.py relay --clients N --bytes BYTES [--modes a,b,..] [--deadline S]
    tcp_clients.py refused --count N [--port 8001] [--deadline S]

Each prints one JSON object per line (the last one is the summary, with
"ok") and exits 0 when everything checked out, 1 otherwise. Every loop is
bounded by a count and by --deadline; a connection that makes no progress
for --stall seconds fails (with the kernel's view of it, from ss).
"""
import argparse
import socket
import sys
import threading
import time

from tcp_peer import (GATEWAY_IP, HEADER, MAGIC, MODES, Verifier, client_seed, emit,
                      kernel_view, recv_until_eof, send_stream, server_seed, set_linger_reset,
                      socket_view, stream_verifier)


def connect(args, port):
    sock = socket.create_connection((GATEWAY_IP, port), timeout=args.stall)
    sock.settimeout(args.stall)
    return sock


# --------------------------------------------------------------------- echo
def cmd_echo(args):
    """Sends --size bytes to the echo service while reading the echo; then
    shuts down its sending side and expects the echo to end with EOF after
    exactly --size bytes (the gateway closes after its last byte)."""
    start = time.monotonic()
    deadline = start + args.deadline
    result = {"test": "echo", "size": args.size, "seed": args.seed}
    sender = {}
    sock = connect(args, args.port)

    def send():
        try:
            sender["sent"], sender["sha_sent"] = send_stream(sock, args.seed, args.size, deadline)
            sender["send_seconds"] = round(time.monotonic() - start, 3)
            sock.shutdown(socket.SHUT_WR)
        except Exception as e:  # noqa: BLE001 - reported
            sender["error"] = f"{type(e).__name__}: {e}"

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    verifier = stream_verifier(args.seed, args.size)
    last_report = start
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("deadline")
            data = sock.recv(1 << 18)
            if not data:
                result["eof"] = True
                break
            verifier.feed(data)
            now = time.monotonic()
            if args.progress and now - last_report >= args.progress:
                last_report = now
                print(f"echo: {verifier.received >> 20} MiB back after {now - start:.1f} s",
                      file=sys.stderr, flush=True)
    except Exception as e:  # noqa: BLE001 - reported
        result["error"] = f"{type(e).__name__}: {e}"
        result["kernel_view"] = kernel_view()
    thread.join(timeout=max(1.0, deadline - time.monotonic()))
    seconds = time.monotonic() - start
    sock.close()
    result.update(sender)
    result.update(verifier.report())
    result.update(received=verifier.received, sha_received=verifier.sha.hexdigest(),
                  first_mismatch=verifier.first_mismatch, excess=verifier.excess,
                  seconds=round(seconds, 3),
                  mbit_per_s_each_way=round(verifier.received * 8 / seconds / 1e6, 1))
    result["ok"] = (verifier.ok() and result.get("eof", False) and "error" not in result and
                    result.get("sent") == args.size and
                    result.get("sha_sent") == result["sha_received"])
    emit(result)
    return result["ok"]


# -------------------------------------------------------------------- short
def cmd_short(args):
    """--count short connections to echo, --parallel at a time: connect,
    a small request, read its echo, close. Even-numbered connections shut
    down and wait for the gateway's FIN (EOF) before closing; odd ones close
    at once (the kernel finishes the close on its own)."""
    start = time.monotonic()
    deadline = start + args.deadline
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "failures": [], "eof_checked": 0}

    def one(i):
        request = f"short {i:06d} ".encode() * 4
        sock = connect(args, args.port)
        try:
            sock.sendall(request)
            got = b""
            while len(got) < len(request):
                data = sock.recv(len(request) - len(got))
                if not data:
                    raise EOFError(f"EOF after {len(got)} of {len(request)} echoed bytes")
                got += data
            if got != request:
                raise ValueError(f"echo {got!r} != request {request!r}")
            if i % 2 == 0:
                sock.shutdown(socket.SHUT_WR)
                tail = sock.recv(64)
                if tail:
                    raise ValueError(f"data after the echo: {tail!r}")
                return True
            return False
        finally:
            sock.close()

    def worker():
        while True:
            with lock:
                i = state["next"]
                if i >= args.count or time.monotonic() > deadline or len(state["failures"]) >= 20:
                    return
                state["next"] += 1
            try:
                eof = one(i)
                with lock:
                    state["done"] += 1
                    state["eof_checked"] += eof
            except Exception as e:  # noqa: BLE001 - reported
                with lock:
                    if not state["failures"]:
                        state["kernel_view"] = kernel_view()
                    state["failures"].append(f"connection {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline + args.stall - time.monotonic()))
    seconds = time.monotonic() - start
    result = {"test": "short", "count": args.count, "completed": state["done"],
              "eof_checked": state["eof_checked"], "failed": len(state["failures"]),
              "failures": state["failures"][:5],
              "seconds": round(seconds, 3),
              "connections_per_s": round(state["done"] / seconds, 1)}
    if "kernel_view" in state:
        result["kernel_view"] = state["kernel_view"]
    result["ok"] = state["done"] == args.count and not state["failures"]
    emit(result)
    return result["ok"]


# ------------------------------------------------------------------ chargen
CHARGEN_LINE = 74
CHARGEN_LINES = 95


def chargen_pattern() -> bytes:
    """RFC 864: lines of 72 printable characters, each starting one
    character further along the 95 printable ASCII characters, CR LF."""
    out = bytearray()
    for line in range(CHARGEN_LINES):
        out += bytes(32 + (line + i) % 95 for i in range(72)) + b"\r\n"
    return bytes(out)


def cmd_chargen(args):
    """Reads --size bytes of chargen, checks them against the RFC 864
    pattern, then shuts down its side: the gateway must finish with FIN
    (EOF), every byte until then still in the pattern."""
    start = time.monotonic()
    deadline = start + args.deadline
    pattern = chargen_pattern()
    period = len(pattern)
    ring = pattern * (2 + (1 << 18) // period)
    state = {"offset": 0, "bad": None}

    def expected(n):
        at = state["offset"] % period
        out = b""
        while len(out) < n:
            take = min(n - len(out), len(ring) - at)
            out += ring[at:at + take]
            at = 0
        state["offset"] += n
        return out

    verifier = Verifier(1 << 62, expected)
    result = {"test": "chargen", "size": args.size}
    sock = connect(args, args.chargen_port)
    try:
        outcome = recv_until_eof(sock, verifier, deadline, args.size)
        result["read"] = verifier.received
        if outcome != "limit":
            raise EOFError(f"chargen ended after {verifier.received} of {args.size} bytes")
        result["read_seconds"] = round(time.monotonic() - start, 3)
        sock.shutdown(socket.SHUT_WR)
        # The gateway closes after what it already queued: bounded by its
        # buffers, far below this limit.
        outcome = recv_until_eof(sock, verifier, deadline, args.size + (64 << 20))
        result["eof"] = outcome == "eof"
    except Exception as e:  # noqa: BLE001 - reported
        result["error"] = f"{type(e).__name__}: {e}"
        result["kernel_view"] = kernel_view()
    finally:
        sock.close()
    seconds = time.monotonic() - start
    result.update(received=verifier.received, after_shutdown=verifier.received - args.size,
                  first_mismatch=verifier.first_mismatch, seconds=round(seconds, 3),
                  mbit_per_s=round(verifier.received * 8 / seconds / 1e6, 1))
    result["ok"] = ("error" not in result and result.get("eof", False) and
                    verifier.first_mismatch is None and verifier.received >= args.size)
    emit(result)
    return result["ok"]


# ------------------------------------------------------------------ discard
def cmd_discard(args):
    """Sends --size bytes to discard, shuts down its side, and expects EOF
    with no data (the gateway closes its side in answer), no error."""
    start = time.monotonic()
    deadline = start + args.deadline
    result = {"test": "discard", "size": args.size}
    sock = connect(args, args.discard_port)
    try:
        result["sent"], result["sha_sent"] = send_stream(sock, 7, args.size, deadline)
        result["send_seconds"] = round(time.monotonic() - start, 3)
        sock.shutdown(socket.SHUT_WR)
        data = sock.recv(4096)
        result["eof"] = data == b""
        if data:
            result["unexpected_data"] = repr(data[:64])
    except Exception as e:  # noqa: BLE001 - reported
        result["error"] = f"{type(e).__name__}: {e}"
        result["kernel_view"] = kernel_view()
    finally:
        sock.close()
    seconds = time.monotonic() - start
    result.update(seconds=round(seconds, 3),
                  mbit_per_s=round(result.get("sent", 0) * 8 / seconds / 1e6, 1))
    result["ok"] = "error" not in result and result.get("eof", False) and \
        result.get("sent") == args.size
    emit(result)
    return result["ok"]


# -------------------------------------------------------------------- relay
def relay_one(args, ident, mode, deadline, barrier):
    """One client of the relay; the upstream (tcp_upstream.py) acts on the
    header it receives first. Returns a result dict."""
    cbytes = args.bytes if mode not in ("upstream_reset",) else 0
    sbytes = args.bytes if mode != "client_reset" else 0
    if mode == "upstream_reset":
        sbytes = args.reset_bytes
    res = {"id": ident, "mode": mode}
    try:
        barrier.wait(timeout=args.stall)
    except threading.BrokenBarrierError:
        pass
    start = time.monotonic()
    sock = None
    try:
        sock = connect(args, args.port)
        sock.sendall(HEADER.pack(MAGIC, ident, MODES[mode], cbytes, sbytes))
        verifier = stream_verifier(server_seed(ident), sbytes)
        if mode == "client_first":
            # Our FIN must reach the upstream as EOF before it sends a byte.
            res["sent"], res["sha_sent"] = send_stream(sock, client_seed(ident), cbytes, deadline)
            sock.shutdown(socket.SHUT_WR)
            res["end"] = recv_until_eof(sock, verifier, deadline, sbytes + (1 << 20))
        elif mode == "server_first":
            # The upstream's FIN must reach us as EOF while we still send.
            res["end"] = recv_until_eof(sock, verifier, deadline, sbytes + (1 << 20))
            res["sent"], res["sha_sent"] = send_stream(sock, client_seed(ident), cbytes, deadline)
            sock.shutdown(socket.SHUT_WR)
            # Our side is closed both ways now; nothing more may arrive.
            tail = sock.recv(16)
            if tail:
                res["after_eof"] = repr(tail)
        elif mode == "concurrent":
            box = {}

            def send():
                try:
                    box["sent"], box["sha_sent"] = send_stream(sock, client_seed(ident), cbytes,
                                                               deadline)
                    sock.shutdown(socket.SHUT_WR)
                except Exception as e:  # noqa: BLE001
                    box["send_error"] = f"{type(e).__name__}: {e}"
            t = threading.Thread(target=send, daemon=True)
            t.start()
            res["end"] = recv_until_eof(sock, verifier, deadline, sbytes + (1 << 20))
            t.join(timeout=max(1.0, deadline - time.monotonic()))
            res.update(box)
        elif mode == "upstream_reset":
            # The upstream sends some bytes, then resets: we must see the
            # reset, never a clean EOF (a truncated stream is not complete).
            try:
                res["end"] = recv_until_eof(sock, verifier, deadline, sbytes + (1 << 20))
            except ConnectionResetError:
                res["end"] = "reset"
        elif mode == "client_reset":
            res["sent"], res["sha_sent"] = send_stream(sock, client_seed(ident), cbytes, deadline)
            set_linger_reset(sock)
            res["end"] = "reset_sent"
        res["received"] = verifier.received
        res["sha_received"] = verifier.sha.hexdigest()
        res["first_mismatch"] = verifier.first_mismatch
        res.update(verifier.report())
        if mode in ("client_first", "server_first", "concurrent"):
            res["ok"] = (res.get("end") == "eof" and verifier.ok() and
                         res.get("sent") == cbytes and "after_eof" not in res)
        elif mode == "upstream_reset":
            res["ok"] = (res.get("end") == "reset" and verifier.first_mismatch is None and
                         verifier.excess == 0)
        else:
            res["ok"] = True
    except Exception as e:  # noqa: BLE001 - reported
        res["error"] = f"{type(e).__name__}: {e}"
        res["ok"] = False
        if sock is not None and not isinstance(e, ConnectionError):
            res["socket"] = socket_view(sock)
        if "verifier" in locals():
            res["received"] = verifier.received
    finally:
        if sock is not None:
            sock.close()
    res["seconds"] = round(time.monotonic() - start, 3)
    return res


def cmd_relay(args):
    start = time.monotonic()
    deadline = start + args.deadline
    modes = args.modes.split(",")
    results = [None] * args.clients
    barrier = threading.Barrier(args.clients)

    def run(i):
        results[i] = relay_one(args, args.first_id + i, modes[i % len(modes)], deadline, barrier)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline + args.stall - time.monotonic()))
    seconds = time.monotonic() - start
    bad = []
    for i, r in enumerate(results):
        if r is None:
            r = results[i] = {"id": args.first_id + i, "mode": modes[i % len(modes)],
                              "ok": False, "error": "did not finish"}
        emit(r)
        if not r["ok"]:
            bad.append(r["id"])
    moved = sum(r.get("sent", 0) + r.get("received", 0) for r in results)
    summary = {"test": "relay", "clients": args.clients, "failed_ids": bad,
               "seconds": round(seconds, 3), "bytes_both_ways": moved,
               "mbit_per_s_total": round(moved * 8 / seconds / 1e6, 1), "ok": not bad}
    if bad:
        summary["kernel_view"] = kernel_view()
    emit(summary)
    return summary["ok"]


def cmd_refused(args):
    """Relay to an upstream port nobody listens on: the client must see a
    reset or an EOF, and not one byte of data. --count clients, --parallel
    at a time."""
    start = time.monotonic()
    deadline = start + args.deadline
    lock = threading.Lock()
    state = {"next": 0, "outcomes": {}, "failures": []}

    def one(i):
        try:
            sock = socket.create_connection((GATEWAY_IP, args.port), timeout=args.stall)
        except ConnectionRefusedError:
            return "refused_at_connect"
        except ConnectionResetError:
            # The relay accepted, the upstream refused, and its RST beat the
            # connect() call's own check of SO_ERROR (a connect with a
            # timeout polls, then reads the socket error): a reset all the same.
            return "reset_at_connect"
        sock.settimeout(args.stall)
        try:
            sock.sendall(b"hello?")
            data = sock.recv(4096)
            if data:
                raise ValueError(f"received {data[:32]!r}")
            return "eof"
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        finally:
            sock.close()

    def worker():
        while True:
            with lock:
                i = state["next"]
                if i >= args.count or time.monotonic() > deadline:
                    return
                state["next"] += 1
            try:
                outcome = one(i)
            except Exception as e:  # noqa: BLE001 - reported
                outcome = type(e).__name__
                with lock:
                    state["failures"].append(f"{i}: {type(e).__name__}: {e}")
            with lock:
                state["outcomes"][outcome] = state["outcomes"].get(outcome, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline + args.stall - time.monotonic()))
    outcomes = state["outcomes"]
    result = {"test": "refused", "count": args.count, "outcomes": outcomes,
              "failed": len(state["failures"]), "failures": state["failures"][:5],
              "seconds": round(time.monotonic() - start, 3)}
    result["ok"] = not state["failures"] and sum(outcomes.values()) == args.count
    emit(result)
    return result["ok"]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["echo", "short", "chargen", "discard", "relay",
                                            "refused"])
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--chargen-port", type=int, default=19)
    parser.add_argument("--discard-port", type=int, default=9)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--first-id", type=int, default=0)
    parser.add_argument("--bytes", type=int, default=1 << 20)
    parser.add_argument("--reset-bytes", type=int, default=64 << 10)
    parser.add_argument("--modes", default="client_first,server_first,concurrent")
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--stall", type=float, default=30.0)
    parser.add_argument("--progress", type=float, default=0.0,
                        help="print progress to stderr every this many seconds (echo)")
    args = parser.parse_args()
    if args.port is None:
        args.port = {"relay": 8000, "refused": 8001}.get(args.command, 7)
    handler = {"echo": cmd_echo, "short": cmd_short, "chargen": cmd_chargen,
               "discard": cmd_discard, "relay": cmd_relay, "refused": cmd_refused}[args.command]
    return 0 if handler(args) else 1


if __name__ == "__main__":
    sys.exit(main())
