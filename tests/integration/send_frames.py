#!/usr/bin/env python3
"""Sends crafted Ethernet frames from the namespace's kernel side to the gateway.

    send_frames.py IFACE SRC_MAC DST_MAC KIND COUNT

Runs inside the test namespace (ip netns exec), on a raw AF_PACKET socket.
Prints nothing on success. KIND names a malformed or unexpected frame; each
maps to the drop reason the gateway must count (see KINDS).
"""
import socket
import struct
import sys

SRC_IP = bytes([198, 18, 0, 1])
DST_IP = bytes([198, 18, 0, 2])


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(payload: bytes, proto=1, src=SRC_IP, dst=DST_IP, version=4, ihl=5, total=None,
         flags_frag=0x4000, good_checksum=True, options=b"") -> bytes:
    header_len = 20 + len(options)
    total = header_len + len(payload) if total is None else total
    header = struct.pack("!BBHHHBBH4s4s", version << 4 | ihl, 0, total, 0x77, flags_frag, 64,
                         proto, 0, src, dst) + options
    cs = checksum(header)
    if not good_checksum:
        cs ^= 0x5A5A
    header = header[:10] + struct.pack("!H", cs) + header[12:]
    return header + payload


def icmp_echo(good_checksum=True) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, 0x1D1D, 1) + b"mtlsgw-integration"
    cs = checksum(body)
    if not good_checksum:
        cs ^= 0x00FF
    return body[:2] + struct.pack("!H", cs) + body[4:]


def arp(op=1, htype=1, ptype=0x0800, hlen=6, plen=4, sender_mac=None, target_ip=DST_IP) -> bytes:
    return struct.pack("!HHBBH6s4s6s4s", htype, ptype, hlen, plen, op, sender_mac, SRC_IP,
                       b"\0" * 6, target_ip)


def build(kind: str, src: bytes, dst: bytes) -> bytes:
    eth = lambda payload, ethertype=0x0800, d=dst: d + src + struct.pack("!H", ethertype) + payload
    other_mac = bytes([0x02, 0x00, 0xC6, 0x12, 0x00, 0x77])
    multicast_mac = bytes([0x01, 0x00, 0x5E, 0x00, 0x00, 0x01])
    frames = {
        "eth_not_for_us": lambda: eth(ipv4(icmp_echo()), d=other_mac),
        "eth_multicast": lambda: eth(ipv4(icmp_echo()), d=multicast_mac),
        "eth_unknown_type": lambda: eth(b"\0" * 46, ethertype=0x88B5),
        "eth_vlan": lambda: eth(b"\x00\x05\x08\x00" + ipv4(icmp_echo()), ethertype=0x8100),
        "arp_truncated": lambda: eth(arp(sender_mac=src)[:20], ethertype=0x0806),
        "arp_bad_format": lambda: eth(arp(htype=6, sender_mac=src), ethertype=0x0806),
        "arp_bad_op": lambda: eth(arp(op=9, sender_mac=src), ethertype=0x0806),
        "ipv4_truncated": lambda: eth(ipv4(icmp_echo())[:12]),
        "ipv4_bad_version": lambda: eth(ipv4(icmp_echo(), version=6)),
        "ipv4_bad_header_length": lambda: eth(ipv4(icmp_echo(), ihl=4)),
        "ipv4_bad_total_length": lambda: eth(ipv4(icmp_echo(), total=1400)),
        "ipv4_bad_checksum": lambda: eth(ipv4(icmp_echo(), good_checksum=False)),
        "ipv4_fragment": lambda: eth(ipv4(icmp_echo(), flags_frag=0x2000)),
        "ipv4_bad_source": lambda: eth(ipv4(icmp_echo(), src=bytes([127, 0, 0, 1]))),
        "ipv4_not_for_us": lambda: eth(ipv4(icmp_echo(), dst=bytes([198, 18, 0, 77]))),
        "ipv4_unsupported_protocol": lambda: eth(ipv4(b"\x30\x39\x00\x35\x00\x08\x00\x00", proto=17)),
        "icmp_bad_checksum": lambda: eth(ipv4(icmp_echo(good_checksum=False))),
        "icmp_truncated": lambda: eth(ipv4(b"\x08\x00\xf7")),
    }
    return frames[kind]()


KINDS = [
    "eth_not_for_us", "eth_multicast", "eth_unknown_type", "eth_vlan", "arp_truncated",
    "arp_bad_format", "arp_bad_op", "ipv4_truncated", "ipv4_bad_version",
    "ipv4_bad_header_length", "ipv4_bad_total_length", "ipv4_bad_checksum", "ipv4_fragment",
    "ipv4_bad_source", "ipv4_not_for_us", "ipv4_unsupported_protocol", "icmp_bad_checksum",
    "icmp_truncated",
]


def main(argv):
    if len(argv) != 6:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    iface, src, dst, kind, count = argv[1], argv[2], argv[3], argv[4], int(argv[5])
    src_mac = bytes.fromhex(src.replace(":", ""))
    dst_mac = bytes.fromhex(dst.replace(":", ""))
    kinds = KINDS if kind == "all" else [kind]
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface, 0))
        for _ in range(count):
            for k in kinds:
                sock.send(build(k, src_mac, dst_mac))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
