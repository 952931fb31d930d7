#!/usr/bin/env python3
"""A smoke of perf/compare (issue 5): `perf/compare/compare --smoke` runs
every system (nginx, HAProxy, mtlsgw) in every mode for about a second in
one namespace, and this checks that it worked, never what it measured:

    test_compare.py [--build DIR] [--compare PATH]

- the script exits 0 and writes compare.md, compare.svg and compare.json;
- for every system and load mode (handshake, resume, requests, bulk) a run
  with a positive rate, a measured server CPU and no failure, and a row in
  the markdown table with that rate;
- resume runs resumed every handshake they counted, bulk runs moved bytes;
- every system held every idle connection and got a memory figure, and
  the crypto ceilings were read from perf/crypto_bench;
- nothing is left behind: no namespace "cmp", no nginx or HAProxy started
  by it, nothing of ours listening in the root namespace.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SYSTEMS = ["nginx", "haproxy", "mtlsgw"]
MODES = {"handshake": "full mTLS handshakes", "resume": "resumed handshakes",
         "requests": "proxied keep-alive GETs", "bulk": "proxied bulk (both ways)"}


class Checks:
    def __init__(self):
        self.failed = []

    def expect(self, ok, message):
        if not ok:
            self.failed.append(message)
            print(f"FAIL: {message}", flush=True)
        return ok


def log(message):
    print(f"test_compare: {message}", flush=True)


def our_servers():
    """nginx/HAProxy processes whose command line names a compare run dir."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "mtlsgw-compare-" in cmdline and ("nginx" in cmdline or "haproxy" in cmdline):
            found.append(f"{pid}: {cmdline}")
    return found


def run(args):
    checks = Checks()
    out = tempfile.mkdtemp(prefix="test-compare-")
    start = time.monotonic()
    try:
        command = [args.compare, "--smoke", "--build", args.build, "--out", out]
        log(" ".join(command))
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=170)
        except subprocess.TimeoutExpired as e:
            print((e.stderr or b"")[-4000:] if isinstance(e.stderr, str) else e.stderr)
            checks.expect(False, "compare --smoke did not finish within 170 s")
            return checks
        log(f"exit {proc.returncode} after {time.monotonic() - start:.1f} s")
        print(proc.stdout)
        if proc.returncode != 0:
            print(proc.stderr[-6000:])
        checks.expect(proc.returncode == 0, f"compare --smoke exited {proc.returncode}")
        for name in ("compare.md", "compare.svg", "compare.json"):
            path = os.path.join(out, name)
            checks.expect(os.path.isfile(path) and os.path.getsize(path) > 0,
                          f"{name} missing or empty")
        if not os.path.isfile(os.path.join(out, "compare.json")):
            return checks
        with open(os.path.join(out, "compare.json")) as f:
            result = json.load(f)
        with open(os.path.join(out, "compare.md")) as f:
            markdown = f.read()
        with open(os.path.join(out, "compare.svg")) as f:
            checks.expect("<svg" in f.read(2000), "compare.svg is not an SVG")
        check_runs(checks, result, markdown)
        check_idle(checks, result)
        ceiling = result.get("ceiling")
        checks.expect(isinstance(ceiling, dict), f"crypto ceiling: {ceiling!r}")
        checks.expect(not result.get("failed_runs"), f"failed runs: {result.get('failed_runs')}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    check_nothing_left(checks)
    log(f"took {time.monotonic() - start:.1f} s")
    return checks


def check_runs(checks, result, markdown):
    for mode, title in MODES.items():
        for system in SYSTEMS:
            runs = [r for r in result["runs"] if r["system"] == system and r["mode"] == mode]
            label = f"{mode} {system}"
            if not checks.expect(len(runs) == 1, f"{label}: {len(runs)} runs, expected 1"):
                continue
            r = runs[0]
            checks.expect(r["exit"] == 0, f"{label}: loadgen exit {r['exit']}")
            checks.expect(r["rate"] > 0, f"{label}: rate {r['rate']}")
            checks.expect(r["failures"] == 0, f"{label}: failures {r['failures_by_kind']}")
            checks.expect(r["server_core_s"] > 0 and r["per_core_s"] and r["per_core_s"] > 0,
                          f"{label}: no server CPU measured ({r['server_core_s']})")
            checks.expect(r["client_cpu_percent"] > 0, f"{label}: no client CPU")
            if mode == "resume":
                checks.expect(r["resumed"] == r["handshakes"] > 0,
                              f"{label}: {r['resumed']} of {r['handshakes']} resumed")
            row = re.search(rf"^\| {re.escape(title)} \| {system} \| ([\d ]+(?:\.\d+)?) ",
                            markdown, re.M)
            if checks.expect(row is not None, f"{label}: no row in compare.md"):
                rate = float(row.group(1).replace(" ", ""))
                checks.expect(rate > 0, f"{label}: rate {rate} in compare.md")


def check_idle(checks, result):
    for system in SYSTEMS:
        entry = result["idle"].get(system)
        if not checks.expect(entry is not None, f"idle {system}: not run"):
            continue
        checks.expect(entry.get("held") == entry.get("connections") and entry.get("held", 0) > 0,
                      f"idle {system}: held {entry.get('held')} of {entry.get('connections')}")
        checks.expect(entry.get("failures") == 0, f"idle {system}: {entry}")
        checks.expect("bytes_per_connection" in entry, f"idle {system}: no figure: {entry}")


def check_nothing_left(checks):
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    checks.expect(not re.search(r"^cmp\b", netns, re.M), "namespace cmp left behind")
    checks.expect(not os.path.exists("/run/mtlsgw-netns/cmp"), "/run/mtlsgw-netns/cmp left")
    left = our_servers()
    checks.expect(not left, f"servers left running: {left}")
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    checks.expect(not re.search(r'"(nginx|haproxy|mtlsgw|loadgen)"', listening),
                  f"something of ours listens in the root namespace:\n{listening}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.environ.get("MTLSGW_BUILD",
                                                          os.path.join(TOP, "build")))
    parser.add_argument("--compare", default=os.path.join(TOP, "perf", "compare", "compare"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("test_compare.py needs root (network namespaces, TAP devices)", file=sys.stderr)
        return 77  # meson: skipped
    checks = run(args)
    if checks.failed:
        print(f"{len(checks.failed)} check(s) failed", flush=True)
        return 1
    log("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
