#!/usr/bin/env python3
"""The gateway on a net_tap port in a namespace, against the namespace's kernel.

    test_gateway.py --workers N [--signal TERM|INT]

Proves: the kernel resolves the gateway's MAC by ARP and gets echo replies;
the gateway resolves the kernel (and every worker learns it); a burst of
malformed frames is dropped and counted by reason while the gateway keeps
answering; a stop signal ends it cleanly (exit 0, report printed).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from netns_gateway import (GATEWAY_IP, GATEWAY_MAC, KERNEL_IP, KERNEL_MAC, Gateway, check,
                           main, wait_for)
import send_frames

BURST_ROUNDS = 20


def test(workers: int, signal: str):
    with Gateway(workers=workers) as gw:
        # ARP and ping.
        received = gw.ping(count=5)
        check(received == 5, f"5 echo requests, {received} replies")
        neigh = gw.netns("ip", "neigh", "show", GATEWAY_IP).stdout
        check(GATEWAY_MAC in neigh.lower(), f"kernel neighbour entry: {neigh!r}")

        # The kernel forgets us and resolves again: ARP is answered every time.
        gw.netns("ip", "neigh", "flush", "dev", "mtg0")
        check(gw.ping(count=2) == 2, "ping after neighbour flush")
        check(GATEWAY_MAC in gw.netns("ip", "neigh", "show", GATEWAY_IP).stdout.lower(),
              "re-resolved after flush")

        # Large echoes and a quick series (spread over queues with 2 workers).
        check(gw.ping(count=3, size=1472) == 3, "full-MTU echo")
        check(gw.ping(count=200, interval=0.002) >= 198, "200 quick echoes")

        # The gateway resolved the kernel, on every worker (peer relay).
        def learned_everywhere():
            table = gw.telemetry("/mtlsgw/arp")
            return len(table) == workers and all(
                any(KERNEL_IP in row and KERNEL_MAC in row.lower() and "reachable" in row
                    for row in rows) for rows in table.values())
        check(wait_for(learned_everywhere, timeout=5), f"ARP tables: {gw.telemetry('/mtlsgw/arp')}")

        ports = gw.telemetry("/mtlsgw/ports")
        check(ports["0"]["mac"].lower() == GATEWAY_MAC, f"port MAC: {ports}")
        check(ports["0"]["queues"] == workers, f"one queue per worker: {ports}")
        # net_tap has no readable Toeplitz key or redirection table (the TUN
        # driver picks queues), so flows are steered in software.
        check(ports["0"]["steering"] == "software", f"net_tap steers in software: {ports}")
        if workers > 1:
            check("redirection table" in ports["0"].get("steering_fallback", ""),
                  f"the reason for software steering: {ports}")

        # Malformed burst: every kind, BURST_ROUNDS times.
        before = gw.telemetry("/mtlsgw/drops")
        gw.netns(sys.executable, send_frames.__file__, "mtg0", KERNEL_MAC, GATEWAY_MAC, "all",
                 str(BURST_ROUNDS))
        # Still answering during and after.
        check(gw.ping(count=3) == 3, "ping after the malformed burst")

        def counted():
            after = gw.telemetry("/mtlsgw/drops")
            return all(after[k] - before[k] >= BURST_ROUNDS for k in send_frames.KINDS) and after
        after = wait_for(counted, timeout=10)
        after = after or gw.telemetry("/mtlsgw/drops")
        for kind in send_frames.KINDS:
            delta = after[kind] - before[kind]
            check(delta >= BURST_ROUNDS, f"drop reason {kind}: counted {delta}, sent {BURST_ROUNDS}")
            # No frame of one kind may be blamed on another reason: the
            # exact count shows each kind maps to exactly one reason.
            check(delta == BURST_ROUNDS, f"drop reason {kind}: counted {delta}, sent {BURST_ROUNDS}")

        stats = gw.telemetry("/mtlsgw/stats")
        check(stats["icmp_echo_replies"] >= 213, f"echo replies: {stats}")
        check(stats["workers"] == workers, f"worker count: {stats}")
        check(stats["busy_cycles"] > 0 and stats["idle_cycles"] > 0, f"cycle accounting: {stats}")
        workers_info = gw.telemetry("/mtlsgw/workers")
        check(sorted(workers_info) == [str(i) for i in range(workers)], f"workers: {workers_info}")

        code = gw.stop(signal)
        check(code == 0, f"gateway exit code {code} after SIG{signal}\n{gw.log}")
        check("received, stopping" in gw.log and "drops: total=" in gw.log,
              f"exit report missing:\n{gw.log}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--signal", default="TERM", choices=["TERM", "INT"])
    args = parser.parse_args()
    sys.exit(main(lambda: test(args.workers, args.signal)))
