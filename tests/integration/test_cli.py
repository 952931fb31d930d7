#!/usr/bin/env python3
"""The command lines as an operator meets them: help, version, config errors,
EAL set-ups that cannot work. Each must answer clearly with the right exit code.

    test_cli.py MTLSGW MTLSGWCTL
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from netns_gateway import check, main

# No devices, no hugepages (--in-memory is refused together with --no-huge,
# so the runtime directory of each file prefix is removed afterwards).
EAL_QUIET = ["--no-huge", "-m", "128", "--no-pci", "--log-level", "lib.eal:error"]


def run(args, timeout=60):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def test(mtlsgw, mtlsgwctl):
    p = run([mtlsgw, "--help"])
    check(p.returncode == 0 and "--config" in p.stdout and "EAL options" in p.stdout,
          f"--help: {p.returncode} {p.stdout} {p.stderr}")
    p = run([mtlsgw, "--version"])
    check(p.returncode == 0 and p.stdout.startswith("mtlsgw "), f"--version: {p.stdout}")
    p = run([mtlsgwctl, "--version"])
    check(p.returncode == 0 and p.stdout.startswith("mtlsgwctl "), f"mtlsgwctl: {p.stdout}")

    p = run([mtlsgw, "--", "--check-config"])
    check(p.returncode == 0 and "198.18.0.2/24 gateway 198.18.0.1" in p.stdout,
          f"embedded config: {p.stdout} {p.stderr}")

    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"ports": [{"port_id": 0, "address": "198.18.0.2/24", "gateway": "198.19.0.1"}]}')
        p = run([mtlsgw, "--", "--config", bad])
        check(p.returncode == 2, f"bad config exit code {p.returncode}")
        check("ports[0].gateway" in p.stderr and "not a host on" in p.stderr,
              f"bad config message: {p.stderr}")

        broken = os.path.join(tmp, "broken.json")
        with open(broken, "w") as f:
            f.write('{"ports": [}')
        p = run([mtlsgw, "--", "--config", broken])
        check(p.returncode == 2 and "invalid JSON" in p.stderr and "line 1" in p.stderr,
              f"broken JSON: {p.returncode} {p.stderr}")

    p = run([mtlsgw, "--", "--no-such-option"])
    check(p.returncode != 0 and "no-such-option" in (p.stderr + p.stdout), f"unknown option: {p.stderr}")

    prefixes = [f"mtlsgw-cli-{os.getpid()}-{i}" for i in range(2)]
    try:
        p = run([mtlsgw, "-l", "0", *EAL_QUIET, "--file-prefix", prefixes[0], "--"])
        check(p.returncode == 1 and "no worker lcore" in p.stderr,
              f"one lcore: {p.returncode} {p.stderr}")
        p = run([mtlsgw, "-l", "0-1", *EAL_QUIET, "--file-prefix", prefixes[1], "--"])
        check(p.returncode == 1 and "no such ethdev" in p.stderr,
              f"no port: {p.returncode} {p.stderr}")
    finally:
        for prefix in prefixes:
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(lambda: test(sys.argv[1], sys.argv[2])))
