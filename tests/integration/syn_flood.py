#!/usr/bin/env python3
"""A bounded SYN flood at the gateway, from a raw socket in the test namespace.

    syn_flood.py [--count 30000] [--port 7] [--deadline 60]

Runs inside the namespace (ip netns exec). Sources are spoofed from
198.19.0.0/16 (inside the RFC 2544 range 198.18.0.0/15): the gateway answers
them through its default gateway 198.18.0.1, the namespace's kernel, which
does not forward (net.ipv4.ip_forward is 0 in a new namespace, checked here),
so the SYN-ACKs go nowhere and the handshakes never complete. Sends --count
SYNs as fast as the socket takes them (a full device queue is waited out and
the SYN sent again), stops at --count or --deadline, and prints one JSON line.
"""
import argparse
import errno
import ipaddress
import json
import random
import socket
import struct
import sys
import time

GATEWAY_IP = "198.18.0.2"
SPOOF_NET = ipaddress.ip_network("198.19.0.0/16")
RANGE = ipaddress.ip_network("198.18.0.0/15")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn(src: bytes, dst: bytes, sport: int, dport: int, seq: int) -> bytes:
    # Options like a Linux SYN: MSS 1460, SACK permitted, timestamps, window scale 7.
    options = (struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" +
               struct.pack("!BBII", 8, 10, seq & 0xFFFFFFFF, 0) + b"\x01" +
               struct.pack("!BBB", 3, 3, 7))
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, 0x02, 64240, 0, 0) + options
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0x4000, 64,
                     socket.IPPROTO_TCP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=30000)
    parser.add_argument("--port", type=int, default=7)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    # The flood must stay in the namespace: no forwarding of the SYN-ACKs.
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        if f.read().strip() != "0":
            print("syn_flood: ip_forward is on in this namespace; refusing", file=sys.stderr)
            return 2
    assert ipaddress.ip_address(GATEWAY_IP) in RANGE and SPOOF_NET.subnet_of(RANGE)

    rng = random.Random(args.seed)
    random.seed(args.seed)
    dst = socket.inet_aton(GATEWAY_IP)
    base = int(SPOOF_NET.network_address)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    start = time.monotonic()
    deadline = start + args.deadline
    sent = full = 0
    sources = set()
    try:
        while sent < args.count and time.monotonic() < deadline:
            host = rng.randrange(1, SPOOF_NET.num_addresses - 1)  # not .0.0 nor .255.255
            src_int = base + host
            src = src_int.to_bytes(4, "big")
            packet = syn(src, dst, rng.randrange(1024, 65536), args.port, rng.getrandbits(32))
            while time.monotonic() < deadline:
                try:
                    sock.sendto(packet, (GATEWAY_IP, 0))
                    break
                except OSError as e:
                    if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                        raise
                    full += 1
                    time.sleep(0.0005)
            else:
                break
            sent += 1
            sources.add(src_int)
    finally:
        sock.close()
    seconds = time.monotonic() - start
    print(json.dumps({"test": "syn_flood", "sent": sent, "requested": args.count,
                      "distinct_sources": len(sources), "queue_full_retries": full,
                      "seconds": round(seconds, 3),
                      "syns_per_s": round(sent / seconds, 1) if seconds else None,
                      "ok": sent == args.count}), flush=True)
    return 0 if sent == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
