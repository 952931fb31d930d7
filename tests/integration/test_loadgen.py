#!/usr/bin/env python3
"""A smoke of perf/loadgen (issue 5) against the gateway in its namespace:
one "tls" listener on 443 with the test PKI's api host forwarding HTTP to
the origin of tls_origins.py, and loadgen run for --seconds in each mode.

    test_loadgen.py --loadgen PATH [--workers N] [--seconds S] [--concurrency N]

Each mode must exit 0 with no failure, complete requests, and show what the
mode is for (resumed handshakes in resume, body bytes both ways in bulk,
every kind of connection in mix); the gateway's counters must have seen at
least the handshakes loadgen counted. Then a revoked client certificate:
loadgen must exit 1 and report the gateway's alert by name. Rates are
printed, never compared with anything: this keeps loadgen working, it
measures nothing (docs/benchmarks.md has the measured runs).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from netns_gateway import GATEWAY_IP, Failure, main, stop_on_signals  # noqa: E402
from test_tcp import (Checks, describe_binary, finish, log, started,  # noqa: E402
                      wait_gauges_zero)
from test_tls import (API, HTTP_PORT, TLS_PORT, find_pki, flat, host, start_origins,  # noqa: E402
                      tls_config, tls_stats)

BULK_BYTES = 256 * 1024


def loadgen(gw, args, pki, *extra, cert="client-devices", verify=False, seconds=None):
    """Runs loadgen in the namespace; (exit code, its JSON report or None,
    stderr)."""
    cert_file, key_file = pki.client(cert)
    command = [args.loadgen, "--target", f"{GATEWAY_IP}:{TLS_PORT}", "--sni", API,
               "--cert", cert_file, "--key", key_file, "--json",
               "--concurrency", str(args.concurrency), "--duration", str(seconds or args.seconds),
               "--progress-interval", "1", "--timeout", "20", "--cpu", "0"]
    command += ["--cafile", pki.file("server-ca.pem")] if verify else ["--insecure"]
    command += list(extra)
    proc = gw.netns(*command, timeout=args.seconds + 60, check_rc=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    return proc.returncode, report, proc.stderr


def summary(report):
    return (f"{report['handshakes']['per_s']:.1f} hs/s "
            f"({report['handshakes']['resumed']} resumed of {report['handshakes']['count']}), "
            f"{report['requests']['per_s']:.1f} req/s, "
            f"down {report['bytes']['down_mb_per_s']:.2f} MB/s, "
            f"up {report['bytes']['up_mb_per_s']:.2f} MB/s, "
            f"request p50/p99 {report['latency_ms']['request']['p50']:.2f}/"
            f"{report['latency_ms']['request']['p99']:.2f} ms, "
            f"client CPU {report['client_cpu']['percent']:.0f} %")


# Each mode: its extra arguments, verify the server (--cafile) or not, and
# what its report must show beyond "no failure, some requests".
MODES = [
    ("handshake", [], True,
     lambda r: r["handshakes"]["full"] > 0 and r["connections"]["completed"] > 0),
    ("resume", [], False,
     lambda r: r["handshakes"]["resumed"] > 0),
    ("requests", [], False,
     lambda r: r["requests"]["count"] > r["handshakes"]["count"]),
    ("bulk", ["--bulk-bytes", str(BULK_BYTES), "--bulk-direction", "both"], False,
     lambda r: r["bytes"]["down"] >= BULK_BYTES and r["bytes"]["up"] >= BULK_BYTES),
    ("mix", ["--bulk-bytes", str(BULK_BYTES), "--requests-per-connection", "4"], False,
     lambda r: r["handshakes"]["resumed"] > 0 and r["bytes"]["down"] >= BULK_BYTES and
     r["connections"]["completed"] > 0),
    ("handshake", ["--tls", "1.2"], True,
     lambda r: r["handshakes"]["full"] > 0),
]


def run(args):
    start = time.monotonic()
    stop_on_signals()
    log(f"loadgen smoke, {args.workers} worker(s), {describe_binary()}, loadgen {args.loadgen}")
    if not os.access(args.loadgen, os.X_OK):
        raise Failure(f"no loadgen at {args.loadgen}: build it (ninja perf/loadgen/loadgen)")
    pki = find_pki()
    checks = Checks()
    hosts = [host(pki, API, "server-api-ecdsa", ["devices"], HTTP_PORT, "http")]
    with started(args, "loadgen", tls_config(pki, hosts)) as gw:
        start_origins(gw)
        for mode, extra, verify, shows in MODES:
            label = f"{mode} {' '.join(extra)}".strip()
            before = flat(tls_stats(gw), API)
            code, report, stderr = loadgen(gw, args, pki, "--mode", mode, *extra, verify=verify)
            progress = [line for line in stderr.splitlines() if line.startswith("[")]
            if not checks.expect(report is not None,
                                 f"{label}: no JSON report (exit {code}):\n{stderr[-2000:]}"):
                continue
            log(f"{label}: {summary(report)}")
            checks.expect(code == 0, f"{label}: exit {code}\n{stderr[-2000:]}")
            checks.expect(report["failures"]["count"] == 0,
                          f"{label}: failures {report['failures']}")
            checks.expect(report["requests"]["count"] > 0 and report["requests"]["per_s"] > 0,
                          f"{label}: no request completed: {report['requests']}")
            checks.expect(shows(report), f"{label}: the report does not show what the mode "
                                         f"does: {json.dumps(report)}")
            checks.expect(len(progress) >= 1, f"{label}: no progress line on stderr")
            after = flat(tls_stats(gw), API)
            ok = after.get("handshakes_ok", 0) - before.get("handshakes_ok", 0)
            checks.expect(ok >= report["handshakes"]["count"],
                          f"{label}: the gateway counted {ok} handshakes, loadgen "
                          f"{report['handshakes']['count']}")
            if report["handshakes"]["resumed"]:
                resumed = after.get("all.resumed", 0) - before.get("all.resumed", 0)
                checks.expect(resumed >= report["handshakes"]["resumed"],
                              f"{label}: the gateway counted {resumed} resumptions, loadgen "
                              f"{report['handshakes']['resumed']}")
        # A refused certificate: failures by kind, and exit 1.
        code, report, stderr = loadgen(gw, args, pki, "--mode", "handshake", seconds=1,
                                       cert="client-revoked")
        if checks.expect(report is not None, f"revoked: no JSON report (exit {code}): {stderr}"):
            log(f"revoked: exit {code}, failures {report['failures']['by_kind']}")
            by_kind = report["failures"]["by_kind"]
            checks.expect(code == 1, f"revoked: exit {code}, expected 1")
            checks.expect(set(by_kind) == {"tls_alert:certificate_revoked"} and
                          report["requests"]["count"] == 0,
                          f"revoked: failures {by_kind}, requests {report['requests']}")
        # Bad options: exit 2 before any connection.
        proc = gw.netns(args.loadgen, "--target", f"{GATEWAY_IP}:{TLS_PORT}", timeout=30,
                        check_rc=False)
        checks.expect(proc.returncode == 2 and "--cafile" in proc.stderr,
                      f"neither --cafile nor --insecure: exit {proc.returncode}, {proc.stderr}")
        wait_gauges_zero(gw, checks, "after the runs", include_time_wait=False)
        finish(gw, checks)
    log(f"loadgen smoke took {time.monotonic() - start:.1f} s")
    checks.fail_if_any()


def main_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loadgen", default=os.environ.get("MTLSGW_LOADGEN", ""),
                        help="the loadgen binary (default $MTLSGW_LOADGEN)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--capture", metavar="PCAP",
                        help="tcpdump the TAP (headers) into this file")
    return parser.parse_args()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("test_loadgen.py needs root (network namespaces, TAP devices)", file=sys.stderr)
        sys.exit(77)  # meson: skipped
    ARGS = main_args()
    sys.exit(main(lambda: run(ARGS)))
