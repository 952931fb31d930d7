#!/usr/bin/env python3
"""The origins behind the TLS gateway; run inside the test namespace (ip
netns exec), started by test_tls.py. They see plaintext: the gateway
terminates TLS.

    tls_origins.py [--bind 198.18.0.1] [--http PORT] [--proxy PORT] [--grpc PORT]

Prints one line "listening" once every origin is bound, then serves until
SIGTERM. Any of the three may be left out.

  --http   HTTP/1.1 (threaded, keep-alive). Every request is answered with a
           JSON object describing it: method, target, version, every header
           field in order and with repeats ([name, value] pairs), the body's
           length and SHA-256 (Content-Length or chunked bodies), the peer.
           GET /bytes/N?seed=S instead answers N bytes of the deterministic
           stream pattern_bytes(S, N), for byte-exact checks.
  --proxy  PROXY protocol v2 (HAProxy's proxy-protocol.txt 2.2): parses the
           header itself (addresses, every TLV, the PP2_TYPE_SSL sub-TLVs
           including CLIENT_CERT 0x28, the CRC32c when present), sends back
           REPORT_MAGIC, a 4-byte big-endian length and the parse as JSON,
           then echoes the rest of the stream until EOF, and closes.
  --grpc   gRPC over plaintext HTTP/2 (grpcio, generic handlers, raw bytes:
           no protoc): /echo.Echo/Unary returns the request,
           /echo.Echo/Stream echoes every message of a bidi stream,
           /echo.Echo/Who returns JSON with the peer and the metadata. grpcio
           is Debian's python3-grpcio: run this file with a Python that has it.
"""
import argparse
import base64
import hashlib
import json
import signal
import socket
import socketserver
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KERNEL_IP = "198.18.0.1"
REPORT_MAGIC = b"PP2REPORT"
PROXY_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def pattern_bytes(seed, size):
    """size bytes of SHA-256 in counter mode over seed: what /bytes/N
    answers, and what a client recomputes to check it."""
    out = bytearray()
    counter = 0
    prefix = str(seed).encode() + b":"
    while len(out) < size:
        out += hashlib.sha256(prefix + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


# ---------------------------------------------------------------- HTTP/1.1

class HttpOrigin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says close

    def log_message(self, *_args):  # no per-request stderr noise
        pass

    def read_body(self):
        """The request body's (length, sha256): Content-Length or chunked
        (RFC 9112 7.1; http.server knows neither by itself for chunked)."""
        sha = hashlib.sha256()
        length = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size_line = self.rfile.readline(4096)
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                        pass  # trailer section
                    break
                chunk = self.rfile.read(size)
                sha.update(chunk)
                length += len(chunk)
                self.rfile.readline(4096)  # the chunk's CRLF
        else:
            remaining = int(self.headers.get("Content-Length", "0") or 0)
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                sha.update(chunk)
                length += len(chunk)
                remaining -= len(chunk)
        return length, sha.hexdigest()

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Body-Sha256", hashlib.sha256(body).hexdigest())
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        length, sha = self.read_body()
        url = urlsplit(self.path)
        if url.path.startswith("/bytes/") and self.command == "GET":
            size = int(url.path[len("/bytes/"):])
            seed = parse_qs(url.query).get("seed", ["0"])[0]
            self.answer(200, pattern_bytes(seed, size), "application/octet-stream")
            return
        report = {
            "method": self.command,
            "target": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_length": length,
            "body_sha256": sha,
            "peer": f"{self.client_address[0]}:{self.client_address[1]}",
        }
        self.answer(200, json.dumps(report).encode(), "application/json")

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = handle_any


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # the gateway opens many upstream connections at once


# ------------------------------------------------------------ PROXY v2

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """CRC32c (Castagnoli, RFC 4960 appendix B), bit-reflected."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


TLV_NAMES = {0x01: "alpn", 0x02: "authority", 0x03: "crc32c", 0x04: "noop", 0x05: "unique_id",
             0x20: "ssl", 0x30: "netns", 0xE0: "verify_reason"}
SSL_SUB_NAMES = {0x21: "version", 0x22: "cn", 0x23: "cipher", 0x24: "sig_alg", 0x25: "key_alg",
                 0x26: "group", 0x27: "sig_scheme", 0x28: "client_cert"}


def parse_tlvs(data):
    """[(type, value)] of a TLV area; raises ValueError when a TLV runs past
    its end."""
    out = []
    i = 0
    while i < len(data):
        if i + 3 > len(data):
            raise ValueError(f"TLV header cut at offset {i}")
        kind, length = data[i], struct.unpack(">H", data[i + 1:i + 3])[0]
        if i + 3 + length > len(data):
            raise ValueError(f"TLV 0x{kind:02x} of {length} bytes runs past the end")
        out.append((kind, data[i + 3:i + 3 + length], i))
        i += 3 + length
    return out


def parse_proxy_v2(header):
    """The whole header (16 fixed bytes + its length) as a JSON-able dict."""
    if header[:12] != PROXY_SIGNATURE:
        raise ValueError(f"bad signature {header[:12].hex()}")
    ver_cmd, fam, length = header[12], header[13], struct.unpack(">H", header[14:16])[0]
    if ver_cmd >> 4 != 2:
        raise ValueError(f"version {ver_cmd >> 4}, not 2")
    report = {"header_length": 16 + length, "command": ver_cmd & 0x0F, "family": fam}
    body = header[16:16 + length]
    if fam == 0x11:  # TCP over IPv4
        if len(body) < 12:
            raise ValueError("address block shorter than 12 bytes")
        src, dst = socket.inet_ntoa(body[0:4]), socket.inet_ntoa(body[4:8])
        sport, dport = struct.unpack(">HH", body[8:12])
        report.update(source=f"{src}:{sport}", destination=f"{dst}:{dport}")
        tlv_area, tlv_offset = body[12:], 16 + 12
    elif fam == 0x00:
        tlv_area, tlv_offset = body, 16
    else:
        raise ValueError(f"family 0x{fam:02x} not expected from the gateway")
    report["tlv_order"] = []
    seen = set()
    for kind, value, offset in parse_tlvs(tlv_area):
        name = TLV_NAMES.get(kind, f"0x{kind:02x}")
        report["tlv_order"].append(name)
        if kind in seen and kind != 0x04:
            raise ValueError(f"TLV {name} twice")
        seen.add(kind)
        if kind == 0x03:
            if len(value) != 4:
                raise ValueError("CRC32c TLV is not 4 bytes")
            start = tlv_offset + offset + 3
            zeroed = header[:start] + b"\0\0\0\0" + header[start + 4:16 + length]
            report["crc32c_ok"] = crc32c(zeroed) == struct.unpack(">I", value)[0]
        elif kind == 0x20:
            if len(value) < 5:
                raise ValueError("SSL TLV shorter than client + verify")
            ssl = {"client": value[0], "verify": struct.unpack(">I", value[1:5])[0],
                   "order": []}
            for sub, sub_value, _ in parse_tlvs(value[5:]):
                sub_name = SSL_SUB_NAMES.get(sub, f"0x{sub:02x}")
                ssl["order"].append(sub_name)
                if sub == 0x28:
                    ssl["client_cert_der_b64"] = base64.b64encode(sub_value).decode()
                    ssl["client_cert_sha256"] = hashlib.sha256(sub_value).hexdigest()
                else:
                    ssl[sub_name] = sub_value.decode("utf-8", "backslashreplace")
            report["ssl"] = ssl
        elif kind == 0x05:
            report["unique_id_hex"] = value.hex()
        elif kind == 0x04:
            report["noop_count"] = report.get("noop_count", 0) + 1
        else:
            report[name] = value.decode("utf-8", "backslashreplace")
    return report


def recv_exact(conn, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)} of {n} header bytes")
        buf += chunk
    return bytes(buf)


class ProxyOrigin(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(60)
        try:
            fixed = recv_exact(conn, 16)
            length = struct.unpack(">H", fixed[14:16])[0]
            report = parse_proxy_v2(fixed + recv_exact(conn, length))
        except (ValueError, ConnectionError, OSError) as e:
            report = {"error": f"{type(e).__name__}: {e}"}
        report["peer"] = f"{self.client_address[0]}:{self.client_address[1]}"
        body = json.dumps(report).encode()
        print(json.dumps({"proxy_v2": {k: v for k, v in report.items()
                                        if k != "ssl"}}), flush=True)
        try:
            conn.sendall(REPORT_MAGIC + struct.pack(">I", len(body)) + body)
            if "error" in report:
                return
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


# ----------------------------------------------------------------- gRPC

def start_grpc(bind, port):
    import grpc  # Debian's python3-grpcio
    from concurrent import futures

    def unary(request, _context):
        return request

    def stream(requests, _context):
        for message in requests:
            yield message

    def who(_request, context):
        return json.dumps({"peer": context.peer(),
                           "metadata": [[k, v if isinstance(v, str) else v.hex()]
                                        for k, v in context.invocation_metadata()]}).encode()

    handler = grpc.method_handlers_generic_handler("echo.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
        "Who": grpc.unary_unary_rpc_method_handler(who),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.max_receive_message_length", 16 << 20),
                                  ("grpc.max_send_message_length", 16 << 20),
                                  ("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(f"{bind}:{port}") != port:
        raise OSError(f"gRPC origin could not bind {bind}:{port}")
    server.start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default=KERNEL_IP)
    parser.add_argument("--http", type=int)
    parser.add_argument("--proxy", type=int)
    parser.add_argument("--grpc", type=int)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    servers = []
    if args.http:
        servers.append(HttpServer((args.bind, args.http), HttpOrigin))
    if args.proxy:
        servers.append(ProxyServer((args.bind, args.proxy), ProxyOrigin))
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
    grpc_server = start_grpc(args.bind, args.grpc) if args.grpc else None
    print("listening", flush=True)
    while not stop.wait(0.5):
        pass
    for server in servers:
        server.shutdown()
    if grpc_server is not None:
        grpc_server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
