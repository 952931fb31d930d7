#!/usr/bin/env python3
"""TLS clients for test_tls.py, run inside the test namespace (ip netns
exec): Python's ssl module (OpenSSL underneath) and, for `grpc`, Debian's
grpcio. Each subcommand prints one JSON line with what it saw; the caller
judges it.

    tls_clients.py http  --sni NAME [common] [--request JSON ...]
    tls_clients.py proxy --sni NAME [common] --size BYTES
    tls_clients.py bulk  --sni NAME [common] --count N
    tls_clients.py concurrent --sni NAME [common] --clients C --requests R
    tls_clients.py grpc  --sni NAME [common] --size BYTES --messages M

common: --connect IP:PORT (198.18.0.2:443), --ca FILE (trusted server
roots), --cert FILE --key FILE (the client certificate, a chain file for
leaves below an intermediate), --tls 1.2|1.3|any, --alpn a,b.
--sni "" sends no server_name (and does not check the server's name).

`http` sends each --request (JSON: method, target, headers as [name,
value] pairs, body_size) on one connection, one after the other, and
reads each response (Content-Length or chunked). A refused handshake is
reported with the alert the client received: OpenSSL's reason name
(TLSV1_ALERT_UNKNOWN_CA...) and its TLS AlertDescription number. In TLS
1.3 the server judges the client's certificate after the client's
handshake is over, so that alert arrives on the first read.
"""
import argparse
import hashlib
import json
import select
import selectors
import socket
import ssl
import sys
import threading
import time

GATEWAY = "198.18.0.2:443"

# OpenSSL's reason names for the alerts a peer can send us, and their
# AlertDescription numbers (RFC 8446 6, RFC 6066 3 for unrecognized_name).
ALERT_NUMBERS = {
    "SSLV3_ALERT_HANDSHAKE_FAILURE": 40,
    "SSLV3_ALERT_BAD_CERTIFICATE": 42,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": 43,
    "SSLV3_ALERT_CERTIFICATE_REVOKED": 44,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": 45,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": 46,
    "TLSV1_ALERT_UNKNOWN_CA": 48,
    "TLSV1_ALERT_DECODE_ERROR": 50,
    "TLSV1_ALERT_PROTOCOL_VERSION": 70,
    "TLSV1_ALERT_INTERNAL_ERROR": 80,
    "TLSV1_UNRECOGNIZED_NAME": 112,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": 116,
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": 120,
}


def describe_error(e, stage):
    out = {"stage": stage, "type": type(e).__name__, "message": str(e)[:300]}
    reason = getattr(e, "reason", None)
    if reason:
        out["reason"] = reason
        if reason in ALERT_NUMBERS:
            out["alert"] = ALERT_NUMBERS[reason]
    return out


def make_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.ca)
    if args.sni == "":
        ctx.check_hostname = False  # nothing to check the certificate against
    versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
    if args.tls in versions:
        ctx.minimum_version = ctx.maximum_version = versions[args.tls]
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))
    return ctx


def connect(args, ctx, timeout=20.0, out=None):
    """A handshaken TLS socket; raises on failure. out["local"]: our
    address, also when the handshake fails (to find the access log line)."""
    host, port = args.connect.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    if out is not None:
        out["local"] = "%s:%d" % raw.getsockname()[:2]
    try:
        return ctx.wrap_socket(raw, server_hostname=args.sni or None)
    except BaseException:
        raw.close()
        raise


def session_facts(tls):
    der = tls.getpeercert(binary_form=True) or b""
    return {"version": tls.version(), "cipher": tls.cipher()[0],
            "alpn": tls.selected_alpn_protocol(),
            "server_cert_sha256": hashlib.sha256(der).hexdigest(),
            "local": "%s:%d" % tls.getsockname()[:2]}


def request_bytes(req, sni):
    method = req.get("method", "GET")
    target = req.get("target", "/echo")
    headers = [list(h) for h in req.get("headers", [])]
    body = b""
    if req.get("body_size"):
        body = bytes((i * 7 + 3) & 0xFF for i in range(req["body_size"]))
        headers.append(["Content-Length", str(len(body))])
    if not any(h[0].lower() == "host" for h in headers) and not req.get("no_host"):
        headers.insert(0, ["Host", sni or "api.example.test"])
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body, hashlib.sha256(body).hexdigest()


def read_response(f, method="GET"):
    """Status, headers ([name, value] pairs) and body of one HTTP/1.1
    response from a buffered reader (RFC 9112 6.3 framing)."""
    line = f.readline(65536)
    if not line:
        raise ConnectionError("EOF before a status line")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    status = int(parts[1])
    headers = []
    while True:
        line = f.readline(65536)
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ConnectionError("EOF inside a response head")
        name, value = line.decode("latin-1").split(":", 1)
        headers.append([name, value.strip()])
    lower = {k.lower(): v for k, v in headers}
    body = b""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        pass
    elif "chunked" in lower.get("transfer-encoding", "").lower():
        while True:
            size = int(f.readline(4096).split(b";")[0].strip(), 16)
            if size == 0:
                while f.readline(4096) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline(4096)
    elif "content-length" in lower:
        body = f.read(int(lower["content-length"]))
    else:
        body = f.read()
    return status, headers, body


def describe_response(status, headers, body):
    res = {"status": status, "headers": headers, "length": len(body),
           "sha256": hashlib.sha256(body).hexdigest()}
    ctype = {k.lower(): v for k, v in headers}.get("content-type", "")
    if ctype.startswith("application/json"):
        res["json"] = json.loads(body)
    elif ctype.startswith("text/"):
        res["text"] = body.decode("utf-8", "replace")[:500]
    return res


def cmd_http(args):
    out = {"handshake_ok": False}
    ctx = make_context(args)
    try:
        tls = connect(args, ctx, out=out)
    except (ssl.SSLError, OSError) as e:
        out["error"] = describe_error(e, "handshake")
        return out
    out["handshake_ok"] = True
    out.update(session_facts(tls))
    out["responses"] = []
    requests = [json.loads(r) for r in args.request] or [{}]
    try:
        f = tls.makefile("rb")
        for req in requests:
            data, body_sha = request_bytes(req, args.sni)
            tls.sendall(data)
            status, headers, body = read_response(f, req.get("method", "GET"))
            res = describe_response(status, headers, body)
            res["sent_body_sha256"] = body_sha
            out["responses"].append(res)
            if {k.lower(): v for k, v in headers}.get("connection", "").lower() == "close":
                break
    except (ssl.SSLError, OSError, ValueError) as e:
        out["error"] = describe_error(e, "request")
    finally:
        tls.close()
    return out


def recv_exact(tls, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = tls.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def cmd_proxy(args):
    """Through a proxy_v2 host to tls_origins.py --proxy: its report of the
    PROXY header, then our bytes echoed back byte-exact."""
    from tls_origins import REPORT_MAGIC, pattern_bytes
    out = {"handshake_ok": False}
    try:
        tls = connect(args, make_context(args))
    except (ssl.SSLError, OSError) as e:
        out["error"] = describe_error(e, "handshake")
        return out
    out["handshake_ok"] = True
    out.update(session_facts(tls))
    data = pattern_bytes("proxy", args.size)
    try:
        magic = recv_exact(tls, len(REPORT_MAGIC) + 4)
        if magic[:len(REPORT_MAGIC)] != REPORT_MAGIC:
            raise ValueError(f"no origin report: {magic!r}")
        out["origin"] = json.loads(recv_exact(tls, int.from_bytes(magic[-4:], "big")))
        echo = send_and_receive(tls, data, deadline=time.monotonic() + 60)
        out["sent"] = len(data)
        out["echo_ok"] = echo == data
        if echo != data:
            out["first_mismatch"] = next((i for i in range(min(len(echo), len(data)))
                                          if echo[i] != data[i]), min(len(echo), len(data)))
    except (ssl.SSLError, OSError, ValueError, TimeoutError) as e:
        out["error"] = describe_error(e, "stream")
    finally:
        tls.close()
    return out


def send_and_receive(tls, data, deadline):
    """Sends data while reading as many bytes back, on one thread: an SSL
    object must not be used by two threads at once (OpenSSL's rule; a
    sender thread beside a reader made Python report a spurious EOF)."""
    tls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(tls, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, echo = 0, bytearray()
    try:
        while len(echo) < len(data):
            if time.monotonic() > deadline:
                raise TimeoutError(f"sent {sent} of {len(data)}, got {len(echo)} back")
            events = 0
            for _, mask in sel.select(timeout=1.0):
                events |= mask
            if sent < len(data) and events & selectors.EVENT_WRITE:
                try:
                    sent += tls.send(data[sent:sent + (1 << 16)])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            while events & selectors.EVENT_READ or tls.pending():
                try:
                    chunk = tls.recv(1 << 16)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not chunk:
                    raise ConnectionError(f"EOF after {len(echo)} of {len(data)} bytes")
                echo += chunk
                events = 0
            if sent == len(data):
                sel.modify(tls, selectors.EVENT_READ)
    finally:
        sel.close()
        tls.setblocking(True)
    return bytes(echo)


def one_exchange(ctx, args, requests, check):
    """One connection with `requests` keep-alive requests; None when all
    were answered 200 and passed check(), else what went wrong."""
    try:
        tls = connect(args, ctx)
    except (ssl.SSLError, OSError) as e:
        return describe_error(e, "handshake")
    try:
        f = tls.makefile("rb")
        data, _ = request_bytes({"target": "/echo"}, args.sni)
        for n in range(requests):
            tls.sendall(data)
            status, headers, body = read_response(f)
            if status != 200:
                return {"stage": f"request {n}", "status": status, "body": body[:200].decode(
                    "latin-1")}
            problem = check(json.loads(body))
            if problem:
                return {"stage": f"request {n}", "problem": problem}
        return None
    except (ssl.SSLError, OSError, ValueError) as e:
        return describe_error(e, "request")
    finally:
        tls.close()


def identity_check(expect_verified):
    def check(report):
        fields = {}
        for k, v in report["headers"]:
            fields.setdefault(k.lower(), []).append(v)
        got = fields.get("x-client-verified")
        if got != [expect_verified]:
            return f"X-Client-Verified {got}, expected [{expect_verified!r}]"
        return None
    return check


def cmd_bulk(args):
    """--count sequential connections, each a full handshake (no session
    reuse) and one request."""
    ctx = make_context(args)
    check = identity_check("true" if args.cert else "false")
    failures, first = 0, []
    start = time.monotonic()
    for _ in range(args.count):
        problem = one_exchange(ctx, args, 1, check)
        if problem:
            failures += 1
            if len(first) < 5:
                first.append(problem)
    seconds = time.monotonic() - start
    return {"count": args.count, "ok": args.count - failures, "failures": failures,
            "first_failures": first, "seconds": round(seconds, 2),
            "handshakes_per_s": round(args.count / seconds, 1)}


def cmd_concurrent(args):
    """--clients threads at once, each one connection with --requests
    keep-alive requests."""
    ctx = make_context(args)
    check = identity_check("true" if args.cert else "false")
    results = [None] * args.clients
    gate = threading.Barrier(args.clients)

    def client(i):
        try:
            gate.wait(60)
        except threading.BrokenBarrierError:
            pass
        results[i] = one_exchange(ctx, args, args.requests, check) or "ok"
    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.deadline)
    seconds = time.monotonic() - start
    bad = [r for r in results if r != "ok"]
    return {"clients": args.clients, "requests_each": args.requests,
            "ok_clients": args.clients - len(bad), "failed_clients": len(bad),
            "first_failures": bad[:5], "seconds": round(seconds, 2),
            "requests_per_s": round(args.clients * args.requests / seconds, 1)}


def cmd_idle(args):
    """--clients connections, one keep-alive request each; then prints
    {"held": N}, waits for a line on stdin (the test looks at the gateway
    meanwhile), sends one more request on each and closes them all."""
    ctx = make_context(args)
    check = identity_check("true" if args.cert else "false")
    data, _ = request_bytes({"target": "/echo"}, args.sni)
    held, failures = [], []

    def exchange(tls, f, stage):
        tls.sendall(data)
        status, _, body = read_response(f)
        if status != 200:
            return {"stage": stage, "status": status}
        problem = check(json.loads(body))
        return {"stage": stage, "problem": problem} if problem else None

    for i in range(args.clients):
        try:
            tls = connect(args, ctx)
            f = tls.makefile("rb")
            problem = exchange(tls, f, "first request")
        except (ssl.SSLError, OSError, ValueError) as e:
            failures.append(describe_error(e, "first request"))
            continue
        if problem:
            failures.append(problem)
            tls.close()
        else:
            held.append((tls, f))
    print(json.dumps({"held": len(held)}), flush=True)
    ready, _, _ = select.select([sys.stdin], [], [], args.deadline)
    if ready:
        sys.stdin.readline()
    ok = 0
    for tls, f in held:
        try:
            problem = exchange(tls, f, "request after the rest")
            if problem:
                failures.append(problem)
            else:
                ok += 1
        except (ssl.SSLError, OSError, ValueError) as e:
            failures.append(describe_error(e, "request after the rest"))
        finally:
            tls.close()
    return {"clients": args.clients, "held": len(held), "ok_after_rest": ok,
            "failures": len(failures), "first_failures": failures[:5]}


def cmd_grpc(args):
    """gRPC over TLS (ALPN h2) through the gateway to tls_origins.py --grpc:
    a unary echo of --size bytes, a bidi stream of --messages, and Who."""
    import grpc  # Debian's python3-grpcio
    from tls_origins import pattern_bytes

    def read(path):
        with open(path, "rb") as f:
            return f.read()
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None)
    options = [("grpc.ssl_target_name_override", args.sni),
               ("grpc.default_authority", args.sni),
               ("grpc.max_receive_message_length", 16 << 20),
               ("grpc.max_send_message_length", 16 << 20)]
    out = {}
    with grpc.secure_channel(args.connect, creds, options=options) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=20)
        except grpc.FutureTimeoutError:
            out["error"] = {"stage": "channel", "message": "not ready in 20 s"}
        unary = channel.unary_unary("/echo.Echo/Unary")
        stream = channel.stream_stream("/echo.Echo/Stream")
        who = channel.unary_unary("/echo.Echo/Who")
        try:
            payload = pattern_bytes("grpc-unary", args.size)
            reply = unary(payload, timeout=60)
            out["unary"] = {"sent": len(payload), "received": len(reply),
                            "ok": reply == payload}
            messages = [pattern_bytes(f"grpc-stream-{i}", 1 + (i * 7919) % 65536)
                        for i in range(args.messages)]
            replies = list(stream(iter(messages), timeout=60))
            out["stream"] = {"sent": len(messages), "received": len(replies),
                             "ok": replies == messages,
                             "bytes": sum(len(m) for m in messages)}
            out["who"] = json.loads(who(b"", timeout=30,
                                        metadata=[("x-test", "through-the-gateway")]))
        except grpc.RpcError as e:
            out["error"] = {"stage": "rpc", "code": str(e.code()), "details": e.details()}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["http", "proxy", "bulk", "concurrent", "idle", "grpc"])
    parser.add_argument("--connect", default=GATEWAY)
    parser.add_argument("--sni", default="api.example.test")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--tls", default="any", choices=["1.2", "1.3", "any"])
    parser.add_argument("--alpn", default="")
    parser.add_argument("--request", action="append", default=[],
                        help="http: a request as JSON (repeatable)")
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--deadline", type=float, default=300)
    args = parser.parse_args()
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    out = {"cmd_http": cmd_http, "cmd_proxy": cmd_proxy, "cmd_bulk": cmd_bulk,
           "cmd_concurrent": cmd_concurrent, "cmd_idle": cmd_idle, "cmd_grpc": cmd_grpc}["cmd_" + args.command](args)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
