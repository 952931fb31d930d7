#!/usr/bin/env python3
"""Steady mTLS load for the control-plane test (test_control.py), run inside
the gateway's namespace: N clients, each on ONE keep-alive connection that
it never reopens, sending GET requests one after another until SIGTERM or
the deadline. A connection that breaks or a request that does not get
200 is a failure: live changes must not disturb established connections.

Prints "ready" once every connection is up, then at the end one JSON line:
{"connections": N, "requests": R, "failures": [..first few..], "failed": F}.
"""
import argparse
import json
import signal
import socket
import ssl
import sys
import threading
import time

from tls_clients import read_response


def client(index, args, stop, results, ready):
    out = {"requests": 0, "failures": []}
    results[index] = out
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(args.ca)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection((args.host, args.port), timeout=20)
        tls = ctx.wrap_socket(raw, server_hostname=args.sni)
        reader = tls.makefile("rb")
    except Exception as e:  # noqa: BLE001 - reported, not raised
        out["failures"].append(f"client {index}: connect: {e!r}")
        ready.release()
        return
    ready.release()
    request = (f"GET {args.path}?client={index} HTTP/1.1\r\nHost: {args.sni}\r\n\r\n").encode()
    while not stop.is_set():
        try:
            tls.sendall(request)
            status, _headers, _body = read_response(reader)
        except Exception as e:  # noqa: BLE001
            out["failures"].append(f"client {index} after {out['requests']} requests: {e!r}")
            return
        if status != 200:
            out["failures"].append(f"client {index}: status {status}")
            return
        out["requests"] += 1
        time.sleep(args.pause)
    try:
        tls.close()
    except OSError:
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--sni", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--path", default="/echo")
    parser.add_argument("--pause", type=float, default=0.02)
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    results = [None] * args.clients
    ready = threading.Semaphore(0)
    threads = [threading.Thread(target=client, args=(i, args, stop, results, ready), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    print("ready", flush=True)
    deadline = time.monotonic() + args.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        stop.wait(0.2)
    stop.set()
    for t in threads:
        t.join(30)
    failures = [f for r in results if r for f in r["failures"]]
    print(json.dumps({"connections": args.clients,
                      "requests": sum(r["requests"] for r in results if r),
                      "failed": len(failures), "failures": failures[:10]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
