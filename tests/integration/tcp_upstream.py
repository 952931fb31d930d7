#!/usr/bin/env python3
"""The kernel server behind the gateway's relay; runs inside the test
namespace (ip netns exec), started by test_tcp.py. Stdlib only.

    tcp_upstream.py --expect N [--bind 198.18.0.1] [--port 9000] [--deadline S]

Prints "listening" once bound, then one JSON line per connection, then a
summary line ({"summary": ...}), and exits after --expect connections have
finished or at --deadline, whichever comes first. Each connection starts
with the client's header (tcp_peer.HEADER: id, mode, byte counts), and the
server plays its part of the mode:

  client_first   read the client's bytes, then EOF (its FIN carried across),
                 and only then send ours and close
  server_first   send ours and close our sending side first, then read the
                 client's bytes and EOF
  concurrent     both at once
  upstream_reset send some bytes, then reset (SO_LINGER 0)
  client_reset   read until the client's reset arrives (a reset, not EOF)
"""
import argparse
import socket
import sys
import threading
import time

from tcp_peer import (HEADER, KERNEL_IP, MAGIC, MODE_NAMES, client_seed, emit, recv_exact,
                      recv_until_eof, send_stream, server_seed, set_linger_reset,
                      socket_view, stream_verifier)


def serve(conn, peer, args, deadline, results, lock):
    res = {"peer": f"{peer[0]}:{peer[1]}"}
    start = time.monotonic()
    try:
        conn.settimeout(args.stall)
        magic, ident, mode_no, cbytes, sbytes = HEADER.unpack(recv_exact(conn, HEADER.size,
                                                                         deadline))
        if magic != MAGIC:
            raise ValueError(f"bad header magic {magic!r}")
        mode = MODE_NAMES.get(mode_no, f"unknown{mode_no}")
        res.update(id=ident, mode=mode)
        verifier = stream_verifier(client_seed(ident), cbytes)
        if mode == "client_first":
            res["end"] = recv_until_eof(conn, verifier, deadline, cbytes + (1 << 20))
            res["sent"], res["sha_sent"] = send_stream(conn, server_seed(ident), sbytes, deadline)
            conn.shutdown(socket.SHUT_WR)
        elif mode == "server_first":
            res["sent"], res["sha_sent"] = send_stream(conn, server_seed(ident), sbytes, deadline)
            conn.shutdown(socket.SHUT_WR)
            res["end"] = recv_until_eof(conn, verifier, deadline, cbytes + (1 << 20))
        elif mode == "concurrent":
            box = {}

            def send():
                try:
                    box["sent"], box["sha_sent"] = send_stream(conn, server_seed(ident), sbytes,
                                                               deadline)
                    conn.shutdown(socket.SHUT_WR)
                except Exception as e:  # noqa: BLE001 - reported
                    box["send_error"] = f"{type(e).__name__}: {e}"
            t = threading.Thread(target=send, daemon=True)
            t.start()
            res["end"] = recv_until_eof(conn, verifier, deadline, cbytes + (1 << 20))
            t.join(timeout=max(1.0, deadline - time.monotonic()))
            res.update(box)
        elif mode == "upstream_reset":
            res["sent"], res["sha_sent"] = send_stream(conn, server_seed(ident), sbytes, deadline)
            set_linger_reset(conn)
            res["end"] = "reset_sent"
        elif mode == "client_reset":
            try:
                res["end"] = recv_until_eof(conn, verifier, deadline, cbytes + (1 << 20))
            except ConnectionResetError:
                res["end"] = "reset"
        else:
            raise ValueError(f"unknown mode {mode_no}")
        res["received"] = verifier.received
        res["sha_received"] = verifier.sha.hexdigest()
        res["first_mismatch"] = verifier.first_mismatch
        res.update(verifier.report())
        if mode in ("client_first", "server_first", "concurrent"):
            res["ok"] = (res.get("end") == "eof" and verifier.ok() and res.get("sent") == sbytes)
        elif mode == "client_reset":
            res["ok"] = (res.get("end") == "reset" and verifier.first_mismatch is None and
                         verifier.excess == 0)
        else:
            res["ok"] = True
    except Exception as e:  # noqa: BLE001 - reported
        res["error"] = f"{type(e).__name__}: {e}"
        res["ok"] = False
        if not isinstance(e, ConnectionError):
            res["socket"] = socket_view(conn)
        if "verifier" in locals():
            res["received"] = verifier.received
    finally:
        conn.close()
    res["seconds"] = round(time.monotonic() - start, 3)
    with lock:
        results.append(res)
        emit(res)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default=KERNEL_IP)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--stall", type=float, default=30.0)
    args = parser.parse_args()

    start = time.monotonic()
    deadline = start + args.deadline
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.bind, args.port))
    listener.listen(1024)
    listener.settimeout(0.2)
    print("listening", flush=True)

    results, lock, threads = [], threading.Lock(), []
    accepted = 0
    while accepted < args.expect and time.monotonic() < deadline:
        try:
            conn, peer = listener.accept()
        except socket.timeout:
            continue
        accepted += 1
        t = threading.Thread(target=serve, args=(conn, peer, args, deadline, results, lock),
                             daemon=True)
        t.start()
        threads.append(t)
    listener.close()
    for t in threads:
        t.join(timeout=max(0.5, deadline + 1 - time.monotonic()))
    with lock:
        done = list(results)
    emit({"summary": {"accepted": accepted, "finished": len(done),
                      "failed_ids": [r.get("id") for r in done if not r["ok"]],
                      "seconds": round(time.monotonic() - start, 3)}})
    return 0 if accepted == args.expect and len(done) == accepted and all(
        r["ok"] for r in done) else 1


if __name__ == "__main__":
    sys.exit(main())
