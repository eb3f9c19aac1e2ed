"""Hot-path benchmark: CPU per forwarded packet of the forwarding core, SRTP and UDP send included.

    .venv/bin/python bench/hotpath                    # 50 subscribers, 20 passes
    .venv/bin/python bench/hotpath --subscribers 10 --passes 5

Replays the committed recording (bench/hotpath/replay.py) to N subscribers
in one process: each subscriber's pacer hands packets to a real
PeerTransport, which protects them with libsrtp (AES-GCM) and sends them
from a real UDP socket to a sink socket nobody reads (the kernel drops what
overflows it). No ICE or DTLS: the SRTP keys are fixed, since the handshake
is not what is measured. The recording is played ``--passes`` times back to
back (sequence numbers and timestamps moved on each pass, so no pass looks
like a retransmission). Prints a table; ``--json`` writes it.

``--write-reference COMMIT`` instead records what the checked-out
implementation sends to each replayed subscriber (bench/hotpath/reference.txt);
tests/acceptance/test_performance.py checks later implementations against it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.hotpath import capture
from bench.hotpath.replay import Replay, load, write_reference
from mediapod.metrics import MediaCounters
from mediapod.transport.dtls import DtlsCertificate
from mediapod.transport.peer import PeerTransport, TransportState
from mediapod.transport.srtp import AEAD_AES_128_GCM, SrtpSession
from mediapod.transport.udp import UdpMux

_SEQ_TS = struct.Struct("!HI")
RECORDING_SECONDS = 2.5  # each pass starts this much after the previous one


def passes(packets: list[capture.Recorded], count: int) -> list[capture.Recorded]:
    """The recording played ``count`` times, each pass's sequence numbers and timestamps after the last's."""
    per_ssrc: dict[int, int] = {}
    for recorded in packets:
        ssrc = int.from_bytes(recorded.packet[8:12], "big")
        per_ssrc[ssrc] = per_ssrc.get(ssrc, 0) + 1
    out = []
    for n in range(count):
        for recorded in packets:
            packet = bytearray(recorded.packet)
            ssrc = int.from_bytes(packet[8:12], "big")
            seq, ts = _SEQ_TS.unpack_from(packet, 2)
            clock = capture.STREAMS[ssrc].clock_rate
            _SEQ_TS.pack_into(packet, 2, (seq + n * per_ssrc[ssrc]) & 0xFFFF, (ts + int(n * RECORDING_SECONDS * clock)) & 0xFFFFFFFF)
            out.append(capture.Recorded(recorded.offset_ms + int(n * RECORDING_SECONDS * 1000), bytes(packet)))
    return out


async def measure(subscribers: int, count: int) -> dict[str, float]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    counters = MediaCounters()  # the transports count what they send
    mux = await UdpMux.listen("127.0.0.1", 0, counters)
    context = DtlsCertificate.generate().ssl_context()
    transports = []
    for index in range(subscribers):
        transport = PeerTransport(mux, context, on_rtp=lambda data: None, on_rtcp=lambda packets: None, on_state=_ignore)
        # What a finished DTLS-SRTP handshake leaves behind, with fixed keys.
        transport._srtp = SrtpSession(AEAD_AES_128_GCM, bytes(28), bytes([index % 256]) * 28)
        transport.remote_addr = sink.getsockname()
        transports.append(transport)
    replay = Replay(subscribers, lambda index: transports[index].send_rtp)
    packets = passes(load(), count)
    before = counters.rtp_packets_out
    started_cpu, started = time.process_time(), time.perf_counter()
    replay.run(packets)
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    forwarded = counters.rtp_packets_out - before
    replay.close()
    mux.close()
    sink.close()
    return {
        "subscribers": subscribers,
        "packets_in": len(packets),
        "packets_forwarded": forwarded,
        "cpu_us_per_forwarded_packet": 1e6 * cpu / forwarded,
        "forwarded_packets_per_cpu_second": forwarded / cpu,
        "wall_seconds": wall,
    }


def _ignore(state: TransportState) -> None:
    """No transport changes state: there is no handshake."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--write-reference", metavar="COMMIT",
        help="record what this implementation sends in bench/hotpath/reference.txt, naming COMMIT, and exit",
    )
    args = parser.parse_args()
    if args.write_reference:
        write_reference(args.write_reference)
        return
    result = asyncio.run(measure(args.subscribers, args.passes))
    print(f"{'subscribers':>12} {'packets in':>11} {'forwarded':>10} {'CPU us/pkt':>11} {'pkt/CPU s':>10}")
    print(
        f"{result['subscribers']:>12} {result['packets_in']:>11} {result['packets_forwarded']:>10} "
        f"{result['cpu_us_per_forwarded_packet']:>11.2f} {result['forwarded_packets_per_cpu_second']:>10.0f}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
