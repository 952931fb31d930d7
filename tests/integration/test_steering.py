#!/usr/bin/env python3
"""Hardware flow steering set up on a device that has a readable RSS key and
redirection table (RETA). net_tap has neither: there, steering is software
(test_gateway.py checks that). net_null reports a Toeplitz key, 128 RETA
entries and lets them be programmed and read back, so with two workers the
port must come up in rss steering. Steering source ports by the hash is
covered by the unit tests (tests/dataplane/flow_steering_test.cc); net_null
carries no traffic.

    test_steering.py MTLSGW

The gateway runs in a network namespace of its own (unshare --net) with no
interface in it: net_null sends nothing anywhere.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from netns_gateway import check, main, wait_for  # noqa: E402

TELEMETRY_QUERY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                               "telemetry-query")
WORKERS = 2
NULL_RETA_SIZE = 128  # drivers/net/null: RTE_ETH_RSS_RETA_SIZE_128


def lcores(workers):
    # Main lcore 0 and the workers spread over the CPUs we may use, as
    # scripts/gateway-netns does.
    cpus = os.cpu_count() or 1
    return ",".join(["0@0"] + [f"{i}@{i % cpus}" for i in range(1, workers + 1)])


def test(mtlsgw):
    prefix = f"mtlsgw-steering-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "config.json")
        with open(config, "w") as f:
            json.dump({"ports": [{"port_id": 0, "address": "198.18.0.2/24",
                                  "gateway": "198.18.0.1"}]}, f)
        log_path = os.path.join(tmp, "gateway.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                ["unshare", "--net", mtlsgw, "--lcores", lcores(WORKERS), "--no-huge", "-m", "256",
                 "--no-pci", "--file-prefix", prefix, "--vdev", "net_null0,no-rx=1",
                 "--log-level", "lib.eal:warning", "--", "--config", config],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            def running():
                with open(log_path) as f:
                    return "worker(s) running" in f.read()
            check(wait_for(running, timeout=60) and proc.poll() is None,
                  f"gateway did not start: {open(log_path).read()}")
            with open(log_path) as f:
                port_lines = [line for line in f if line.startswith("port 0 (net_null)")]
            check(len(port_lines) == 1 and port_lines[0].rstrip().endswith(
                f"{WORKERS} queue(s), rss on, steering rss"), f"start line: {port_lines}")
            reply = subprocess.run([TELEMETRY_QUERY, prefix, "/mtlsgw/ports"], capture_output=True,
                                   text=True, timeout=30)
            check(reply.returncode == 0, f"telemetry: {reply.stderr}")
            port = json.loads(reply.stdout)["/mtlsgw/ports"]["0"]
            check(port["driver"] == "net_null" and port["queues"] == WORKERS, f"port: {port}")
            check(port["steering"] == "rss", f"steering: {port}")
            check(port["reta_size"] == NULL_RETA_SIZE, f"RETA read back: {port}")
            check("steering_fallback" not in port, f"no fallback in rss steering: {port}")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
        check(code == 0, f"exit code {code}: {open(log_path).read()}")
        print(port_lines[0].rstrip())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(lambda: test(sys.argv[1])))
