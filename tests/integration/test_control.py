#!/usr/bin/env python3
"""The control plane end to end (issue 6): live changes through the control
socket while 32 mTLS clients keep requests flowing.

    test_control.py --workers N [--changes 200]

One gateway in the namespace (scripts/gateway-netns) with a state
directory, an http host `api.example.test` for the devices CA, and an HTTP
origin. While control_load.py keeps 32 keep-alive connections busy:

  - malformed commands get error objects and change nothing;
  - an aborted transaction changes nothing;
  - one transaction adds a CA and a host; the next handshake reaches it;
  - a certificate revoked by fingerprint, then another by CA and serial, is
    refused on the first handshake after each commit (alert 44), and comes
    back after `revoke del`;
  - rules are added, moved and deleted, one commit each, until --changes
    commits have been made; a rule that blocks a path answers 403 on a new
    request, and the others' requests still pass;
  - no established connection breaks and no allowed request fails.

Then the gateway restarts with the same state directory and the same config
file, and everything committed is back: the host, the CA, the revocations
and the rules, each working on a new handshake.
"""
import argparse
import json
import os
import select
import shutil
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from netns_gateway import GATEWAY_IP, Failure, main, stop_on_signals  # noqa: E402
from test_tcp import Checks, describe_binary, log, started  # noqa: E402
from test_tls import (HTTP_PORT, TLS_PORT, find_pki, host, http_client, start_origins,  # noqa: E402
                      tls_config, ca)

HERE = os.path.dirname(os.path.abspath(__file__))
LOAD = os.path.join(HERE, "control_load.py")
CTL = os.environ.get("MTLSGWCTL_BIN") or os.path.join(
    os.path.dirname(os.environ.get("MTLSGW_BIN", "")), "mtlsgwctl")


class Control:
    """One connection to the control socket: JSON lines, ids echoed."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buffer = b""
        self.next_id = 1

    def raw(self, line):
        self.sock.sendall(line.encode() + b"\n")
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise Failure("the control socket closed")
            self.buffer += chunk
        answer, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(answer)

    def call(self, command, **args):
        request_id = self.next_id
        self.next_id += 1
        answer = self.raw(json.dumps({"id": request_id, "command": command, "args": args}))
        if answer.get("id") != request_id:
            raise Failure(f"{command}: answer for id {answer.get('id')}, not {request_id}")
        return answer

    def ok(self, command, **args):
        answer = self.call(command, **args)
        if not answer.get("ok"):
            raise Failure(f"{command} {json.dumps(args)[:200]}: {answer.get('error')}")
        return answer["result"]

    def close(self):
        self.sock.close()


def socket_path(gw):
    return f"/run/mtlsgw-netns/{gw.name}/control.sock"


def handshake(gw, pki, cert, sni, target="/echo", tls="any"):
    """One new connection, one request: (HTTP status or None, alert or None).
    Refusals are checked over TLS 1.2, where the alert ends the handshake:
    in TLS 1.3 the client's request may cross the alert, and the reset that
    answers it can reach the client first."""
    res = http_client(gw, pki, cert, sni, requests=({"target": target},), tls=tls)
    if res.get("error"):
        if res["error"].get("alert") is None:
            log(f"handshake {cert} -> {sni}{target}: {json.dumps(res)[:600]}")
        return None, res["error"].get("alert")
    responses = res.get("responses") or []
    return (responses[0].get("status") if responses else None), None


def state_view(control):
    return {name: control.ok(f"{name}.list") for name in ("host", "ca", "revoke", "rule")}


def check_malformed(checks, control):
    before = state_view(control)
    cases = [
        ("not json", "{\"command\": ", "parse_error"),
        ("unknown command", json.dumps({"id": 1, "command": "host.rename", "args": {}}), "unknown_command"),
        ("missing field", json.dumps({"id": 2, "command": "host.add",
                                      "args": {"name": "x.example.test", "upstream": "198.18.0.1:1"}}),
         "missing_field"),
        ("bad pem", json.dumps({"id": 3, "command": "ca.add",
                                "args": {"name": "junk", "cert_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n"}}),
         "bad_pem"),
        ("unknown field", json.dumps({"id": 4, "command": "host.list", "args": {"verbose": True}}),
         "unknown_field"),
        ("unknown reference", json.dumps({"id": 5, "command": "ca.del", "args": {"name": "nobody"}}),
         "not_found"),
        ("bad rule", json.dumps({"id": 6, "command": "rule.add",
                                 "args": {"name": "r", "expression": "tls.sni == ", "action": "block"}}),
         "bad_field"),
        ("no transaction", json.dumps({"id": 7, "command": "commit", "args": {}}), "no_transaction"),
    ]
    for label, line, code in cases:
        answer = control.raw(line)
        error = answer.get("error") or {}
        checks.expect(answer.get("ok") is False and error.get("code") == code,
                      f"malformed ({label}): expected error {code}, got {answer}")
        checks.expect(bool(error.get("message")), f"malformed ({label}): no message in {answer}")
    checks.expect(state_view(control) == before, "a malformed command changed the state")


def scenario(args):
    pki = find_pki()
    checks = Checks()
    state_dir = f"/tmp/mtlsgw-control-state-{os.getpid()}-w{args.workers}"
    shutil.rmtree(state_dir, ignore_errors=True)
    config = tls_config(pki, [host(pki, "api.example.test", "server-api-ecdsa", ["devices"], HTTP_PORT,
                                   "http")])
    config["cas"] = [ca("devices", pki, "devices-ca.pem", "devices.crl.pem")]
    extra = ["--state-dir", state_dir]
    partners_pem = open(pki.file("partners-ca.pem")).read()
    partners_crl = open(pki.file("partners.crl.pem")).read()
    grpc_host = {"name": "grpc.example.test", "cert_pem": open(pki.file("server-grpc-ecdsa.pem")).read(),
                 "key_pem": open(pki.file("server-grpc-ecdsa.key")).read(), "client_cas": ["partners"],
                 "upstream": f"198.18.0.1:{HTTP_PORT}", "forward": "http"}
    rsa_fingerprint = pki.cert_sha256("client-devices-rsa")
    partners_serial = pki.facts("client-partners")["serial"]
    try:
        with started(args, "control", config, extra=extra) as gw:
            start_origins(gw)
            control = Control(socket_path(gw))
            load = gw.spawn(sys.executable, LOAD, "--host", GATEWAY_IP, "--port", str(TLS_PORT),
                            "--sni", "api.example.test", "--ca", pki.file("server-ca.pem"),
                            "--cert", pki.client("client-devices")[0], "--key", pki.client("client-devices")[1],
                            "--clients", "32", "--max-seconds", "600")
            ready, _, _ = select.select([load.stdout], [], [], 60)
            line = load.stdout.readline() if ready else ""
            if line.strip() != "ready":
                raise Failure(f"control_load.py did not start: {line!r}")
            log("32 clients connected")
            commits = 0

            check_malformed(checks, control)

            # An aborted transaction changes nothing.
            before = state_view(control)
            control.ok("begin")
            control.ok("ca.add", name="partners", cert_pem=partners_pem, crl_pem=partners_crl)
            control.ok("host.add", **grpc_host)
            staged = control.ok("host.list")
            checks.expect(len(staged) == 2, f"the transaction's own view lacks the host: {staged}")
            control.ok("abort")
            checks.expect(state_view(control) == before, "abort left a change behind")
            status, alert = handshake(gw, pki, "client-partners", "grpc.example.test")
            checks.expect(status is None and alert == 112,
                          f"grpc.example.test answered after abort (status {status}, alert {alert})")

            # One transaction: a CA and a host, visible to the next handshake.
            control.ok("begin")
            control.ok("ca.add", name="partners", cert_pem=partners_pem, crl_pem=partners_crl)
            control.ok("host.add", **grpc_host)
            result = control.ok("commit")
            commits += 1
            checks.expect(result.get("changes") == 2, f"commit result {result}")
            status, alert = handshake(gw, pki, "client-partners", "grpc.example.test")
            checks.expect(status == 200, f"the new host: status {status}, alert {alert}")

            # Revocation, both ways of naming a certificate.
            status, _ = handshake(gw, pki, "client-devices-rsa", "api.example.test")
            checks.expect(status == 200, f"client-devices-rsa before its revocation: {status}")
            control.ok("revoke.add", fingerprint=rsa_fingerprint)
            commits += 1
            status, alert = handshake(gw, pki, "client-devices-rsa", "api.example.test", tls="1.2")
            checks.expect(status is None and alert == 44,
                          f"revoked by fingerprint: status {status}, alert {alert} (want 44)")
            control.ok("revoke.add", ca="partners", serial=partners_serial)
            commits += 1
            status, alert = handshake(gw, pki, "client-partners", "grpc.example.test", tls="1.2")
            checks.expect(status is None and alert == 44,
                          f"revoked by CA and serial: status {status}, alert {alert} (want 44)")
            control.ok("revoke.del", ca="partners", serial=partners_serial)
            commits += 1
            status, alert = handshake(gw, pki, "client-partners", "grpc.example.test")
            checks.expect(status == 200, f"after revoke del: status {status}, alert {alert}")

            # Rules: one that blocks a path the load never asks for.
            control.ok("rule.add", name="no-admin", expression='http.request.uri.path starts_with "/admin"',
                       action="block")
            commits += 1
            status, _ = handshake(gw, pki, "client-devices", "api.example.test", target="/admin/x")
            checks.expect(status == 403, f"a blocked path answered {status}, not 403")
            status, _ = handshake(gw, pki, "client-devices", "api.example.test", target="/echo")
            checks.expect(status == 200, f"an allowed path answered {status}")

            # The rest of the changes: rules added, moved and deleted, one
            # commit each, through mtlsgwctl for a share of them.
            i = 0
            added = []  # the loop's rules, oldest first
            while commits < args.changes:
                if i % 3 == 2 and added:
                    control.ok("rule.move", name=added[-1], position=0)
                elif i % 5 == 4 and len(added) > 3:
                    control.ok("rule.del", name=added.pop(0))
                elif i % 10 == 1:
                    name = f"r{i}"
                    proc = gw.netns(CTL, "-s", socket_path(gw), "rule", "add", name, "--expression",
                                    f'http.request.uri.path == "/never/{i}"', "--action", "log",
                                    check_rc=False)
                    checks.expect(proc.returncode == 0, f"mtlsgwctl rule add: {proc.stderr}")
                    added.append(name)
                else:
                    name = f"r{i}"
                    control.ok("rule.add", name=name, expression=f'http.request.uri.path == "/never/{i}"',
                               action="block", position=1)
                    added.append(name)
                commits += 1
                i += 1
            rules = control.ok("rule.list")
            log(f"{commits} commits, {len(rules)} rules in the table")
            checks.expect(any(r["name"] == "no-admin" for r in rules), "no-admin is gone")

            status, _ = handshake(gw, pki, "client-devices", "api.example.test", target="/admin/y")
            checks.expect(status == 403, f"the blocked path after all changes answered {status}")
            stats = control.ok("stats")
            hits = stats.get("tls", {}).get("rule_hits", {})
            checks.expect(hits.get("no-admin") == 2, f"no-admin's hits: {hits.get('no-admin')} (want 2)")
            checks.expect(stats["tls"]["counters"].get("rules_blocked_requests") == 2,
                          f"rules_blocked_requests: {stats['tls']['counters'].get('rules_blocked_requests')}")
            prometheus = control.ok("stats", format="prometheus")
            checks.expect('mtlsgw_rule_hits{rule="no-admin"} 2' in prometheus,
                          "the Prometheus text lacks no-admin's hits")

            load.send_signal(signal.SIGTERM)
            out, _ = load.communicate(timeout=60)
            report = json.loads([x for x in out.splitlines() if x.startswith("{")][-1])
            log(f"load: {report['requests']} requests on 32 connections, {report['failed']} failed")
            checks.expect(report["failed"] == 0, f"requests or connections failed: {report['failures']}")
            checks.expect(report["requests"] >= 32, f"only {report['requests']} requests went through")
            committed = state_view(control)
            control.close()

        # Restart: the state directory brings every committed change back.
        with started(args, "control2", config, extra=extra) as gw:
            start_origins(gw)
            control = Control(socket_path(gw))
            checks.expect(state_view(control) == committed, "the restarted gateway's state differs")
            status, alert = handshake(gw, pki, "client-partners", "grpc.example.test")
            checks.expect(status == 200, f"the restored host: status {status}, alert {alert}")
            status, alert = handshake(gw, pki, "client-devices-rsa", "api.example.test", tls="1.2")
            checks.expect(alert == 44, f"the restored revocation: status {status}, alert {alert}")
            status, _ = handshake(gw, pki, "client-devices", "api.example.test", target="/admin/z")
            checks.expect(status == 403, f"the restored rule: {status}")
            dump = control.ok("config.dump")
            checks.expect(len(dump.get("hosts", [])) == 2 and "key_pem" in dump["hosts"][1],
                          "config dump lacks the hosts or their keys")
            control.close()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    checks.fail_if_any()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("test_control.py needs root (network namespaces, TAP devices)", file=sys.stderr)
        sys.exit(77)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--capture", default=None)
    ARGS = parser.parse_args()
    stop_on_signals()
    log(f"control plane, {ARGS.workers} worker(s), {describe_binary()}")
    sys.exit(main(lambda: scenario(ARGS)))
