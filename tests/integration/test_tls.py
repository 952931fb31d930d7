#!/usr/bin/env python3
"""Mutual TLS through the gateway (issue 4), with clients nobody here wrote:
curl, openssl s_client, Python's ssl module and grpcio, against origins run
by the namespace's kernel (tls_origins.py), with the test PKI
(scripts/make-test-pki; MTLSGW_TEST_PKI, else build/tests/pki).

    test_tls.py --scenario NAME --workers N [options]

Scenarios (each starts its own gateway with one "tls" listener on 443 and
stops it at the end: the gateway must then exit 0):

  identity  a valid client certificate reaches each kind of origin
            byte-exact: forward http (a body up, 1 MiB down), forward
            proxy_v2 (1 MiB echoed), forward tcp to a gRPC origin (unary
            1 MiB, a bidi stream); the origin sees the identity headers or
            the PROXY v2 TLVs, each compared with what `openssl x509` says
            of the client certificate (subject, issuer, serial, SHA-256
            fingerprint, dates, DER); counters per host; the access log's
            line of each connection
  refusals  every bad certificate on a `required` host (none, another
            configured CA's, an unknown CA's, self-signed, issued by a leaf,
            expired, not yet valid, revoked, no clientAuth, no
            digitalSignature, a chain deeper than max_depth, a bad
            signature), each with Python ssl over TLS 1.3 and 1.2 and with
            openssl s_client: the alert the client received (RFC 8446 6.2;
            handshake_failure for a missing certificate in TLS 1.2), and the
            host's counter of that reason going up by exactly the attempts;
            then the same certificates on an `optional` host: answered,
            X-Client-Verified false and X-Client-Verify-Reason the reason;
            the access log's line of each refused Python connection (reason,
            alert sent, end handshake_failed, no upstream)
  matrix    TLS 1.2 and 1.3 x ECDSA and RSA server certificates (two
            gateway runs) x three hosts chosen by SNI, each with its own
            client CA (the right CA passes, another host's CA is refused),
            with Python ssl and curl; no SNI: the default host (ECDSA run)
            or unrecognized_name (RSA run, no default_host); Host or an
            absolute-form authority other than the SNI answered 421;
            identity headers sent by the client removed
  load      --sequential (2,000) handshakes one after the other, each with
            one request; then --clients (64) concurrent clients x
            --requests (100) keep-alive requests; all succeed, the counters
            agree, nothing stays active

Nothing here asserts on time: durations and rates are printed.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from netns_gateway import GATEWAY_IP, KERNEL_IP, TOP, Failure, main, stop_on_signals, wait_for  # noqa: E402,E501
from test_tcp import (Checks, describe_binary, evidence, finish, gateway_name, log,  # noqa: E402
                      nonzero, started, wait_gauges_zero)
from tls_origins import pattern_bytes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGINS = os.path.join(HERE, "tls_origins.py")
CLIENTS = os.path.join(HERE, "tls_clients.py")
HTTP_PORT, PROXY_PORT, GRPC_PORT = 9080, 9081, 9082
TLS_PORT = 443
MIB = 1 << 20

API, GRPC, WILD = "api.example.test", "grpc.example.test", "*.wild.example.test"
PP = "pp.wild.example.test"  # exact host under the wildcard (exact wins)

# Alert numbers (RFC 8446 6.2, RFC 6066 3).
HANDSHAKE_FAILURE, BAD_CERTIFICATE, UNSUPPORTED_CERTIFICATE = 40, 42, 43
CERTIFICATE_REVOKED, CERTIFICATE_EXPIRED, UNKNOWN_CA = 44, 45, 48
UNRECOGNIZED_NAME, CERTIFICATE_REQUIRED = 112, 116
ALERT_NAMES = {HANDSHAKE_FAILURE: "handshake_failure", BAD_CERTIFICATE: "bad_certificate",
               UNSUPPORTED_CERTIFICATE: "unsupported_certificate",
               CERTIFICATE_REVOKED: "certificate_revoked",
               CERTIFICATE_EXPIRED: "certificate_expired", UNKNOWN_CA: "unknown_ca",
               UNRECOGNIZED_NAME: "unrecognized_name",
               CERTIFICATE_REQUIRED: "certificate_required"}

# Every bad certificate: (PKI name or None, verify reason, TLS 1.3 alert);
# TLS 1.2 gets the same alert except for a missing certificate.
REFUSALS = [
    (None, "no_certificate", CERTIFICATE_REQUIRED),
    ("client-partners", "unknown_ca", UNKNOWN_CA),     # another configured CA's
    ("client-unknown-ca", "unknown_ca", UNKNOWN_CA),
    ("client-self-signed", "unknown_ca", UNKNOWN_CA),
    ("client-issued-by-leaf", "unknown_ca", UNKNOWN_CA),
    ("client-expired", "expired", CERTIFICATE_EXPIRED),
    ("client-not-yet-valid", "not_yet_valid", CERTIFICATE_EXPIRED),
    ("client-revoked", "revoked", CERTIFICATE_REVOKED),
    ("client-server-eku", "wrong_usage", UNSUPPORTED_CERTIFICATE),
    ("client-no-digitalsig", "wrong_usage", UNSUPPORTED_CERTIFICATE),
    ("client-deep", "chain_too_deep", UNKNOWN_CA),
    ("client-bad-signature", "bad_signature", BAD_CERTIFICATE),
]
VERIFY_REASONS = ["ok", "no_certificate", "unknown_ca", "expired", "not_yet_valid", "revoked",
                  "wrong_usage", "chain_too_deep", "bad_signature", "malformed",
                  "revocation_unknown", "unacceptable", "internal_error"]


# ------------------------------------------------------------------ the PKI
class Pki:
    def __init__(self, path):
        self.dir = path
        if not os.path.exists(os.path.join(path, "server-ca.pem")):
            raise Failure(f"no test PKI in {path}: build it (ninja test-pki, or "
                          f"scripts/make-test-pki {path}) or set MTLSGW_TEST_PKI")
        self._facts = {}

    def file(self, name):
        return os.path.join(self.dir, name)

    def client(self, name):
        """(cert file to send, key file): the chain file below an intermediate."""
        chain = self.file(f"{name}.chain.pem")
        return (chain if os.path.exists(chain) else self.file(f"{name}.pem"),
                self.file(f"{name}.key"))

    def facts(self, name):
        """What `openssl x509` says of NAME.pem, in the forms the gateway
        sends (docs/forwarding.md): RFC 4514 DNs with non-ASCII bytes as
        \\XX, upper-case serial, lower-case SHA-256, RFC 3339 dates, DER."""
        if name in self._facts:
            return self._facts[name]
        pem = self.file(f"{name}.pem")
        out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-subject", "-issuer",
                              "-serial", "-startdate", "-enddate", "-fingerprint", "-sha256",
                              "-nameopt", "RFC2253"], capture_output=True, text=True,
                             check=True).stdout
        fields = dict(line.split("=", 1) for line in out.splitlines())
        der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"],
                             capture_output=True, check=True).stdout

        def rfc3339(openssl_date):
            return time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                 time.strptime(openssl_date, "%b %d %H:%M:%S %Y %Z"))
        subject = fields["subject"]
        cn = re.match(r"CN=((?:[^,\\]|\\.)*)", subject).group(1)
        facts = {
            "subject": subject,
            "issuer": fields["issuer"],
            "serial": fields["serial"],
            "fingerprint": fields["sha256 Fingerprint"].replace(":", "").lower(),
            "not_before": rfc3339(fields["notBefore"]),
            "not_after": rfc3339(fields["notAfter"]),
            "der_b64": base64.b64encode(der).decode(),
            # The CN TLV carries the raw UTF-8 value: undo RFC 4514 escapes.
            "cn": re.sub(rb"\\([0-9A-F]{2})", lambda m: bytes.fromhex(m.group(1).decode()),
                         re.sub(r"\\([^0-9A-F])", r"\1", cn).encode()).decode(),
        }
        self._facts[name] = facts
        return facts

    def cert_sha256(self, name):
        return self.facts(name)["fingerprint"]


def find_pki():
    return Pki(os.environ.get("MTLSGW_TEST_PKI") or os.path.join(TOP, "build", "tests", "pki"))


def grpc_python():
    """A Python that has grpcio: this one, else Debian's (python3-grpcio is
    installed for /usr/bin/python3, which a pyenv python3 does not see)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([candidate, "-c", "import grpc"], capture_output=True).returncode == 0:
            return candidate
    raise Failure("no Python with grpcio (Debian's python3-grpcio; scripts/setup installs it)")


# ------------------------------------------------------------- the config
def ca(name, pki, cert, crl, max_depth=None):
    entry = {"name": name, "cert": pki.file(cert), "crl": pki.file(crl)}
    if max_depth is not None:
        entry["max_depth"] = max_depth
    return entry


def standard_cas(pki):
    # max_depth 3: root -> int -> int2 -> leaf (client-depth2) passes,
    # root -> int -> int2 -> int3 -> leaf (client-deep) is too deep.
    return [ca("devices", pki, "devices-ca.pem", "devices.crl.pem", max_depth=3),
            ca("partners", pki, "partners-ca.pem", "partners.crl.pem"),
            ca("other", pki, "other-ca.pem", "other.crl.pem")]


def host(pki, name, cert, cas, port, forward, mtls="required", **extra):
    entry = {"name": name, "cert": pki.file(f"{cert}.pem"), "key": pki.file(f"{cert}.key"),
             "mtls": mtls, "client_cas": cas, "upstream": f"{KERNEL_IP}:{port}",
             "forward": forward}
    entry.update(extra)
    return entry


def tls_config(pki, hosts, default_host=None, access_log=None):
    config = {
        "ports": [{"port_id": 0, "address": f"{GATEWAY_IP}/24", "gateway": KERNEL_IP}],
        "listeners": [{"port": TLS_PORT, "service": "tls"}],
        # Short TIME-WAIT: the gateway closes its upstream connections first.
        "tcp": {"time_wait_ms": 2000},
        "cas": standard_cas(pki),
        "hosts": hosts,
    }
    if default_host:
        config["default_host"] = default_host
    if access_log:
        config["access_log"] = {"path": access_log}
    return config


# -------------------------------------------------------- origins, clients
def start_origins(gw, grpc=False):
    procs = [gw.spawn(sys.executable, ORIGINS, "--http", str(HTTP_PORT), "--proxy",
                      str(PROXY_PORT))]
    if grpc:
        procs.append(gw.spawn(grpc_python(), ORIGINS, "--grpc", str(GRPC_PORT)))
    for proc in procs:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "listening":
            raise Failure(f"tls_origins.py did not start: {line!r} (exit {proc.poll()})")


def run_client(gw, pki, command, *args, python=None, timeout=120):
    """tls_clients.py COMMAND in the namespace; its JSON result."""
    proc = gw.netns(python or sys.executable, CLIENTS, command, "--ca", pki.file("server-ca.pem"),
                    *args, timeout=timeout, check_rc=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise Failure(f"tls_clients.py {command} {' '.join(args)}: exit {proc.returncode}, "
                      f"no result\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1])


def client_args(pki, cert_name, sni, tls="any", alpn=None):
    args = ["--sni", sni, "--tls", tls]
    if cert_name:
        cert, key = pki.client(cert_name)
        args += ["--cert", cert, "--key", key]
    if alpn:
        args += ["--alpn", alpn]
    return args


def http_client(gw, pki, cert_name, sni, requests=({},), tls="any"):
    args = client_args(pki, cert_name, sni, tls, alpn="http/1.1")
    for req in requests:
        args += ["--request", json.dumps(req)]
    return run_client(gw, pki, "http", *args, timeout=90)


def s_client(gw, pki, cert_name, sni, tls="1.3", host_header=None):
    """openssl s_client sending one request with Connection: close; returns
    (alert number or None, protocol, HTTP status or None, output)."""
    cmd = ["openssl", "s_client", "-connect", f"{GATEWAY_IP}:{TLS_PORT}",
           "-CAfile", pki.file("server-ca.pem"), "-verify_return_error", "-ign_eof",
           "-tls1_3" if tls == "1.3" else "-tls1_2"]
    cmd += ["-servername", sni] if sni else ["-noservername"]
    if cert_name:
        cert, key = pki.client(cert_name)
        cmd += ["-cert", cert, "-key", key]
    request = (f"GET /echo HTTP/1.1\r\nHost: {host_header or sni}\r\n"
               "Connection: close\r\n\r\n")
    proc = subprocess.run(["ip", "netns", "exec", gw.name, *cmd], input=request,
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    alert = re.search(r"SSL alert number (\d+)", out)
    proto = re.search(r"New, (TLSv1\.[23]), Cipher is", out)
    status = re.search(r"^HTTP/1\.1 (\d{3}) ", out, re.M)
    return (int(alert.group(1)) if alert else None, proto.group(1) if proto else None,
            int(status.group(1)) if status else None, out)


def curl(gw, pki, cert_name, sni, path="/echo", tls=None, headers=(), host_header=None):
    """curl --http1.1 with --resolve SNI:443:gateway; returns (exit code,
    HTTP status, body, stderr)."""
    cmd = ["curl", "-sS", "-v", "--http1.1", "--max-time", "30", "--cacert",
           pki.file("server-ca.pem"), "--resolve", f"{sni}:{TLS_PORT}:{GATEWAY_IP}",
           "-o", "-", "-w", "\nCURL-STATUS %{http_code}\n"]
    if cert_name:
        cert, key = pki.client(cert_name)
        cmd += ["--cert", cert, "--key", key]
    if tls == "1.2":
        cmd += ["--tlsv1.2", "--tls-max", "1.2"]
    elif tls == "1.3":
        cmd += ["--tlsv1.3", "--tls-max", "1.3"]
    if host_header:
        cmd += ["-H", f"Host: {host_header}"]
    for name, value in headers:
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(f"https://{sni}{path}")
    proc = subprocess.run(["ip", "netns", "exec", gw.name, *cmd], capture_output=True, timeout=60)
    out = proc.stdout.decode("latin-1")
    body, _, tail = out.rpartition("\nCURL-STATUS ")
    status = int(tail.split()[0]) if tail.strip() else 0
    return proc.returncode, status, body, proc.stderr.decode("latin-1")


def origin_fields(report):
    """The origin's view of one request: header name (lower case) -> values."""
    fields = {}
    for name, value in report["headers"]:
        fields.setdefault(name.lower(), []).append(value)
    return fields


def identity_problems(fields, facts, verified=True, reason="ok"):
    """Differences between the identity headers the origin saw and the
    certificate's facts (None: no certificate); [] when they agree."""
    want = {"x-client-verified": ["true" if verified else "false"],
            "x-client-verify-reason": [reason]}
    if facts:
        want.update({"x-client-subject": [facts["subject"]],
                     "x-client-issuer": [facts["issuer"]],
                     "x-client-serial": [facts["serial"]],
                     "x-client-fingerprint": [facts["fingerprint"]],
                     "x-client-not-before": [facts["not_before"]],
                     "x-client-not-after": [facts["not_after"]]})
    if facts and verified:
        want["client-cert"] = [f":{facts['der_b64']}:"]
    problems = [f"{k}: got {fields.get(k)}, expected {v}" for k, v in want.items()
                if fields.get(k) != v]
    # Fields that must not be there at all.
    absent = ["client-cert-chain"]
    if not facts:
        absent += ["x-client-subject", "x-client-issuer", "x-client-serial",
                   "x-client-fingerprint", "x-client-not-before", "x-client-not-after"]
    if not (facts and verified):
        absent.append("client-cert")
    problems += [f"{k} present: {fields[k]}" for k in absent if k in fields]
    return problems


# --------------------------------------------------------------- telemetry
def tls_stats(gw):
    return gw.telemetry("/mtlsgw/tls")


def host_stats(stats, host_name):
    """One host's counters: {"hosts": {name: {...}}}, or containers
    {"host_0": {"name": name, ...}} (telemetry names allow no dots)."""
    if isinstance(stats.get("hosts"), dict):
        return stats["hosts"].get(host_name, {})
    for value in stats.values():
        if isinstance(value, dict) and value.get("name") == host_name:
            return value
    return {}


def flat(stats, host_name):
    """One host's counters as a flat dict ('verify.expired': n), plus the
    gateway-wide ones ('all.handshakes_ok'). Takes a "verify" object as well
    as "verify_<reason>" keys."""
    out = {f"all.{k}": v for k, v in stats.items() if isinstance(v, int)}
    for k, v in stats.get("upstream_failures", {}).items():
        out[f"all.upstream.{k}"] = v
    h = host_stats(stats, host_name)
    for k, v in h.items():
        if isinstance(v, int):
            out[f"verify.{k[len('verify_'):]}" if k.startswith("verify_") else k] = v
    for k, v in h.get("verify", {}).items():
        out[f"verify.{k}"] = v
    return out


class Counters:
    """Expects exact increments of one host's counters between two reads:
    the keys of `expected` by their values, every other counter of that host
    (and no_host) by zero. Polls briefly: a worker's counter may be read
    just before its last increment."""

    def __init__(self, gw, host_name):
        self.gw = gw
        self.host = host_name
        self.before = flat(tls_stats(gw), host_name)

    def delta(self):
        after = flat(tls_stats(self.gw), self.host)
        return {k: after.get(k, 0) - self.before.get(k, 0) for k in after}

    def expect(self, checks, expected, what, strict=("verify.", "handshakes_failed",
                                                     "passed_unverified", "all.no_host")):
        def matches():
            d = self.delta()
            for k, v in d.items():
                if k in expected:
                    if v != expected[k]:
                        return None
                elif v and k.startswith(strict):
                    return None
            return d
        got = wait_for(matches, timeout=5, interval=0.1)
        d = self.delta()
        checks.expect(bool(got), f"{what}: counters of {self.host}: expected {expected}, "
                                 f"changed {nonzero(d)}")
        self.before = flat(tls_stats(self.gw), self.host)
        return d


# --------------------------------------------------------------- access log
class AccessLog:
    """The access log's JSON lines (docs/config.md: one per connection,
    written by a thread of its own shortly after the connection ends)."""

    def __init__(self, path):
        self.path = path
        try:
            os.unlink(path)
        except OSError:
            pass

    def lines(self):
        try:
            with open(self.path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def check(self, checks, connections):
        """connections: [(client "ip:port", {key: expected value})]."""
        lines = wait_for(lambda: len(self.lines()) >= len(connections) and self.lines(),
                         timeout=5) or self.lines()
        if not checks.expect(lines, f"access log {self.path}: no line written"):
            return
        log(f"access log: {len(lines)} lines; first: {json.dumps(lines[0])}")
        keys = ["time", "client", "sni", "host", "tls_version", "cipher", "alpn",
                "cert_presented", "verified", "verify_reason", "subject", "fingerprint_sha256",
                "upstream", "bytes_from_client", "bytes_to_client", "duration_ms", "end"]
        missing = [k for k in keys if k not in lines[0]]
        checks.expect(not missing, f"access log line lacks {missing}: {lines[0]}")
        def client_of(line):
            """"ip:port", whether the line has "client": "ip:port" or
            "client": "ip" with "client_port"."""
            client = str(line.get("client"))
            return f"{client}:{line['client_port']}" if "client_port" in line else client
        # The kernel reuses a client port once its connection is gone, so
        # one "ip:port" may have several lines: each expected connection
        # takes the first unused line of its client that matches it.
        by_client = {}
        for line in lines:
            by_client.setdefault(client_of(line), []).append(line)
        for client, want in connections:
            candidates = by_client.get(client, [])
            if not checks.expect(candidates, f"access log: no line for client {client}"):
                continue
            def mismatches(line):
                return {k: (line.get(k), v) for k, v in want.items() if line.get(k) != v}
            best = min(candidates, key=lambda line: len(mismatches(line)))
            wrong = mismatches(best)
            if checks.expect(not wrong, f"access log line of {client}: (got, expected) {wrong}"):
                candidates.remove(best)


# ---------------------------------------------------------------- scenarios
def gateway_for(args, scenario, config):
    return started(args, f"tls{scenario}", config)


def access_log_path(args, scenario):
    return f"/tmp/{gateway_name(f'tls{scenario}', args.workers)}-access.log"


def brief_proxy(res):
    """A proxy client's result without the certificate's DER, which would
    push the reason for a failure out of the message."""
    origin = {k: v for k, v in res.get("origin", {}).items() if k != "ssl"}
    return json.dumps({**{k: v for k, v in res.items() if k != "origin"}, "origin": origin})[:1500]


def brief_http(res):
    """An http_client result without the bulk: the session, the error, and
    each response's status, length and body (cut)."""
    out = {k: v for k, v in res.items() if k != "responses"}
    out["responses"] = [{"status": r["status"], "length": r["length"],
                         "body": json.dumps(r.get("json") or r.get("text", ""))[:300]}
                        for r in res.get("responses", [])]
    return json.dumps(out)


def check_http_identity(checks, label, res, facts, sni, verified=True, reason="ok"):
    """One http_client result: handshake, 200, identity fields as expected."""
    if not checks.expect(res.get("handshake_ok") and not res.get("error") and
                         res.get("responses"), f"{label}: {brief_http(res)}"):
        return None
    first = res["responses"][0]
    if not checks.expect(first["status"] == 200 and "json" in first,
                         f"{label}: status {first['status']} {first.get('text', '')}"):
        return None
    fields = origin_fields(first["json"])
    problems = identity_problems(fields, facts, verified, reason)
    checks.expect(not problems, f"{label}: identity headers:\n      " + "\n      ".join(problems))
    checks.expect(fields.get("host") == [sni], f"{label}: origin saw Host {fields.get('host')}")
    return fields


def scenario_identity(args, pki):
    checks = Checks()
    hosts = [host(pki, API, "server-api-ecdsa", ["devices"], HTTP_PORT, "http"),
             host(pki, GRPC, "server-grpc-ecdsa", ["partners"], GRPC_PORT, "tcp"),
             host(pki, PP, "server-wild-ecdsa", ["devices"], PROXY_PORT, "proxy_v2"),
             host(pki, WILD, "server-wild-ecdsa", ["other"], PROXY_PORT, "proxy_v2")]
    alog = AccessLog(access_log_path(args, "identity"))
    with gateway_for(args, "identity", tls_config(pki, hosts, access_log=alog.path)) as gw:
        start_origins(gw, grpc=True)
        logged = []

        # forward http: a body up and 1 MiB down, byte-exact; identity
        # headers, including ones the client tried to set itself.
        api = Counters(gw, API)
        spoof = [["X-Client-Verified", "true"], ["X-Client-Subject", "CN=mallory"],
                 ["x-client-fingerprint", "00"], ["Client-Cert", ":AAAA:"],
                 ["Client-Cert-Chain", ":AAAA:"]]
        for cert_name in ("client-devices", "client-devices-rsa", "client-depth2"):
            for tls in ("1.3", "1.2"):
                label = f"http {cert_name} TLS {tls}"
                res = http_client(gw, pki, cert_name, API, tls=tls, requests=[
                    {"method": "POST", "target": "/echo", "body_size": 300000, "headers": spoof},
                    {"target": f"/bytes/{MIB}?seed=7"}])
                fields = check_http_identity(checks, label, res, pki.facts(cert_name), API)
                if fields is None:
                    continue
                up = res["responses"][0]
                checks.expect(up["json"]["body_length"] == 300000 and
                              up["json"]["body_sha256"] == up["sent_body_sha256"],
                              f"{label}: the origin got {up['json']['body_length']} bytes "
                              f"sha256 {up['json']['body_sha256']}, sent 300000 "
                              f"{up['sent_body_sha256']}")
                down = res["responses"][1] if len(res["responses"]) > 1 else {}
                want = pattern_bytes(7, MIB)
                checks.expect(down.get("length") == MIB and
                              down.get("sha256") == hashlib.sha256(want).hexdigest(),
                              f"{label}: 1 MiB from the origin arrived as {down.get('length')} "
                              f"bytes sha256 {down.get('sha256')}")
                checks.expect(res["version"] == f"TLSv{tls}", f"{label}: {res['version']}")
                checks.expect(res["server_cert_sha256"] == pki.cert_sha256("server-api-ecdsa"),
                              f"{label}: not api's ECDSA certificate")
                facts = pki.facts(cert_name)
                logged.append((res["local"], {
                    "sni": API, "host": API, "tls_version": f"TLSv{tls}",
                    "cipher": res["cipher"], "alpn": "http/1.1", "cert_presented": True,
                    "verified": True, "verify_reason": "ok", "subject": facts["subject"],
                    "serial": facts["serial"], "fingerprint_sha256": facts["fingerprint"],
                    "upstream": f"{KERNEL_IP}:{HTTP_PORT}", "requests": 2}))
        # curl, and openssl s_client, with the same certificate.
        code, status, body, err = curl(gw, pki, "client-devices", API)
        if checks.expect(code == 0 and status == 200, f"curl: exit {code} status {status} "
                                                      f"{err[-500:]}"):
            problems = identity_problems(origin_fields(json.loads(body)),
                                         pki.facts("client-devices"))
            checks.expect(not problems, f"curl: identity headers: {problems}")
        alert, proto, status, out = s_client(gw, pki, "client-devices", API)
        checks.expect(alert is None and proto == "TLSv1.3" and status == 200,
                      f"s_client: alert {alert} protocol {proto} status {status}\n{out[-800:]}")
        api.expect(checks, {"handshakes_ok": 8, "verify.ok": 8}, "http origin")

        # forward proxy_v2: the TLVs, then 1 MiB echoed byte-exact.
        for sni, host_name, cert_name in ((PP, PP, "client-devices"),
                                          ("x.wild.example.test", WILD, "client-other")):
            counters = Counters(gw, host_name)
            for tls in ("1.3", "1.2"):
                label = f"proxy_v2 {sni} {cert_name} TLS {tls}"
                res = run_client(gw, pki, "proxy", *client_args(pki, cert_name, sni, tls,
                                                                alpn="http/1.1"),
                                 "--size", str(MIB))
                if not checks.expect(res.get("handshake_ok") and res.get("echo_ok") and
                                     "error" not in res.get("origin", {}) and
                                     "error" not in res, f"{label}: {brief_proxy(res)}"):
                    continue
                problems = proxy_v2_problems(res, pki.facts(cert_name), sni)
                checks.expect(not problems, f"{label}: PROXY v2 header:\n      " +
                              "\n      ".join(problems))
                logged.append((res["local"], {
                    "sni": sni, "host": host_name, "verified": True, "verify_reason": "ok",
                    "fingerprint_sha256": pki.facts(cert_name)["fingerprint"],
                    "upstream": f"{KERNEL_IP}:{PROXY_PORT}", "bytes_from_client": MIB}))
            counters.expect(checks, {"handshakes_ok": 2, "verify.ok": 2}, f"proxy_v2 {sni}")

        # forward tcp to a gRPC origin: ALPN h2 through, byte-exact.
        counters = Counters(gw, GRPC)
        cert, key = pki.client("client-partners")
        res = run_client(gw, pki, "grpc", "--sni", GRPC, "--cert", cert, "--key", key,
                         "--size", str(MIB), "--messages", "100", python=grpc_python())
        log(f"grpc: {json.dumps({k: v for k, v in res.items() if k != 'who'})}")
        checks.expect(res.get("unary", {}).get("ok") and res.get("stream", {}).get("ok") and
                      "error" not in res, f"grpc through the gateway: {json.dumps(res)[:1000]}")
        peer = res.get("who", {}).get("peer", "")
        checks.expect(peer.startswith(f"ipv4:{GATEWAY_IP}:"),
                      f"grpc origin's peer is {peer!r}, not the gateway")
        d = counters.delta()
        checks.expect(d.get("handshakes_ok", 0) >= 1 and d.get("verify.ok") ==
                      d.get("handshakes_ok") and not d.get("handshakes_failed"),
                      f"grpc host counters: {nonzero(d)}")

        alog.check(checks, logged)
        log(f"tls telemetry: {json.dumps(tls_stats(gw))}")
        wait_gauges_zero(gw, checks, "after the identity checks", include_time_wait=False)
        finish(gw, checks)
    checks.fail_if_any()


def proxy_v2_problems(res, facts, sni):
    o = res["origin"]
    ssl = o.get("ssl", {})
    want = {
        "source": res["local"], "destination": f"{GATEWAY_IP}:{TLS_PORT}",
        "command": 1, "family": 0x11, "authority": sni, "alpn": res["alpn"],
        "verify_reason": "ok",
    }
    if "crc32c_ok" in o:  # PP2_TYPE_CRC32C is optional (off by default)
        want["crc32c_ok"] = True
    problems = [f"{k}: got {o.get(k)!r}, expected {v!r}" for k, v in want.items()
                if o.get(k) != v]
    want_ssl = {"client": 0x07, "verify": 0, "version": res["version"], "cn": facts["cn"],
                "cipher": res["cipher"], "sig_alg": "SHA256", "key_alg": "EC256",
                "client_cert_der_b64": facts["der_b64"]}
    problems += [f"ssl.{k}: got {ssl.get(k)!r}, expected {v!r}" for k, v in want_ssl.items()
                 if ssl.get(k) != v]
    problems += [f"ssl.{k} missing" for k in ("group", "sig_scheme") if not ssl.get(k)]
    return problems


def scenario_refusals(args, pki):
    checks = Checks()
    opt_sni = "opt.wild.example.test"
    hosts = [host(pki, API, "server-api-ecdsa", ["devices"], HTTP_PORT, "http"),
             host(pki, WILD, "server-wild-ecdsa", ["devices"], HTTP_PORT, "http",
                  mtls="optional")]
    alog = AccessLog(access_log_path(args, "refusals"))
    logged = []
    with gateway_for(args, "refusals", tls_config(pki, hosts, access_log=alog.path)) as gw:
        start_origins(gw)
        api = Counters(gw, API)
        # Positive controls: the same host takes good certificates.
        for cert_name in ("client-devices", "client-depth2"):
            res = http_client(gw, pki, cert_name, API)
            check_http_identity(checks, f"control {cert_name}", res, pki.facts(cert_name), API)
        api.expect(checks, {"handshakes_ok": 2, "verify.ok": 2}, "controls")

        for cert_name, reason, alert13 in REFUSALS:
            who = cert_name or "no certificate"
            attempts = 0
            for tls in ("1.3", "1.2"):
                alert = alert13 if (tls == "1.3" or reason != "no_certificate") \
                    else HANDSHAKE_FAILURE
                res = http_client(gw, pki, cert_name, API, tls=tls)
                attempts += 1
                got = res.get("error", {}).get("alert")
                checks.expect(not res.get("responses") and got == alert,
                              f"{who} over TLS {tls} (python ssl): expected alert {alert} "
                              f"({reason}), got {brief_http(res)}")
                if "local" in res:
                    logged.append((res["local"], {
                        "host": API,
                        "cert_presented": cert_name is not None, "verified": False,
                        "verify_reason": reason, "alert_sent": ALERT_NAMES[alert],
                        "upstream": None, "end": "handshake_failed"}))
            got, proto, status, out = s_client(gw, pki, cert_name, API)
            attempts += 1
            checks.expect(got == alert13 and status is None,
                          f"{who} (openssl s_client): expected alert {alert13}, got alert "
                          f"{got}, status {status}\n{out[-600:]}")
            if cert_name in (None, "client-expired", "client-revoked"):
                code, status, _, err = curl(gw, pki, cert_name, API)
                attempts += 1
                checks.expect(code != 0 and status == 0 and "alert" in err.lower(),
                              f"{who} (curl): exit {code}, status {status}: {err[-400:]}")
            api.expect(checks, {"handshakes_failed": attempts, f"verify.{reason}": attempts},
                       f"{who} refused {attempts} times")
            log(f"refused as {reason} with alert {alert13}: {who} ({attempts} attempts)")

        # optional: the same certificates pass, marked unverified.
        opt = Counters(gw, WILD)
        for cert_name, reason, _ in REFUSALS:
            who = cert_name or "no certificate"
            facts = pki.facts(cert_name) if cert_name else None
            res = http_client(gw, pki, cert_name, opt_sni)
            check_http_identity(checks, f"optional host, {who}", res, facts, opt_sni,
                                verified=False, reason=reason)
            opt.expect(checks, {"handshakes_ok": 1, "passed_unverified": 1,
                                f"verify.{reason}": 1}, f"optional host, {who}")
        res = http_client(gw, pki, "client-devices", opt_sni)
        check_http_identity(checks, "optional host, a valid certificate", res,
                            pki.facts("client-devices"), opt_sni)
        opt.expect(checks, {"handshakes_ok": 1, "verify.ok": 1}, "optional host, valid")
        alog.check(checks, logged)
        log(f"tls telemetry: {json.dumps(tls_stats(gw))}")
        wait_gauges_zero(gw, checks, "after the refusals", include_time_wait=False)
        finish(gw, checks)
    checks.fail_if_any()


def scenario_matrix(args, pki):
    checks = Checks()
    # host -> (SNI used, server cert stem, client CA, a client of that CA,
    #          a client of another host's CA)
    table = {API: (API, "server-api", "devices", "client-devices", "client-partners"),
             GRPC: (GRPC, "server-grpc", "partners", "client-partners", "client-other"),
             WILD: ("m.wild.example.test", "server-wild", "other", "client-other",
                    "client-devices")}
    for alg in ("ecdsa", "rsa"):
        hosts = [host(pki, name, f"{stem}-{alg}", [ca_name], HTTP_PORT, "http")
                 for name, (_, stem, ca_name, _, _) in table.items()]
        default = API if alg == "ecdsa" else None
        with gateway_for(args, f"matrix{alg}", tls_config(pki, hosts, default)) as gw:
            start_origins(gw)
            for name, (sni, stem, _, good, bad) in table.items():
                counters = Counters(gw, name)
                for tls in ("1.2", "1.3"):
                    label = f"{alg} {name} TLS {tls}"
                    res = http_client(gw, pki, good, sni, tls=tls)
                    if check_http_identity(checks, label, res, pki.facts(good), sni) is None:
                        continue
                    checks.expect(res["version"] == f"TLSv{tls}", f"{label}: {res['version']}")
                    checks.expect(res["server_cert_sha256"] == pki.cert_sha256(f"{stem}-{alg}"),
                                  f"{label}: the server certificate is not {stem}-{alg}")
                    if tls == "1.2":
                        kind = "ECDSA" if alg == "ecdsa" else "RSA"
                        checks.expect(f"-{kind}-" in res["cipher"] or
                                      res["cipher"].startswith(f"{kind}-") or
                                      f"ECDHE-{kind}" in res["cipher"],
                                      f"{label}: cipher {res['cipher']}")
                    code, status, body, err = curl(gw, pki, good, sni, tls=tls)
                    if checks.expect(code == 0 and status == 200,
                                     f"{label} curl: exit {code} status {status} {err[-400:]}"):
                        problems = identity_problems(origin_fields(json.loads(body)),
                                                     pki.facts(good))
                        checks.expect(not problems, f"{label} curl: {problems}")
                    res = http_client(gw, pki, bad, sni, tls=tls)
                    checks.expect(res.get("error", {}).get("alert") == UNKNOWN_CA,
                                  f"{label}: {bad} (another host's CA) not refused with "
                                  f"unknown_ca: {brief_http(res)}")
                counters.expect(checks, {"handshakes_ok": 4, "verify.ok": 4,
                                         "handshakes_failed": 2, "verify.unknown_ca": 2},
                                f"{alg} {name}")

            # 421: Host, or an absolute-form target, naming another host.
            code, status, body, _ = curl(gw, pki, "client-devices", API, host_header=GRPC)
            checks.expect(status == 421, f"{alg}: Host {GRPC} on SNI {API}: status {status}")
            res = http_client(gw, pki, "client-devices", API,
                              requests=[{"target": f"https://{GRPC}/echo"}])
            status = (res.get("responses") or [{}])[0].get("status")
            checks.expect(status == 421, f"{alg}: absolute-form {GRPC} on SNI {API}: {status}")
            # Spoofed identity fields: curl sends them, the origin must see
            # only the gateway's.
            code, status, body, _ = curl(gw, pki, "client-devices", API, headers=[
                ("X-Client-Verified", "false"), ("X-Client-Subject", "CN=mallory"),
                ("X-CLIENT-SERIAL", "01"), ("x-client-issuer", "CN=mallory"),
                ("X-Client-Not-After", "2099-01-01T00:00:00Z"), ("Client-Cert", ":AAAA:"),
                ("Client-Cert-Chain", ":AAAA:"), ("X-Client-Verify-Reason", "ok")])
            if checks.expect(status == 200, f"{alg}: spoofing request: status {status}"):
                problems = identity_problems(origin_fields(json.loads(body)),
                                             pki.facts("client-devices"))
                checks.expect(not problems, f"{alg}: spoofed identity fields: {problems}")

            # No SNI: the default host, or handshake_failure without one.
            before = tls_stats(gw).get("no_host", 0)
            res = http_client(gw, pki, "client-devices", "", tls="1.3",
                              requests=[{"headers": [["Host", API]]}])
            if default:
                fields = check_http_identity(checks, f"{alg}: no SNI", res,
                                             pki.facts("client-devices"), API)
                checks.expect(fields is None or res["server_cert_sha256"] ==
                              pki.cert_sha256(f"server-api-{alg}"),
                              f"{alg}: no SNI did not get the default host's certificate")
            else:
                # handshake_failure, not missing_extension: docs/config.md
                # (default_host) says why.
                checks.expect(res.get("error", {}).get("alert") == HANDSHAKE_FAILURE,
                              f"{alg}: no SNI without default_host: {brief_http(res)}")
                res = http_client(gw, pki, "client-devices", "nobody.example.test", tls="1.2")
                checks.expect(res.get("error", {}).get("alert") == UNRECOGNIZED_NAME,
                              f"{alg}: unknown SNI: {brief_http(res)}")
                got = wait_for(lambda: tls_stats(gw).get("no_host", 0) - before == 2, timeout=5)
                checks.expect(got, f"{alg}: no_host went from {before} to "
                                   f"{tls_stats(gw).get('no_host')}, expected +2")
            log(f"{alg}: tls telemetry: {json.dumps(tls_stats(gw))}")
            wait_gauges_zero(gw, checks, f"after the {alg} matrix", include_time_wait=False)
            finish(gw, checks)
    checks.fail_if_any()


def scenario_load(args, pki):
    checks = Checks()
    hosts = [host(pki, API, "server-api-ecdsa", ["devices"], HTTP_PORT, "http")]
    with gateway_for(args, "load", tls_config(pki, hosts)) as gw:
        start_origins(gw)
        counters = Counters(gw, API)
        good = client_args(pki, "client-devices", API, alpn="http/1.1")
        res = run_client(gw, pki, "bulk", *good, "--count", str(args.sequential),
                         timeout=args.deadline)
        log(f"sequential: {json.dumps(res)}")
        if not checks.expect(res["ok"] == args.sequential,
                             f"{res['failures']} of {args.sequential} sequential handshakes "
                             f"failed: {res['first_failures']}"):
            evidence(gw, "sequential handshakes")
        counters.expect(checks, {"handshakes_ok": args.sequential, "verify.ok": args.sequential,
                                 "all.resumed": 0}, "sequential handshakes")
        res = run_client(gw, pki, "concurrent", *good, "--clients", str(args.clients),
                         "--requests", str(args.requests), "--deadline", str(args.deadline),
                         timeout=args.deadline + 30)
        log(f"concurrent: {json.dumps(res)}")
        if not checks.expect(res["ok_clients"] == args.clients,
                             f"{res['failed_clients']} of {args.clients} concurrent clients "
                             f"failed: {res['first_failures']}"):
            evidence(gw, "concurrent clients")
        counters.expect(checks, {"handshakes_ok": args.clients, "verify.ok": args.clients},
                        "concurrent clients")
        if "active" in tls_stats(gw):
            active = wait_for(lambda: tls_stats(gw)["active"] == 0, timeout=20)
            checks.expect(active, f"TLS sessions still active: {tls_stats(gw)['active']}")
        else:
            log("NOTE: /mtlsgw/tls has no 'active' gauge; the TCP gauges are checked instead")
        log(f"tls telemetry: {json.dumps(tls_stats(gw))}")
        wait_gauges_zero(gw, checks, "after the load", include_time_wait=False)
        check_idle_connections_rest(gw, pki, checks)
        if args.workers > 1:
            per_worker = {w: c.get("tcp_passive_opens", 0)
                          for w, c in gw.telemetry("/mtlsgw/workers").items()}
            log(f"passive opens per worker: {per_worker}")
        finish(gw, checks)
    checks.fail_if_any()


IDLE_CLIENTS = 20


def check_idle_connections_rest(gw, pki, checks):
    """Keep-alive connections left idle give back their http slots and TCP
    buffers (/mtlsgw/memory; issue 5's memory per idle connection), and each
    still answers its next request."""
    before = gw.telemetry("/mtlsgw/memory")
    good = client_args(pki, "client-devices", API, alpn="http/1.1")
    proc = gw.spawn(sys.executable, CLIENTS, "idle", "--ca", pki.file("server-ca.pem"), *good,
                    "--clients", str(IDLE_CLIENTS), "--deadline", "120", stdin=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        line = proc.stdout.readline() if ready else ""
        held = json.loads(line).get("held", 0) if line.startswith("{") else 0
        checks.expect(held == IDLE_CLIENTS, f"the idle client holds {held} of {IDLE_CLIENTS}: {line!r}")

        def rested():
            memory = gw.telemetry("/mtlsgw/memory")
            return memory["http_slots"] == 0 and memory["tcp_buffers"] == 0
        quiet = wait_for(rested, timeout=30)
        memory = gw.telemetry("/mtlsgw/memory")
        log(f"memory with {held} idle connections: {json.dumps(memory)}")
        checks.expect(quiet, f"idle connections still hold http slots or TCP buffers: {memory}")
        checks.expect(memory["tls_sessions_active"] == held,
                      f"{memory['tls_sessions_active']} TLS sessions for {held} idle connections")
        if held:
            log(f"memory per idle connection: "
                f"{(memory['in_use_bytes'] - before['in_use_bytes']) / held:.0f} bytes")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=120)
        results = [line for line in out.splitlines() if line.startswith("{")]
        result = json.loads(results[-1]) if results else {}
        log(f"idle: {json.dumps(result)}")
        checks.expect(result.get("ok_after_rest") == held,
                      f"requests on rested connections failed: {result}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


SCENARIOS = {"identity": scenario_identity, "refusals": scenario_refusals,
             "matrix": scenario_matrix, "load": scenario_load}


def main_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sequential", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--deadline", type=float, default=600,
                        help="bound of one load phase, seconds")
    parser.add_argument("--capture", metavar="PCAP",
                        help="tcpdump the TAP (headers) into this file")
    return parser.parse_args()


def run(args):
    start = time.monotonic()
    stop_on_signals()
    log(f"scenario {args.scenario}, {args.workers} worker(s), {describe_binary()}")
    try:
        SCENARIOS[args.scenario](args, find_pki())
    finally:
        log(f"scenario {args.scenario} ({args.workers} worker(s)) took "
            f"{time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("test_tls.py needs root (network namespaces, TAP devices)", file=sys.stderr)
        sys.exit(77)  # meson: skipped
    ARGS = main_args()
    sys.exit(main(lambda: run(ARGS)))
