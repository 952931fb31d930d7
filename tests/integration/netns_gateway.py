"""Integration-test harness: a gateway in its own network namespace.

Wraps scripts/gateway-netns (the one place that knows the topology) and
scripts/telemetry-query, and always tears the namespace down.
"""
import importlib.machinery
import os
import subprocess
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = os.path.join(TOP, "scripts")
GATEWAY_NETNS = os.path.join(SCRIPTS, "gateway-netns")
GATEWAY_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"
GATEWAY_MAC = "02:00:c6:12:00:02"
KERNEL_MAC = "02:00:c6:12:00:01"

_telemetry = importlib.machinery.SourceFileLoader(
    "telemetry_query", os.path.join(SCRIPTS, "telemetry-query")).load_module()


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(args, timeout=60, check_rc=True):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check_rc and proc.returncode != 0:
        raise Failure(f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


class Gateway:
    """`with Gateway(workers=2) as gw:` starts mtlsgw; leaving stops it."""

    def __init__(self, workers=1, extra=(), name=None):
        self.workers = workers
        self.extra = list(extra)
        self.name = name or f"mtlsgw-it-{os.getpid()}-w{workers}"
        self.exit_code = None
        self.log = ""

    def __enter__(self):
        run([GATEWAY_NETNS, "start", self.name, "--workers", str(self.workers), "--", *self.extra],
            timeout=90)
        return self

    def stop(self, signal="TERM"):
        if self.exit_code is not None:
            return self.exit_code
        proc = run([GATEWAY_NETNS, "stop", self.name, "--signal", signal], timeout=60,
                   check_rc=False)
        self.exit_code = proc.returncode
        try:
            with open(f"/tmp/mtlsgw-{self.name}.log") as f:
                self.log = f.read()
        except OSError:
            self.log = ""
        return self.exit_code

    def __exit__(self, *exc):
        self.stop()
        return False

    def netns(self, *args, timeout=60, check_rc=True):
        return run(["ip", "netns", "exec", self.name, *args], timeout=timeout, check_rc=check_rc)

    def telemetry(self, command):
        return _telemetry.query(self.name, command)

    def ping(self, count=5, interval=0.2, size=56, deadline=30):
        proc = self.netns("ping", "-q", "-c", str(count), "-i", str(interval), "-s", str(size),
                          "-W", "2", "-w", str(deadline), GATEWAY_IP, timeout=deadline + 10,
                          check_rc=False)
        for line in proc.stdout.splitlines():
            if "packets transmitted" in line:
                return int(line.split(",")[1].split()[0])
        raise Failure(f"ping printed no summary: {proc.stdout} {proc.stderr}")


def main(test_fn):
    """Runs test_fn(); prints the outcome; exit code for meson."""
    try:
        test_fn()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print("PASS")
    return 0


def wait_for(predicate, timeout=10.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
