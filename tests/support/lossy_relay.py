"""A lossy network between WebRTC peers and the media pod, on loopback.

This kernel has no netem, so loss is injected by a UDP relay: peers send to
the relay (the pod advertises the relay's port in its ICE candidate), the
relay forwards each peer's datagrams to the pod from a socket of its own, and
the pod's answers back. RTP packets (not RTCP, STUN or DTLS, so that
feedback and handshakes stay intact and the test measures media recovery)
are dropped with a seeded probability per direction. Only publishers send
RTP uplink and only subscribers receive it downlink, so the direction picks
whose link is lossy.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from tests.support.link_shaper import LinkShaper

Address = tuple[str, int]


def is_rtp(datagram: bytes) -> bool:
    """RTP per RFC 7983 first byte, and not RTCP per RFC 5761 second byte."""
    return len(datagram) > 1 and 128 <= datagram[0] <= 191 and not 192 <= datagram[1] <= 223


class _Return(asyncio.DatagramProtocol):
    """The relay's socket toward the pod for one peer: carries the pod's answers back."""

    def __init__(self, relay: LossyRelay, peer: Address) -> None:
        self.relay = relay
        self.peer = peer

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.relay._downlink(data, self.peer)


class _Front(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.relay._uplink(data, addr)


@dataclass
class LossyRelay:
    """Relays UDP between peers and the pod, dropping RTP at the configured rates."""

    uplink_loss: float = 0.0
    downlink_loss: float = 0.0
    # With a rate, every peer's downlink is a LinkShaper of that rate (a
    # subscriber behind a slow link); set_downlink_rate() changes it live.
    downlink_rate_bps: float | None = None
    shapers: dict[Address, LinkShaper] = field(default_factory=dict)
    seed: int = 7
    target: Address | None = None
    dropped: dict[str, int] = field(default_factory=lambda: {"uplink": 0, "downlink": 0})
    relayed_rtp: dict[str, int] = field(default_factory=lambda: {"uplink": 0, "downlink": 0})
    _front: asyncio.DatagramTransport | None = None
    _returns: dict[Address, asyncio.DatagramTransport] = field(default_factory=dict)
    _pending: dict[Address, list[bytes]] = field(default_factory=dict)
    _random: random.Random = field(default_factory=random.Random)

    async def start(self) -> int:
        """Listen on an ephemeral loopback port; returns it (to advertise)."""
        self._random.seed(self.seed)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Front(self), local_addr=("127.0.0.1", 0))
        self._front = transport  # type: ignore[assignment]
        return transport.get_extra_info("sockname")[1]

    def set_downlink_rate(self, rate_bps: float | None) -> None:
        """Change every peer's downlink rate now (None lifts the cap)."""
        self.downlink_rate_bps = rate_bps
        for shaper in self.shapers.values():
            shaper.set_rate(rate_bps)

    def close(self) -> None:
        for shaper in self.shapers.values():
            shaper.close()
        for transport in self._returns.values():
            transport.close()
        if self._front is not None:
            self._front.close()

    def _drops(self, direction: str, data: bytes, rate: float) -> bool:
        if rate <= 0 or not is_rtp(data):
            return False
        self.relayed_rtp[direction] += 1
        if self._random.random() < rate:
            self.dropped[direction] += 1
            return True
        return False

    def _uplink(self, data: bytes, peer: Address) -> None:
        if self._drops("uplink", data, self.uplink_loss):
            return
        transport = self._returns.get(peer)
        if transport is not None:
            transport.sendto(data)
            return
        pending = self._pending.get(peer)
        if pending is not None:
            pending.append(data)
            return
        self._pending[peer] = [data]
        asyncio.get_running_loop().create_task(self._open_return(peer))

    async def _open_return(self, peer: Address) -> None:
        assert self.target is not None, "set the relay's target (the pod's UDP address) first"
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Return(self, peer), remote_addr=self.target)
        self._returns[peer] = transport  # type: ignore[assignment]
        for data in self._pending.pop(peer, []):
            transport.sendto(data)

    def _downlink(self, data: bytes, peer: Address) -> None:
        if self._drops("downlink", data, self.downlink_loss):
            return
        front = self._front
        if front is None:
            return
        shaper = self.shapers.get(peer)
        if shaper is None and self.downlink_rate_bps is not None:
            shaper = self.shapers[peer] = LinkShaper(lambda d: front.sendto(d, peer), self.downlink_rate_bps)
        if shaper is not None:
            shaper.send(data)
        else:
            front.sendto(data, peer)
