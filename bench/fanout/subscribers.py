"""The receiving side of the generator: one process counts what many subscriber sockets get.

Cheap on purpose, so the SFU saturates first: every socket is drained in a
tight ``recv_into`` loop that only looks at two header bytes to count RTP.
One subscriber per room is *sampled*: it reads with the kernel's receive
timestamp (SO_TIMESTAMPNS), decrypts every packet and subtracts the send time
the publisher appended, which is the latency the SFU added (plus two kernel
hops). Full-ICE SFUs (Janus) send consent checks, which are answered; ICE-lite
ones get our keepalive checks.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bench.fanout.endpoint import Connected, binding_request, binding_response
from bench.fanout.media import read_stamp
from mediapod.transport.srtp import AES128_CM_SHA1_80, SrtpError, SrtpSession

KEEPALIVE_INTERVAL = 2.0
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("@qq")


@dataclass(frozen=True)
class Subscription:
    """One subscriber's connection, its room, and whether it is the room's sampled one."""

    room: int
    connection: Connected
    sampled: bool


@dataclass
class Samples:
    """What the sampled subscribers saw since the previous request."""

    packets: int  # RTP packets they read
    undecryptable: int
    latencies_ns: list[int]  # one per packet that carried a send stamp


def _is_rtp(buf: bytearray | bytes) -> bool:
    # RFC 5761: RTCP packet types 192-223 sit where RTP has marker + payload type.
    return 128 <= buf[0] < 192 and not 192 <= buf[1] <= 223


def run(subscriptions: list[Subscription], received: Any, control: Connection) -> None:
    """Count into ``received`` (shared memory, one slot per subscription, read without asking) until told "stop";
    answer "samples" with the Samples since the last time."""
    poller = select.epoll()
    index = {}
    sessions: dict[int, SrtpSession] = {}
    for i, s in enumerate(subscriptions):
        fd = s.connection.sock.fileno()
        index[fd] = i
        poller.register(fd, select.EPOLLIN)
        if s.sampled:
            s.connection.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sessions[i] = SrtpSession.from_keying_material(AES128_CM_SHA1_80, s.connection.keying_material, s.connection.is_dtls_server)
    socks = [s.connection.sock for s in subscriptions]
    counts = received.get_obj()
    latencies: list[int] = []
    sampled_packets = undecryptable = 0
    buf = bytearray(2048)
    next_keepalive = 0.0
    while True:
        if control.poll():
            command = control.recv()
            if command == "stop":
                return
            control.send(Samples(sampled_packets, undecryptable, latencies))
            latencies = []
            sampled_packets = undecryptable = 0
        now = time.monotonic()
        if now >= next_keepalive:
            for s in subscriptions:
                s.connection.sock.sendto(binding_request(s.connection.ice), s.connection.ice.remote_address)
            next_keepalive = now + KEEPALIVE_INTERVAL
        for fd, _ in poller.poll(0.02):
            i = index[fd]
            sock = socks[i]
            srtp = sessions.get(i)
            if srtp is not None:
                n, bad = _read_sampled(sock, srtp, latencies, subscriptions[i].connection)
                counts[i] += n
                sampled_packets += n
                undecryptable += bad
                continue
            count = 0
            while True:
                try:
                    size = sock.recv_into(buf)
                except BlockingIOError:
                    break
                if _is_rtp(buf):
                    count += 1
                elif buf[0] < 4:
                    _answer(bytes(buf[:size]), subscriptions[i].connection)
            counts[i] += count


def _read_sampled(sock: socket.socket, srtp: SrtpSession, latencies: list[int], connection: Connected) -> tuple[int, int]:
    """Drain a sampled socket: (RTP packets, undecryptable packets); appends each stamped packet's latency."""
    count = bad = 0
    while True:
        try:
            data, ancillary, _, _ = sock.recvmsg(2048, 64)
        except BlockingIOError:
            return count, bad
        if not _is_rtp(data):
            if data[0] < 4:
                _answer(data, connection)
            continue
        count += 1
        arrived = next((TIMESPEC.unpack(d[: TIMESPEC.size]) for level, kind, d in ancillary if kind == SO_TIMESTAMPNS), None)
        try:
            plain = srtp.unprotect_rtp(data)
        except SrtpError:
            bad += 1
            continue
        sent = read_stamp(plain)
        if sent is not None and arrived is not None:
            latencies.append(arrived[0] * 1_000_000_000 + arrived[1] - sent)


def _answer(data: bytes, connection: Connected) -> None:
    response = binding_response(data, connection.ice.remote_address, connection.ice)
    if response is not None:
        connection.sock.sendto(response, connection.ice.remote_address)
