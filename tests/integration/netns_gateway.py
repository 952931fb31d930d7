"""Integration-test harness: a gateway in its own network namespace.

Wraps scripts/gateway-netns (the one place that knows the topology) and
scripts/telemetry-query, and always tears the namespace down.
"""
import importlib.machinery
import json
import os
import signal as signals
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


_ACTIVE = []  # gateways started and not yet stopped, for stop_on_signals()


def stop_on_signals():
    """On SIGTERM/SIGINT (meson's timeout sends SIGTERM to the test's process
    group, then SIGKILL half a second later): kill our helpers, stop every
    running gateway with a `gateway-netns stop` in its own session (so the
    SIGKILL cannot cut the clean-up short), and fail."""
    def handler(signum, _frame):
        for gw in list(_ACTIVE):
            gw.stop_detached()
        raise Failure(f"stopped by signal {signum}; gateways stopped in the background")
    signals.signal(signals.SIGTERM, handler)
    signals.signal(signals.SIGINT, handler)


class Gateway:
    """`with Gateway(workers=2) as gw:` starts mtlsgw; leaving stops it.

    config: a dict written to a JSON file and passed as --config (None: the
    embedded default); extra: gateway options after `--` (e.g. --fault-rx).
    Processes started with spawn() are stopped when the gateway is.
    """

    def __init__(self, workers=1, extra=(), name=None, config=None):
        self.workers = workers
        self.extra = list(extra)
        self.name = name or f"mtlsgw-it-{os.getpid()}-w{workers}"
        self.config = config
        self.config_path = None
        self.exit_code = None
        self.log = ""
        self.children = []

    def __enter__(self):
        start = [GATEWAY_NETNS, "start", self.name, "--workers", str(self.workers)]
        if self.config is not None:
            self.config_path = f"/tmp/mtlsgw-{self.name}.json"
            with open(self.config_path, "w") as f:
                json.dump(self.config, f, indent=1)
            start += ["--config", self.config_path]
        _ACTIVE.append(self)
        try:
            run([*start, "--", *self.extra], timeout=90)
        except BaseException:
            _ACTIVE.remove(self)
            raise
        return self

    def stop_detached(self):
        """Stops the gateway from a process of its own session; for signal
        handlers, which must not wait."""
        for proc in self.children:
            if proc.poll() is None:
                proc.kill()
        if self.exit_code is None:
            subprocess.Popen([GATEWAY_NETNS, "stop", self.name], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
            self.exit_code = -1
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def stop(self, signal="TERM"):
        if self.exit_code is not None:
            return self.exit_code
        self.stop_children()
        proc = run([GATEWAY_NETNS, "stop", self.name, "--signal", signal], timeout=60,
                   check_rc=False)
        self.exit_code = proc.returncode
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        try:
            with open(f"/tmp/mtlsgw-{self.name}.log") as f:
                self.log = f.read()
        except OSError:
            self.log = ""
        return self.exit_code

    def __exit__(self, *exc):
        try:
            self.stop_children()
        finally:
            self.stop()
            if self.config_path:
                try:
                    os.unlink(self.config_path)
                except OSError:
                    pass
        return False

    def spawn(self, *args, **popen_args):
        """Starts a command in the namespace without waiting (stdout piped,
        text); it is killed, if still running, when the gateway stops."""
        # `ip netns exec` execs the command: the Popen's pid is the command's.
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *args], stdout=subprocess.PIPE,
                                text=True, **popen_args)
        self.children.append(proc)
        return proc

    def stop_children(self):
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signals.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.children = []

    def info(self):
        proc = run([GATEWAY_NETNS, "info", self.name], timeout=10)
        return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)

    def pid(self):
        """The mtlsgw process (the gateway itself, not a wrapper)."""
        return int(self.info()["pid"])

    def vmrss_kb(self):
        with open(f"/proc/{self.pid()}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise Failure("no VmRSS in /proc/PID/status")

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
